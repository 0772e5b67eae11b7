//! Helpers shared by the outside-in tests: run the `missive` binary, copy fixtures into a
//! temporary directory, and pick things out of the plan JSON; [`accounts`] writes generated
//! accounts, [`files`] reads back what a run wrote and [`ledger`] its ledger; [`pg`]
//! starts a throwaway PostgreSQL server for the ledger on PostgreSQL.
//!
//! Every test binary includes this module (`mod common;`, or
//! `#[path = "../common/mod.rs"] mod common;` from a test crate in its own folder such as
//! `tests/run/`) but uses only part of it.
#![allow(dead_code)]

pub mod accounts;
pub mod files;
pub mod ledger;
pub mod pg;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The crate root: tests run the binary from here so relative paths (`samples/accounts`)
/// and the `source` paths they produce are stable.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/<rule>/accounts`, relative to the crate root (as passed to `--accounts`).
pub fn fixture(rule: &str) -> String {
    let path = format!("tests/fixtures/{rule}/accounts");
    assert!(root().join(&path).is_dir(), "no fixture folder {path}");
    path
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// Exit status (`-1` if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as JSON; panics with both streams when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| {
            panic!(
                "stdout is not JSON ({err})\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics (showing both streams) unless the exit status is `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `missive ARGS` from the crate root.
pub fn missive(args: &[&str]) -> Run {
    missive_in(root(), args)
}

/// Runs `missive ARGS` from `dir` (with no `missive.toml` there the built-in config is used).
pub fn missive_in(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("failed to start the missive binary");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "missive panicked:\n{}",
        run.stderr
    );
    run
}

/// `missive plan --accounts ACCOUNTS --format json EXTRA…` from the crate root: exit status
/// and parsed plan.
pub fn plan(accounts: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["plan", "--accounts", accounts, "--format", "json"];
    args.extend_from_slice(extra);
    let run = missive(&args);
    let json = run.json();
    (run.code, json)
}

/// Like [`plan`], but panics unless the exit status is 0.
pub fn plan_ok(accounts: &str, extra: &[&str]) -> Value {
    let (code, json) = plan(accounts, extra);
    assert_eq!(code, 0, "exit status; errors: {:#}", json["errors"]);
    json
}

/// A temporary directory holding a copy of fixture files (like mdBook's
/// `BookTest::from_dir`), which a test may then add to or break.
pub struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// An empty temporary directory.
    pub fn empty() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    /// A temporary directory holding a recursive copy of `src` (relative to the crate root).
    pub fn from_dir(src: &str) -> Fixture {
        let fixture = Fixture::empty();
        copy_dir(&root().join(src), fixture.path());
        fixture
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `self.path()/rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    /// The directory as a string, for `--accounts`.
    pub fn arg(&self) -> String {
        self.path().to_str().expect("UTF-8 temp path").to_owned()
    }

    /// Writes `bytes` to `rel` (creating parent directories).
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create fixture subdirectory");
        }
        std::fs::write(&path, bytes).expect("write fixture file");
        path
    }

    /// Copies `src` (a file relative to the crate root) to `rel`.
    pub fn copy(&self, src: &str, rel: &str) -> PathBuf {
        let bytes = std::fs::read(root().join(src)).expect("read fixture source");
        self.write(rel, bytes)
    }

    /// Runs `missive plan --accounts PATH --format json EXTRA…` from inside the fixture
    /// directory, where `PATH` is relative to it.
    pub fn plan(&self, accounts: &str, extra: &[&str]) -> (i32, Value) {
        let run = self.run_plan(accounts, "json", extra);
        let json = run.json();
        (run.code, json)
    }

    /// Runs `missive plan --accounts ACCOUNTS --format FORMAT EXTRA…` from inside the
    /// fixture directory.
    pub fn run_plan(&self, accounts: &str, format: &str, extra: &[&str]) -> Run {
        let mut args = vec!["plan", "--accounts", accounts, "--format", format];
        args.extend_from_slice(extra);
        missive_in(self.path(), &args)
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create directory");
    for entry in std::fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display())) {
        let entry = entry.expect("directory entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy file");
        }
    }
}

/// A JSON array's elements (panics if `value` is not an array).
pub fn array(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {value}"))
}

/// The letter with this key; panics listing the keys present if there is none.
pub fn letter<'a>(plan: &'a Value, key: &str) -> &'a Value {
    array(&plan["letters"])
        .iter()
        .find(|l| l["key"] == key)
        .unwrap_or_else(|| panic!("no letter `{key}`; letters: {:?}", letter_keys(plan)))
}

/// Every letter key, in plan order.
pub fn letter_keys(plan: &Value) -> Vec<String> {
    array(&plan["letters"])
        .iter()
        .map(|l| l["key"].as_str().expect("key is a string").to_owned())
        .collect()
}

/// The keys of one account's letters, in plan order.
pub fn account_letter_keys(plan: &Value, account_id: &str) -> Vec<String> {
    array(&plan["letters"])
        .iter()
        .filter(|l| l["account_id"] == account_id)
        .map(|l| l["key"].as_str().expect("key is a string").to_owned())
        .collect()
}

/// One account's suppressions as `(kind, reason, liability_ids)`, leaving out the
/// optional `already_sent` entries, in plan order.
pub fn suppressions(plan: &Value, account_id: &str) -> Vec<(String, String, Vec<String>)> {
    all_suppressions(plan, account_id)
        .into_iter()
        .filter(|(_, reason, _)| reason != "already_sent")
        .collect()
}

/// One account's suppressions as `(kind, reason, liability_ids)`, `already_sent` included.
pub fn all_suppressions(plan: &Value, account_id: &str) -> Vec<(String, String, Vec<String>)> {
    array(&plan["suppressed"])
        .iter()
        .filter(|s| s["account_id"] == account_id)
        .map(|s| {
            (
                s["kind"].as_str().expect("kind").to_owned(),
                s["reason"].as_str().expect("reason").to_owned(),
                strings(&s["liability_ids"]),
            )
        })
        .collect()
}

/// One account's referrals.
pub fn referrals<'a>(plan: &'a Value, account_id: &str) -> Vec<&'a Value> {
    array(&plan["referrals"])
        .iter()
        .filter(|r| r["account_id"] == account_id)
        .collect()
}

/// A JSON array of strings as `Vec<String>`.
pub fn strings(value: &Value) -> Vec<String> {
    array(value)
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("expected a string, got {v}"))
                .to_owned()
        })
        .collect()
}

/// Shorthand for a `(kind, reason, ids)` suppression tuple in assertions.
pub fn sup(kind: &str, reason: &str, ids: &[&str]) -> (String, String, Vec<String>) {
    (
        kind.to_owned(),
        reason.to_owned(),
        ids.iter().map(|s| (*s).to_owned()).collect(),
    )
}

/// Asserts that `object` has every field of `expected` with that exact value (other
/// fields are not compared), naming the object on failure.
#[track_caller]
pub fn assert_fields(object: &Value, expected: Value) {
    let expected = expected
        .as_object()
        .expect("expected fields form an object");
    for (name, want) in expected {
        assert!(
            object.get(name).is_some(),
            "field `{name}` is missing from {object:#}"
        );
        assert_eq!(&object[name], want, "field `{name}` differs in {object:#}");
    }
}

/// The shipped configuration with the approval gate off, written once per test process
/// to `$CARGO_TARGET_TMPDIR/<name>-<pid>.toml`: for tests about runs and batches, not
/// approvals (`tests/review.rs` covers the gate).
pub fn gate_off_config(name: &str) -> &'static Path {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let shipped = std::fs::read_to_string(root().join("missive.toml")).expect("missive.toml");
        let gate_off = shipped.replace("require_approval = true", "require_approval = false");
        assert_ne!(
            gate_off, shipped,
            "missive.toml must set require_approval = true"
        );
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}.toml", std::process::id()));
        std::fs::write(&path, gate_off).expect("write the test configuration");
        path
    })
}

/// [`gate_off_config`] as a `--config` argument.
pub fn gate_off_arg(name: &str) -> &'static str {
    gate_off_config(name).to_str().expect("UTF-8 path")
}

/// `missive --config <gate off> ARGS` from the crate root (see [`gate_off_config`]).
pub fn missive_gate_off(name: &str, args: &[&str]) -> Run {
    let mut all = vec!["--config", gate_off_arg(name)];
    all.extend_from_slice(args);
    missive(&all)
}

/// Whether poppler's `pdftotext` is installed; prints a notice when not (the PDF text
/// tests then pass vacuously).
pub fn have_pdftotext() -> bool {
    let ok = Command::new("pdftotext").arg("-v").output().is_ok();
    if !ok {
        eprintln!("notice: `pdftotext` not installed, skipping (apt-get install -y poppler-utils)");
    }
    ok
}

/// `pdftotext [-layout] -enc UTF-8 PDF -`.
pub fn pdftotext(pdf: &Path, layout: bool) -> String {
    let mut cmd = Command::new("pdftotext");
    if layout {
        cmd.arg("-layout");
    }
    let out = cmd
        .args(["-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `"1234.5"`-style decimal strings as letters print them: `$1,234.50`.
pub fn dollars(amount: &str) -> String {
    let (whole, cents) = amount.split_once('.').unwrap_or((amount, "00"));
    assert!(cents.len() <= 2, "amount {amount} has sub-cent digits");
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("${grouped}.{cents:0<2}")
}

/// The keys interface.md gives every `treasury_updates[]` entry (always present).
pub const TREASURY_UPDATE_KEYS: &[&str] = &[
    "account_id",
    "notice_key",
    "action",
    "reason",
    "amount_before",
    "amount_after",
    "liability_ids",
    "why",
];
