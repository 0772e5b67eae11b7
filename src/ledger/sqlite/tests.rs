//! SQLite-only tests: opening and migrating the file, the lock file, and the triggers that
//! refuse rewriting history. Everything else is the contract (`ledger/contract`).

use std::path::Path;

use tempfile::TempDir;

use crate::ledger::contract::{Backend, intent, new_approval, start};
use crate::ledger::*;
use crate::runner::records::treasury_add;

/// A fresh SQLite ledger in a temporary directory (kept alive by the `TempDir`).
fn ledger() -> (TempDir, SqliteLedger) {
    SqliteLedger::fresh()
}

fn pragma(ledger: &SqliteLedger, name: &str) -> String {
    ledger
        .connection()
        .query_row(&format!("SELECT * FROM pragma_{name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| format!("{v:?}"))
        .expect("pragma")
}

/// The first column of every row `sql` returns, as text.
fn texts(ledger: &SqliteLedger, sql: &str) -> Vec<String> {
    let conn = ledger.connection();
    let mut stmt = conn.prepare(sql).expect("prepare");
    let rows = stmt.query_map([], |r| r.get(0)).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

#[test]
fn migrations_create_the_schema_and_reopening_keeps_it() {
    let (dir, mut ledger) = ledger();
    assert_eq!(
        pragma(&ledger, "user_version"),
        format!("Integer({})", super::schema::current_version())
    );
    assert_eq!(pragma(&ledger, "journal_mode"), r#"Text("wal")"#);
    assert_eq!(pragma(&ledger, "foreign_keys"), "Integer(1)");
    let tables = texts(
        &ledger,
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
    );
    for table in ["events", "letters", "referrals", "runs"] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    let run = start(&mut ledger);
    ledger
        .record_planned(run.id, &[intent("CT-1")])
        .expect("plan");
    drop(ledger);

    let reopened = SqliteLedger::open(&dir.path().join("missive.db")).expect("reopen");
    assert_eq!(reopened.run(run.id).expect("run"), Some(run));
    assert_eq!(
        reopened.letters_of_account("CT-1").expect("letters").len(),
        1
    );
}

#[test]
fn a_ledger_from_a_newer_missive_is_refused() {
    let (dir, ledger) = ledger();
    ledger
        .connection()
        .pragma_update(None, "user_version", 99)
        .expect("set version");
    drop(ledger);
    let path = dir.path().join("missive.db");
    let err = SqliteLedger::open(&path).expect_err("newer schema");
    assert!(
        matches!(err, LedgerError::NewerSchema { found: 99, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("99"),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_a_ledger_is_refused_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"not a database at all\n".repeat(200)).expect("write");
    let err = SqliteLedger::open(&garbage).expect_err("garbage");
    assert!(matches!(err, LedgerError::NotALedger { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&garbage.display().to_string()),
        "{err}"
    );

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
        .expect("other app's db");
    let err = SqliteLedger::open(&other).expect_err("another application's database");
    assert!(err.to_string().contains("another application"), "{err}");
}

#[test]
fn a_missing_or_unusable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no such dir").join("missive.db");
    let err = SqliteLedger::open(&missing).expect_err("missing dir");
    assert!(matches!(err, LedgerError::NoDirectory { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let file = dir.path().join("a file");
    std::fs::write(&file, "x").expect("write");
    let err = SqliteLedger::open(&file.join("missive.db")).expect_err("parent is a file");
    assert!(matches!(err, LedgerError::NoDirectory { .. }), "{err:?}");
}

#[cfg(unix)]
#[test]
fn an_unwritable_directory_or_file_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    let existing = locked.join("existing.db");
    drop(SqliteLedger::open(&existing).expect("create"));
    // Only the main file is left once the connection closes (WAL files are removed).
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    // root ignores permissions: then there is nothing to test here.
    let enforced = std::fs::write(locked.join("probe"), "x").is_err();
    if enforced {
        let new = locked.join("missive.db");
        let err = SqliteLedger::open(&new).expect_err("unwritable directory");
        assert!(
            err.to_string().contains(&new.display().to_string()),
            "{err}"
        );
        let err = SqliteLedger::open(&existing).expect_err("read-only file");
        assert!(
            err.to_string().contains(&existing.display().to_string()),
            "{err}"
        );
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    // Not even root may create a file in /proc.
    if Path::new("/proc/self").is_dir() {
        let proc = Path::new("/proc/missive-ledger-test.db");
        let err = SqliteLedger::open(proc).expect_err("unwritable /proc");
        assert!(matches!(err, LedgerError::Open { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/proc/missive-ledger-test.db"),
            "{err}"
        );
    }
}

#[test]
fn the_run_lock_refuses_a_second_holder_until_released() {
    let (dir, ledger) = ledger();
    let first = ledger.lock_for_run().expect("first lock");
    assert_eq!(first.path(), dir.path().join("missive.db.lock"));
    // A second open file handle, as a second process would have.
    let err = ledger.lock_for_run().expect_err("second lock");
    assert!(matches!(err, LedgerError::Locked { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("another missive run is using `")
            && message.contains("missive.db.lock`"),
        "{message}"
    );
    let other = SqliteLedger::open(&dir.path().join("missive.db")).expect("second connection");
    assert!(matches!(
        other.lock_for_run(),
        Err(LedgerError::Locked { .. })
    ));
    drop(first);
    let again = ledger.lock_for_run().expect("lock after release");
    drop(again);
}

#[test]
fn events_cannot_be_updated_or_deleted() {
    let (_dir, mut ledger) = ledger();
    let run = start(&mut ledger);
    ledger
        .record_planned(run.id, &[intent("CT-1")])
        .expect("plan");
    let conn = ledger.connection();
    for sql in [
        "UPDATE events SET detail = 'rewritten'",
        "DELETE FROM events",
        "DELETE FROM letters",
    ] {
        let err = conn.execute(sql, []).expect_err(sql);
        let message = err.to_string();
        assert!(
            message.contains("append-only") || message.contains("forever"),
            "{sql}: {message}"
        );
    }
    assert_eq!(
        ledger.events_of(&intent("CT-1").key).expect("events").len(),
        1
    );
}

#[test]
fn approvals_are_append_only() {
    let (_dir, mut ledger) = ledger();
    ledger
        .record_approval(&new_approval("aaaa", "Pat"))
        .expect("approve");
    let conn = ledger.connection();
    assert!(
        conn.execute("UPDATE approvals SET reviewer = 'x'", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM approvals", []).is_err());
}

#[test]
fn treasury_actions_are_append_only() {
    let (_dir, mut ledger) = ledger();
    let run = start(&mut ledger);
    let r = crate::decide::Referral {
        account_id: "CT-1".to_owned(),
        liability_ids: vec!["L1".to_owned(), "L2".to_owned()],
        amount: crate::money::Money::parse("1040.00").expect("amount"),
        notice_key: crate::letter::LetterKey::intent_to_offset("CT-1", &["L1", "L2"]),
        deadline_passed: "2026-07-31".parse().expect("date"),
    };
    ledger
        .record_treasury(
            run.id,
            &[treasury_add(&r, "Ann Lee", "1234")],
            &std::collections::HashMap::new(),
        )
        .expect("add");
    let conn = ledger.connection();
    assert!(
        conn.execute("UPDATE treasury_actions SET amount_after = '1.00'", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM treasury_actions", []).is_err());
}

/// Version 9 rebuilds `work` as a rowid table with the payload last: a ledger of version 8
/// with a letter's payload and claim keeps both, and the letter is claimable as before.
#[test]
fn version_9_rebuilds_the_work_queue_keeping_its_rows() {
    let (dir, mut ledger) = ledger();
    let run = start(&mut ledger);
    let letter = intent("CT-1");
    ledger
        .record_planned(run.id, std::slice::from_ref(&letter))
        .expect("plan");
    // Longer than a WITHOUT ROWID row keeps on its page.
    let payload = "x".repeat(3_000);
    ledger
        .record_payloads(
            run.id,
            &[LetterPayload {
                key: letter.key.clone(),
                payload: payload.clone(),
                data_sha256: letter.data_sha256.clone(),
            }],
        )
        .expect("payload");
    // Back to version 8's table, as a ledger written by the previous missive has it.
    ledger
        .connection()
        .execute_batch(
            "CREATE TABLE work_v8 (
                key TEXT PRIMARY KEY NOT NULL REFERENCES letters (key),
                run_id INTEGER NOT NULL REFERENCES runs (id),
                payload TEXT NOT NULL, payload_sha256 TEXT NOT NULL,
                data_sha256 TEXT NOT NULL, worker TEXT, lease_until TEXT
             ) STRICT, WITHOUT ROWID;
             INSERT INTO work_v8 (key, run_id, payload, payload_sha256, data_sha256, worker,
                                  lease_until)
                 SELECT key, run_id, payload, payload_sha256, data_sha256, 'host:1',
                        '2000-01-01T00:00:00.000Z' FROM work;
             DROP TABLE work;
             ALTER TABLE work_v8 RENAME TO work;
             CREATE INDEX work_by_run ON work (run_id, key);
             PRAGMA user_version = 8;",
        )
        .expect("downgrade");
    drop(ledger);

    let mut reopened = SqliteLedger::open(&dir.path().join("missive.db")).expect("reopen");
    assert_eq!(
        pragma(&reopened, "user_version"),
        format!("Integer({})", super::schema::current_version())
    );
    let sql: String = reopened
        .connection()
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'work'",
            [],
            |r| r.get(0),
        )
        .expect("work table");
    assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
    let columns = texts(
        &reopened,
        "SELECT name FROM pragma_table_info('work') ORDER BY cid",
    );
    assert_eq!(
        columns,
        [
            "key",
            "run_id",
            "data_sha256",
            "payload_sha256",
            "worker",
            "lease_until",
            "payload"
        ]
    );
    // The claim (an expired one, so the letter is claimable again) came along.
    let claim: (String, String) = reopened
        .connection()
        .query_row("SELECT worker, lease_until FROM work", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("claim columns");
    assert_eq!(
        claim,
        ("host:1".to_owned(), "2000-01-01T00:00:00.000Z".to_owned())
    );
    let claimed = reopened
        .claim_letters(run.id, "w", 10, std::time::Duration::from_secs(60))
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].payload, payload);
    assert_eq!(claimed[0].data_sha256, letter.data_sha256);
}
