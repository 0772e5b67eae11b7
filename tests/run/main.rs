//! `missive run`, `missive history` and `missive mark`, from outside: the built binary on
//! `samples/accounts` and on generated batches, in temporary directories, with the ledger
//! read back through the library (`missive::ledger::SqliteLedger`) or, while a killed run's
//! files are inspected, through a read-only SQLite connection.
//!
//! One module per concern:
//!
//! | module | what it holds a run to |
//! |---|---|
//! | [`crash`] | killed with SIGKILL at any point and resumed, every letter is rendered exactly once |
//! | [`rerun`] | the same command twice produces nothing new; `history` shows what the first did |
//! | [`resume`] | `--resume RUN_ID` writes into the run's own directory and keeps its summary |
//! | [`reissue`] | `mark KEY returned\|cancelled` reissues that letter and keeps the mailed copy; `mark` refuses what it cannot do |
//! | [`lock`] | a second run (or `mark`) is refused while another holds the ledger |
//! | [`bad_ledger`] | a corrupt or unwritable ledger stops the run naming the file |
//! | [`mail_date`] | a past mail date needs `--allow-past-mail-date`; deadlines count from the mail date |
//! | [`treasury`] | the Treasury file has one row per action and is never written twice |
//! | [`workers`] | several processes render one run as one would; a killed worker or coordinator loses nothing |
//!
//! This file holds what every module uses: the gate-off configuration, running the binary,
//! the sample keys. Helpers other test binaries share are in `tests/common/`.
//!
//! Every run passes `--allow-past-mail-date` (but those of [`mail_date`]): the samples'
//! as-of date (2026-12-01) may be in the past by the clock the tests run under.

#[path = "../common/mod.rs"]
mod common;

mod bad_ledger;
mod changed;
mod crash;
mod lock;
mod mail_date;
mod reissue;
mod rerun;
mod resume;
mod treasury;
mod workers;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use chrono::NaiveDate;
use serde_json::Value;

use common::files::utf8;
use common::{Run, root};

/// The name of this crate's gate-off configuration file (see `common::gate_off_config`).
const CONFIG_NAME: &str = "run-tests";

/// These tests are about runs, not approvals: the shipped configuration, gate off.
fn run_config() -> &'static str {
    common::gate_off_arg(CONFIG_NAME)
}

/// `missive --config <gate off> ARGS`.
fn missive(args: &[&str]) -> Run {
    common::missive_gate_off(CONFIG_NAME, args)
}

/// The samples' as-of date.
const AS_OF: &str = "2026-12-01";
/// The sample accounts, relative to the crate root.
const SAMPLES: &str = "samples/accounts";
/// The basic sample's intent to offset, and its file name.
const ITO_1001: &str = "CT-0001001/intent_to_offset/L1";
const ITO_1001_FILE: &str = "CT-0001001_intent_to_offset_L1.pdf";

/// `YYYY-MM-DD` as a date.
fn date(text: &str) -> NaiveDate {
    text.parse().expect("a test date")
}

/// `missive run --accounts ACCOUNTS --out OUT --allow-past-mail-date --jobs 2 EXTRA…` from
/// the crate root.
fn run_cmd(accounts: &str, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "run",
        "--accounts",
        accounts,
        "--out",
        utf8(out),
        "--allow-past-mail-date",
        "--jobs",
        "2",
    ];
    args.extend_from_slice(extra);
    missive(&args)
}

/// The samples run as of `as_of`.
fn samples_run(out: &Path, as_of: &str) -> Run {
    run_cmd(SAMPLES, out, &["--as-of", as_of])
}

/// The run id `missive run` reports on standard error (`run N: …`).
fn reported_run_id(run: &Run) -> i64 {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `run N:` line in stderr:\n{}", run.stderr))
}

/// `missive history ARGS --ledger LEDGER --format json`, parsed.
fn history_json(ledger: &Path, args: &[&str]) -> Value {
    let mut all = vec!["history"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--ledger", utf8(ledger), "--format", "json"]);
    let run = missive(&all);
    run.expect_code(0);
    run.json()
}

/// `run --accounts ACCOUNTS --out OUT --as-of AS_OF --allow-past-mail-date --jobs JOBS`, as
/// [`spawn_run`] takes them.
fn spawn_args(accounts: &Path, out: &Path, jobs: &str) -> Vec<String> {
    [
        "run",
        "--accounts",
        utf8(accounts),
        "--out",
        utf8(out),
        "--as-of",
        AS_OF,
        "--allow-past-mail-date",
        "--jobs",
        jobs,
    ]
    .map(String::from)
    .to_vec()
}

/// Starts `missive run ARGS` in the background (standard error to `log`): the crash test
/// kills it, the lock test races it.
fn spawn_run(args: &[String], log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["--config", run_config()])
        .args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(File::create(log).expect("create the attempt's log"))
        .spawn()
        .expect("start missive run")
}

/// The text of a PDF by `pdftotext`, or `None` (with a notice) when poppler is missing.
fn pdf_text(path: &Path) -> Option<String> {
    match Command::new("pdftotext").arg(path).arg("-").output() {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => panic!(
            "pdftotext failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            eprintln!(
                "pdftotext not found: skipping the text check (apt-get install poppler-utils)"
            );
            None
        }
    }
}

/// The string field `field` of a JSON object; panics showing the object otherwise.
fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {value:#}"))
}

/// Whether `text` looks like a hex sha256.
fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}
