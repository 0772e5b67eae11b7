//! The SQLite ledger: one file beside the output, WAL mode, every change in ONE
//! transaction (`BEGIN IMMEDIATE`, so a second writer waits rather than failing midway).
//!
//! Besides the rules every backend shares (`ledger::rules`, `ledger::state`), the schema
//! enforces what SQL can: triggers refuse `UPDATE` and `DELETE` on events, approvals and
//! Treasury actions and `DELETE` on every other table; a letter planned again loses its
//! mail piece (trigger); serials and article numbers are `UNIQUE`. One role per file:
//! `runs.rs`, `letters.rs`, `emails.rs` (outbox), `mailroom.rs` (pieces and batches),
//! `treasury.rs`, `approvals.rs`, `work.rs` (the work queue).

mod approvals;
mod emails;
mod letters;
mod mailroom;
mod rows;
mod runs;
mod schema;
#[cfg(test)]
mod tests;
mod treasury;
mod work;
mod writes;

use crate::ledger::DbError;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use super::lock::RunLock;
use super::{LedgerError, LetterRecord, ReferralRecord};
use rows::{letter_from_row, referral_from_row};

/// A ledger in one SQLite file.
#[derive(Debug)]
pub struct SqliteLedger {
    conn: Connection,
    path: PathBuf,
}

impl SqliteLedger {
    /// Opens or creates the ledger file: WAL mode, foreign keys on, busy timeout (5 s),
    /// migrations applied (schema versions in code, `PRAGMA user_version`; a database from a
    /// NEWER version is refused). A file that is not a SQLite database, is corrupt or is
    /// unwritable, or a directory that does not exist, gives a clear error naming the path.
    pub fn open(path: &Path) -> Result<SqliteLedger, LedgerError> {
        let conn = schema::open(path)?;
        Ok(SqliteLedger {
            conn,
            path: path.to_owned(),
        })
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the exclusive run lock (`<canonical ledger path>.lock`, locked with
    /// `File::try_lock`; the OS releases it when the process dies, even by SIGKILL). The
    /// path is canonicalized first (symlinks, `..`, relative paths resolved), so two names
    /// of the same ledger file share one lock. A second holder gets [`LedgerError::Locked`]
    /// at once. The guard releases on drop.
    pub fn lock_for_run(&self) -> Result<RunLock, LedgerError> {
        let canonical =
            std::fs::canonicalize(&self.path).map_err(|source| LedgerError::LockFile {
                path: self.path.clone(),
                source,
            })?;
        RunLock::acquire(&canonical)
    }

    /// The connection, for tests that check what the code must not be able to do.
    #[cfg(test)]
    pub(super) fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl SqliteLedger {
    fn write_tx(&mut self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        // IMMEDIATE takes the write lock up front, so a concurrent writer waits on the busy
        // timeout instead of failing mid-transaction.
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
    }

    fn read_letters(
        &self,
        what: impl Fn() -> String,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<LetterRecord>, LedgerError> {
        let read = || -> rusqlite::Result<Vec<LetterRecord>> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let rows = stmt.query_map(args, letter_from_row)?;
            rows.collect()
        };
        read().map_err(|source| LedgerError::Read {
            what: what(),
            source: DbError::from(source),
        })
    }
}

impl SqliteLedger {
    fn read_referrals(
        &self,
        what: String,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<ReferralRecord>, LedgerError> {
        let read = || -> rusqlite::Result<Vec<ReferralRecord>> {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT notice_key, account_id, liability_ids, amount, deadline_passed, run_id, at
                 FROM referrals {filter}"
            ))?;
            let rows = stmt.query_map(args, referral_from_row)?;
            rows.collect()
        };
        read().map_err(|source| LedgerError::Read {
            what,
            source: source.into(),
        })
    }
}
