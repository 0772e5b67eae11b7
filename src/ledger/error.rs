//! The ledger's error type, and [`DbError`], the reason a database gave, whichever backend.
//!
//! Messages name the ledger (its file, or for PostgreSQL its server as `host:port/db`,
//! never the password), the run or letter key and the operation; the database's own words
//! follow as the error's source.

use std::path::{Path, PathBuf};

use crate::letter::LetterKey;

use super::{EmailState, LetterState, PgServer};

/// An error of the ledger. Each names the ledger file, run or letter key and the operation.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The PostgreSQL server could not be reached, refused the connection, or failed while
    /// the ledger was being set up (connected, migrated).
    #[error("Failed to open the ledger on `{server}`: could not {action}")]
    Server {
        /// The server (`host:port/db`).
        server: Box<PgServer>,
        /// What was being done.
        action: &'static str,
        /// The server's (or the network's) reason.
        #[source]
        source: DbError,
    },
    /// The PostgreSQL ledger was written by a newer missive.
    #[error(
        "The ledger on `{server}` has schema version {found}, newer than this missive understands ({supported}); use a newer missive"
    )]
    ServerNewerSchema {
        /// The server (`host:port/db`).
        server: Box<PgServer>,
        /// The database's schema version.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// Another process holds the run lock of a PostgreSQL ledger.
    #[error("another missive run is using `{server}` (PostgreSQL advisory lock)")]
    ServerLocked {
        /// The server (`host:port/db`).
        server: Box<PgServer>,
    },
    /// The ledger's directory does not exist (or is not a directory).
    #[error("Failed to open the ledger `{}`: directory `{}` does not exist", path.display(), dir.display())]
    NoDirectory {
        /// The ledger file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// SQLite could not open, create or set up the file (permissions, disk, …).
    #[error("Failed to open the ledger `{}`: could not {action}", path.display())]
    Open {
        /// The ledger file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The database's reason.
        #[source]
        source: DbError,
    },
    /// The file (or its directory) may not be written.
    #[error("Failed to open the ledger `{}`: it is read-only (check the file's and its directory's permissions)", path.display())]
    ReadOnly {
        /// The ledger file.
        path: PathBuf,
    },
    /// The file exists but is not a SQLite database, or it is corrupt.
    #[error("`{}` is not a missive ledger: {reason}", path.display())]
    NotALedger {
        /// The file.
        path: PathBuf,
        /// Why (not SQLite, corrupt, another application's database).
        reason: String,
    },
    /// The ledger was written by a newer missive.
    #[error(
        "The ledger `{}` has schema version {found}, newer than this missive understands ({supported}); use a newer missive",
        path.display()
    )]
    NewerSchema {
        /// The ledger file.
        path: PathBuf,
        /// The file's `user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// Another process holds the run lock.
    #[error("another missive run is using `{}` (lock `{}`)", path.display(), lock_path(path).display())]
    Locked {
        /// The ledger file.
        path: PathBuf,
    },
    /// The lock file could not be created or locked.
    #[error("Failed to lock the ledger with `{}`", path.display())]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A database operation on a run failed.
    #[error("Failed to {action}")]
    Run {
        /// What was being done ("start a run", "finish run 4 as failed", "read run 4").
        action: String,
        /// The database's reason.
        #[source]
        source: DbError,
    },
    /// The run id is not in the ledger.
    #[error("run {run_id} is not in the ledger")]
    UnknownRun {
        /// The id asked for.
        run_id: i64,
    },
    /// Recording a letter's state failed.
    #[error("Failed to record `{key}` as {state}")]
    Record {
        /// The letter.
        key: LetterKey,
        /// The state being recorded.
        state: LetterState,
        /// The database's reason.
        #[source]
        source: DbError,
    },
    /// Reading letters, events or referrals failed.
    #[error("Failed to read {what} from the ledger")]
    Read {
        /// What ("letter `K`", "letters of account `A`", "events of `K`", …).
        what: String,
        /// The database's reason (a stored value that does not decode is reported here too).
        #[source]
        source: DbError,
    },
    /// The letter key is not in the ledger.
    #[error("`{key}` is not in the ledger")]
    UnknownLetter {
        /// The key.
        key: LetterKey,
    },
    /// `mark KEY sent|failed` on an email whose outcome is known.
    #[error(
        "the email of `{key}` is {state}, not uncertain: only an email whose outcome is unknown can be marked sent or failed by hand"
    )]
    EmailNotUncertain {
        /// The letter.
        key: LetterKey,
        /// The email's state.
        state: EmailState,
    },
    /// The change is not one of the allowed transitions.
    #[error("Cannot move `{key}` from {from} to {to}: a {from} letter can only become {allowed}")]
    Transition {
        /// The letter.
        key: LetterKey,
        /// Its state.
        from: LetterState,
        /// The state asked for.
        to: LetterState,
        /// The states it may move to, for the message.
        allowed: String,
    },
    /// `record_rendered` for a letter that is not planned (or rendered with the same file).
    #[error("Failed to record `{key}` as rendered: it is {state}, not planned")]
    NotPlanned {
        /// The letter.
        key: LetterKey,
        /// Its state.
        state: LetterState,
    },
    /// `record_rendered` of a file composed from other data than the letter is planned
    /// with now (it was planned again with new figures meanwhile).
    #[error(
        "Failed to record `{key}` as rendered: its file was made from {rendered}, but the letter is now planned with {planned} (its data or payload changed); it will be rendered again from the new plan"
    )]
    StaleData {
        /// The letter.
        key: LetterKey,
        /// The data hash the file was composed from.
        rendered: String,
        /// The data hash the letter is planned with.
        planned: String,
    },
    /// `record_rendered` by a run the letter is not planned in (a worker of an interrupted
    /// run whose letter a later run planned again).
    #[error(
        "Failed to record `{key}` as rendered by run {run_id}: it is planned in run {planned_in}, which renders it"
    )]
    NotThisRun {
        /// The letter.
        key: LetterKey,
        /// The run recording it.
        run_id: i64,
        /// The run it is planned in.
        planned_in: i64,
    },
    /// A stored letter does not make a notice (e.g. a refund without a refund variant).
    #[error("`{key}` in the ledger is not a valid notice: {reason}")]
    BadNotice {
        /// The letter.
        key: LetterKey,
        /// What is wrong.
        reason: String,
    },
    /// An approval was refused before anything was written.
    #[error("Cannot approve `{template}`: {reason}")]
    BadApproval {
        /// The template.
        template: String,
        /// Why (blank reviewer, …).
        reason: String,
    },
    /// Recording or reading an approval failed.
    #[error("Failed to {action} the approval of `{template}`")]
    Approval {
        /// "record" or "read".
        action: &'static str,
        /// The template.
        template: String,
        /// The database's reason.
        #[source]
        source: DbError,
    },
    /// Recording referrals failed.
    #[error("Failed to record the referral for `{key}`")]
    Referral {
        /// The notice key of the referral.
        key: LetterKey,
        /// The database's reason.
        #[source]
        source: DbError,
    },
    /// An IMb serial or certified article range has too few numbers left.
    #[error(
        "the {what} range is exhausted: {needed} needed, {left} left (last {last}); extend `mail.{key}` in the configuration\n\nnothing was batched"
    )]
    RangeExhausted {
        /// What ran out ("IMb serial", "certified article number").
        what: &'static str,
        /// The configuration key to extend.
        key: &'static str,
        /// Numbers this run needs.
        needed: u64,
        /// Numbers left in the range.
        left: u64,
        /// The range's last number.
        last: u64,
    },
    /// A mail piece's codes could not be made (bad configuration or address).
    #[error("Failed to make the mail piece of `{key}`: {message}")]
    PieceCodes {
        /// The letter.
        key: LetterKey,
        /// Why.
        message: String,
    },
    /// A batch operation failed in the database.
    #[error("Failed to {action}")]
    Batch {
        /// What was being done.
        action: String,
        /// The database's reason.
        #[source]
        source: DbError,
    },
    /// A write that would break an invariant the store keeps (a batch name already
    /// recorded, a piece already in a batch, an email of a letter not in the ledger).
    #[error("Failed to {action}: {reason}")]
    Refused {
        /// What was being done.
        action: String,
        /// Which invariant it would break.
        reason: String,
    },
    /// No batch by that name.
    #[error("no batch `{name}` in the ledger (batch names look like `7-certified-1`)")]
    UnknownBatch {
        /// The name asked for.
        name: String,
    },
}

/// The run lock file of the ledger at `path`: `<path>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// What a database said when an operation failed: SQLite's error, PostgreSQL's, or a
/// stored value that does not decode. Displayed as the database's own words, so a
/// message reads the same whichever backend the ledger is on.
#[derive(Debug)]
pub enum DbError {
    /// SQLite's error, displayed exactly as SQLite words it.
    Sqlite(rusqlite::Error),
    /// PostgreSQL's error (the server's message, or why the connection failed).
    Postgres(postgres::Error),
    /// A value stored in PostgreSQL that does not decode (column and why).
    Stored(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Sqlite(err) => err.fmt(f),
            DbError::Postgres(err) => match err.as_db_error() {
                Some(db) => write!(f, "PostgreSQL said: {}: {}", db.severity(), db.message()),
                None if err.is_closed() => f.write_str("the connection to the server is closed"),
                // The driver's own words, with its cause (I/O, TLS, …) inline.
                None => err.fmt(f),
            },
            DbError::Stored(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // As transparent as before: the chain continues with SQLite's own source.
            DbError::Sqlite(err) => err.source(),
            // The driver's Display already includes its cause.
            DbError::Postgres(_) | DbError::Stored(_) => None,
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(err: rusqlite::Error) -> DbError {
        DbError::Sqlite(err)
    }
}

impl From<postgres::Error> for DbError {
    fn from(err: postgres::Error) -> DbError {
        DbError::Postgres(err)
    }
}
