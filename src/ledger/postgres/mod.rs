//! The PostgreSQL ledger: one database on a server several machines can reach, with the
//! same schema versions, records and invariants as the SQLite ledger.
//!
//! Every change is ONE transaction. Rows a write decides on (a letter's state, a counter)
//! are read `FOR UPDATE`, so two writers on the same letter or counter take turns and
//! counters only move forward; besides the rules every backend shares
//! (`ledger::rules`, `ledger::state`), the schema enforces what SQL can, as in SQLite:
//! triggers refuse `UPDATE`/`DELETE`/`TRUNCATE` on events, approvals and Treasury actions
//! and `DELETE` on every other table, a letter planned again loses its mail piece, serials
//! and article numbers are `UNIQUE`. Values are stored in the same text forms as SQLite
//! (see `rows.rs`), so a record reads back the same from either backend, to the
//! millisecond. One role per file, as in `sqlite/`.
//!
//! The run lock is a session advisory lock ([`RUN_LOCK`]) on this ledger's connection: the
//! server drops it when the connection ends, so a killed run never leaves it behind.

mod approvals;
mod emails;
mod letters;
mod mailroom;
mod rows;
mod runs;
mod schema;
#[cfg(test)]
#[path = "../../../tests/common/pg.rs"]
pub(in crate::ledger) mod server;
#[cfg(test)]
mod tests;
mod treasury;
mod typed;
mod work;
mod writes;

use std::cell::RefCell;

use postgres::{Client, NoTls, Transaction};

use super::{DbError, LedgerError, PgLocation, PgServer};

/// The key of the session advisory lock a run holds ("msve" + 2).
pub const RUN_LOCK: i64 = 0x6D73_7665_0002;

/// A ledger in a PostgreSQL database.
pub struct PgLedger {
    /// The connection; reads take `&self`, and the sync driver needs `&mut` for every
    /// query, hence the cell (the ledger is used from one thread at a time).
    client: RefCell<Client>,
    server: PgServer,
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLedger")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl PgLedger {
    /// Connects to the server and brings the schema up to date (see `schema.rs`: once,
    /// under an advisory lock; a database from a NEWER missive is refused). A server that
    /// is down or refuses gives an error naming it (`host:port/db`) and what was being done.
    pub fn open(location: &PgLocation) -> Result<PgLedger, LedgerError> {
        let server = location.server.clone();
        let mut client =
            location
                .config()
                .connect(NoTls)
                .map_err(|source| LedgerError::Server {
                    server: Box::new(server.clone()),
                    action: "connect to the server",
                    source: source.into(),
                })?;
        schema::migrate(&mut client, &server)?;
        Ok(PgLedger {
            client: RefCell::new(client),
            server,
        })
    }

    /// The server and database.
    pub fn server(&self) -> &PgServer {
        &self.server
    }

    /// Takes the run lock: a session advisory lock held by this connection until it
    /// closes (this ledger is dropped, or the process dies and the server drops the
    /// session). A second holder gets [`LedgerError::ServerLocked`] at once.
    pub fn lock_for_run(&mut self) -> Result<(), LedgerError> {
        let locked: bool = self
            .client
            .get_mut()
            .query_one("SELECT pg_try_advisory_lock($1)", &[&RUN_LOCK])
            .and_then(|row| row.try_get(0))
            .map_err(|source| LedgerError::Server {
                server: Box::new(self.server.clone()),
                action: "take the run lock",
                source: source.into(),
            })?;
        if !locked {
            return Err(LedgerError::ServerLocked {
                server: Box::new(self.server.clone()),
            });
        }
        Ok(())
    }

    /// The connection, for tests that check what the code must not be able to do.
    #[cfg(test)]
    pub(super) fn client(&mut self) -> &mut Client {
        self.client.get_mut()
    }
}

impl PgLedger {
    /// Runs `write` in one transaction; `failed` names what was being done.
    pub(super) fn in_tx<T>(
        &mut self,
        failed: &dyn Fn(DbError) -> LedgerError,
        write: impl FnOnce(&mut Transaction<'_>) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let mut tx = self
            .client
            .get_mut()
            .transaction()
            .map_err(|e| failed(e.into()))?;
        let value = write(&mut tx)?;
        tx.commit().map_err(|e| failed(e.into()))?;
        Ok(value)
    }

    /// Runs `read` on the connection; `what` names what was read, for the error.
    pub(super) fn read<T>(
        &self,
        what: impl Fn() -> String,
        read: impl FnOnce(&mut Client) -> Result<T, DbError>,
    ) -> Result<T, LedgerError> {
        read(&mut self.client.borrow_mut()).map_err(|source| LedgerError::Read {
            what: what(),
            source,
        })
    }
}
