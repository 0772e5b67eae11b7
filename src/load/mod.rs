//! Stage 1, `load`: account files → validated [`Account`]s.
//!
//! `--accounts` names a directory (every `*.json` beneath it, recursively, one account per
//! file, in sorted path order), a `.jsonl` file (one account per line) or a single `.json`
//! file. Reading is streamed: [`records`] yields one [`RawRecord`] at a time, and
//! [`parse_account`] turns a record into an [`Account`] (serde with unknown fields refused,
//! then `validate`). A bad file or line never stops the batch: it becomes an
//! [`AccountError`] naming the source, the account id when known and every field at fault,
//! and the caller goes on with the rest. Only an unusable `--accounts` path is fatal
//! ([`SourceError`]).

mod input;
pub(crate) mod printable;
mod referrals;
mod validate;

pub use referrals::check_tax_types;

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::account::Account;

pub use crate::calendar::parse_iso_date;

/// Largest account record accepted, in bytes: a real account is a few kilobytes, and a cap
/// keeps one corrupt multi-gigabyte line from exhausting memory.
pub const MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;

/// The `--accounts` path itself cannot be read: nothing can be planned.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The path does not exist.
    #[error("accounts path `{0}` does not exist")]
    NotFound(PathBuf),
    /// A file that is neither a directory, `.jsonl` nor `.json`.
    #[error("accounts path `{0}` is not a directory, a `.jsonl` file or a `.json` file")]
    Unsupported(PathBuf),
    /// The directory or file could not be opened.
    #[error("failed to read accounts from `{path}`")]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// One thing wrong with an account: the field (a path like `liabilities[0].tax`, empty for
/// the whole record) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Path of the field at fault, or empty when the whole record is at fault.
    pub field: String,
    /// What is wrong, in words a data steward can act on.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// An account that could not be loaded: reported, skipped, and the batch goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountError {
    /// The file, or `file:LINE` for JSONL.
    pub source: String,
    /// The account id, when the record got far enough to tell.
    pub account_id: Option<String>,
    /// Everything found wrong (at least one).
    pub problems: Vec<Problem>,
}

impl AccountError {
    fn whole(source: &str, account_id: Option<String>, message: impl Into<String>) -> Self {
        AccountError {
            source: source.to_owned(),
            account_id,
            problems: vec![Problem {
                field: String::new(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.source)?;
        if let Some(id) = &self.account_id {
            write!(f, " (account {id})")?;
        }
        let problems: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        write!(f, ": {}", problems.join("; "))
    }
}

impl std::error::Error for AccountError {}

/// The bytes of one account and where they came from.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// The file, or `file:LINE` for JSONL, as shown in errors.
    pub source: String,
    /// The record's bytes (not yet known to be UTF-8 or JSON).
    pub bytes: Vec<u8>,
}

/// Opens `--accounts` and returns its records, in order. Fails only when the path itself
/// is unusable; a file or line that cannot be read later comes out as an `Err` item.
pub fn records(path: &Path) -> Result<Records, SourceError> {
    let metadata = std::fs::metadata(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SourceError::NotFound(path.to_owned()),
        _ => SourceError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    if metadata.is_dir() {
        // (path, why it cannot be read): an entry the walk cannot follow (a dangling
        // symlink, a loop, a subdirectory without permission) is one bad record, not a
        // reason to stop the batch. Only the top directory itself is fatal.
        let mut files: Vec<(PathBuf, Option<String>)> = Vec::new();
        for entry in walkdir::WalkDir::new(path).follow_links(true) {
            match entry {
                Ok(entry) => {
                    let is_json = entry.path().extension().is_some_and(|ext| ext == "json");
                    if is_json && entry.file_type().is_file() {
                        files.push((entry.into_path(), None));
                    }
                }
                Err(err) if err.depth() == 0 => {
                    return Err(SourceError::Io {
                        path: path.to_owned(),
                        source: err.into(),
                    });
                }
                Err(err) => {
                    let at = err.path().unwrap_or(path).to_owned();
                    let why = match err.loop_ancestor() {
                        Some(ancestor) => {
                            format!("symbolic link loop back to `{}`", ancestor.display())
                        }
                        None => format!(
                            "failed to read: {}",
                            err.io_error()
                                .map_or_else(|| err.to_string(), ToString::to_string)
                        ),
                    };
                    files.push((at, Some(why)));
                }
            }
        }
        files.sort();
        return Ok(Records::Files(files.into_iter()));
    }
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("jsonl") => {
            let file = File::open(path).map_err(|source| SourceError::Io {
                path: path.to_owned(),
                source,
            })?;
            Ok(Records::Lines {
                path: path.display().to_string(),
                reader: BufReader::new(file),
                line: 0,
                done: false,
            })
        }
        Some("json") => Ok(Records::Files(vec![(path.to_owned(), None)].into_iter())),
        _ => Err(SourceError::Unsupported(path.to_owned())),
    }
}

/// A stream of account records from a directory or a JSONL file.
pub enum Records {
    /// Whole files, in sorted path order, each with the reason it cannot be read, if any.
    Files(std::vec::IntoIter<(PathBuf, Option<String>)>),
    /// Lines of one JSONL file.
    Lines {
        /// The file, as shown in errors.
        path: String,
        /// The open file.
        reader: BufReader<File>,
        /// Number of the last line read (1-based).
        line: usize,
        /// Set after a read error: the rest of the file is not trusted.
        done: bool,
    },
}

impl Iterator for Records {
    type Item = Result<RawRecord, AccountError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Records::Files(files) => {
                let (path, unreadable) = files.next()?;
                let source = path.display().to_string();
                if let Some(why) = unreadable {
                    return Some(Err(AccountError::whole(&source, None, why)));
                }
                Some(read_file(&path, &source).map(|bytes| RawRecord { source, bytes }))
            }
            Records::Lines {
                path,
                reader,
                line,
                done,
            } => loop {
                if *done {
                    return None;
                }
                *line += 1;
                let source = format!("{path}:{line}");
                let mut bytes = Vec::new();
                let read = (&mut *reader)
                    .take(MAX_RECORD_BYTES as u64 + 1)
                    .read_until(b'\n', &mut bytes);
                let read = read.and_then(|n| {
                    // An oversized line: skip the rest of it so the next record starts clean.
                    let oversized = bytes.len() > MAX_RECORD_BYTES && !bytes.ends_with(b"\n");
                    if oversized {
                        skip_line(reader).map(|()| None)
                    } else {
                        Ok(Some(n))
                    }
                });
                match read {
                    Ok(Some(0)) => return None,
                    Ok(None) => {
                        return Some(Err(AccountError::whole(
                            &source,
                            None,
                            format!("line is longer than {MAX_RECORD_BYTES} bytes"),
                        )));
                    }
                    Ok(Some(_)) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
                    Ok(Some(_)) => return Some(Ok(RawRecord { source, bytes })),
                    Err(err) => {
                        // A read error mid-file: report it once and stop this file.
                        *done = true;
                        return Some(Err(AccountError::whole(
                            &source,
                            None,
                            format!("failed to read the rest of the file: {err}"),
                        )));
                    }
                }
            },
        }
    }
}

/// Discards input up to and including the next newline.
fn skip_line(reader: &mut BufReader<File>) -> std::io::Result<()> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|b| *b == b'\n') {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(());
            }
            None => {
                let len = buffer.len();
                reader.consume(len);
            }
        }
    }
}

fn read_file(path: &Path, source: &str) -> Result<Vec<u8>, AccountError> {
    let fail = |message: String| AccountError::whole(source, None, message);
    let len = std::fs::metadata(path)
        .map_err(|err| fail(format!("failed to read: {err}")))?
        .len();
    if len > MAX_RECORD_BYTES as u64 {
        return Err(fail(format!(
            "file is {len} bytes; an account file may be at most {MAX_RECORD_BYTES}"
        )));
    }
    std::fs::read(path).map_err(|err| fail(format!("failed to read: {err}")))
}

/// Parses and validates one record. Never panics, whatever the bytes.
pub fn parse_account(record: &RawRecord) -> Result<Account, AccountError> {
    // A UTF-8 byte-order mark is not JSON, but Windows tools write one; it carries nothing.
    let bytes = record.bytes.as_slice();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AccountError::whole(&record.source, None, "file is empty"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<input::AccountInput, _> =
        serde_path_to_error::deserialize(&mut deserializer);
    let failed = |field: String, err: &serde_json::Error| AccountError {
        source: record.source.clone(),
        account_id: account_id_of(bytes),
        problems: vec![Problem {
            field,
            message: describe_json_error(err),
        }],
    };
    match parsed {
        Ok(input) => {
            if let Err(err) = deserializer.end() {
                return Err(failed(String::new(), &err));
            }
            let account_id = input.account_id.clone();
            validate::validate(input).map_err(|problems| AccountError {
                source: record.source.clone(),
                account_id: Some(account_id),
                problems,
            })
        }
        Err(err) => {
            let field = err.path().to_string();
            // serde_path_to_error says `.` for the root and ends the path with `?` where it
            // lost track (inside a truncated value): keep the part that is known.
            let field = field.trim_end_matches('?').trim_end_matches('.').to_owned();
            Err(failed(field, err.inner()))
        }
    }
}

/// A JSON error in words, with its position for syntax errors.
fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let message = err.to_string();
    // serde_json appends " at line L column C"; keep it for syntax, drop it for data errors
    // (the field path says where).
    let bare = match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.clone(),
    };
    match err.classify() {
        Category::Syntax | Category::Eof => format!(
            "not valid JSON ({bare}, line {} column {})",
            err.line(),
            err.column()
        ),
        Category::Io => format!("failed to read ({bare})"),
        Category::Data => bare,
    }
}

/// Best-effort account id from a record that failed to parse, for the error report: the
/// whole record if it parses that far, else the first `"account_id": "…"` in the text (a
/// truncated file usually still has it near the top).
fn account_id_of(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        account_id: String,
    }
    let id = match serde_json::from_slice::<IdOnly>(bytes) {
        Ok(v) => Some(v.account_id),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let after_key = text.split_once("\"account_id\"")?.1.trim_start();
            let value = after_key
                .strip_prefix(':')?
                .trim_start()
                .strip_prefix('"')?;
            value.split_once('"').map(|(id, _)| id.to_owned())
        }
    };
    id.filter(|id| !id.is_empty() && id.len() <= 64 && !id.contains('\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> RawRecord {
        RawRecord {
            source: "test.json".to_owned(),
            bytes: json.as_bytes().to_vec(),
        }
    }

    #[test]
    fn empty_optional_text_means_none() {
        let account = parse_account(&record(
            r#"{"account_id": "CT-1",
                "taxpayer": {"name": "Ann Lee", "spouse_name": "", "tin_last4": "1234"},
                "address": {"line1": "1 Main St", "line2": "", "city": "Hartford",
                            "state": "CT", "zip": "06103", "country": ""},
                "email": ""}"#,
        ))
        .expect("empty optional strings are absent, not errors");
        assert_eq!(account.taxpayer.spouse_name, None);
        assert!(!account.email_consented());
        let address = account.address.expect("address");
        assert_eq!(address.line2, None);
        assert_eq!(address.country, "US");
    }

    #[test]
    fn required_text_may_not_be_empty() {
        let err = parse_account(&record(
            r#"{"account_id": "CT-1", "taxpayer": {"name": "", "tin_last4": "1234"}}"#,
        ))
        .expect_err("a blank name is an error");
        assert_eq!(err.problems[0].field, "taxpayer.name");
    }

    #[test]
    fn truncated_json_names_no_bogus_field() {
        let err = parse_account(&record(r#"{"account_id": "CT-1", "taxpayer": {"na"#))
            .expect_err("truncated");
        assert!(!err.problems[0].field.contains('?'), "{:?}", err.problems);
        assert_eq!(err.account_id.as_deref(), Some("CT-1"));
    }
}
