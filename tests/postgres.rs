//! The ledger on PostgreSQL, from outside: the built binary with `--ledger postgres://…`
//! against a throwaway server (`common::pg`; skipped with a visible `skipped:` line when
//! none can start, except in CI). A run on PostgreSQL writes the same letters, batches and
//! Treasury file as on SQLite; `history`, `mark`, `approve`, `release` and `send` work on
//! it (`[ledger] url` serves without `--ledger`; sending to a real SMTP server is in
//! `tests/email.rs`); a second run is refused by the advisory lock; a server that stops mid-way makes the
//! run fail naming it, and the rerun after it is back completes with nothing lost or doubled.

mod common;

use std::path::Path;

use common::files::{pdfs, run_outputs, utf8};
use common::pg::{TestServer, fresh_database, own_server};
use common::{Fixture, Run};
use missive::ledger::prelude::*;
use missive::ledger::{LetterState, Location, PgLedger};

const AS_OF: &str = "2026-12-01";
const ITO_1001: &str = "CT-0001001/intent_to_offset/L1";

/// `missive --config <gate off> ARGS` from the crate root.
fn missive(args: &[&str]) -> Run {
    common::missive_gate_off("postgres-tests", args)
}

/// The samples run into `out` on the ledger `ledger` (a path or URL).
fn samples_run(out: &Path, ledger: &str) -> Run {
    missive(&[
        "run",
        "--accounts",
        "samples/accounts",
        "--out",
        utf8(out),
        "--as-of",
        AS_OF,
        "--allow-past-mail-date",
        "--jobs",
        "2",
        "--ledger",
        ledger,
    ])
}

/// The ledger at `url`, through the library.
fn open(url: &str) -> PgLedger {
    let Ok(Location::Postgres(location)) = Location::parse(url, None) else {
        panic!("`{url}` is a PostgreSQL URL");
    };
    PgLedger::open(&location).expect("open the PostgreSQL ledger")
}

#[test]
fn the_samples_give_the_same_letters_batches_and_treasury_file_as_on_sqlite() {
    let Some(db) = fresh_database("same_as_sqlite") else {
        return;
    };
    let dir = Fixture::empty();
    let (on_sqlite, on_pg) = (dir.join("sqlite"), dir.join("pg"));
    samples_run(&on_sqlite, utf8(&on_sqlite.join("missive.db"))).expect_code(0);
    let run = samples_run(&on_pg, &db.url);
    run.expect_code(0);
    assert!(run.stderr.contains(&db.url), "{}", run.stderr);
    assert_eq!(pdfs(&on_pg).len(), 31);
    let (a, b) = (run_outputs(&on_sqlite), run_outputs(&on_pg));
    assert!(
        b.keys().any(|k| k.starts_with("batches")) && b.keys().any(|k| k.starts_with("treasury")),
        "{b:#?}"
    );
    assert_eq!(a, b, "the same files, byte for byte");

    // The ledger holds the same letters and batches.
    let sqlite = missive::ledger::SqliteLedger::open(&on_sqlite.join("missive.db")).expect("db");
    let pg = open(&db.url);
    let strip = |mut letters: Vec<missive::ledger::LetterRecord>| {
        for l in &mut letters {
            l.created_at = chrono::DateTime::UNIX_EPOCH;
            l.updated_at = chrono::DateTime::UNIX_EPOCH;
        }
        letters
    };
    assert_eq!(
        strip(pg.letters_of_run(1, None).expect("pg letters")),
        strip(sqlite.letters_of_run(1, None).expect("sqlite letters"))
    );
    let names = |batches: Vec<missive::ledger::BatchRecord>| {
        batches
            .into_iter()
            .map(|b| (b.name, b.file_sha256, b.pieces, b.amount_due))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(pg.batches_of_run(1).expect("pg batches")),
        names(sqlite.batches_of_run(1).expect("sqlite batches"))
    );

    // Run again: nothing new.
    let again = samples_run(&on_pg, &db.url);
    again.expect_code(0);
    assert_eq!(run_outputs(&on_pg), b);
}

#[test]
fn history_mark_approve_release_and_send_work_on_postgres() {
    let Some(db) = fresh_database("commands") else {
        return;
    };
    let dir = Fixture::empty();
    let out = dir.join("out");
    samples_run(&out, &db.url).expect_code(0);
    let url = db.url.as_str();

    let history = missive(&["history", "CT-0001001", "--ledger", url, "--format", "json"]);
    history.expect_code(0);
    assert!(history.stdout.contains(ITO_1001), "{}", history.stdout);
    let runs = missive(&["history", "--runs", "--ledger", url]);
    runs.expect_code(0);
    assert!(runs.stdout.contains("run 1 finished"), "{}", runs.stdout);
    // `[ledger] url` in the configuration serves when there is no --ledger.
    let gate_off = std::fs::read_to_string(common::gate_off_config("postgres-tests"))
        .expect("read the configuration");
    let config = dir.write(
        "with-ledger.toml",
        format!("{gate_off}\n[ledger]\nurl = \"{url}\"\n"),
    );
    let runs = common::missive(&["--config", utf8(&config), "history", "--runs"]);
    runs.expect_code(0);
    assert!(runs.stdout.contains("run 1 finished"), "{}", runs.stdout);
    // … and `run --resume` finds its run there without --ledger or --out (nothing left to
    // render: the run finishes again with the same letters).
    let resumed = common::missive(&[
        "--config",
        utf8(&config),
        "run",
        "--resume",
        "1",
        "--allow-past-mail-date",
        "--quiet",
    ]);
    resumed.expect_code(0);
    assert!(resumed.stderr.contains("run 1:"), "{}", resumed.stderr);

    let approve = missive(&[
        "approve",
        "refund",
        "--reviewer",
        "Pat Lee",
        "--ledger",
        url,
    ]);
    approve.expect_code(0);
    assert!(approve.stdout.contains(&db.url), "{}", approve.stdout);
    assert_eq!(open(url).approvals(None).expect("approvals").len(), 1);

    let batch = open(url).batches_of_run(1).expect("batches")[0]
        .name
        .clone();
    let release = missive(&["release", &batch, "--ledger", url, "--note", "printer 2"]);
    release.expect_code(0);
    let ledger = open(url);
    let piece = &ledger
        .pieces_of_batch(ledger.batch(&batch).expect("read").expect("batch").id)
        .expect("pieces")[0];
    let released = ledger
        .letter(&piece.key)
        .expect("read")
        .expect("letter")
        .state;
    assert_eq!(released, LetterState::Released);

    let mark = missive(&[
        "mark", ITO_1001, "returned", "--note", "moved", "--ledger", url,
    ]);
    mark.expect_code(0);
    let key = missive::letter::LetterKey::from_text(ITO_1001);
    let events = open(url).events_of(&key).expect("events");
    assert_eq!(
        events.last().map(|e| e.to_state),
        Some(LetterState::Returned)
    );

    // A dry run of `send` reads the outbox from the server.
    let eml = dir.join("eml");
    let send = missive(&["send", "--ledger", url, "--to-dir", utf8(&eml)]);
    assert!(send.code == 0 || send.code == 1, "{}", send.stderr);
}

#[test]
fn a_second_run_is_refused_while_one_holds_the_advisory_lock() {
    let Some(db) = fresh_database("advisory_lock") else {
        return;
    };
    let mut holder = open(&db.url);
    holder.lock_for_run().expect("take the run lock");
    let dir = Fixture::empty();
    let out = dir.join("out");
    let refused = samples_run(&out, &db.url);
    refused.expect_code(2);
    let server = db.url.trim_start_matches("postgres://missive@");
    assert!(
        refused.stderr.contains("another missive run is using") && refused.stderr.contains(server),
        "{}",
        refused.stderr
    );
    assert!(pdfs(&out).is_empty(), "a refused run wrote PDFs");
    assert!(holder.runs().expect("runs").is_empty());
    drop(holder);
    // The server ends the holder's session a moment after it closes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let run = samples_run(&out, &db.url);
        if run.code == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", run.stderr);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(pdfs(&out).len(), 31);
}

#[test]
fn a_server_that_stops_fails_the_run_naming_it_and_the_rerun_completes_once() {
    let Some(server) = own_server("server_stops") else {
        return;
    };
    let url = common::pg::create_database(&server.url("postgres"), "ledger").expect("db");
    let dir = Fixture::empty();
    let out = dir.join("out");
    stop(&server);
    let down = samples_run(&out, &url);
    down.expect_code(2);
    let name = format!("127.0.0.1:{}/ledger", server.port);
    assert!(
        down.stderr
            .contains(&format!("Failed to open the ledger on `{name}`")),
        "{}",
        down.stderr
    );
    server.pg_ctl_start().expect("start again");
    samples_run(&out, &url).expect_code(0);
    let ledger = open(&url);
    let letters = ledger.letters_of_run(1, None).expect("letters");
    assert_eq!(letters.len(), 31);
    for letter in &letters {
        let rendered = ledger
            .events_of(&letter.key)
            .expect("events")
            .iter()
            .filter(|e| e.to_state == LetterState::Rendered)
            .count();
        assert_eq!(rendered, 1, "{} rendered once", letter.key);
    }
}

#[test]
fn a_server_stopped_mid_run_fails_it_naming_the_server_and_the_rerun_loses_and_doubles_nothing() {
    let Some(server) = own_server("server_stops_mid_run") else {
        return;
    };
    let url = common::pg::create_database(&server.url("postgres"), "ledger").expect("db");
    let dir = Fixture::empty();
    let accounts = dir.join("accounts.jsonl");
    let keys = common::accounts::write_intent_accounts(&accounts, 300);
    let out = dir.join("out");
    let args = [
        "--config",
        common::gate_off_arg("postgres-tests"),
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
        "--ledger",
        &url,
    ];
    let log = dir.join("first.log");
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(args)
        .current_dir(common::root())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start the run");
    let started = std::time::Instant::now();
    while common::files::count_pdfs(&out) == 0 {
        assert!(first.try_wait().expect("poll").is_none(), "ended early");
        assert!(started.elapsed().as_secs() < 120, "no PDF after 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop(&server);
    let status = first.wait().expect("wait");
    let stderr = std::fs::read_to_string(&log).expect("read log");
    let name = format!("127.0.0.1:{}/ledger", server.port);
    if status.success() {
        eprintln!("the run finished before the server stopped: nothing to resume");
    } else {
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&name), "{stderr}");
    }
    server.pg_ctl_start().expect("start again");
    common::missive(&args).expect_code(0);
    assert_eq!(common::files::count_pdfs(&out), keys.len());
    let ledger = open(&url);
    let mut serials = std::collections::BTreeSet::new();
    for key in &keys {
        let key = missive::letter::LetterKey::from_text(key);
        let letter = ledger.letter(&key).expect("read").expect("recorded");
        assert_eq!(letter.state, LetterState::Rendered, "{key}");
        let rendered = ledger
            .events_of(&key)
            .expect("events")
            .iter()
            .filter(|e| e.to_state == LetterState::Rendered)
            .count();
        assert_eq!(rendered, 1, "{key} rendered once");
    }
    for run in ledger.runs().expect("runs") {
        for batch in ledger.batches_of_run(run.id).expect("batches") {
            for piece in ledger.pieces_of_batch(batch.id).expect("pieces") {
                assert!(serials.insert(piece.imb_serial), "serial given twice");
            }
        }
    }
    assert_eq!(serials.len(), keys.len(), "every letter in one batch, once");
}

fn stop(server: &TestServer) {
    server.pg_ctl_stop("immediate").expect("stop the server");
}
