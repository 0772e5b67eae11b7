//! Opening the ledger a command names, whichever backend it is on.

use super::{Ledger, LedgerError, Location, PgLedger, RunLock, SqliteLedger};

/// A ledger opened by a command: any backend, used through its roles.
pub type AnyLedger = Box<dyn Ledger + Send>;

/// The run lock a command holds while it writes: the OS file lock beside a SQLite file,
/// or the PostgreSQL session advisory lock, which lives on the ledger's own connection
/// (released when that ledger is dropped or the process dies).
#[derive(Debug)]
pub enum RunGuard {
    /// The lock file of a SQLite ledger.
    File(RunLock),
    /// The session advisory lock of a PostgreSQL ledger.
    Session,
}

/// Opens (creating or migrating as needed) the ledger at `location`.
pub fn open(location: &Location) -> Result<AnyLedger, LedgerError> {
    Ok(match location {
        Location::File(path) => Box::new(SqliteLedger::open(path)?),
        Location::Postgres(pg) => Box::new(PgLedger::open(pg)?),
    })
}

/// Opens the ledger at `location` and takes its run lock, or fails at once when another
/// process holds it ("another missive run is using …").
pub fn open_locked(location: &Location) -> Result<(AnyLedger, RunGuard), LedgerError> {
    Ok(match location {
        Location::File(path) => {
            let ledger = SqliteLedger::open(path)?;
            let lock = ledger.lock_for_run()?;
            (Box::new(ledger), RunGuard::File(lock))
        }
        Location::Postgres(pg) => {
            let mut ledger = PgLedger::open(pg)?;
            ledger.lock_for_run()?;
            (Box::new(ledger), RunGuard::Session)
        }
    })
}
