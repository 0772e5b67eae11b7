//! The ledger: what was planned, produced and sent, by which run and template version, so
//! that a taxpayer never gets the same letter twice and no due letter is lost when a run
//! dies at any point.
//!
//! The ledger holds five things:
//!
//! - **runs**: one row per `missive run` (dates, configuration hash, status);
//! - **letters**: one row per [`LetterKey`], forever. A reissue (after a letter came back
//!   undeliverable, was cancelled or failed) keeps its key and moves the same row back to
//!   `planned`;
//! - **events**: every state change of a letter, append-only (SQLite triggers refuse
//!   `UPDATE` and `DELETE`). Each change to a letter's state, including its insertion as
//!   `planned`, a re-plan and `rendered`, appends exactly one event in the same transaction as
//!   the change, so the letters table and its history never disagree;
//! - **referrals**: one per intent-to-offset notice, ever;
//! - **approvals**: which exact template versions a legal reviewer approved, by whom, when,
//!   and the texts approved (append-only, like events).
//! - **emails**: the email of a letter that goes by email, or the email copy of an intent
//!   to offset, with its own once-only state (see `crate::dispatch`).
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
//! The storage sits behind the [`Ledger`] trait; [`SqliteLedger`] is the one backend today.

mod approvals;
mod emails;
mod error;
mod lock;
mod mailroom;
mod rows;
mod schema;
mod sqlite;
mod state;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_mailroom;
#[cfg(test)]
mod tests_state;
mod treasury;
mod writes;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::account::Notice;
use crate::config::hex;
use crate::decide::{DueLetter, Referral};
use crate::letter::{Channel, LetterKey, LetterKind, MailClass, Variant};
use crate::money::Money;
use crate::produce::WrittenLetter;

pub use emails::{EmailRecord, EmailRole, NewEmail, QueuedEmail, SendRecord};
pub use error::{LedgerError, lock_path};
pub use lock::RunLock;
pub use mailroom::{
    BatchRecord, MailPiece, MakePiece, NewBatch, PieceCodes, PieceRanges, PieceRequest,
};
pub use sqlite::SqliteLedger;
pub use state::{LetterState, RunStatus, allowed_moves, notice_of};
pub use treasury::{TreasuryAction, TreasuryRecord};

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

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunInfo {
    /// The run id (1, 2, …).
    pub id: i64,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When it finished, failed or was found interrupted (RFC 3339, UTC).
    pub finished_at: Option<String>,
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
}

/// What the ledger needs of a planned letter (built by the caller from a [`DueLetter`], for
/// instance with [`PlannedLetter::from_due`]).
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

impl PlannedLetter {
    /// The ledger's view of a due letter; `data_sha256` is the SHA-256 of the letter's plan
    /// JSON (what `plan --format json` prints for it).
    pub fn from_due(due: &DueLetter) -> PlannedLetter {
        // Serializing a DueLetter cannot fail (plain data, string keys); an empty hash input
        // would still give a stable value if it ever did.
        let json = serde_json::to_vec(due).unwrap_or_default();
        let prefix = format!("{}/{}/", due.account_id, due.kind.as_str());
        let subject = due
            .key
            .as_str()
            .strip_prefix(&prefix)
            .unwrap_or(due.key.as_str());
        PlannedLetter {
            key: due.key.clone(),
            account_id: due.account_id.clone(),
            kind: due.kind,
            variant: due.variant,
            channel: due.channel,
            mail_class: due.mail_class,
            letter_date: due.letter_date,
            deadline: due.deadline,
            liability_ids: due.liability_ids.clone(),
            subject: subject.to_owned(),
            data_sha256: hex(&Sha256::digest(&json)),
        }
    }
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
}

impl From<&WrittenLetter> for RenderedFile {
    fn from(written: &WrittenLetter) -> RenderedFile {
        RenderedFile {
            key: written.key.clone(),
            file: written.file.clone(),
            file_sha256: written.sha256.clone(),
            pages: u32::try_from(written.pages).unwrap_or(u32::MAX),
            template: written.template.clone(),
            template_sha256: written.template_sha256.clone(),
        }
    }
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
    /// When the row was first recorded (RFC 3339, UTC).
    pub created_at: String,
    /// When it last changed (RFC 3339, UTC).
    pub updated_at: String,
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
    /// When (RFC 3339, UTC).
    pub at: String,
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
    /// When (RFC 3339, UTC).
    pub at: String,
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
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The reviewer's note.
    pub note: String,
    /// The texts approved, file name → text.
    #[serde(skip)]
    pub sources: std::collections::BTreeMap<String, String>,
}

/// Storage of runs, letters, their state changes and referrals. A trait so a PostgreSQL
/// backend (several machines sharing one ledger) can follow without touching the stages.
pub trait Ledger {
    /// Starts a run; any run still `running` (its process died: the caller holds the run
    /// lock) becomes `interrupted`.
    fn begin_run(&mut self, run: &NewRun) -> Result<RunInfo, LedgerError>;

    /// Takes up an earlier run again (`run --resume ID`): it becomes `running` (finished_at
    /// cleared) and any other `running` run becomes `interrupted`.
    fn resume_run(&mut self, run_id: i64) -> Result<RunInfo, LedgerError>;

    /// Records how a run ended (`finished`, `failed`, …) and when.
    fn finish_run(&mut self, run_id: i64, status: RunStatus) -> Result<(), LedgerError>;

    /// The run with this id, if any.
    fn run(&self, run_id: i64) -> Result<Option<RunInfo>, LedgerError>;

    /// Every run, oldest first.
    fn runs(&self) -> Result<Vec<RunInfo>, LedgerError>;

    /// Records letters as `planned` for this run in ONE transaction. A key not yet known is
    /// inserted; a key in planned/failed/returned/cancelled is moved to `planned` under this
    /// run (a reissue keeps its key); a key that counts_as_sent is left alone and NOT
    /// returned. Returns the keys now planned in this run. Planning a key again in the same
    /// run with the same data changes nothing (no event).
    fn record_planned(
        &mut self,
        run_id: i64,
        letters: &[PlannedLetter],
    ) -> Result<Vec<LetterKey>, LedgerError>;

    /// Marks letters `rendered` with their files, in ONE transaction (call once per
    /// chunk). Only from `planned`; recording the same file again for an already rendered
    /// letter is a no-op, anything else fails the whole chunk naming the key.
    fn record_rendered(&mut self, run_id: i64, files: &[RenderedFile]) -> Result<(), LedgerError>;

    /// Any allowed state change, with a note; refuses impossible transitions (e.g. sent →
    /// planned) with a clear error. The same state is a no-op without an event.
    fn set_state(
        &mut self,
        key: &LetterKey,
        to: LetterState,
        run_id: Option<i64>,
        detail: &str,
    ) -> Result<LetterRecord, LedgerError>;

    /// The letter with this key, if recorded.
    fn letter(&self, key: &LetterKey) -> Result<Option<LetterRecord>, LedgerError>;

    /// Every letter of an account, ordered by key.
    fn letters_of_account(&self, account_id: &str) -> Result<Vec<LetterRecord>, LedgerError>;

    /// Letters of a run, optionally only in one state, ordered by key.
    fn letters_of_run(
        &self,
        run_id: i64,
        state: Option<LetterState>,
    ) -> Result<Vec<LetterRecord>, LedgerError>;

    /// The state changes of a letter, oldest first.
    fn events_of(&self, key: &LetterKey) -> Result<Vec<Event>, LedgerError>;

    /// Every letter that counts as sent (or was returned), as the `Notice`s decide takes,
    /// by account id (see [`notice_of`]). Cancelled/failed/planned letters are not notices.
    fn prior_notices(&self) -> Result<std::collections::HashMap<String, Vec<Notice>>, LedgerError>;

    /// Records referrals made by a run; returns only those whose notice_key was not
    /// referred before (one referral per notice, ever).
    fn record_referrals(
        &mut self,
        run_id: i64,
        referrals: &[Referral],
    ) -> Result<Vec<Referral>, LedgerError>;

    /// Records a run's Treasury actions (referrals added, decreased, deleted) in one
    /// transaction; `deadlines` gives each added referral's passed deadline. An action the
    /// run already recorded is skipped. Returns how many were new.
    fn record_treasury(
        &mut self,
        run_id: i64,
        actions: &[TreasuryAction],
        deadlines: &std::collections::HashMap<LetterKey, NaiveDate>,
    ) -> Result<usize, LedgerError>;

    /// Recorded Treasury actions, oldest first: of one run, of one account, or all.
    fn treasury_actions(
        &self,
        run_id: Option<i64>,
        account_id: Option<&str>,
    ) -> Result<Vec<TreasuryRecord>, LedgerError>;

    /// The runs that sent at least one Treasury action, oldest first.
    fn treasury_runs(&self) -> Result<Vec<i64>, LedgerError>;

    /// What TOP holds per referral, by account (the latest action's amount; zero after a
    /// delete), as `decide` takes it.
    fn top_holdings(
        &self,
    ) -> Result<std::collections::HashMap<String, Vec<crate::account::TopReferral>>, LedgerError>;

    /// Every first referral of a notice, ordered by run and notice key (the Treasury actions
    /// hold every referral and update).
    fn referrals(&self) -> Result<Vec<ReferralRecord>, LedgerError>;

    /// Every referral of an account, ordered by notice key.
    fn referrals_of_account(&self, account_id: &str) -> Result<Vec<ReferralRecord>, LedgerError>;

    /// Records that a reviewer approved one exact template version (append-only; approving
    /// the same version again adds a second approval). Refuses a blank reviewer.
    fn record_approval(&mut self, approval: &NewApproval) -> Result<Approval, LedgerError>;

    /// Every approval, oldest first; only those of `template` when given.
    fn approvals(&self, template: Option<&str>) -> Result<Vec<Approval>, LedgerError>;

    /// The latest approval of exactly this template version, if any: a run may use the
    /// version only when there is one.
    fn approval_of(
        &self,
        template: &str,
        template_sha256: &str,
    ) -> Result<Option<Approval>, LedgerError>;
    /// Records the emails composed for letters `planned` in this run, in ONE transaction:
    /// inserts or replaces each (back to `pending`), except one being sent or of uncertain
    /// outcome; a pending email of a planned letter with no email now is cancelled.
    fn record_emails(
        &mut self,
        run_id: i64,
        planned: &[LetterKey],
        emails: &[NewEmail],
    ) -> Result<(), LedgerError>;

    /// Emails ready to send (see the `email` module), optionally of one run, with
    /// uncertain ones when `resend_uncertain`.
    fn email_queue(
        &self,
        run_id: Option<i64>,
        resend_uncertain: bool,
    ) -> Result<Vec<QueuedEmail>, LedgerError>;

    /// Marks emails (key, Message-ID) `sending` in ONE committed transaction, BEFORE their
    /// SMTP transactions start; a letter email's letter moves to `sending` too.
    fn begin_sending(
        &mut self,
        run_id: Option<i64>,
        sends: &[(LetterKey, String)],
    ) -> Result<(), LedgerError>;

    /// Records how SMTP attempts ended, in ONE transaction: `sent` with the server's reply,
    /// `failed`, `uncertain`, or back in the queue (letter `rendered`).
    fn record_sends(
        &mut self,
        run_id: Option<i64>,
        outcomes: &[(LetterKey, SendRecord)],
    ) -> Result<(), LedgerError>;

    /// Emails left `sending` by a process that died become `uncertain` (never resent
    /// automatically). Returns their keys.
    fn recover_interrupted_sends(&mut self) -> Result<Vec<LetterKey>, LedgerError>;

    /// Letters whose email was refused with `--fallback-print`: runs plan them as print.
    fn print_fallbacks(&self) -> Result<Vec<LetterKey>, LedgerError>;

    /// The email recorded for a letter, if any.
    fn email(&self, key: &LetterKey) -> Result<Option<EmailRecord>, LedgerError>;
    /// Gives each requested letter a mail piece, in ONE transaction: a letter whose
    /// current copy already has a piece not yet in a batch keeps it (a crash before its
    /// batch was recorded); the others get the next IMb serial and, if certified, the next
    /// article serial, and `make` turns those numbers into the piece's codes. Counters
    /// only move forward. If a range has too few numbers left for all of them, fails with
    /// [`LedgerError::RangeExhausted`] and allocates nothing. Returns the pieces in request
    /// order.
    fn allocate_pieces(
        &mut self,
        run_id: i64,
        requests: &[PieceRequest],
        ranges: PieceRanges,
        make: &MakePiece<'_>,
    ) -> Result<Vec<MailPiece>, LedgerError>;

    /// Records a batch whose file is complete, and its pieces' places in it, in ONE
    /// transaction; fails if any piece is already in a batch.
    fn record_batch(&mut self, batch: &NewBatch) -> Result<BatchRecord, LedgerError>;

    /// Every batch of a run, by mail class and number.
    fn batches_of_run(&self, run_id: i64) -> Result<Vec<BatchRecord>, LedgerError>;

    /// The batch with this name (`7-certified-1`), if any.
    fn batch(&self, name: &str) -> Result<Option<BatchRecord>, LedgerError>;

    /// The pieces of a batch, in print order.
    fn pieces_of_batch(&self, batch_id: i64) -> Result<Vec<MailPiece>, LedgerError>;

    /// Rendered print letters whose current copy is in no batch yet, with the run that
    /// rendered them, by key.
    fn unbatched_letters(&self) -> Result<Vec<(LetterKey, i64)>, LedgerError>;

    /// The operator's release of a printed batch: the batch and each of its letters become
    /// `released` (with an event each), in ONE transaction. Releasing again is a no-op; a
    /// letter that can no longer be released (cancelled, returned) refuses the whole batch.
    fn release_batch(&mut self, name: &str, detail: &str) -> Result<BatchRecord, LedgerError>;
}
