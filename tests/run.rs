//! `missive run`, `missive history` and `missive mark`, from outside: the built binary on
//! `samples/accounts` and on generated batches, in temporary directories, with the ledger
//! read back through the library (`missive::ledger::SqliteLedger`) or, while a killed run's
//! files are inspected, through a read-only SQLite connection.
//!
//! The crash test starts `missive run` on a few hundred letters, kills it with SIGKILL at
//! several points (before planning is recorded, right after, at the first file of a chunk,
//! mid-rendering, in the last chunk, after the summary), resumes by rerunning the same
//! command or with `--resume RUN_ID`, and checks that every letter ends with exactly one
//! complete file and one `rendered` ledger row, and that nothing was rendered twice.
//!
//! Every run passes `--allow-past-mail-date`: the samples' as-of date (2026-12-01) may be in
//! the past by the clock the tests run under.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use missive::ledger::prelude::*;
use missive::ledger::{LetterRecord, LetterState, RunStatus, SqliteLedger};
use missive::letter::LetterKey;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::{Fixture, Run, array, root};

/// These tests are about runs, not approvals: the shipped configuration, gate off.
fn run_config() -> &'static str {
    common::gate_off_config("run-tests")
        .to_str()
        .expect("UTF-8 path")
}

/// `missive --config <gate off> ARGS`.
fn missive(args: &[&str]) -> Run {
    let mut all = vec!["--config", run_config()];
    all.extend_from_slice(args);
    common::missive(&all)
}

const AS_OF: &str = "2026-12-01";
const SAMPLES: &str = "samples/accounts";
const ITO_1001: &str = "CT-0001001/intent_to_offset/L1";
const ITO_1001_FILE: &str = "CT-0001001_intent_to_offset_L1.pdf";
const TREASURY_HEADER: &str = "run_id,action,account_id,notice_key,liability_ids,amount_before,amount_after,reason,debtor_name,tin_last4,recorded_at";

// ---------------------------------------------------------------------------------------
// Helpers

fn date(text: &str) -> NaiveDate {
    text.parse().expect("a test date")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
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

/// `name → sha256` of every visible PDF in `dir` (kept copies included).
fn pdfs(dir: &Path) -> BTreeMap<String, String> {
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
fn count_pdfs(dir: &Path) -> usize {
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
fn names(dir: &Path) -> BTreeSet<String> {
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
fn temps(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        .collect()
}

fn json_file(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The run id `missive run` reports on standard error (`run N: …`).
fn reported_run_id(run: &Run) -> i64 {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `run N:` line in stderr:\n{}", run.stderr))
}

fn open_ledger(path: &Path) -> SqliteLedger {
    SqliteLedger::open(path).unwrap_or_else(|e| panic!("open ledger {}: {e}", path.display()))
}

fn letter_of(ledger: &SqliteLedger, key: &str) -> LetterRecord {
    ledger
        .letter(&LetterKey::from_text(key))
        .expect("read letter")
        .unwrap_or_else(|| panic!("no letter `{key}` in the ledger"))
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

/// Page count of a PDF read with lopdf; panics naming the file when it does not parse.
fn pdf_pages(path: &Path) -> usize {
    let doc = lopdf::Document::load(path)
        .unwrap_or_else(|e| panic!("{} is not a readable PDF: {e}", path.display()));
    doc.get_pages().len()
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

fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {value:#}"))
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---------------------------------------------------------------------------------------
// 1. The crash test

/// Letters (one intent to offset per account) in the crash test: more than 500 and not a
/// multiple of the 64-letter render chunk, so the last chunk is short.
const CRASH_ACCOUNTS: usize = 520;

/// Writes `n` simple accounts as JSON Lines, each owing one liability due 2024-04-15, so
/// each yields exactly one intent to offset `CT-9xxxxxx/intent_to_offset/L1`.
fn write_crash_accounts(path: &Path, n: usize) -> Vec<String> {
    let mut text = String::new();
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("CT-9{i:06}");
        let account = serde_json::json!({
            "account_id": id,
            "taxpayer": {"name": format!("Crash Test Payer {i}"), "spouse_name": null, "tin_last4": "1234"},
            "address": {"line1": format!("{} Main St", i + 1), "line2": null, "city": "Hartford",
                        "state": "CT", "zip": "06105", "country": "US"},
            "email": null,
            "electronic_delivery": false,
            "language": "en",
            "balance_as_of": "2026-11-01",
            "liabilities": [{"id": "L1", "tax_type": "individual_income", "period": "2023",
                             "due_date": "2024-04-15",
                             "tax": format!("{}.{:02}", 100 + i / 100, i % 100),
                             "penalty": "0.00", "interest": "0.00", "enforceable": true}],
            "payment_plan": null,
            "bankruptcy": null,
            "notices": [],
            "reviews": [],
            "offsets": [],
            "late_returns": []
        });
        text.push_str(&serde_json::to_string(&account).expect("serialize account"));
        text.push('\n');
        keys.push(format!("{id}/intent_to_offset/L1"));
    }
    std::fs::write(path, text).expect("write accounts");
    keys
}

/// When to kill an attempt.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// As soon as the ledger file exists (opening, migrating, starting the run, planning).
    LedgerAppears,
    /// After a fixed delay from the start.
    Delay(Duration),
    /// As soon as a run newer than `after` has recorded planned letters (the plan is
    /// committed; rendering starts).
    PlanRecorded { after: i64 },
    /// As soon as at least this many PDFs are in the output directory.
    Pdfs(usize),
    /// As soon as a `run-*.json` not in the directory before appears (production is over;
    /// referrals and the run's end remain).
    NewSummary,
}

/// How to start an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    /// The same command again.
    Same,
    /// `--resume` with the latest run's id.
    Resume,
}

/// A read-only view of the ledger for polling and for logging between attempts (never
/// migrates or writes, so it cannot change what the next attempt sees).
fn peek(ledger: &Path) -> Option<Connection> {
    if !ledger.exists() {
        return None;
    }
    Connection::open_with_flags(ledger, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()
}

/// The newest run, or with `unfinished` the newest that did not finish (the one to resume).
fn latest_run(ledger: &Path, unfinished: bool) -> Option<i64> {
    let conn = peek(ledger)?;
    let sql = if unfinished {
        "SELECT max(id) FROM runs WHERE status <> 'finished'"
    } else {
        "SELECT max(id) FROM runs"
    };
    conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .ok()
        .flatten()
}

fn plan_recorded_after(ledger: &Path, after: i64) -> bool {
    let Some(conn) = peek(ledger) else {
        return false;
    };
    conn.query_row(
        "SELECT count(*) FROM letters WHERE run_id = (SELECT max(id) FROM runs) AND run_id > ?1",
        [after],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

/// One line describing the ledger and output directory, and a check that every letter the
/// ledger calls rendered has its complete file on disk (the ledger row changes only after
/// the file is complete).
fn snapshot(ledger: &Path, out: &Path) -> String {
    let pdf_count = count_pdfs(out);
    let temps = temps(out);
    let Some(conn) = peek(ledger) else {
        return format!("{pdf_count} PDFs, temps {temps:?}, no ledger");
    };
    let read = || -> rusqlite::Result<String> {
        let mut runs = Vec::new();
        let mut stmt = conn.prepare("SELECT id, status FROM runs ORDER BY id")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
            let (id, status) = row?;
            runs.push(format!("{id}:{status}"));
        }
        let mut states = Vec::new();
        let mut stmt =
            conn.prepare("SELECT state, count(*) FROM letters GROUP BY state ORDER BY state")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (state, n) = row?;
            states.push(format!("{state}={n}"));
        }
        let mut stmt =
            conn.prepare("SELECT key, file, file_sha256 FROM letters WHERE state = 'rendered'")?;
        let rendered: Vec<(String, String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (key, file, sha) in &rendered {
            let path = out.join(file);
            assert!(
                path.is_file(),
                "the ledger says `{key}` is rendered but {} is missing",
                path.display()
            );
            assert_eq!(
                &file_sha(&path),
                sha,
                "the ledger's sha256 of `{key}` does not match {}",
                path.display()
            );
        }
        Ok(format!(
            "{pdf_count} PDFs, temps {temps:?}, runs [{}], letters [{}]",
            runs.join(" "),
            states.join(" ")
        ))
    };
    match read() {
        Ok(text) => text,
        Err(err) => format!("{pdf_count} PDFs, temps {temps:?}, ledger unreadable: {err}"),
    }
}

fn kill_reached(
    kill: KillAt,
    started: Instant,
    ledger: &Path,
    out: &Path,
    summaries: &BTreeSet<String>,
) -> bool {
    match kill {
        KillAt::LedgerAppears => ledger.exists(),
        KillAt::Delay(d) => started.elapsed() >= d,
        KillAt::PlanRecorded { after } => plan_recorded_after(ledger, after),
        KillAt::Pdfs(n) => count_pdfs(out) >= n,
        KillAt::NewSummary => names(out)
            .iter()
            .any(|n| n.starts_with("run-") && n.ends_with(".json") && !summaries.contains(n)),
    }
}

/// Starts `missive run` for the crash test (standard error to `log`).
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

/// A pseudo-random delay (from the clock) for one kill point: 20–300 ms.
fn random_delay() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(20 + u64::from(nanos % 281))
}

#[test]
fn a_run_killed_at_any_point_and_resumed_renders_every_letter_exactly_once() {
    let dir = Fixture::empty();
    let accounts = dir.join("accounts.jsonl");
    let keys = write_crash_accounts(&accounts, CRASH_ACCOUNTS);
    let n = keys.len();
    let out = dir.join("out");
    let ledger_path = out.join("missive.db");

    // The plan (no ledger) is the oracle of what is due: one intent to offset per account.
    let (code, plan) = common::plan(utf8(&accounts), &["--as-of", AS_OF]);
    assert_eq!(
        code, 0,
        "plan of the generated accounts: {:#}",
        plan["errors"]
    );
    let planned: BTreeSet<String> = common::letter_keys(&plan).into_iter().collect();
    assert_eq!(
        planned,
        keys.iter().cloned().collect(),
        "one letter per account"
    );

    let same: Vec<String> = [
        "run",
        "--accounts",
        utf8(&accounts),
        "--out",
        utf8(&out),
        "--as-of",
        AS_OF,
        "--allow-past-mail-date",
        "--jobs",
        "2",
    ]
    .map(String::from)
    .to_vec();

    // The kill schedule. Thresholds in PDFs are absolute counts in the directory, so the
    // kill lands among the letters still to do whatever the earlier attempts left.
    type Schedule = fn(usize, usize, i64) -> Option<KillAt>;
    let schedule: Vec<(Start, &str, Schedule)> = vec![
        (Start::Same, "as the ledger appears", |_, _, _| {
            Some(KillAt::LedgerAppears)
        }),
        (Start::Same, "after a random delay", |_, _, _| {
            Some(KillAt::Delay(random_delay()))
        }),
        (Start::Same, "once the plan is recorded", |_, _, run| {
            Some(KillAt::PlanRecorded { after: run })
        }),
        (Start::Resume, "at the first new file", |have, _, _| {
            Some(KillAt::Pdfs(have + 1))
        }),
        (Start::Same, "mid-rendering", |have, n, _| {
            Some(KillAt::Pdfs(have + (n - have) / 2))
        }),
        (Start::Same, "in the last chunk", |_, n, _| {
            Some(KillAt::Pdfs(n - 2))
        }),
        (Start::Resume, "after the summary", |_, _, _| {
            Some(KillAt::NewSummary)
        }),
        (Start::Same, "never (must finish)", |_, _, _| None),
    ];

    let mut log = Vec::new();
    let mut finished = false;
    for (attempt, (start, label, kill_at)) in schedule.iter().enumerate() {
        let have = count_pdfs(&out);
        let latest = latest_run(&ledger_path, false);
        let kill = kill_at(have, n, latest.unwrap_or(0));
        let latest = latest_run(&ledger_path, true).or(latest);
        let mut args = same.clone();
        let mut how = "same command".to_owned();
        if *start == Start::Resume {
            if let Some(id) = latest {
                args = [
                    "run",
                    "--resume",
                    &id.to_string(),
                    "--ledger",
                    utf8(&ledger_path),
                ]
                .into_iter()
                .chain(["--allow-past-mail-date", "--jobs", "2"])
                .map(String::from)
                .collect();
                how = format!("--resume {id}");
            } else {
                how = "same command (no run to resume yet)".to_owned();
            }
        }
        let summaries = names(&out);
        let stderr_log = dir.join(&format!("attempt-{attempt}.log"));
        let started = Instant::now();
        let mut child = spawn_run(&args, &stderr_log);
        let outcome = loop {
            if let Some(status) = child.try_wait().expect("poll the child") {
                break format!("exited by itself with {status} before the kill point");
            }
            if let Some(kill) = kill
                && kill_reached(kill, started, &ledger_path, &out, &summaries)
            {
                let at_kill = count_pdfs(&out);
                child.kill().expect("SIGKILL the run");
                let status = child.wait().expect("reap the killed run");
                break format!("killed ({status}) with {at_kill} PDFs present at the kill");
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "attempt {attempt} took over 5 minutes"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        let stderr = std::fs::read_to_string(&stderr_log).unwrap_or_default();
        assert!(
            !stderr.contains("panicked"),
            "attempt {attempt} panicked:\n{stderr}"
        );
        let line = format!(
            "attempt {attempt} ({how}, kill {label}: {kill:?}) after {} ms: {outcome}; then {}",
            started.elapsed().as_millis(),
            snapshot(&ledger_path, &out)
        );
        println!("{line}");
        log.push(line);
        if kill.is_none() {
            assert!(
                outcome.contains("exit status: 0"),
                "the last attempt must finish with exit 0:\n{}\n--- stderr\n{stderr}",
                log.join("\n")
            );
            finished = true;
        }
    }
    assert!(
        finished,
        "no attempt ran to completion:\n{}",
        log.join("\n")
    );
    let log = log.join("\n");

    // The ledger: every due letter exactly once, rendered, with its complete file.
    let ledger = open_ledger(&ledger_path);
    // The last attempt was a plain rerun (no `--resume`): it batched every rendered print
    // letter, whichever killed run rendered it.
    assert_eq!(
        ledger.unbatched_letters().expect("unbatched letters"),
        Vec::new(),
        "rendered print letters left in no batch\n{log}"
    );
    let runs = ledger.runs().expect("runs");
    for run in &runs {
        assert!(
            matches!(run.status, RunStatus::Finished | RunStatus::Interrupted),
            "run {} is left {}\n{log}",
            run.id,
            run.status
        );
    }
    let mut letters: BTreeMap<String, LetterRecord> = BTreeMap::new();
    for run in &runs {
        for letter in ledger.letters_of_run(run.id, None).expect("letters of run") {
            let previous = letters.insert(letter.key.as_str().to_owned(), letter);
            assert!(previous.is_none(), "a key listed under two runs\n{log}");
        }
    }
    assert_eq!(
        letters.keys().cloned().collect::<BTreeSet<_>>(),
        planned,
        "the ledger holds exactly the due letters\n{log}"
    );
    let on_disk = pdfs(&out);
    let expected_files: BTreeSet<String> = letters
        .values()
        .map(|l| format!("{}.pdf", l.key.file_stem()))
        .collect();
    assert_eq!(
        on_disk.keys().cloned().collect::<BTreeSet<_>>(),
        expected_files,
        "exactly one PDF per letter, under its final name, and no kept copy (a re-render after \
         a crash gives identical bytes, so nothing is set aside)\n{log}"
    );
    let mut events_total = 0;
    for (key, letter) in &letters {
        assert_eq!(letter.state, LetterState::Rendered, "`{key}`\n{log}");
        let file = letter
            .file
            .as_deref()
            .expect("a rendered letter has a file");
        assert_eq!(file, format!("{}.pdf", letter.key.file_stem()));
        let path = out.join(file);
        let bytes = std::fs::read(&path).expect("read PDF");
        assert!(bytes.starts_with(b"%PDF-"), "{file} has no PDF header");
        assert!(
            bytes.trim_ascii_end().ends_with(b"%%EOF"),
            "{file} is truncated (no %%EOF)"
        );
        assert_eq!(
            Some(sha256_hex(&bytes).as_str()),
            letter.file_sha256.as_deref(),
            "{file}: sha256 differs from the ledger"
        );
        assert_eq!(
            Some(u32::try_from(pdf_pages(&path)).expect("page count")),
            letter.pages,
            "{file}: page count differs from the ledger"
        );

        // Nothing rendered twice: a letter is inserted as planned once, may be planned
        // again by later attempts (planned → planned), and is rendered exactly once. A file
        // written but not yet recorded when the run died is rendered again with identical
        // bytes and recorded then: still one `rendered` event.
        let events = ledger.events_of(&letter.key).expect("events");
        events_total += events.len();
        let (first, rest) = events.split_first().expect("at least one event");
        assert_eq!(
            (first.from_state, first.to_state),
            (None, LetterState::Planned),
            "`{key}`: first event {first:?}"
        );
        let (last, middle) = rest.split_last().expect("a rendered event");
        assert_eq!(
            (last.from_state, last.to_state),
            (Some(LetterState::Planned), LetterState::Rendered),
            "`{key}`: last event {last:?}"
        );
        assert_eq!(
            last.run_id,
            Some(letter.run_id),
            "`{key}`: rendered by its run"
        );
        assert!(
            last.detail
                .contains(letter.file_sha256.as_deref().unwrap_or("?")),
            "`{key}`: rendered event names the file's hash: {}",
            last.detail
        );
        for e in middle {
            assert_eq!(
                (e.from_state, e.to_state),
                (Some(LetterState::Planned), LetterState::Planned),
                "`{key}`: only re-plans between planned and rendered, got {e:?}\n{log}"
            );
        }
    }

    // Temporary files: a PDF's temp is reused and renamed when its letter is rendered
    // again, so none may remain; any other temp is tolerated only beside its final file.
    let left = temps(&out);
    println!("temporary files left: {left:?}");
    for temp in &left {
        assert!(
            !temp.ends_with(".pdf.tmp"),
            "a PDF temp remains: {temp}\n{log}"
        );
        let final_name = &temp[1..temp.len() - ".tmp".len()];
        assert!(
            out.join(final_name).is_file(),
            "temp {temp} remains without its final file {final_name}\n{log}"
        );
    }
    drop(ledger);
    assert!(
        !out.join("treasury").exists(),
        "no referral is due for these accounts: no Treasury file, not even an empty one"
    );

    // One more run renders nothing and writes a summary listing nothing.
    let before = on_disk;
    let again = missive(&same.iter().map(String::as_str).collect::<Vec<_>>());
    again.expect_code(0);
    let id = reported_run_id(&again);
    assert!(
        again.stderr.contains(&format!(
            "run {id}: 0 letters planned, 0 rendered, 0 failed"
        )),
        "{}",
        again.stderr
    );
    assert_eq!(
        json_file(&out.join(format!("run-{id}.json"))),
        serde_json::json!({"run_id": id, "letters": [], "failed": []})
    );
    assert_eq!(pdfs(&out), before, "the extra run changed the PDFs");
    let ledger = open_ledger(&ledger_path);
    let events_after: usize = letters
        .values()
        .map(|l| ledger.events_of(&l.key).expect("events").len())
        .sum();
    assert_eq!(
        events_after, events_total,
        "the extra run recorded letter events"
    );
    assert_eq!(
        ledger.run(id).expect("run").map(|r| r.status),
        Some(RunStatus::Finished)
    );
}

// ---------------------------------------------------------------------------------------
// 2. The same command twice, and history

#[test]
fn a_second_run_the_same_day_produces_nothing_new() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    let first = samples_run(&out, AS_OF);
    first.expect_code(0);
    assert_eq!(reported_run_id(&first), 1);
    let pdfs_before = pdfs(&out);
    assert_eq!(
        pdfs_before.len(),
        31,
        "the samples' 31 letters: {pdfs_before:?}"
    );
    let treasury_before = std::fs::read(out.join("treasury/1.csv")).expect("treasury/1.csv");
    let run1 = json_file(&out.join("run-1.json"));
    assert_eq!(array(&run1["letters"]).len(), 31);

    let second = samples_run(&out, AS_OF);
    second.expect_code(0);
    assert!(
        second
            .stderr
            .contains("run 2: 0 letters planned, 0 rendered, 0 failed, 0 new referrals"),
        "{}",
        second.stderr
    );
    assert_eq!(pdfs(&out), pdfs_before, "no new or changed PDF");
    assert_eq!(
        std::fs::read(out.join("treasury/1.csv")).expect("treasury/1.csv"),
        treasury_before,
        "treasury/1.csv unchanged"
    );
    assert!(
        !out.join("treasury/2.csv").exists(),
        "a run with no actions writes no Treasury file"
    );
    assert_eq!(
        json_file(&out.join("run-2.json")),
        serde_json::json!({"run_id": 2, "letters": [], "failed": []})
    );
    assert_eq!(
        json_file(&out.join("run-1.json")),
        run1,
        "run 1's summary is kept"
    );
    let ledger = open_ledger(&out.join("missive.db"));
    assert!(ledger.letters_of_run(2, None).expect("letters").is_empty());
    let runs = ledger.runs().expect("runs");
    assert_eq!(
        runs.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>(),
        vec![(1, RunStatus::Finished), (2, RunStatus::Finished)]
    );
    drop(ledger);

    // history: the letter with its run, template and file hashes, and its events.
    let written = array(&run1["letters"])
        .iter()
        .find(|l| l["key"] == ITO_1001)
        .expect("run-1.json lists the letter");
    let file_sha = file_sha(&out.join(ITO_1001_FILE));
    let doc = history_json(&out.join("missive.db"), &["CT-0001001"]);
    assert_eq!(doc["account_id"], "CT-0001001");
    let letters = array(&doc["letters"]);
    assert_eq!(letters.len(), 1, "{doc:#}");
    let l = &letters[0];
    common::assert_fields(
        l,
        serde_json::json!({
            "key": ITO_1001,
            "run_id": 1,
            "state": "rendered",
            "kind": "intent_to_offset",
            "letter_date": "2026-12-01",
            "deadline": "2027-02-01",
            "template": "letters/intent_to_offset.typ.tera",
            "template_sha256": written["template_sha256"],
            "file": ITO_1001_FILE,
            "file_sha256": file_sha,
            "pages": written["pages"],
        }),
    );
    assert!(is_sha256(str_of(l, "template_sha256")), "{l:#}");
    assert_eq!(written["sha256"], file_sha.as_str());
    let events = array(&l["events"]);
    let moves: Vec<(Value, Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e["from_state"].clone(),
                e["to_state"].clone(),
                e["run_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            (Value::Null, "planned".into(), 1.into()),
            ("planned".into(), "rendered".into(), 1.into()),
        ]
    );
    let rendered = str_of(&events[1], "detail");
    assert!(rendered.contains(&file_sha), "{rendered}");
    assert!(
        rendered.contains(str_of(l, "template_sha256")),
        "{rendered}"
    );

    // --key shows the same letter; the table names it too.
    let by_key = history_json(&out.join("missive.db"), &["--key", ITO_1001]);
    assert_eq!(array(&by_key["letters"]), letters);
    let table = missive(&[
        "history",
        "CT-0001001",
        "--ledger",
        utf8(&out.join("missive.db")),
    ]);
    table.expect_code(0);
    assert!(table.stdout.contains(ITO_1001), "{}", table.stdout);
    assert!(table.stdout.contains("rendered"), "{}", table.stdout);

    // An account with no letters: exit 1 and says so.
    let none = missive(&[
        "history",
        "CT-0000000",
        "--ledger",
        utf8(&out.join("missive.db")),
    ]);
    none.expect_code(1);
    assert!(none.stderr.contains("no letters found"), "{}", none.stderr);
}

// ---------------------------------------------------------------------------------------
// 3. Reissue after `mark`

#[test]
fn a_returned_intent_to_offset_is_reissued_the_next_day_and_the_mailed_copy_kept() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    let ledger_path = out.join("missive.db");
    samples_run(&out, AS_OF).expect_code(0);
    let day1 = pdfs(&out);
    let mailed_sha = day1[ITO_1001_FILE].clone();

    let note = "returned by USPS: no such number";
    let mark = missive(&[
        "mark",
        ITO_1001,
        "returned",
        "--ledger",
        utf8(&ledger_path),
        "--note",
        note,
    ]);
    mark.expect_code(0);
    assert!(mark.stderr.contains("is now returned"), "{}", mark.stderr);

    let day2 = samples_run(&out, "2026-12-02");
    day2.expect_code(0);
    assert!(
        day2.stderr.contains("run 2: 1 letters planned, 1 rendered"),
        "{}",
        day2.stderr
    );
    let summary = json_file(&out.join("run-2.json"));
    let reissued: Vec<&str> = array(&summary["letters"])
        .iter()
        .map(|l| str_of(l, "key"))
        .collect();
    assert_eq!(
        reissued,
        vec![ITO_1001],
        "only the returned letter is reissued"
    );

    let ledger = open_ledger(&ledger_path);
    let letter = letter_of(&ledger, ITO_1001);
    assert_eq!(letter.state, LetterState::Rendered);
    assert_eq!(letter.run_id, 2);
    assert_eq!(letter.letter_date, date("2026-12-02"));
    // 2026-12-02 + 60 days = 2027-01-31, a Sunday → Monday 2027-02-01.
    assert_eq!(letter.deadline, Some(date("2027-02-01")));
    assert_eq!(letter.file.as_deref(), Some(ITO_1001_FILE));
    assert_eq!(
        ledger
            .letters_of_run(2, None)
            .expect("letters")
            .iter()
            .map(|l| l.key.as_str().to_owned())
            .collect::<Vec<_>>(),
        vec![ITO_1001.to_owned()]
    );
    let events = ledger
        .events_of(&LetterKey::from_text(ITO_1001))
        .expect("events");
    let moves: Vec<_> = events
        .iter()
        .map(|e| (e.from_state, e.to_state, e.run_id))
        .collect();
    use LetterState::{Planned, Rendered, Returned};
    assert_eq!(
        moves,
        vec![
            (None, Planned, Some(1)),
            (Some(Planned), Rendered, Some(1)),
            (Some(Rendered), Returned, None),
            (Some(Returned), Planned, Some(2)),
            (Some(Planned), Rendered, Some(2)),
        ]
    );
    assert_eq!(events[2].detail, note);
    assert!(
        events[1].detail.contains(&mailed_sha),
        "{}",
        events[1].detail
    );

    // The mailed copy is kept under its hash; the new file is the ledger's; nothing else
    // changed.
    let day2_pdfs = pdfs(&out);
    let kept = format!("CT-0001001_intent_to_offset_L1.{}.pdf", &mailed_sha[..12]);
    assert_eq!(
        day2_pdfs.get(&kept),
        Some(&mailed_sha),
        "kept copy {kept}: {day2_pdfs:?}"
    );
    let new_sha = &day2_pdfs[ITO_1001_FILE];
    assert_ne!(new_sha, &mailed_sha);
    assert_eq!(letter.file_sha256.as_ref(), Some(new_sha));
    let mut expected = day1.clone();
    expected.insert(ITO_1001_FILE.to_owned(), new_sha.clone());
    expected.insert(kept, mailed_sha.clone());
    assert_eq!(day2_pdfs, expected);
    if let Some(text) = pdf_text(&out.join(ITO_1001_FILE)) {
        assert!(text.contains("December 2, 2026"), "letter date:\n{text}");
        assert!(text.contains("February 1, 2027"), "deadline:\n{text}");
    }
    drop(ledger);

    // `mark cancelled` on a rendered letter: the next run reissues that one only.
    let other = "CT-0001003/intent_to_offset/L1";
    missive(&["mark", other, "cancelled", "--ledger", utf8(&ledger_path)]).expect_code(0);
    let day2b = samples_run(&out, "2026-12-02");
    day2b.expect_code(0);
    let summary = json_file(&out.join("run-3.json"));
    let reissued: Vec<&str> = array(&summary["letters"])
        .iter()
        .map(|l| str_of(l, "key"))
        .collect();
    assert_eq!(reissued, vec![other]);
    let ledger = open_ledger(&ledger_path);
    let letter = letter_of(&ledger, other);
    assert_eq!((letter.state, letter.run_id), (LetterState::Rendered, 3));
    let moves: Vec<_> = ledger
        .events_of(&LetterKey::from_text(other))
        .expect("events")
        .iter()
        .map(|e| e.to_state)
        .collect();
    use LetterState::Cancelled;
    assert_eq!(moves, vec![Planned, Rendered, Cancelled, Planned, Rendered]);
}

#[test]
fn mark_refuses_unknown_keys_missing_ledgers_and_impossible_changes() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    let ledger_path = out.join("missive.db");
    samples_run(&out, AS_OF).expect_code(0);

    let unknown = "CT-0009999/intent_to_offset/L1";
    let run = missive(&["mark", unknown, "returned", "--ledger", utf8(&ledger_path)]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!("no letter `{unknown}`"))
            && run.stderr.contains(utf8(&ledger_path)),
        "{}",
        run.stderr
    );

    let missing = dir.join("nowhere/missive.db");
    let run = missive(&["mark", ITO_1001, "returned", "--ledger", utf8(&missing)]);
    run.expect_code(2);
    assert!(run.stderr.contains("no ledger"), "{}", run.stderr);
    assert!(!missing.exists(), "mark created a ledger");

    // returned → cancelled is not an allowed change.
    missive(&["mark", ITO_1001, "returned", "--ledger", utf8(&ledger_path)]).expect_code(0);
    let run = missive(&[
        "mark",
        ITO_1001,
        "cancelled",
        "--ledger",
        utf8(&ledger_path),
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("Cannot move") && run.stderr.contains("returned"),
        "{}",
        run.stderr
    );
    let ledger = open_ledger(&ledger_path);
    assert_eq!(letter_of(&ledger, ITO_1001).state, LetterState::Returned);
    // Marking returned again is a no-op: no new event.
    let events = ledger
        .events_of(&LetterKey::from_text(ITO_1001))
        .expect("events")
        .len();
    drop(ledger);
    missive(&["mark", ITO_1001, "returned", "--ledger", utf8(&ledger_path)]).expect_code(0);
    let ledger = open_ledger(&ledger_path);
    assert_eq!(
        ledger
            .events_of(&LetterKey::from_text(ITO_1001))
            .expect("events")
            .len(),
        events
    );
}

// ---------------------------------------------------------------------------------------
// 4. Concurrency and bad ledgers

#[test]
fn a_run_is_refused_while_another_holds_the_ledger_lock() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("create out");
    let ledger_path = out.join("missive.db");
    let ledger = open_ledger(&ledger_path);
    let guard = ledger.lock_for_run().expect("take the run lock");

    let run = samples_run(&out, AS_OF);
    run.expect_code(2);
    assert!(
        run.stderr.contains("another missive run is using")
            && run
                .stderr
                .contains(&format!("{}.lock", ledger_path.display())),
        "{}",
        run.stderr
    );
    assert!(pdfs(&out).is_empty(), "a refused run wrote PDFs");
    assert!(!out.join("treasury").exists());
    assert!(
        ledger.runs().expect("runs").is_empty(),
        "a refused run recorded a run"
    );

    // mark waits for no one either: it needs the lock too.
    let mark = missive(&["mark", ITO_1001, "returned", "--ledger", utf8(&ledger_path)]);
    mark.expect_code(2);
    assert!(
        mark.stderr.contains("another missive run"),
        "{}",
        mark.stderr
    );

    drop(guard);
    let run = samples_run(&out, AS_OF);
    run.expect_code(0);
    assert_eq!(pdfs(&out).len(), 31);
}

#[test]
fn a_second_run_started_while_one_is_rendering_is_refused() {
    let dir = Fixture::empty();
    let accounts = dir.join("accounts.jsonl");
    let keys = write_crash_accounts(&accounts, 300);
    let out = dir.join("out");
    let args: Vec<String> = [
        "run",
        "--accounts",
        utf8(&accounts),
        "--out",
        utf8(&out),
        "--as-of",
        AS_OF,
        "--allow-past-mail-date",
        "--jobs",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let mut first = spawn_run(&args, &dir.join("first.log"));
    let started = Instant::now();
    while count_pdfs(&out) == 0 {
        assert!(
            first.try_wait().expect("poll").is_none(),
            "the first run ended before rendering"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no PDF after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = missive(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let first_still_running = first.try_wait().expect("poll").is_none();
    let status = first.wait().expect("wait for the first run");
    assert!(status.success(), "the first run failed: {status}");
    if first_still_running {
        second.expect_code(2);
        assert!(
            second.stderr.contains("another missive run is using"),
            "{}",
            second.stderr
        );
    } else {
        eprintln!("the first run finished before the second could test the lock");
    }
    let ledger = open_ledger(&out.join("missive.db"));
    let runs = ledger.runs().expect("runs");
    assert_eq!(runs.len(), 1, "only the first run is recorded: {runs:?}");
    assert_eq!(
        ledger
            .letters_of_run(1, Some(LetterState::Rendered))
            .expect("letters")
            .len(),
        keys.len()
    );
}

#[test]
fn a_corrupt_ledger_stops_the_run_naming_the_file() {
    for (what, bytes) in [
        (
            "garbage",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect::<Vec<u8>>(),
        ),
        (
            "a broken SQLite header",
            b"SQLite format 3\0garbage garbage garbage".to_vec(),
        ),
    ] {
        let dir = Fixture::empty();
        let out = dir.join("out");
        let ledger_path = dir.write("out/missive.db", &bytes);
        let run = samples_run(&out, AS_OF);
        run.expect_code(2);
        assert!(
            run.stderr.contains(utf8(&ledger_path)) && run.stderr.contains("not a missive ledger"),
            "{what}: {}",
            run.stderr
        );
        assert!(pdfs(&out).is_empty(), "{what}: PDFs written");
        assert_eq!(
            std::fs::read(&ledger_path).expect("ledger"),
            bytes,
            "{what}: file changed"
        );

        let history = missive(&["history", "CT-0001001", "--ledger", utf8(&ledger_path)]);
        history.expect_code(2);
        assert!(
            history.stderr.contains(utf8(&ledger_path)),
            "{}",
            history.stderr
        );
    }
}

#[test]
fn an_unwritable_ledger_path_stops_the_run_with_a_clear_message() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    let run = run_cmd(
        SAMPLES,
        &out,
        &["--as-of", AS_OF, "--ledger", "/proc/missive.db"],
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains("/proc/missive.db") && run.stderr.contains("Failed to open the ledger"),
        "{}",
        run.stderr
    );
    assert!(pdfs(&out).is_empty(), "PDFs written without a ledger");

    // A ledger whose directory cannot be created.
    let run = run_cmd(
        SAMPLES,
        &out,
        &["--as-of", AS_OF, "--ledger", "/proc/self/none/missive.db"],
    );
    run.expect_code(2);
    assert!(run.stderr.contains("/proc/self/none"), "{}", run.stderr);
    assert!(pdfs(&out).is_empty());
}

// ---------------------------------------------------------------------------------------
// 5. Mail date guard

/// A Monday in the past for any clock these tests run under; its deadline rolls over New
/// Year's Day: 2026-11-02 + 60 days = Friday 2027-01-01 (a holiday) → Monday 2027-01-04.
const PAST_MAIL_DATE: &str = "2026-11-02";

fn require_past(mail_date: &str) {
    let today = chrono::Local::now().date_naive();
    assert!(
        date(mail_date) < today,
        "this test needs {mail_date} to be before today ({today})"
    );
}

fn guarded_run(out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "run",
        "--accounts",
        SAMPLES,
        "--out",
        utf8(out),
        "--as-of",
        AS_OF,
        "--mail-date",
        PAST_MAIL_DATE,
        "--jobs",
        "2",
    ];
    args.extend_from_slice(extra);
    missive(&args)
}

#[test]
fn a_past_mail_date_is_refused_without_the_flag_and_deadlines_follow_the_mail_date() {
    require_past(PAST_MAIL_DATE);
    let dir = Fixture::empty();
    let out = dir.join("out");
    let refused = guarded_run(&out, &[]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains(&format!("mail date {PAST_MAIL_DATE} is before today"))
            && refused.stderr.contains("--allow-past-mail-date"),
        "{}",
        refused.stderr
    );
    assert!(pdfs(&out).is_empty(), "a refused run wrote PDFs");
    let written = names(&out);
    assert!(
        !written
            .iter()
            .any(|n| n.starts_with("run-") || n == "treasury"),
        "a refused run wrote {written:?}"
    );
    if out.join("missive.db").exists() {
        let ledger = open_ledger(&out.join("missive.db"));
        assert!(
            ledger.runs().expect("runs").is_empty(),
            "a refused run was recorded"
        );
    }

    let allowed = guarded_run(&out, &["--allow-past-mail-date"]);
    allowed.expect_code(0);
    let ledger = open_ledger(&out.join("missive.db"));
    let run = ledger.run(1).expect("run").expect("run 1 recorded");
    assert_eq!(
        (run.as_of, run.mail_date),
        (date(AS_OF), date(PAST_MAIL_DATE))
    );
    let letter = letter_of(&ledger, ITO_1001);
    assert_eq!(letter.letter_date, date(PAST_MAIL_DATE));
    // From the mail date, not the as-of date (2026-12-01 → 2027-02-01) nor today.
    assert_eq!(letter.deadline, Some(date("2027-01-04")));
    let doc = history_json(&out.join("missive.db"), &["--key", ITO_1001]);
    assert_eq!(doc["letters"][0]["deadline"], "2027-01-04");
    if let Some(text) = pdf_text(&out.join(ITO_1001_FILE)) {
        assert!(text.contains("November 2, 2026"), "letter date:\n{text}");
        assert!(text.contains("January 4, 2027"), "deadline:\n{text}");
        assert!(
            !text.contains("February 1, 2027"),
            "as-of deadline:\n{text}"
        );
    }
}

#[test]
fn a_mail_date_from_today_on_needs_no_flag() {
    let mail = chrono::Local::now().date_naive() + chrono::Days::new(7);
    let mail = mail.to_string();
    let dir = Fixture::empty();
    let out = dir.join("out");
    let run = missive(&[
        "run",
        "--accounts",
        SAMPLES,
        "--out",
        utf8(&out),
        "--as-of",
        AS_OF,
        "--mail-date",
        &mail,
        "--jobs",
        "2",
    ]);
    run.expect_code(0);
    let ledger = open_ledger(&out.join("missive.db"));
    assert_eq!(letter_of(&ledger, ITO_1001).letter_date, date(&mail));
}

#[test]
fn a_run_refused_for_its_mail_date_writes_nothing_at_all() {
    require_past(PAST_MAIL_DATE);
    let dir = Fixture::empty();
    let out = dir.join("out");
    guarded_run(&out, &[]).expect_code(2);
    assert!(!out.exists(), "left behind: {:?}", names(&out));
}

#[test]
fn a_refused_resume_leaves_the_run_as_it_was() {
    require_past(PAST_MAIL_DATE);
    let dir = Fixture::empty();
    let out = dir.join("out");
    guarded_run(&out, &["--allow-past-mail-date"]).expect_code(0);
    let ledger_path = out.join("missive.db");
    let before = open_ledger(&ledger_path)
        .run(1)
        .expect("run")
        .expect("run 1");
    assert_eq!(before.status, RunStatus::Finished);
    let refused = missive(&["run", "--resume", "1", "--ledger", utf8(&ledger_path)]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("--allow-past-mail-date"),
        "{}",
        refused.stderr
    );
    let after = open_ledger(&ledger_path)
        .run(1)
        .expect("run")
        .expect("run 1");
    assert_eq!(after, before, "the refused resume changed run 1");
}

// ---------------------------------------------------------------------------------------
// 6. The Treasury file

#[test]
fn the_treasury_file_has_one_row_per_action_and_is_not_duplicated() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    samples_run(&out, AS_OF).expect_code(0);
    let plan = common::plan_ok(SAMPLES, &["--as-of", AS_OF]);
    let mut expected: Vec<Vec<String>> = Vec::new();
    for r in array(&plan["referrals"]) {
        expected.push(vec![
            "1".to_owned(),
            "add".to_owned(),
            str_of(r, "account_id").to_owned(),
            str_of(r, "notice_key").to_owned(),
            common::strings(&r["liability_ids"]).join("+"),
            "0.00".to_owned(),
            str_of(r, "amount").to_owned(),
            "deadline_passed".to_owned(),
        ]);
    }
    for u in array(&plan["treasury_updates"]) {
        expected.push(vec![
            "1".to_owned(),
            str_of(u, "action").to_owned(),
            str_of(u, "account_id").to_owned(),
            str_of(u, "notice_key").to_owned(),
            common::strings(&u["liability_ids"]).join("+"),
            str_of(u, "amount_before").to_owned(),
            str_of(u, "amount_after").to_owned(),
            str_of(u, "reason").to_owned(),
        ]);
    }
    assert_eq!(expected.len(), 8, "the samples: 4 referrals and 4 updates");

    let text = std::fs::read_to_string(out.join("treasury/1.csv")).expect("treasury/1.csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header.join(","), TREASURY_HEADER);
    let mut rows: Vec<Vec<String>> = Vec::new();
    for record in reader.records() {
        let record = record.expect("a CSV row");
        assert_eq!(record.len(), 11);
        assert!(!record[8].is_empty(), "debtor name in {record:?}");
        assert_eq!(record[9].len(), 4, "TIN last four in {record:?}");
        assert!(chrono::DateTime::parse_from_rfc3339(&record[10]).is_ok());
        rows.push(record.iter().take(8).map(str::to_owned).collect());
    }
    rows.sort();
    expected.sort();
    assert_eq!(rows, expected);
    let control = json_file(&out.join("treasury/1-control.json"));
    assert_eq!(control["rows"], 8);
    assert_eq!(control["file_sha256"], sha256_hex(text.as_bytes()));
    assert_eq!(
        control["actions"],
        serde_json::json!({
            "add": {"count": 4, "dollars": "11454.55"},
            "decrease": {"count": 2, "dollars": "1660.55"},
            "delete": {"count": 2, "dollars": "4512.45"},
        })
    );

    // history shows the account's referral with its run and reason.
    let doc = history_json(&out.join("missive.db"), &["CT-0001014"]);
    let treasury = array(&doc["treasury"]);
    assert_eq!(treasury.len(), 1, "{doc:#}");
    assert_eq!(
        treasury[0]["notice_key"],
        "CT-0001014/intent_to_offset/L1+L2+L3"
    );
    assert_eq!(treasury[0]["run_id"], 1);
    assert_eq!(treasury[0]["reason"], "deadline_passed");

    // A second run (and a next-day one) sends nothing again and writes no file.
    samples_run(&out, AS_OF).expect_code(0);
    let next_day = samples_run(&out, "2026-12-02");
    next_day.expect_code(0);
    assert!(
        next_day
            .stderr
            .contains("0 new referrals, 0 Treasury updates"),
        "{}",
        next_day.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.join("treasury/1.csv")).expect("csv"),
        text
    );
    assert_eq!(names(&out.join("treasury")).len(), 2, "only run 1's files");
}

// ---------------------------------------------------------------------------------------
// Resume from elsewhere

#[test]
fn resume_from_another_directory_writes_into_the_runs_own_output_directory() {
    let work = Fixture::empty();
    let accounts = work.join("accounts.jsonl");
    write_crash_accounts(&accounts, 3);
    let run = common::missive_in(
        work.path(),
        &[
            "--config",
            run_config(),
            "run",
            "--accounts",
            utf8(&accounts),
            "--out",
            "out",
            "--as-of",
            AS_OF,
            "--allow-past-mail-date",
        ],
    );
    run.expect_code(0);
    let ledger_path = work.join("out/missive.db");
    let key = "CT-9000000/intent_to_offset/L1";
    missive(&["mark", key, "cancelled", "--ledger", utf8(&ledger_path)]).expect_code(0);

    let elsewhere = Fixture::empty();
    let resumed = common::missive_in(
        elsewhere.path(),
        &[
            "--config",
            run_config(),
            "run",
            "--resume",
            "1",
            "--ledger",
            utf8(&ledger_path),
            "--allow-past-mail-date",
        ],
    );
    resumed.expect_code(0);
    assert!(
        !elsewhere.join("out").exists(),
        "the resume wrote into the working directory: {:?}",
        names(&elsewhere.join("out"))
    );
    let ledger = open_ledger(&ledger_path);
    let letter = letter_of(&ledger, key);
    let file: PathBuf = work.join("out").join(letter.file.as_deref().expect("file"));
    assert_eq!(letter.file_sha256, Some(file_sha(&file)));
}

#[test]
fn resuming_a_run_keeps_its_summary() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    samples_run(&out, AS_OF).expect_code(0);
    let summary = json_file(&out.join("run-1.json"));
    assert_eq!(array(&summary["letters"]).len(), 31);
    let ledger = out.join("missive.db");
    let resumed = missive(&[
        "run",
        "--resume",
        "1",
        "--ledger",
        utf8(&ledger),
        "--allow-past-mail-date",
    ]);
    resumed.expect_code(0);
    assert_eq!(json_file(&out.join("run-1.json")), summary);
}
