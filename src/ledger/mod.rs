//! The ledger: what was planned, produced and sent, by which run and template version, so
//! that a taxpayer never gets the same letter twice and no due letter is lost when a run
//! dies at any point.
//!
//! The ledger holds:
//!
//! - **runs**: one row per `missive run` (dates, configuration hash, status);
//! - **letters**: one row per [`LetterKey`], forever. A reissue (after a letter came back
//!   undeliverable, was cancelled or failed) keeps its key and moves the same row back to
//!   `planned`;
//! - **events**: every state change of a letter, append-only (in SQLite, triggers refuse
//!   `UPDATE` and `DELETE`). Each change to a letter's state, including its insertion as
//!   `planned`, a re-plan and `rendered`, appends exactly one event in the same transaction as
//!   the change, so the letters table and its history never disagree;
//! - **referrals**: one per intent-to-offset notice, ever; and every **Treasury action**
//!   (referral added, decreased, deleted), append-only;
//! - **approvals**: which exact template versions a legal reviewer approved, by whom, when,
//!   and the texts approved (append-only, like events);
//! - **emails**: the email of a letter that goes by email, or the email copy of an intent
//!   to offset, with its own once-only state (see `crate::dispatch`);
//! - **work**: each planned letter's payload (what a worker needs to render it) and its
//!   claim (worker, lease), so several processes render one run, each letter once;
//! - **mail pieces and batches**: IMb serials and certified article numbers from counters
//!   that only move forward (a range too short allocates nothing), each piece in one batch,
//!   once.
//!
//! Every write is ONE transaction: all of it is recorded or none.
//!
//! # Letter states and the allowed changes
//!
//! ```text
//! planned   → rendered | failed | cancelled
//! rendered  → released | sending | failed | cancelled | returned
//! released  → returned | cancelled
//! sending   → sent | uncertain | failed | rendered (definitely not delivered: back in the queue)
//! uncertain → sending (a deliberate resend) | sent | failed
//! failed    → planned | cancelled
//! sent      → returned
//! returned  → planned (reissue)
//! cancelled → planned (reissue)
//! ```
//!
//! A change to the state a letter is already in is a no-op and records no event. Anything
//! else (`sent → planned`, `rendered → planned`, …) is refused with
//! [`LedgerError::Transition`]. Entering `planned` clears the letter's file and template:
//! a reissue is rendered afresh, and the earlier file stays on record in the `rendered`
//! event's detail.
//!
//! `rendered`, `released`, `sending`, `sent` and `uncertain` count as a notice for decide
//! ([`LetterState::counts_as_sent`]): such a letter is `already_sent` and never produced
//! again. `returned` is a notice too, but an undeliverable one, which covers nothing.
//!
//! # Roles and backends
//!
//! The storage sits behind one small trait per role ([`RunLog`], [`LetterStore`],
//! [`Outbox`], [`BatchLog`], [`ApprovalLog`], [`TreasuryLog`], [`WorkQueue`]); [`Ledger`] is
//! all of them.
//! Code that needs one role takes that role. The ledger owns its types and imports no
//! stage: the orchestrator converts the stages' values (`runner/records.rs`).
//!
//! Two backends implement every role with the same invariants, decided by the shared rules
//! (`state.rs`, `rules.rs`) and checked by one contract suite run against each
//! (`contract/`): [`SqliteLedger`], one file beside the output (the default),
//! [`PgLedger`], a database on a PostgreSQL server several machines share, and
//! [`MemoryLedger`], for unit-testing a run without files. Commands open the one their
//! [`Location`] names with [`open`] / [`open_locked`]. Timestamps are
//! `chrono::DateTime<Utc>` in the records and RFC 3339 text with milliseconds wherever they
//! are stored, printed or serialized ([`stamp`]).

#[cfg(test)]
mod contract;
mod emails;
mod error;
mod location;
mod lock;
mod mailroom;
mod memory;
mod open;
mod postgres;
mod roles;
mod rules;
mod sqlite;
pub mod stamp;
mod state;
mod treasury;
mod work;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::letter::{Channel, LetterKey, LetterKind, MailClass, Variant};
use crate::money::Money;

pub use self::postgres::PgLedger;
pub use emails::{EmailRecord, NewEmail, QueuedEmail, SendRecord};
pub use error::{DbError, LedgerError, lock_path};
pub use location::{Location, LocationError, PgLocation, PgServer};
pub use lock::RunLock;
pub use mailroom::{
    BatchRecord, MailPiece, MakePiece, NewBatch, PieceCodes, PieceRanges, PieceRequest,
};
pub use memory::MemoryLedger;
pub use open::{AnyLedger, RunGuard, open, open_locked};
pub use roles::{
    ApprovalLog, BatchLog, Ledger, LetterStore, Outbox, RunLog, TreasuryLog, WorkQueue,
};
pub use sqlite::SqliteLedger;
pub use state::{
    BatchState, EmailRole, EmailState, LetterState, RunStatus, allowed_moves, notice_of,
};
pub use treasury::{NewReferral, TreasuryAction, TreasuryRecord};
pub use work::{ClaimedLetter, LetterPayload, WorkLeft, payload_sha256};

/// The ledger's traits, for `use crate::ledger::prelude::*` where ledger methods are called:
/// a role's methods are callable only with its trait in scope.
pub mod prelude {
    pub use super::roles::{
        ApprovalLog, BatchLog, Ledger, LetterStore, Outbox, RunLog, TreasuryLog, WorkQueue,
    };
}

/// What a run records about itself when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// The as-of date of the decision.
    pub as_of: NaiveDate,
    /// The mail date (letter date; deadlines count from it).
    pub mail_date: NaiveDate,
    /// SHA-256 of the configuration in effect.
    pub config_sha256: String,
    /// The accounts path as given.
    pub accounts: String,
    /// The output directory as given.
    pub out_dir: String,
}

impl NewRun {
    /// The run as recorded when it starts: `running`, with this id and start time.
    pub fn started(&self, id: i64, started_at: DateTime<Utc>) -> RunInfo {
        RunInfo {
            id,
            started_at,
            finished_at: None,
            as_of: self.as_of,
            mail_date: self.mail_date,
            config_sha256: self.config_sha256.clone(),
            accounts: self.accounts.clone(),
            out_dir: self.out_dir.clone(),
            status: RunStatus::Running,
            failure: None,
        }
    }
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunInfo {
    /// The run id (1, 2, …).
    pub id: i64,
    /// When it started (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize")]
    pub started_at: DateTime<Utc>,
    /// When it finished, failed or was found interrupted (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The as-of date.
    pub as_of: NaiveDate,
    /// The mail date.
    pub mail_date: NaiveDate,
    /// SHA-256 of the configuration.
    pub config_sha256: String,
    /// The accounts path.
    pub accounts: String,
    /// The output directory.
    pub out_dir: String,
    /// Where it stands.
    pub status: RunStatus,
    /// Why it failed (status `failed`), as recorded when it stopped.
    pub failure: Option<String>,
}

/// What the ledger needs of a planned letter (the orchestrator builds it from the plan's
/// due letter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLetter {
    /// The letter's key.
    pub key: LetterKey,
    /// The account.
    pub account_id: String,
    /// The kind.
    pub kind: LetterKind,
    /// The variant (`None` for intent to offset).
    pub variant: Option<Variant>,
    /// Print or email.
    pub channel: Channel,
    /// Postal class for print.
    pub mail_class: Option<MailClass>,
    /// The letter date (the mail date).
    pub letter_date: NaiveDate,
    /// The response deadline (intent to offset).
    pub deadline: Option<NaiveDate>,
    /// The liabilities it is about, sorted.
    pub liability_ids: Vec<String>,
    /// The key's SUBJECT part.
    pub subject: String,
    /// Hash of the plan entry, so a changed letter under the same key is visible.
    pub data_sha256: String,
}

/// The file a letter was rendered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// The letter's key.
    pub key: LetterKey,
    /// File name inside the output directory.
    pub file: String,
    /// SHA-256 of the file.
    pub file_sha256: String,
    /// Number of pages.
    pub pages: u32,
    /// Template that composed it.
    pub template: String,
    /// Content hash of that template.
    pub template_sha256: String,
    /// The mail piece whose IMb and article number the file carries (a run's print
    /// letters), none for a file without them: a batch prints a marked file as it is.
    pub marks: Option<i64>,
    /// The plan hash of the letter data the file was composed from. Recording refuses a
    /// file whose data is not the letter's as planned now ([`LedgerError::StaleData`]): a
    /// worker that rendered an earlier plan of a letter never records it.
    pub data_sha256: String,
    /// The hash of the payload the file was made from (a claimed letter), none for a file
    /// made without one: recording refuses a file of any other payload than the letter's
    /// current one ([`LedgerError::StaleData`]).
    pub payload_sha256: Option<String>,
}

/// A letter as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LetterRecord {
    /// The letter's key.
    pub key: LetterKey,
    /// The last run that touched it.
    pub run_id: i64,
    /// The account.
    pub account_id: String,
    /// The kind.
    pub kind: LetterKind,
    /// The variant.
    pub variant: Option<Variant>,
    /// Print or email.
    pub channel: Channel,
    /// Postal class for print.
    pub mail_class: Option<MailClass>,
    /// The letter date.
    pub letter_date: NaiveDate,
    /// The response deadline.
    pub deadline: Option<NaiveDate>,
    /// The liabilities it is about.
    pub liability_ids: Vec<String>,
    /// The key's SUBJECT part.
    pub subject: String,
    /// Hash of the plan entry it was last planned from.
    pub data_sha256: String,
    /// Template that composed the current file.
    pub template: Option<String>,
    /// Content hash of that template.
    pub template_sha256: Option<String>,
    /// The current file (inside the run's output directory).
    pub file: Option<String>,
    /// SHA-256 of the file.
    pub file_sha256: Option<String>,
    /// Pages of the file.
    pub pages: Option<u32>,
    /// Where it stands.
    pub state: LetterState,
    /// When the row was first recorded (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize")]
    pub created_at: DateTime<Utc>,
    /// When it last changed (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// One state change of a letter (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Event id, increasing in the order of the changes.
    pub id: i64,
    /// The letter.
    pub key: LetterKey,
    /// The run that made the change, if any (`mark` has none).
    pub run_id: Option<i64>,
    /// The state before (`None` when the letter was first recorded).
    pub from_state: Option<LetterState>,
    /// The state after.
    pub to_state: LetterState,
    /// When (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize")]
    pub at: DateTime<Utc>,
    /// A note: why, by whom, and for `rendered` the file and template hashes.
    pub detail: String,
}

/// A referral as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralRecord {
    /// The intent to offset whose deadline passed.
    pub notice_key: LetterKey,
    /// The account.
    pub account_id: String,
    /// The liabilities referred.
    pub liability_ids: Vec<String>,
    /// Their amount.
    pub amount: Money,
    /// The notice's deadline.
    pub deadline_passed: NaiveDate,
    /// The run that referred them.
    pub run_id: i64,
    /// When (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize")]
    pub at: DateTime<Utc>,
}

/// An approval to record: a reviewer approves one exact template version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    /// Template name (`letters/intent_to_offset.typ.tera`).
    pub template: String,
    /// Its content hash (template + partials + layout), as the composer computes it.
    pub template_sha256: String,
    /// Who approved (non-blank, at most 200 characters, no control characters).
    pub reviewer: String,
    /// The reviewer's note (may be empty).
    pub note: String,
    /// The texts the hash covers, file name → text, so a later version can be diffed.
    pub sources: std::collections::BTreeMap<String, String>,
}

/// An approval as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Approval id, increasing.
    pub id: i64,
    /// Template name.
    pub template: String,
    /// The approved content hash.
    pub template_sha256: String,
    /// Who approved.
    pub reviewer: String,
    /// When (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize")]
    pub at: DateTime<Utc>,
    /// The reviewer's note.
    pub note: String,
    /// The texts approved, file name → text.
    #[serde(skip)]
    pub sources: std::collections::BTreeMap<String, String>,
}
