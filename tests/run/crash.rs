//! The crash test: `missive run` on a few hundred letters is killed with SIGKILL at several
//! points (as the ledger appears, after a random delay, right after planning is recorded,
//! at the first file of a chunk, mid-rendering, in the last chunk, after the summary) and
//! resumed by rerunning the same command or with `--resume RUN_ID`. However it was killed,
//! every letter ends with exactly one complete file and one `rendered` ledger row, nothing
//! is rendered twice, no PDF temporary file remains, and one more run does nothing.
//!
//! Between attempts the ledger is only read through a read-only connection
//! (`common::ledger::peek`), so looking cannot change what the next attempt sees.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use missive::ledger::prelude::*;
use missive::ledger::{LetterRecord, LetterState, RunStatus};

use crate::common::accounts::write_intent_accounts;
use crate::common::files::{
    count_pdfs, file_sha, json_file, names, pdf_pages, pdfs, sha256_hex, temps, utf8,
};
use crate::common::ledger::{open_ledger, peek};
use crate::common::{self, Fixture};
use crate::{AS_OF, missive, reported_run_id, spawn_args, spawn_run};

/// Letters (one intent to offset per account) in the crash test: more than 500 and not a
/// multiple of the 64-letter render chunk, so the last chunk is short.
const CRASH_ACCOUNTS: usize = 520;

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

/// A pseudo-random delay (from the clock) for one kill point: 20–300 ms.
fn random_delay() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(20 + u64::from(nanos % 281))
}

/// One attempt: when to kill it, given the PDFs present, the letters due and the newest
/// run's id (`None`: let it finish).
type Schedule = fn(usize, usize, i64) -> Option<KillAt>;

/// The kill schedule: how each attempt starts, what the log calls its kill point, and when
/// to kill it. Thresholds in PDFs are absolute counts in the directory, so the kill lands
/// among the letters still to do whatever the earlier attempts left.
fn kill_schedule() -> Vec<(Start, &'static str, Schedule)> {
    vec![
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
    ]
}

/// What the attempts left behind, once checked.
struct Outcome {
    /// Every letter of every run, by key.
    letters: BTreeMap<String, LetterRecord>,
    /// `name → sha256` of the PDFs in the output directory.
    on_disk: BTreeMap<String, String>,
    /// The letters' ledger events, all counted.
    events_total: usize,
}

#[test]
fn a_run_killed_at_any_point_and_resumed_renders_every_letter_exactly_once() {
    let dir = Fixture::empty();
    let accounts = dir.join("accounts.jsonl");
    let keys = write_intent_accounts(&accounts, CRASH_ACCOUNTS);
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

    let same = spawn_args(&accounts, &out, "2");

    let log = kill_and_resume(&kill_schedule(), &dir, &same, &out, &ledger_path, n);

    // The ledger: every due letter exactly once, rendered, with its complete file.
    let outcome = every_letter_rendered_once(&ledger_path, &out, &planned, &log);
    no_pdf_temp_left(&out, &log);
    assert!(
        !out.join("treasury").exists(),
        "no referral is due for these accounts: no Treasury file, not even an empty one"
    );

    // One more run renders nothing and writes a summary listing nothing.
    let before = outcome.on_disk;
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
    let events_after: usize = outcome
        .letters
        .values()
        .map(|l| ledger.events_of(&l.key).expect("events").len())
        .sum();
    assert_eq!(
        events_after, outcome.events_total,
        "the extra run recorded letter events"
    );
    assert_eq!(
        ledger.run(id).expect("run").map(|r| r.status),
        Some(RunStatus::Finished)
    );
}

/// Runs the attempts of `schedule` one after another (`same` is the plain command), each
/// killed at its point, the last one to the end; returns their log, one line each.
fn kill_and_resume(
    schedule: &[(Start, &str, Schedule)],
    dir: &Fixture,
    same: &[String],
    out: &Path,
    ledger_path: &Path,
    n: usize,
) -> String {
    let mut log = Vec::new();
    let mut finished = false;
    for (attempt, (start, label, kill_at)) in schedule.iter().enumerate() {
        let have = count_pdfs(out);
        let latest = latest_run(ledger_path, false);
        let kill = kill_at(have, n, latest.unwrap_or(0));
        let latest = latest_run(ledger_path, true).or(latest);
        let mut args = same.to_vec();
        let mut how = "same command".to_owned();
        if *start == Start::Resume {
            if let Some(id) = latest {
                args = [
                    "run",
                    "--resume",
                    &id.to_string(),
                    "--ledger",
                    utf8(ledger_path),
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
        let summaries = names(out);
        let stderr_log = dir.join(&format!("attempt-{attempt}.log"));
        let started = Instant::now();
        let mut child = spawn_run(&args, &stderr_log);
        let outcome = loop {
            if let Some(status) = child.try_wait().expect("poll the child") {
                break format!("exited by itself with {status} before the kill point");
            }
            if let Some(kill) = kill
                && kill_reached(kill, started, ledger_path, out, &summaries)
            {
                let at_kill = count_pdfs(out);
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
            snapshot(ledger_path, out)
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
    log.join("\n")
}

/// Checks the ledger and the output directory after the last attempt: every due letter
/// (`planned`) is in the ledger exactly once, rendered once, with its complete file.
fn every_letter_rendered_once(
    ledger_path: &Path,
    out: &Path,
    planned: &BTreeSet<String>,
    log: &str,
) -> Outcome {
    let ledger = open_ledger(ledger_path);
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
        *planned,
        "the ledger holds exactly the due letters\n{log}"
    );
    let on_disk = pdfs(out);
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

    Outcome {
        letters,
        on_disk,
        events_total,
    }
}

/// Temporary files: a PDF's temp is reused and renamed when its letter is rendered
/// again, so none may remain; any other temp is tolerated only beside its final file.
fn no_pdf_temp_left(out: &Path, log: &str) {
    let left = temps(out);
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
}
