//! The PostgreSQL schema, versioned like SQLite's: [`MIGRATIONS`]`[i]` takes a database
//! from version `i` to `i + 1` and is the same schema version as
//! `sqlite::schema::MIGRATIONS[i]` (same tables, columns, constraints and invariants, in
//! PostgreSQL's words). The version is the one row of `missive_schema`.
//!
//! Every pending migration is applied in ONE transaction that first takes a transaction
//! advisory lock ([`MIGRATION_LOCK`]), so two processes that start against a new database
//! at once migrate it once: the second waits, then finds nothing left to do. A database
//! from a newer missive is refused rather than misread.
//!
//! Differences from SQLite, each with the same effect: ids are identity columns; triggers
//! call `missive_refuse(message)` (which raises) and also refuse `TRUNCATE`; the trigger
//! that drops a re-planned letter's piece is a `BEFORE UPDATE` that clears `NEW.piece_id`;
//! `mail_counters` has one row per counter from the start (`last` NULL until a number is
//! given out), so allocation can lock it with `SELECT … FOR UPDATE`; every text column is
//! `COLLATE "C"` (byte order, as SQLite compares), so lists come back in the same order
//! whatever the database's locale.

use postgres::Client;

use super::rows::Db;
use crate::ledger::{LedgerError, PgServer};

/// The key of the transaction advisory lock migrations run under ("msve" + 1).
pub(super) const MIGRATION_LOCK: i64 = 0x6D73_7665_0001;

/// The schema migrations, oldest first; index i is the same version as SQLite's.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: runs, letters, append-only events, referrals.
    "CREATE FUNCTION missive_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;

    CREATE TABLE runs (
        id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        started_at    TEXT COLLATE \"C\" NOT NULL,
        finished_at   TEXT COLLATE \"C\",
        as_of         TEXT COLLATE \"C\" NOT NULL,
        mail_date     TEXT COLLATE \"C\" NOT NULL,
        config_sha256 TEXT COLLATE \"C\" NOT NULL,
        accounts      TEXT COLLATE \"C\" NOT NULL,
        out_dir       TEXT COLLATE \"C\" NOT NULL,
        status        TEXT COLLATE \"C\" NOT NULL
            CHECK (status IN ('running', 'finished', 'interrupted', 'failed'))
    );
    CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('a run is recorded forever: no DELETE');

    CREATE TABLE letters (
        key             TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,
        run_id          BIGINT NOT NULL REFERENCES runs (id),
        account_id      TEXT COLLATE \"C\" NOT NULL,
        kind            TEXT COLLATE \"C\" NOT NULL,
        variant         TEXT COLLATE \"C\",
        channel         TEXT COLLATE \"C\" NOT NULL,
        mail_class      TEXT COLLATE \"C\",
        letter_date     TEXT COLLATE \"C\" NOT NULL,
        deadline        TEXT COLLATE \"C\",
        liability_ids   TEXT COLLATE \"C\" NOT NULL,
        subject         TEXT COLLATE \"C\" NOT NULL,
        data_sha256     TEXT COLLATE \"C\" NOT NULL,
        template        TEXT COLLATE \"C\",
        template_sha256 TEXT COLLATE \"C\",
        file            TEXT COLLATE \"C\",
        file_sha256     TEXT COLLATE \"C\",
        pages           BIGINT,
        state           TEXT COLLATE \"C\" NOT NULL
            CHECK (state IN ('planned', 'rendered', 'released', 'sending', 'sent',
                             'failed', 'uncertain', 'returned', 'cancelled')),
        created_at      TEXT COLLATE \"C\" NOT NULL,
        updated_at      TEXT COLLATE \"C\" NOT NULL
    );
    CREATE INDEX letters_by_account ON letters (account_id);
    CREATE INDEX letters_by_run_state ON letters (run_id, state);

    CREATE TABLE events (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key        TEXT COLLATE \"C\" NOT NULL REFERENCES letters (key),
        run_id     BIGINT REFERENCES runs (id),
        from_state TEXT COLLATE \"C\",
        to_state   TEXT COLLATE \"C\" NOT NULL,
        at         TEXT COLLATE \"C\" NOT NULL,
        detail     TEXT COLLATE \"C\" NOT NULL
    );
    CREATE INDEX events_by_key ON events (key, id);
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('the events table is append-only: no UPDATE');
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('the events table is append-only: no DELETE');
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION missive_refuse('the events table is append-only: no TRUNCATE');
    CREATE TRIGGER letters_no_delete BEFORE DELETE ON letters
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('a letter key is recorded forever: no DELETE');
    CREATE TRIGGER letters_no_truncate BEFORE TRUNCATE ON letters
    FOR EACH STATEMENT EXECUTE FUNCTION missive_refuse('a letter key is recorded forever: no TRUNCATE');

    CREATE TABLE referrals (
        notice_key      TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,
        account_id      TEXT COLLATE \"C\" NOT NULL,
        liability_ids   TEXT COLLATE \"C\" NOT NULL,
        amount          TEXT COLLATE \"C\" NOT NULL,
        deadline_passed TEXT COLLATE \"C\" NOT NULL,
        run_id          BIGINT NOT NULL REFERENCES runs (id),
        at              TEXT COLLATE \"C\" NOT NULL
    );
    CREATE INDEX referrals_by_account ON referrals (account_id);
    CREATE TRIGGER referrals_no_delete BEFORE DELETE ON referrals
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('a referral is recorded forever: no DELETE');",
    // 2: template approvals, append-only.
    "CREATE TABLE approvals (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        template        TEXT COLLATE \"C\" NOT NULL,
        template_sha256 TEXT COLLATE \"C\" NOT NULL,
        reviewer        TEXT COLLATE \"C\" NOT NULL CHECK (length(trim(reviewer)) > 0),
        at              TEXT COLLATE \"C\" NOT NULL,
        note            TEXT COLLATE \"C\" NOT NULL,
        sources         TEXT COLLATE \"C\" NOT NULL
    );
    CREATE INDEX approvals_by_version ON approvals (template, template_sha256);
    CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('an approval is recorded forever: no UPDATE');
    CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('an approval is recorded forever: no DELETE');
    CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON approvals
    FOR EACH STATEMENT EXECUTE FUNCTION missive_refuse('an approval is recorded forever: no TRUNCATE');",
    // 3: outgoing email, one row per letter key.
    "CREATE TABLE emails (
        key            TEXT COLLATE \"C\" PRIMARY KEY NOT NULL REFERENCES letters (key),
        role           TEXT COLLATE \"C\" NOT NULL CHECK (role IN ('letter', 'copy')),
        run_id         BIGINT NOT NULL REFERENCES runs (id),
        to_address     TEXT COLLATE \"C\" NOT NULL,
        to_name        TEXT COLLATE \"C\" NOT NULL,
        subject        TEXT COLLATE \"C\" NOT NULL,
        text_body      TEXT COLLATE \"C\" NOT NULL,
        html_body      TEXT COLLATE \"C\" NOT NULL,
        attach_pdf     BOOLEAN NOT NULL,
        state          TEXT COLLATE \"C\" NOT NULL
            CHECK (state IN ('pending', 'sending', 'sent', 'uncertain', 'failed', 'cancelled')),
        fallback_print BOOLEAN NOT NULL DEFAULT FALSE,
        attempts       BIGINT NOT NULL DEFAULT 0,
        message_id     TEXT COLLATE \"C\",
        reply          TEXT COLLATE \"C\",
        last_error     TEXT COLLATE \"C\",
        sent_at        TEXT COLLATE \"C\",
        updated_at     TEXT COLLATE \"C\" NOT NULL
    );
    CREATE INDEX emails_by_state ON emails (state);
    CREATE TRIGGER emails_no_delete BEFORE DELETE ON emails
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('an email is recorded forever: no DELETE');",
    // 4: IMb serials and article numbers from counters, mail pieces, batches.
    "CREATE TABLE mail_counters (
        name TEXT COLLATE \"C\" PRIMARY KEY NOT NULL CHECK (name IN ('imb_serial', 'certified_article')),
        last BIGINT
    );
    INSERT INTO mail_counters (name, last) VALUES ('imb_serial', NULL), ('certified_article', NULL);
    CREATE TRIGGER mail_counters_no_delete BEFORE DELETE ON mail_counters
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('a counter only moves forward: no DELETE');
    CREATE FUNCTION missive_counter_forward() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.last IS NOT NULL AND (NEW.last IS NULL OR NEW.last < OLD.last) THEN
            RAISE EXCEPTION 'the % counter only moves forward', OLD.name;
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER mail_counters_forward BEFORE UPDATE ON mail_counters
    FOR EACH ROW EXECUTE FUNCTION missive_counter_forward();

    CREATE TABLE batches (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name        TEXT COLLATE \"C\" NOT NULL UNIQUE,
        run_id      BIGINT NOT NULL REFERENCES runs (id),
        mail_class  TEXT COLLATE \"C\" NOT NULL CHECK (mail_class IN ('certified', 'first_class')),
        seq         BIGINT NOT NULL,
        file        TEXT COLLATE \"C\" NOT NULL,
        file_sha256 TEXT COLLATE \"C\" NOT NULL,
        pieces      BIGINT NOT NULL,
        pages       BIGINT NOT NULL,
        sheets      BIGINT NOT NULL,
        amount_due  TEXT COLLATE \"C\" NOT NULL,
        state       TEXT COLLATE \"C\" NOT NULL CHECK (state IN ('written', 'released')),
        created_at  TEXT COLLATE \"C\" NOT NULL,
        released_at TEXT COLLATE \"C\",
        UNIQUE (run_id, mail_class, seq)
    );
    CREATE TRIGGER batches_no_delete BEFORE DELETE ON batches
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('a batch is recorded forever: no DELETE');

    CREATE TABLE mail_pieces (
        id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key            TEXT COLLATE \"C\" NOT NULL REFERENCES letters (key),
        run_id         BIGINT NOT NULL REFERENCES runs (id),
        mail_class     TEXT COLLATE \"C\" NOT NULL CHECK (mail_class IN ('certified', 'first_class')),
        imb_serial     BIGINT NOT NULL UNIQUE,
        tracking_code  TEXT COLLATE \"C\" NOT NULL,
        routing_code   TEXT COLLATE \"C\" NOT NULL,
        imb            TEXT COLLATE \"C\" NOT NULL,
        article_number TEXT COLLATE \"C\" UNIQUE,
        batch_id       BIGINT REFERENCES batches (id),
        sequence       BIGINT,
        pages          BIGINT,
        allocated_at   TEXT COLLATE \"C\" NOT NULL
    );
    CREATE INDEX mail_pieces_by_key ON mail_pieces (key);
    CREATE INDEX mail_pieces_by_batch ON mail_pieces (batch_id, sequence);
    CREATE TRIGGER mail_pieces_no_delete BEFORE DELETE ON mail_pieces
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('a mail piece is recorded forever: no DELETE');

    ALTER TABLE letters ADD COLUMN piece_id BIGINT REFERENCES mail_pieces (id);
    CREATE FUNCTION missive_replanned_new_piece() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.state = 'planned' THEN NEW.piece_id := NULL; END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER letters_replanned_new_piece BEFORE UPDATE OF state ON letters
    FOR EACH ROW EXECUTE FUNCTION missive_replanned_new_piece();",
    // 5: every action sent to the Treasury Offset Program, append-only.
    "CREATE TABLE treasury_actions (
        id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id        BIGINT NOT NULL REFERENCES runs (id),
        account_id    TEXT COLLATE \"C\" NOT NULL,
        notice_key    TEXT COLLATE \"C\" NOT NULL,
        liability_ids TEXT COLLATE \"C\" NOT NULL,
        action        TEXT COLLATE \"C\" NOT NULL CHECK (action IN ('add', 'decrease', 'delete')),
        reason        TEXT COLLATE \"C\" NOT NULL,
        amount_before TEXT COLLATE \"C\" NOT NULL,
        amount_after  TEXT COLLATE \"C\" NOT NULL,
        debtor_name   TEXT COLLATE \"C\" NOT NULL,
        tin_last4     TEXT COLLATE \"C\" NOT NULL,
        why           TEXT COLLATE \"C\" NOT NULL,
        at            TEXT COLLATE \"C\" NOT NULL,
        UNIQUE (run_id, notice_key, liability_ids, action)
    );
    CREATE INDEX treasury_actions_by_account ON treasury_actions (account_id, id);
    CREATE INDEX treasury_actions_by_run ON treasury_actions (run_id, id);
    CREATE TRIGGER treasury_actions_no_update BEFORE UPDATE ON treasury_actions
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('a Treasury action is recorded forever: no UPDATE');
    CREATE TRIGGER treasury_actions_no_delete BEFORE DELETE ON treasury_actions
    FOR EACH ROW EXECUTE FUNCTION missive_refuse('a Treasury action is recorded forever: no DELETE');
    CREATE TRIGGER treasury_actions_no_truncate BEFORE TRUNCATE ON treasury_actions
    FOR EACH STATEMENT EXECUTE FUNCTION missive_refuse('a Treasury action is recorded forever: no TRUNCATE');",
    // 6: why a run failed.
    "ALTER TABLE runs ADD COLUMN failure TEXT COLLATE \"C\";",
    // 7: the piece a letter's current file carries; a letter planned again while still
    // only planned keeps its piece.
    "ALTER TABLE letters ADD COLUMN marked_piece_id BIGINT REFERENCES mail_pieces (id);
    CREATE INDEX letters_by_piece ON letters (piece_id);
    CREATE OR REPLACE FUNCTION missive_replanned_new_piece() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.state = 'planned' AND OLD.state <> 'planned' THEN NEW.piece_id := NULL; END IF;
        RETURN NEW;
    END $$;",
    // 8: the work queue: per planned letter, what a worker needs to render it (`payload`,
    // opaque here) for the run that recorded it, and its claim (`worker`, `lease_until` by
    // the server's clock; NULL: unclaimed). Claims are taken `FOR UPDATE SKIP LOCKED`.
    "CREATE TABLE work (
        key         TEXT COLLATE \"C\" PRIMARY KEY REFERENCES letters (key),
        run_id      BIGINT NOT NULL REFERENCES runs (id),
        payload     TEXT NOT NULL,
        payload_sha256 TEXT NOT NULL,
        data_sha256 TEXT COLLATE \"C\" NOT NULL,
        worker      TEXT COLLATE \"C\",
        lease_until TIMESTAMPTZ
    );
    CREATE INDEX work_by_run ON work (run_id, key);",
    // 9: SQLite's version 9 rebuilds its `work` table so that a payload no longer spills
    // into every seek (a WITHOUT ROWID storage matter). PostgreSQL keeps large values out
    // of line (TOAST) and seeks by its primary key index: the table stays as it is.
    "COMMENT ON TABLE work IS 'per planned letter of a run: its payload and its claim';",
];

/// The schema version this build writes.
pub(super) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database up to [`current_version`] in one transaction under the migration
/// lock, or refuses a database from a newer missive.
pub(super) fn migrate(client: &mut Client, server: &PgServer) -> Result<(), LedgerError> {
    let failed = |source| LedgerError::Server {
        server: Box::new(server.clone()),
        action: "migrate the schema",
        source,
    };
    let applied = (|| -> Db<Option<i64>> {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS missive_schema (
                 one     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
                 version BIGINT NOT NULL
             );
             INSERT INTO missive_schema (one, version) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;",
        )?;
        let version: i64 = tx
            .query_one("SELECT version FROM missive_schema", &[])?
            .try_get(0)?;
        if version > current_version() {
            return Ok(Some(version));
        }
        if version < current_version() {
            for sql in MIGRATIONS
                .iter()
                .skip(usize::try_from(version).unwrap_or(0))
            {
                tx.batch_execute(sql)?;
            }
            tx.execute(
                "UPDATE missive_schema SET version = $1",
                &[&current_version()],
            )?;
        }
        tx.commit()?;
        Ok(None)
    })()
    .map_err(failed)?;
    match applied {
        Some(found) => Err(LedgerError::ServerNewerSchema {
            server: Box::new(server.clone()),
            found,
            supported: current_version(),
        }),
        None => Ok(()),
    }
}
