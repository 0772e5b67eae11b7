//! Opening a ledger file and bringing its schema up to date.
//!
//! The schema is versioned in code: [`MIGRATIONS`]`[i]` takes a database from version `i`
//! to `i + 1`, recorded in `PRAGMA user_version` in the same transaction. A database from
//! a newer missive (a higher `user_version`) is refused rather than misread. The file is
//! marked with `PRAGMA application_id` so that another application's SQLite database is
//! refused too.

use crate::ledger::DbError;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::ledger::LedgerError;

/// `PRAGMA application_id` of a missive ledger ("msve").
pub const APPLICATION_ID: i64 = 0x6D73_7665;

/// How long a statement waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema migrations, oldest first; the schema version is the number applied.
pub const MIGRATIONS: &[&str] = &[
    // 1: runs, letters, append-only events, referrals.
    "CREATE TABLE runs (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at    TEXT NOT NULL,
        finished_at   TEXT,
        as_of         TEXT NOT NULL,
        mail_date     TEXT NOT NULL,
        config_sha256 TEXT NOT NULL,
        accounts      TEXT NOT NULL,
        out_dir       TEXT NOT NULL,
        status        TEXT NOT NULL
            CHECK (status IN ('running', 'finished', 'interrupted', 'failed'))
    ) STRICT;

    CREATE TABLE letters (
        key             TEXT PRIMARY KEY NOT NULL,
        run_id          INTEGER NOT NULL REFERENCES runs (id),
        account_id      TEXT NOT NULL,
        kind            TEXT NOT NULL,
        variant         TEXT,
        channel         TEXT NOT NULL,
        mail_class      TEXT,
        letter_date     TEXT NOT NULL,
        deadline        TEXT,
        liability_ids   TEXT NOT NULL,
        subject         TEXT NOT NULL,
        data_sha256     TEXT NOT NULL,
        template        TEXT,
        template_sha256 TEXT,
        file            TEXT,
        file_sha256     TEXT,
        pages           INTEGER,
        state           TEXT NOT NULL
            CHECK (state IN ('planned', 'rendered', 'released', 'sending', 'sent',
                             'failed', 'uncertain', 'returned', 'cancelled')),
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX letters_by_account ON letters (account_id);
    CREATE INDEX letters_by_run_state ON letters (run_id, state);

    CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        key        TEXT NOT NULL REFERENCES letters (key),
        run_id     INTEGER REFERENCES runs (id),
        from_state TEXT,
        to_state   TEXT NOT NULL,
        at         TEXT NOT NULL,
        detail     TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_by_key ON events (key, id);
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the events table is append-only: no UPDATE'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the events table is append-only: no DELETE'); END;
    CREATE TRIGGER letters_no_delete BEFORE DELETE ON letters
    BEGIN SELECT RAISE(ABORT, 'a letter key is recorded forever: no DELETE'); END;

    CREATE TABLE referrals (
        notice_key      TEXT PRIMARY KEY NOT NULL,
        account_id      TEXT NOT NULL,
        liability_ids   TEXT NOT NULL,
        amount          TEXT NOT NULL,
        deadline_passed TEXT NOT NULL,
        run_id          INTEGER NOT NULL REFERENCES runs (id),
        at              TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX referrals_by_account ON referrals (account_id);
    CREATE TRIGGER referrals_no_delete BEFORE DELETE ON referrals
    BEGIN SELECT RAISE(ABORT, 'a referral is recorded forever: no DELETE'); END;",
    // review: template approvals by legal reviewers. One row per approval of one exact
    // template version (content hash of template + partials + layout), with the texts that
    // hash covers (`sources`, a JSON object of file name → text) so a later version can be
    // diffed against it. Append-only, like events.
    "CREATE TABLE approvals (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        template        TEXT NOT NULL,
        template_sha256 TEXT NOT NULL,
        reviewer        TEXT NOT NULL CHECK (length(trim(reviewer)) > 0),
        at              TEXT NOT NULL,
        note            TEXT NOT NULL,
        sources         TEXT NOT NULL
    ) STRICT;
    CREATE INDEX approvals_by_version ON approvals (template, template_sha256);
    CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
    BEGIN SELECT RAISE(ABORT, 'an approval is recorded forever: no UPDATE'); END;
    CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
    BEGIN SELECT RAISE(ABORT, 'an approval is recorded forever: no DELETE'); END;",
    // (email) Outgoing email, one row per letter key: the letter itself (channel email) or
    // the email copy of an intent to offset (role `copy`, whose letter goes by certified
    // mail). The message is composed when the letter is planned and stored here, so `send`
    // needs only the ledger and the PDF. `state` is the email's own: for role `letter` it
    // moves together with the letter's state, for `copy` it is the copy's only record.
    // `fallback_print`: the server refused the address for good and `--fallback-print`
    // asked for paper, so later runs plan the letter as first-class mail.
    "CREATE TABLE emails (
        key            TEXT PRIMARY KEY NOT NULL REFERENCES letters (key),
        role           TEXT NOT NULL CHECK (role IN ('letter', 'copy')),
        run_id         INTEGER NOT NULL REFERENCES runs (id),
        to_address     TEXT NOT NULL,
        to_name        TEXT NOT NULL,
        subject        TEXT NOT NULL,
        text_body      TEXT NOT NULL,
        html_body      TEXT NOT NULL,
        attach_pdf     INTEGER NOT NULL,
        state          TEXT NOT NULL
            CHECK (state IN ('pending', 'sending', 'sent', 'uncertain', 'failed', 'cancelled')),
        fallback_print INTEGER NOT NULL DEFAULT 0,
        attempts       INTEGER NOT NULL DEFAULT 0,
        message_id     TEXT,
        reply          TEXT,
        last_error     TEXT,
        sent_at        TEXT,
        updated_at     TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX emails_by_state ON emails (state);
    CREATE TRIGGER emails_no_delete BEFORE DELETE ON emails
    BEGIN SELECT RAISE(ABORT, 'an email is recorded forever: no DELETE'); END;",
    // (print batches) IMb serials and certified article numbers, allocated once ever
    // from counters; mail pieces (one per printed copy of a letter: a reissue is a new
    // piece, hence `letters.piece_id`, cleared by a trigger when the letter is planned
    // again); batches and their release.
    "CREATE TABLE mail_counters (
        name TEXT PRIMARY KEY NOT NULL CHECK (name IN ('imb_serial', 'certified_article')),
        last INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE batches (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        name        TEXT NOT NULL UNIQUE,
        run_id      INTEGER NOT NULL REFERENCES runs (id),
        mail_class  TEXT NOT NULL CHECK (mail_class IN ('certified', 'first_class')),
        seq         INTEGER NOT NULL,
        file        TEXT NOT NULL,
        file_sha256 TEXT NOT NULL,
        pieces      INTEGER NOT NULL,
        pages       INTEGER NOT NULL,
        sheets      INTEGER NOT NULL,
        amount_due  TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('written', 'released')),
        created_at  TEXT NOT NULL,
        released_at TEXT,
        UNIQUE (run_id, mail_class, seq)
    ) STRICT;
    CREATE TRIGGER batches_no_delete BEFORE DELETE ON batches
    BEGIN SELECT RAISE(ABORT, 'a batch is recorded forever: no DELETE'); END;

    CREATE TABLE mail_pieces (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        key            TEXT NOT NULL REFERENCES letters (key),
        run_id         INTEGER NOT NULL REFERENCES runs (id),
        mail_class     TEXT NOT NULL CHECK (mail_class IN ('certified', 'first_class')),
        imb_serial     INTEGER NOT NULL UNIQUE,
        tracking_code  TEXT NOT NULL,
        routing_code   TEXT NOT NULL,
        imb            TEXT NOT NULL,
        article_number TEXT UNIQUE,
        batch_id       INTEGER REFERENCES batches (id),
        sequence       INTEGER,
        pages          INTEGER,
        allocated_at   TEXT NOT NULL
    ) STRICT;
    CREATE INDEX mail_pieces_by_key ON mail_pieces (key);
    CREATE INDEX mail_pieces_by_batch ON mail_pieces (batch_id, sequence);
    CREATE TRIGGER mail_pieces_no_delete BEFORE DELETE ON mail_pieces
    BEGIN SELECT RAISE(ABORT, 'a mail piece is recorded forever: no DELETE'); END;

    ALTER TABLE letters ADD COLUMN piece_id INTEGER REFERENCES mail_pieces (id);
    CREATE TRIGGER letters_replanned_new_piece AFTER UPDATE OF state ON letters
    WHEN NEW.state = 'planned' AND NEW.piece_id IS NOT NULL
    BEGIN UPDATE letters SET piece_id = NULL WHERE key = NEW.key; END;",
    // (Treasury file) Every action sent to the Treasury Offset Program: a referral added,
    // decreased or deleted, with the debtor's name and TIN's last four as the Treasury file
    // carries them. Append-only; what TOP holds for a referral (notice + liabilities) is its
    // latest action's `amount_after`, so a rerun sends nothing twice, and a run's Treasury
    // file can be regenerated from here after a crash.
    "CREATE TABLE treasury_actions (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id        INTEGER NOT NULL REFERENCES runs (id),
        account_id    TEXT NOT NULL,
        notice_key    TEXT NOT NULL,
        liability_ids TEXT NOT NULL,
        action        TEXT NOT NULL CHECK (action IN ('add', 'decrease', 'delete')),
        reason        TEXT NOT NULL,
        amount_before TEXT NOT NULL,
        amount_after  TEXT NOT NULL,
        debtor_name   TEXT NOT NULL,
        tin_last4     TEXT NOT NULL,
        why           TEXT NOT NULL,
        at            TEXT NOT NULL,
        UNIQUE (run_id, notice_key, liability_ids, action)
    ) STRICT;
    CREATE INDEX treasury_actions_by_account ON treasury_actions (account_id, id);
    CREATE INDEX treasury_actions_by_run ON treasury_actions (run_id, id);
    CREATE TRIGGER treasury_actions_no_update BEFORE UPDATE ON treasury_actions
    BEGIN SELECT RAISE(ABORT, 'a Treasury action is recorded forever: no UPDATE'); END;
    CREATE TRIGGER treasury_actions_no_delete BEFORE DELETE ON treasury_actions
    BEGIN SELECT RAISE(ABORT, 'a Treasury action is recorded forever: no DELETE'); END;",
    // (hardening) Why a run failed (exit 2: disk full, read-only file system, …), shown by
    // `history --runs`; NULL for runs that did not fail.
    "ALTER TABLE runs ADD COLUMN failure TEXT;",
    // (issue 15) The mail piece whose IMb and article number the letter's current file
    // carries: a run allocates pieces before it renders, so its print letters are rendered
    // once, with their marks, and batches are assembled from those files. NULL for a file
    // rendered without marks (by an earlier version, or with no piece): its batch renders
    // a print copy with the marks instead.
    // A letter planned again while still only planned (a run killed before rendering it,
    // taken over by the next) keeps its piece, so its file is rendered with the same
    // marks; allocation gives a new piece if the class or routing code changed.
    // The index lets `open_pieces` find a piece's letter without scanning every letter
    // (a batch of 500 in a ledger of 10 000 letters took seconds).
    "ALTER TABLE letters ADD COLUMN marked_piece_id INTEGER REFERENCES mail_pieces (id);
    CREATE INDEX letters_by_piece ON letters (piece_id);
    DROP TRIGGER letters_replanned_new_piece;
    CREATE TRIGGER letters_replanned_new_piece AFTER UPDATE OF state ON letters
    WHEN NEW.state = 'planned' AND OLD.state <> 'planned' AND NEW.piece_id IS NOT NULL
    BEGIN UPDATE letters SET piece_id = NULL WHERE key = NEW.key; END;",
    // (issue 16, workers) The work queue: per planned letter, what a worker needs to render
    // it (`payload`, the runner's JSON, opaque here) for the run that recorded it, and its
    // claim (`worker`, `lease_until` as RFC 3339 UTC with milliseconds; NULL: unclaimed).
    // Recording a payload again replaces the row and clears the claim. Only a letter still
    // planned in the same run is claimable, so a claim needs no cleanup when its letter
    // leaves `planned`.
    "CREATE TABLE work (
        key         TEXT PRIMARY KEY NOT NULL REFERENCES letters (key),
        run_id      INTEGER NOT NULL REFERENCES runs (id),
        payload     TEXT NOT NULL,
        payload_sha256 TEXT NOT NULL,
        data_sha256 TEXT NOT NULL,
        worker      TEXT,
        lease_until TEXT
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX work_by_run ON work (run_id, key);",
    // (issue 15) `work` as a rowid table, its payload last. In a WITHOUT ROWID table the
    // rows are the keys of an index B-tree: a payload over about 1 KB spills to an
    // overflow page, and every key comparison of a seek read the whole row again (about
    // 23 reads per letter of a run, a second of CPU at 10 000 letters). A rowid table
    // keeps a row of up to about 4 KB on its leaf and seeks by the small `key` index;
    // with the payload last, the claim columns are read without it.
    "CREATE TABLE work_rows (
        key         TEXT PRIMARY KEY NOT NULL REFERENCES letters (key),
        run_id      INTEGER NOT NULL REFERENCES runs (id),
        data_sha256 TEXT NOT NULL,
        payload_sha256 TEXT NOT NULL,
        worker      TEXT,
        lease_until TEXT,
        payload     TEXT NOT NULL
    ) STRICT;
    INSERT INTO work_rows (key, run_id, data_sha256, payload_sha256, worker, lease_until,
                           payload)
        SELECT key, run_id, data_sha256, payload_sha256, worker, lease_until, payload
        FROM work;
    DROP TABLE work;
    ALTER TABLE work_rows RENAME TO work;
    CREATE INDEX work_by_run ON work (run_id, key);",
];

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Opens (or creates) the ledger at `path`, configured and migrated.
pub fn open(path: &Path) -> Result<Connection, LedgerError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(LedgerError::NoDirectory {
            path: path.to_owned(),
            dir: dir.to_owned(),
        });
    }
    let failed =
        |action: &'static str| move |source: rusqlite::Error| classify(path, action, source);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(failed(
        "create or open the file (is its directory writable?)",
    ))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(failed("set the busy timeout"))?;
    // SQLite silently falls back to read-only for a file it may not write; say so now
    // rather than at the first letter.
    if conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(failed("check write access"))?
    {
        return Err(LedgerError::ReadOnly {
            path: path.to_owned(),
        });
    }
    // Reading the header first tells a non-database file apart before anything is written.
    let (version, app_id, tables): (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT application_id FROM pragma_application_id),
                    (SELECT count(*) FROM sqlite_schema)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .map_err(failed("read the schema version"))?;
    if app_id != APPLICATION_ID && (app_id != 0 || tables > 0 || version > 0) {
        return Err(LedgerError::NotALedger {
            path: path.to_owned(),
            reason: "it is another application's SQLite database".to_owned(),
        });
    }
    if version > current_version() {
        return Err(LedgerError::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: current_version(),
        });
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(failed("switch to WAL mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(LedgerError::NotALedger {
            path: path.to_owned(),
            reason: format!("SQLite could not use WAL mode on it (journal mode is `{mode}`)"),
        });
    }
    // FULL: a transaction that reported success survives a power cut, not only a crash; a
    // letter marked sent must never be forgotten.
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
        .map_err(failed("set foreign keys and synchronous mode"))?;
    migrate(&conn, path, version)?;
    Ok(conn)
}

/// Applies the migrations after `version`, each in its own transaction.
fn migrate(conn: &Connection, path: &Path, version: i64) -> Result<(), LedgerError> {
    let failed = |source| classify(path, "migrate the schema", source);
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let to = index as i64 + 1;
        if to <= version {
            continue;
        }
        // IMMEDIATE: two processes opening a new ledger at once must not both migrate.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(failed)?;
        let applied = (|| {
            let now: i64 =
                conn.query_row("SELECT user_version FROM pragma_user_version", [], |r| {
                    r.get(0)
                })?;
            if now < to {
                conn.execute_batch(sql)?;
                conn.pragma_update(None, "application_id", APPLICATION_ID)?;
                conn.pragma_update(None, "user_version", to)?;
            }
            conn.execute_batch("COMMIT")
        })();
        if let Err(source) = applied {
            // The transaction is rolled back; a failure to roll back changes nothing more.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(failed(source));
        }
    }
    Ok(())
}

/// A SQLite error while opening `path`, told apart: not a database / corrupt, or other.
fn classify(path: &Path, action: &'static str, source: rusqlite::Error) -> LedgerError {
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => LedgerError::NotALedger {
            path: path.to_owned(),
            reason: "it is not a SQLite database".to_owned(),
        },
        Some(ErrorCode::DatabaseCorrupt) => LedgerError::NotALedger {
            path: path.to_owned(),
            reason: "the SQLite database is corrupt".to_owned(),
        },
        _ => LedgerError::Open {
            path: path.to_owned(),
            action,
            source: DbError::from(source),
        },
    }
}
