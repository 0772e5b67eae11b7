//! Files a run leaves behind, read back: hashes, the PDFs and temporary files of an output
//! directory, JSON summaries, page counts.
//!
//! Everything here only reads; a missing directory reads as empty, so a test can assert
//! "nothing was written" without creating it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`, as the ledger, `render.json` and control files print it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lower-case hex sha256 of the file at `path`; panics naming the file when unreadable.
pub fn file_sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// `path` as `&str`, for command-line arguments (temporary paths are UTF-8).
pub fn utf8(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// `name → sha256` of every visible PDF in `dir` (kept copies included).
pub fn pdfs(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.expect("directory entry"))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name.ends_with(".pdf") && !name.starts_with('.')).then(|| (name, file_sha(&e.path())))
        })
        .collect()
}

/// Number of visible PDFs in `dir` (cheap: no hashing, for polling).
pub fn count_pdfs(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".pdf") && !name.starts_with('.')
        })
        .count()
}

/// Every file name in `dir` (empty if it does not exist).
pub fn names(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Temporary files (`.NAME.tmp`) in `dir`.
pub fn temps(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        .collect()
}

/// The JSON file at `path`, parsed; panics naming the file when unreadable or not JSON.
pub fn json_file(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Page count of a PDF read with lopdf; panics naming the file when it does not parse.
pub fn pdf_pages(path: &Path) -> usize {
    let doc = lopdf::Document::load(path)
        .unwrap_or_else(|e| panic!("{} is not a readable PDF: {e}", path.display()));
    doc.get_pages().len()
}

/// Every file under `dir`, by its name relative to `dir`, in no particular order.
pub fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("list output") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path
                .strip_prefix(dir)
                .expect("inside")
                .display()
                .to_string();
            files.push((name, path));
        }
    }
    files
}

/// Every file a run wrote under `dir` (relative name → SHA-256), to compare two runs of the
/// same accounts: but the run summaries and the SQLite ledger (they name the ledger and the
/// time) and the Treasury control files (they hash the Treasury file); a Treasury CSV by its
/// lines without the last column, the time each action was recorded.
pub fn run_outputs(dir: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for (name, path) in files_under(dir) {
        if name.starts_with("run-")
            || name.starts_with("missive.db")
            || (name.starts_with("treasury/") && name.ends_with("-control.json"))
        {
            continue;
        }
        if name.starts_with("treasury/") && name.ends_with(".csv") {
            let text = std::fs::read_to_string(&path).expect("read the Treasury file");
            let lines: Vec<&str> = text
                .lines()
                .map(|line| line.rsplit_once(',').map_or(line, |(head, _)| head))
                .collect();
            found.insert(name, lines.join("\n"));
            continue;
        }
        found.insert(name, file_sha(&path));
    }
    found
}
