//! Several workers on one PostgreSQL ledger, from outside (issue 16): three `run --worker`
//! processes and a coordinator render one 2 000-letter run; one worker and then the
//! coordinator are killed with SIGKILL at moments drawn at random (the seed is printed);
//! after the coordinator is restarted (`run --resume`) the run completes with no letter
//! lost, none rendered twice, no serial or article number handed out twice, and the same
//! letters, files, batches, pieces and Treasury file as one process on SQLite. Also
//! `run --workers 2` on PostgreSQL against one process on SQLite. Skipped with a visible
//! `skipped:` line when no PostgreSQL server can start (never in CI).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::accounts::write_intent_accounts;
use common::files::{run_outputs, utf8};
use common::ledger::{Pieces, no_duplicate_serials};
use common::pg::fresh_database;
use common::{Fixture, Run, gate_off_arg, root};

const AS_OF: &str = "2026-12-01";
const CONFIG: &str = "postgres-workers";

/// key → (state, file sha256).
type Letters = BTreeMap<String, (String, String)>;

/// What a ledger holds about a run's letters: letters, pieces, and keys with more than
/// one `rendered` event. The same SQL on either backend.
struct Facts {
    letters: Letters,
    pieces: Pieces,
    rendered_twice: Vec<String>,
}

const LETTERS_SQL: &str = "SELECT key, state, coalesce(file_sha256, '') FROM letters";
const PIECES_SQL: &str = "SELECT p.key, p.imb_serial, p.article_number, b.name, p.sequence
     FROM mail_pieces p LEFT JOIN batches b ON b.id = p.batch_id";
const TWICE_SQL: &str =
    "SELECT key FROM events WHERE to_state = 'rendered' GROUP BY key HAVING count(*) > 1";

fn sqlite_facts(path: &Path) -> Facts {
    let conn = rusqlite::Connection::open(path).expect("open the SQLite ledger");
    let all = |sql: &str| -> Vec<Vec<rusqlite::types::Value>> {
        let mut stmt = conn.prepare(sql).expect("prepare");
        let width = stmt.column_count();
        stmt.query_map([], |r| (0..width).map(|i| r.get(i)).collect())
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("read")
    };
    use rusqlite::types::Value as V;
    let text = |v: &V| match v {
        V::Text(t) => Some(t.clone()),
        _ => None,
    };
    let int = |v: &V| match v {
        V::Integer(i) => Some(*i),
        _ => None,
    };
    Facts {
        letters: all(LETTERS_SQL)
            .iter()
            .map(|r| {
                let t = |i: usize| text(&r[i]).expect("text");
                (t(0), (t(1), t(2)))
            })
            .collect(),
        pieces: all(PIECES_SQL)
            .iter()
            .map(|r| {
                let key = text(&r[0]).expect("key");
                let serial = int(&r[1]).expect("serial");
                (key, (serial, text(&r[2]), text(&r[3]), int(&r[4])))
            })
            .collect(),
        rendered_twice: all(TWICE_SQL).iter().filter_map(|r| text(&r[0])).collect(),
    }
}

fn postgres_facts(url: &str) -> Facts {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let letters = client
        .query(LETTERS_SQL, &[])
        .expect("letters")
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let pieces = client
        .query(PIECES_SQL, &[])
        .expect("pieces")
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
        .collect();
    let rendered_twice = client
        .query(TWICE_SQL, &[])
        .expect("events")
        .iter()
        .map(|r| r.get(0))
        .collect();
    Facts {
        letters,
        pieces,
        rendered_twice,
    }
}

/// Letters rendered so far, in all or by one process (claims name it `host:pid`).
fn rendered(url: &str, pid: Option<u32>) -> i64 {
    let Ok(mut client) = postgres::Client::connect(url, postgres::NoTls) else {
        return 0;
    };
    let pattern = pid.map_or("%".to_owned(), |pid| format!("%:{pid}"));
    client
        .query_one(
            "SELECT count(*) FROM work w JOIN letters l ON l.key = w.key
             WHERE l.state = 'rendered' AND w.worker LIKE $1",
            &[&pattern],
        )
        .and_then(|row| row.try_get(0))
        .unwrap_or(0)
}

/// Whether the run has recorded its work (payloads) yet.
fn work_recorded(url: &str) -> bool {
    postgres::Client::connect(url, postgres::NoTls)
        .and_then(|mut c| c.query_one("SELECT count(*) FROM work", &[]))
        .and_then(|row| row.try_get::<_, i64>(0))
        .is_ok_and(|n| n > 0)
}

/// The accounts, one JSON Lines file: `n` generated intents plus the samples (which bring
/// refunds, offset notices, emails and Treasury referrals and updates).
fn accounts(dir: &Fixture, n: usize) -> (String, Vec<String>) {
    let accounts = dir.join("accounts.jsonl");
    let keys = write_intent_accounts(&accounts, n);
    let mut text = std::fs::read_to_string(&accounts).expect("read generated accounts");
    let mut samples: Vec<_> = std::fs::read_dir(root().join("samples/accounts"))
        .expect("samples")
        .map(|entry| entry.expect("sample").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    samples.sort();
    for path in samples {
        let account: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read a sample"))
                .expect("a sample is JSON");
        text.push_str(&account.to_string());
        text.push('\n');
    }
    std::fs::write(&accounts, text).expect("write accounts");
    (utf8(&accounts).to_owned(), keys)
}

/// `run` arguments for `accounts` into `out` on `ledger`.
fn run_args<'a>(accounts: &'a str, out: &'a Path, ledger: &'a str) -> Vec<&'a str> {
    vec![
        "--config",
        gate_off_arg(CONFIG),
        "run",
        "--accounts",
        accounts,
        "--out",
        utf8(out),
        "--as-of",
        AS_OF,
        "--allow-past-mail-date",
        "--ledger",
        ledger,
    ]
}

fn spawn(args: &[&str], log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start missive")
}

fn spawn_worker(url: &str, log: &Path) -> Child {
    spawn(
        &[
            "--config",
            gate_off_arg(CONFIG),
            "run",
            "--worker",
            "--ledger",
            url,
            "--chunk",
            "16",
            "--lease",
            "3",
            "--jobs",
            "1",
            "--wait",
            "60",
        ],
        log,
    )
}

/// Waits (up to 5 minutes) until `done` holds, polling every 20 ms.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// One process on SQLite into `dir/one`: the reference.
fn single_process(dir: &Fixture, accounts: &str) -> (Run, Facts, BTreeMap<String, String>) {
    let out = dir.join("one");
    let ledger = out.join("missive.db");
    let run = common::missive(&run_args(accounts, &out, utf8(&ledger)));
    run.expect_code(0);
    (run, sqlite_facts(&ledger), run_outputs(&out))
}

/// No two pieces share an IMb serial or an article number; every piece is in a batch.
fn pieces_once(pieces: &Pieces) {
    no_duplicate_serials(pieces);
    assert!(
        pieces.values().all(|p| p.2.is_some()),
        "a piece in no batch"
    );
}

/// The multi-process run equals the reference: same letters in the same states with the
/// same file hashes, same pieces in the same batches at the same places, same files.
fn same_as_reference(
    facts: &Facts,
    files: &BTreeMap<String, String>,
    reference: &(Run, Facts, BTreeMap<String, String>),
) {
    assert_eq!(facts.rendered_twice, Vec::<String>::new(), "rendered twice");
    pieces_once(&facts.pieces);
    assert_eq!(facts.letters, reference.1.letters, "letters differ");
    assert_eq!(facts.pieces, reference.1.pieces, "pieces differ");
    let differing: Vec<&String> = files
        .keys()
        .chain(reference.2.keys())
        .filter(|name| files.get(*name) != reference.2.get(*name))
        .collect();
    assert!(differing.is_empty(), "files differ: {differing:?}");
}

#[test]
fn three_workers_and_a_killed_coordinator_render_a_run_exactly_once() {
    let Some(db) = fresh_database("three_workers_and_a_killed_coordinator") else {
        return;
    };
    let dir = Fixture::empty();
    let (accounts, keys) = accounts(&dir, 2_000);
    let reference = single_process(&dir, &accounts);
    assert!(
        reference.1.letters.len() > keys.len(),
        "samples' letters too"
    );

    // MISSIVE_KILL_SEED replays a printed seed.
    let seed = std::env::var("MISSIVE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() as u64)
        });
    let worker_kill_at = 16 + (seed % 200) as i64;
    let coordinator_kill_at = 700 + ((seed / 200) % 600) as i64;
    println!(
        "seed {seed}: a worker dies after rendering {worker_kill_at} letters, the coordinator once {coordinator_kill_at} are rendered"
    );

    let out = dir.join("many");
    let mut args = run_args(&accounts, &out, &db.url);
    args.extend(["--chunk", "16", "--lease", "3", "--jobs", "1"]);
    let mut coordinator = spawn(&args, &dir.join("coordinator.log"));
    wait_for("the run to record its work", || work_recorded(&db.url));
    let mut workers: Vec<Child> = (0..3)
        .map(|n| spawn_worker(&db.url, &dir.join(&format!("worker-{n}.log"))))
        .collect();
    let doomed = workers[0].id();
    wait_for("the first worker to render", || {
        rendered(&db.url, Some(doomed)) >= worker_kill_at
    });
    workers[0].kill().expect("SIGKILL a worker");
    workers[0].wait().expect("reap it");
    wait_for("the run to get far enough", || {
        rendered(&db.url, None) >= coordinator_kill_at
            || coordinator.try_wait().ok().flatten().is_some()
    });
    let coordinator_done = coordinator.try_wait().ok().flatten().is_some();
    println!(
        "the coordinator {} with {} letters rendered",
        if coordinator_done {
            "had finished"
        } else {
            "is killed"
        },
        rendered(&db.url, None)
    );
    coordinator.kill().ok();
    coordinator.wait().expect("reap the coordinator");

    // The coordinator comes back and takes up its run while the workers go on.
    let resumed = if coordinator_done {
        None
    } else {
        let mut resume = vec![
            "--config",
            gate_off_arg(CONFIG),
            "run",
            "--resume",
            "1",
            "--allow-past-mail-date",
            "--ledger",
            &db.url,
        ];
        resume.extend(["--chunk", "16", "--lease", "3", "--jobs", "1"]);
        Some(common::missive(&resume))
    };
    if let Some(resumed) = &resumed {
        assert_eq!(
            resumed.code,
            0,
            "resume: {}\nfirst attempt: {}",
            resumed.stderr,
            log(&dir.join("coordinator.log"))
        );
    }
    for (n, worker) in workers.iter_mut().enumerate().skip(1) {
        let status = worker.wait().expect("a worker leaves");
        let text = log(&dir.join(&format!("worker-{n}.log")));
        assert!(status.success(), "worker {n}: {status}\n{text}");
    }

    let facts = postgres_facts(&db.url);
    same_as_reference(&facts, &run_outputs(&out), &reference);
    for key in &keys {
        assert_eq!(facts.letters[key].0, "rendered", "`{key}`");
    }
}

#[test]
fn workers_started_by_the_run_on_postgres_write_what_one_process_writes_on_sqlite() {
    let Some(db) = fresh_database("workers_started_by_the_run") else {
        return;
    };
    let dir = Fixture::empty();
    let (accounts, _) = accounts(&dir, 60);
    let reference = single_process(&dir, &accounts);
    let out = dir.join("many");
    let mut args = run_args(&accounts, &out, &db.url);
    args.extend(["--workers", "2", "--chunk", "4"]);
    let run = common::missive(&args);
    run.expect_code(0);
    assert!(!run.stderr.contains("warning: worker"), "{}", run.stderr);
    let summary = |stderr: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with("run 1:"))
            .map(|l| l.split("; ledger").next().unwrap_or_default().to_owned())
    };
    assert_eq!(summary(&run.stderr), summary(&reference.0.stderr));
    same_as_reference(&postgres_facts(&db.url), &run_outputs(&out), &reference);
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
    let claimed_by: i64 = client
        .query_one("SELECT count(DISTINCT worker) FROM work", &[])
        .and_then(|r| r.try_get(0))
        .expect("claims");
    assert!(claimed_by >= 2, "only {claimed_by} process claimed letters");
}
