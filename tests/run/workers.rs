//! Several processes render one run (`run --workers N`, `run --worker`): the same letters,
//! file bytes, batches, pieces and Treasury file as one process; a worker or the
//! coordinator killed with SIGKILL loses nothing and renders nothing twice; a worker
//! refuses a run recorded with another configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use missive::ledger::prelude::*;
use missive::ledger::{LetterState, NewRun, RunStatus};

use crate::common::accounts::write_intent_accounts;
use crate::common::files::{file_sha, files_under, temps, utf8};
use crate::common::ledger::{Pieces, no_duplicate_serials, open_ledger, peek};
use crate::common::{Fixture, root};
use crate::{AS_OF, SAMPLES, date, missive, run_cmd, run_config, spawn_args, spawn_run};

/// `relative path → sha256` of every file under `dir`, but the ledger's own files.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    files_under(dir)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("missive.db"))
        .map(|(name, path)| (name, file_sha(&path)))
        .collect()
}

/// The ledger at `path`: every letter's key → (state, file sha256); every piece's key →
/// (IMb serial, article number, batch name, place); and the keys with more than one
/// `rendered` event.
fn ledger_facts(path: &Path) -> (BTreeMap<String, (String, String)>, Pieces, Vec<String>) {
    let conn = peek(path).expect("ledger");
    let letters = conn
        .prepare("SELECT key, state, coalesce(file_sha256, '') FROM letters")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .expect("letters")
        .collect::<rusqlite::Result<_>>()
        .expect("read letters");
    let pieces = conn
        .prepare(
            "SELECT p.key, p.imb_serial, p.article_number, b.name, p.sequence
             FROM mail_pieces p LEFT JOIN batches b ON b.id = p.batch_id",
        )
        .expect("prepare")
        .query_map([], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        })
        .expect("pieces")
        .collect::<rusqlite::Result<_>>()
        .expect("read pieces");
    let twice = conn
        .prepare(
            "SELECT key FROM events WHERE to_state = 'rendered'
             GROUP BY key HAVING count(*) > 1",
        )
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("events")
        .collect::<rusqlite::Result<_>>()
        .expect("read events");
    (letters, pieces, twice)
}

#[test]
fn two_workers_render_the_same_run_as_one_process() {
    let dir = Fixture::empty();
    let (one, many) = (dir.join("one"), dir.join("many"));
    let single = run_cmd(SAMPLES, &one, &["--as-of", AS_OF]);
    let shared = run_cmd(
        SAMPLES,
        &many,
        &["--as-of", AS_OF, "--workers", "2", "--chunk", "2"],
    );
    shared.expect_code(single.code);
    let summary = |stderr: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with("run 1:"))
            .map(|l| l.split("; ledger").next().unwrap_or_default().to_owned())
    };
    assert_eq!(summary(&shared.stderr), summary(&single.stderr));
    assert!(
        !shared.stderr.contains("warning: worker"),
        "{}",
        shared.stderr
    );

    // The same files, byte for byte: letters, batches and their control file. The run
    // summary names its own directory and times, and the Treasury file (and its control
    // file, which hashes it) carries when each action was recorded: those are compared
    // without the times.
    let (mut a, mut b) = (tree(&one), tree(&many));
    for files in [&mut a, &mut b] {
        files.retain(|name, _| !name.starts_with("run-") && !name.starts_with("treasury/"));
    }
    assert!(a.keys().any(|n| n.starts_with("batches/")), "{a:?}");
    assert_eq!(a, b);
    let treasury = |out: &Path| {
        let text = std::fs::read_to_string(out.join("treasury/1.csv")).expect("Treasury file");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("header").split(',').collect();
        let at = header
            .iter()
            .position(|h| *h == "recorded_at")
            .expect("recorded_at column");
        lines
            .map(|l| {
                let mut cells: Vec<&str> = l.split(',').collect();
                cells.remove(at);
                cells.join(",")
            })
            .collect::<Vec<_>>()
    };
    let rows = treasury(&one);
    assert!(!rows.is_empty());
    assert_eq!(rows, treasury(&many));

    let (letters_a, pieces_a, twice_a) = ledger_facts(&one.join("missive.db"));
    let (letters_b, pieces_b, twice_b) = ledger_facts(&many.join("missive.db"));
    assert_eq!(letters_a, letters_b);
    assert_eq!(pieces_a, pieces_b);
    assert_eq!((twice_a, twice_b), (vec![], vec![]));
    no_duplicate_serials(&pieces_b);

    // The workers took part: letters were claimed by more than one process.
    let conn = peek(&many.join("missive.db")).expect("ledger");
    let workers: i64 = conn
        .query_row("SELECT count(DISTINCT worker) FROM work", [], |r| r.get(0))
        .expect("claims");
    println!("{workers} processes rendered the run");
    assert!(workers >= 2, "only {workers} process claimed letters");
}

/// `missive run --worker --ledger LEDGER --chunk 8 --lease 2 --jobs 1` in the background.
fn spawn_worker(ledger: &Path, log: &Path, config: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_missive"))
        .args([
            "--config",
            config,
            "run",
            "--worker",
            "--ledger",
            utf8(ledger),
        ])
        .args([
            "--chunk", "8", "--lease", "2", "--jobs", "1", "--wait", "20",
        ])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("worker log"))
        .spawn()
        .expect("start a worker")
}

/// Letters the process `pid` rendered by the ledger (its claims name it `host:pid`).
fn rendered_by(ledger: &Path, pid: u32) -> i64 {
    let Some(conn) = peek(ledger) else {
        return 0;
    };
    conn.query_row(
        "SELECT count(*) FROM work w JOIN letters l ON l.key = w.key
         WHERE l.state = 'rendered' AND w.worker LIKE '%:' || ?1",
        [pid.to_string()],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// Whether the run in the ledger at `ledger` has recorded its work (payloads) yet.
fn work_recorded(ledger: &Path) -> bool {
    peek(ledger).is_some_and(|c| {
        c.query_row("SELECT count(*) FROM work", [], |r| r.get::<_, i64>(0))
            .is_ok_and(|n| n > 0)
    })
}

/// Waits (up to 3 minutes) until `done` holds, polling every 20 ms.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every one of `keys` is rendered once (one `rendered` event), its file on disk has the
/// ledger's hash, every piece is in a batch once, no serial is given twice, and no PDF
/// temporary file remains.
fn every_letter_once(ledger_path: &Path, out: &Path, keys: &[String]) {
    let (letters, pieces, twice) = ledger_facts(ledger_path);
    assert_eq!(twice, Vec::<String>::new(), "letters rendered twice");
    assert_eq!(
        letters.keys().cloned().collect::<BTreeSet<_>>(),
        keys.iter().cloned().collect::<BTreeSet<_>>()
    );
    for (key, (state, sha)) in &letters {
        assert_eq!(state, "rendered", "`{key}`");
        let file = out.join(format!(
            "{}.pdf",
            missive::letter::LetterKey::from_text(key).file_stem()
        ));
        assert_eq!(
            &file_sha(&file),
            sha,
            "`{key}`: file differs from the ledger"
        );
    }
    assert_eq!(pieces.len(), keys.len(), "one piece per letter");
    assert!(
        pieces.values().all(|p| p.2.is_some()),
        "every piece is in a batch"
    );
    no_duplicate_serials(&pieces);
    let left: Vec<String> = temps(out)
        .into_iter()
        .filter(|t| t.ends_with(".pdf.tmp"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "PDF temporary files left");
}

#[test]
fn a_worker_killed_mid_run_leaves_its_letters_to_the_others() {
    let dir = Fixture::empty();
    let accounts = dir.join("accounts.jsonl");
    let keys = write_intent_accounts(&accounts, 200);
    let out = dir.join("out");
    let ledger = out.join("missive.db");
    let mut args = spawn_args(&accounts, &out, "1");
    args.extend(["--chunk", "8", "--lease", "2"].map(String::from));
    let mut coordinator = spawn_run(&args, &dir.join("coordinator.log"));
    wait_for("the run to start", || work_recorded(&ledger));
    let mut doomed = spawn_worker(&ledger, &dir.join("doomed.log"), run_config());
    let mut survivor = spawn_worker(&ledger, &dir.join("survivor.log"), run_config());
    let pid = doomed.id();
    wait_for("the doomed worker to render a chunk", || {
        assert!(
            coordinator.try_wait().expect("poll the run").is_none(),
            "the run finished before the worker rendered a chunk"
        );
        rendered_by(&ledger, pid) >= 8
    });
    doomed.kill().expect("SIGKILL the worker");
    doomed.wait().expect("reap the worker");

    let status = coordinator.wait().expect("the coordinator finishes");
    let log = std::fs::read_to_string(dir.join("coordinator.log")).unwrap_or_default();
    assert!(status.success(), "coordinator: {status}\n{log}");
    assert!(
        survivor.wait().expect("the survivor leaves").success(),
        "{}",
        std::fs::read_to_string(dir.join("survivor.log")).unwrap_or_default()
    );
    every_letter_once(&ledger, &out, &keys);
    assert!(
        log.contains("run 1: 200 letters planned, 200 rendered, 0 failed"),
        "{log}"
    );
}

#[test]
fn a_killed_coordinator_leaves_the_run_to_its_worker_and_the_next_run_finishes_it() {
    let dir = Fixture::empty();
    let accounts = dir.join("accounts.jsonl");
    let keys = write_intent_accounts(&accounts, 80);
    let out = dir.join("out");
    let ledger = out.join("missive.db");
    let mut args = spawn_args(&accounts, &out, "1");
    args.extend(["--chunk", "8", "--lease", "2"].map(String::from));
    let mut coordinator = spawn_run(&args, &dir.join("coordinator.log"));
    wait_for("the run to record its work", || work_recorded(&ledger));
    let mut worker = spawn_worker(&ledger, &dir.join("worker.log"), run_config());
    let coordinator_pid = coordinator.id();
    wait_for("the coordinator to render a chunk", || {
        rendered_by(&ledger, coordinator_pid) >= 8
    });
    coordinator.kill().expect("SIGKILL the coordinator");
    coordinator.wait().expect("reap the coordinator");

    // The worker takes over what the coordinator held once its lease runs out, and leaves
    // when nothing is planned.
    let status = worker.wait().expect("the worker leaves");
    let log = std::fs::read_to_string(dir.join("worker.log")).unwrap_or_default();
    assert!(status.success(), "worker: {status}\n{log}");
    assert!(log.contains("letters rendered"), "{log}");

    // The next run plans nothing new, batches every letter and finishes.
    let next = missive(&args.iter().map(String::as_str).collect::<Vec<_>>());
    next.expect_code(0);
    let runs = open_ledger(&ledger).runs().expect("runs");
    assert_eq!(
        runs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [RunStatus::Interrupted, RunStatus::Finished]
    );
    every_letter_once(&ledger, &out, &keys);
}

#[test]
fn a_worker_refuses_a_run_recorded_with_another_configuration() {
    let dir = Fixture::empty();
    let ledger_path = dir.join("missive.db");
    let mut ledger = open_ledger(&ledger_path);
    let run = ledger
        .begin_run(&NewRun {
            as_of: date(AS_OF),
            mail_date: date(AS_OF),
            config_sha256: "0".repeat(64),
            accounts: "elsewhere".to_owned(),
            out_dir: utf8(&dir.join("out")).to_owned(),
        })
        .expect("begin a run");
    drop(ledger);
    let worker = missive(&[
        "run",
        "--worker",
        "--ledger",
        utf8(&ledger_path),
        "--wait",
        "1",
    ]);
    worker.expect_code(2);
    assert!(
        worker.stderr.contains(&"0".repeat(64)) && worker.stderr.contains(run_config()),
        "{}",
        worker.stderr
    );
    assert!(
        worker.stderr.contains(&format!("run {}", run.id)),
        "{}",
        worker.stderr
    );
    let ledger = open_ledger(&ledger_path);
    assert_eq!(
        ledger.run(run.id).expect("run").map(|r| r.status),
        Some(RunStatus::Running),
        "the worker changed nothing"
    );
    assert_eq!(
        ledger
            .letters_of_run(run.id, Some(LetterState::Planned))
            .expect("letters"),
        []
    );
}

#[test]
fn a_worker_with_no_running_run_waits_then_leaves() {
    let dir = Fixture::empty();
    let ledger_path = dir.join("missive.db");
    let started = Instant::now();
    let worker = missive(&[
        "run",
        "--worker",
        "--ledger",
        utf8(&ledger_path),
        "--wait",
        "1",
    ]);
    worker.expect_code(0);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        worker.stderr.contains("no run was running"),
        "{}",
        worker.stderr
    );
}

#[test]
fn a_worker_whose_templates_are_not_the_runs_refuses_and_the_run_goes_on() {
    // The shipped configuration (no --config): approvals required. The worker's edited
    // template is neither the version the run composes with nor an approved one; the first
    // check refuses it.
    let templates = Fixture::from_dir("templates");
    let intent = templates.join("letters/intent_to_offset.typ.tera");
    let mut text = std::fs::read_to_string(&intent).expect("template");
    text.push_str("\n{# edited after approval #}\n");
    std::fs::write(&intent, text).expect("edit the template");
    a_different_worker_refuses_and_the_run_goes_on(
        &["--templates", utf8(templates.path())],
        &[
            "letters/intent_to_offset.typ.tera",
            "the run composes with version",
            "this worker has version",
        ],
    );
}

#[test]
fn a_worker_whose_fonts_are_not_the_runs_refuses_and_the_run_goes_on() {
    // Another set of fonts could break a letter's lines and pages differently from the
    // coordinator's files: a worker with other fonts renders nothing.
    let fonts = Fixture::from_dir("fonts");
    std::fs::remove_file(fonts.join("LiberationSerif-Italic.ttf")).expect("drop a font");
    a_different_worker_refuses_and_the_run_goes_on(
        &["--fonts", utf8(fonts.path())],
        &[
            "the run renders with fonts sha256",
            "this worker's fonts have sha256",
            "--fonts",
        ],
    );
}

/// A run of 60 intents (their template approved) with a worker started with `worker_args`
/// (other templates or fonts than the coordinator's): the worker exits with 2 and says
/// `expected`, the coordinator renders every letter once.
fn a_different_worker_refuses_and_the_run_goes_on(worker_args: &[&str], expected: &[&str]) {
    let dir = Fixture::empty();
    let accounts = dir.join("accounts.jsonl");
    let keys = write_intent_accounts(&accounts, 60);
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("output directory");
    let ledger = out.join("missive.db");
    crate::common::missive(&[
        "approve",
        "intent_to_offset",
        "--reviewer",
        "Pat Lee",
        "--ledger",
        utf8(&ledger),
    ])
    .expect_code(0);

    let mut args = spawn_args(&accounts, &out, "1");
    args.extend(["--chunk", "4", "--lease", "2"].map(String::from));
    let mut coordinator = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(&args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("coordinator.log")).expect("log"))
        .spawn()
        .expect("start the run");
    wait_for("the run to record its work", || work_recorded(&ledger));
    let worker = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["run", "--worker", "--ledger", utf8(&ledger)])
        .args(worker_args)
        .args([
            "--chunk", "4", "--lease", "2", "--jobs", "1", "--wait", "20",
        ])
        .current_dir(root())
        .output()
        .expect("run the worker");
    let stderr = String::from_utf8_lossy(&worker.stderr);
    assert_eq!(worker.status.code(), Some(2), "{stderr}");
    assert!(expected.iter().all(|e| stderr.contains(e)), "{stderr}");

    let status = coordinator.wait().expect("the run finishes");
    let log = std::fs::read_to_string(dir.join("coordinator.log")).unwrap_or_default();
    assert!(status.success(), "coordinator: {status}\n{log}");
    every_letter_once(&ledger, &out, &keys);
}
