//! PostgreSQL-only tests, against a real server (`server.rs`; skipped with a visible line
//! when none can start): migrating once under the advisory lock, refusing a newer schema,
//! the run lock, errors that name the server, and the triggers that refuse rewriting
//! history. Everything else is the contract (`ledger/contract`).

use crate::ledger::contract::{Backend, file_of, intent, start};
use crate::ledger::*;

/// A fresh ledger on the test server, or `None` when there is none (already reported).
fn ledger(test: &str) -> Option<(PgLocation, PgLedger)> {
    super::server::available(test).then(PgLedger::fresh)
}

#[test]
fn two_processes_opening_a_new_database_at_once_migrate_it_once() {
    let Some(db) = super::server::fresh_database("migrate_once") else {
        return;
    };
    let Ok(Location::Postgres(location)) = Location::parse(&db.url, None) else {
        panic!("a PostgreSQL URL");
    };
    let opened: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| PgLedger::open(&location).map(drop)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    for result in opened {
        result.expect("every opener succeeds");
    }
    let mut ledger = PgLedger::open(&location).expect("open");
    let version: i64 = ledger
        .client()
        .query_one("SELECT version FROM missive_schema", &[])
        .and_then(|r| r.try_get(0))
        .expect("version");
    assert_eq!(version, super::schema::current_version());
}

#[test]
fn a_database_from_a_newer_missive_is_refused_naming_the_server() {
    let Some((location, mut ledger)) = ledger("newer_schema") else {
        return;
    };
    ledger
        .client()
        .execute("UPDATE missive_schema SET version = 99", &[])
        .expect("set version");
    drop(ledger);
    let err = PgLedger::open(&location).expect_err("newer schema");
    assert!(
        matches!(err, LedgerError::ServerNewerSchema { found: 99, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&location.server.to_string()) && message.contains("99"),
        "{message}"
    );
}

#[test]
fn history_cannot_be_rewritten_even_with_sql() {
    let Some((_location, mut ledger)) = ledger("triggers") else {
        return;
    };
    let run = start(&mut ledger);
    let letter = intent("CT-1");
    ledger
        .record_planned(run.id, std::slice::from_ref(&letter))
        .expect("plan");
    ledger
        .record_rendered(run.id, &[file_of(&letter)])
        .expect("render");
    ledger
        .record_approval(&crate::ledger::contract::new_approval("a1", "Pat"))
        .expect("approve");
    let client = ledger.client();
    for (sql, said) in [
        ("UPDATE events SET detail = 'x'", "append-only: no UPDATE"),
        ("DELETE FROM events", "append-only: no DELETE"),
        ("TRUNCATE events CASCADE", "no TRUNCATE"),
        ("DELETE FROM letters", "recorded forever: no DELETE"),
        ("UPDATE approvals SET reviewer = 'x'", "no UPDATE"),
        ("DELETE FROM runs", "no DELETE"),
        (
            "UPDATE mail_counters SET last = NULL WHERE name = 'imb_serial'",
            "",
        ),
    ] {
        match client.batch_execute(sql) {
            Err(err) => {
                let text = DbError::from(err).to_string();
                assert!(text.contains(said), "{sql}: {text}");
            }
            // Setting a counter that was never used to NULL changes nothing.
            Ok(()) => assert!(sql.contains("mail_counters"), "{sql} was allowed"),
        }
    }
    client
        .batch_execute("UPDATE mail_counters SET last = 10 WHERE name = 'imb_serial'")
        .expect("forward");
    let back = client
        .batch_execute("UPDATE mail_counters SET last = 9 WHERE name = 'imb_serial'")
        .expect_err("a counter never moves back");
    assert!(
        DbError::from(back)
            .to_string()
            .contains("only moves forward"),
        "counter"
    );
    assert_eq!(ledger.events_of(&letter.key).expect("events").len(), 2);
}

#[test]
fn the_run_lock_is_held_by_one_session_and_dropped_with_it() {
    let Some((location, mut first)) = ledger("run_lock") else {
        return;
    };
    first.lock_for_run().expect("first lock");
    let mut second = PgLedger::open(&location).expect("second connection");
    let err = second.lock_for_run().expect_err("held");
    assert!(matches!(err, LedgerError::ServerLocked { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("another missive run is using")
            && message.contains(&location.server.to_string()),
        "{message}"
    );
    // The server drops a session's lock when its connection ends (as when a run is killed);
    // the session ends a moment after the client closes it.
    drop(first);
    let mut third = PgLedger::open(&location).expect("third connection");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Err(err) = third.lock_for_run() {
        assert!(std::time::Instant::now() < deadline, "still locked: {err}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_server_that_is_not_there_is_named_with_what_was_being_done() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let url = format!("postgres://missive@127.0.0.1:{port}/ledger");
    let Ok(Location::Postgres(location)) = Location::parse(&url, None) else {
        panic!("a PostgreSQL URL");
    };
    let err = PgLedger::open(&location).expect_err("nobody listens");
    let message = format!("{:#}", anyhow::Error::from(err));
    assert!(
        message.starts_with(&format!(
            "Failed to open the ledger on `127.0.0.1:{port}/ledger`: could not connect to the server"
        )),
        "{message}"
    );
}

#[test]
fn connections_allocating_at_once_never_share_a_serial() {
    let Some((location, mut ledger)) = ledger("concurrent_allocation") else {
        return;
    };
    let run = start(&mut ledger);
    let letters: Vec<PlannedLetter> = (0..40).map(|n| intent(&format!("CT-{n}"))).collect();
    ledger.record_planned(run.id, &letters).expect("plan");
    let ranges = PieceRanges {
        serial: (1, 1_000),
        article: (1, 1_000),
    };
    use crate::ledger::contract::mailroom::{make, request};
    let pieces: Vec<MailPiece> = std::thread::scope(|scope| {
        let handles: Vec<_> = letters
            .chunks(5)
            .map(|chunk| {
                let location = &location;
                scope.spawn(move || {
                    let mut own = PgLedger::open(location).expect("a connection of its own");
                    let requests: Vec<PieceRequest> = chunk.iter().map(request).collect();
                    own.allocate_pieces(run.id, &requests, ranges, &make)
                        .expect("allocate")
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("join"))
            .collect()
    });
    let mut serials: Vec<u64> = pieces.iter().map(|p| p.imb_serial).collect();
    serials.sort_unstable();
    assert_eq!(
        serials,
        (1..=40).collect::<Vec<u64>>(),
        "each number once, none skipped"
    );
    let mut articles: Vec<String> = pieces
        .iter()
        .filter_map(|p| p.article_number.clone())
        .collect();
    articles.sort();
    articles.dedup();
    assert_eq!(articles.len(), 40);
}
