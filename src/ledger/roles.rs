//! The ledger's roles: one small trait per kind of record, and [`Ledger`], all of them.
//!
//! Code that needs one role takes that role (`&dyn ApprovalLog` to read approvals); code
//! that drives a whole run takes `&mut dyn Ledger`. Every backend implements each role with
//! the same invariants (see the module docs of [`crate::ledger`]); the contract tests in
//! `ledger/contract` run against each backend.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use super::{
    Approval, BatchRecord, EmailRecord, Event, LedgerError, LetterRecord, LetterState, MailPiece,
    MakePiece, NewApproval, NewBatch, NewEmail, NewReferral, NewRun, PieceRanges, PieceRequest,
    PlannedLetter, QueuedEmail, ReferralRecord, RenderedFile, RunInfo, RunStatus, SendRecord,
    TreasuryAction, TreasuryRecord,
};
use super::{ClaimedLetter, LetterPayload, WorkLeft};
use crate::account::{Notice, TopReferral};
use crate::letter::LetterKey;

/// The runs: one row per `missive run`, with its dates, configuration hash and status.
/// Only the orchestrator writes here.
pub trait RunLog {
    /// Starts a run; any run still `running` (its process died: the caller holds the run
    /// lock) becomes `interrupted`.
    fn begin_run(&mut self, run: &NewRun) -> Result<RunInfo, LedgerError>;

    /// Takes up an earlier run again (`run --resume ID`): it becomes `running` (finished_at
    /// cleared) and any other `running` run becomes `interrupted`.
    fn resume_run(&mut self, run_id: i64) -> Result<RunInfo, LedgerError>;

    /// Records how a run ended (`finished`, `failed`, …) and when.
    fn finish_run(&mut self, run_id: i64, status: RunStatus) -> Result<(), LedgerError>;

    /// Records that a run stopped on an error (`failed`, with the reason), so `history
    /// --runs` shows it. A failed run may be resumed or a new run started.
    fn fail_run(&mut self, run_id: i64, reason: &str) -> Result<(), LedgerError>;

    /// The run with this id, if any.
    fn run(&self, run_id: i64) -> Result<Option<RunInfo>, LedgerError>;

    /// Every run, oldest first.
    fn runs(&self) -> Result<Vec<RunInfo>, LedgerError>;
}

/// The letters (one per key, forever) and their append-only state changes; what decide
/// sees as already sent.
pub trait LetterStore {
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

    /// The recorded letters among `keys`, by key (a key not recorded is absent): what a
    /// step that looks at many letters reads once, where a server is a round trip away.
    /// By default one [`LetterStore::letter`] each (in-process backends).
    fn letters(&self, keys: &[LetterKey]) -> Result<HashMap<LetterKey, LetterRecord>, LedgerError> {
        let mut found = HashMap::with_capacity(keys.len());
        for key in keys {
            if let Some(record) = self.letter(key)? {
                found.insert(key.clone(), record);
            }
        }
        Ok(found)
    }

    /// Every letter of an account, ordered by key.
    fn letters_of_account(&self, account_id: &str) -> Result<Vec<LetterRecord>, LedgerError>;

    /// Letters of a run, optionally only in one state, ordered by key.
    fn letters_of_run(
        &self,
        run_id: i64,
        state: Option<LetterState>,
    ) -> Result<Vec<LetterRecord>, LedgerError>;

    /// A page of [`Self::letters_of_run`]: at most `limit` of them with keys after `after`
    /// (none: from the first), ordered by key. A run's summary is written a page at a
    /// time, so it never holds every letter of a large run.
    fn letters_of_run_after(
        &self,
        run_id: i64,
        state: Option<LetterState>,
        after: Option<&LetterKey>,
        limit: usize,
    ) -> Result<Vec<LetterRecord>, LedgerError>;

    /// The state changes of a letter, oldest first.
    fn events_of(&self, key: &LetterKey) -> Result<Vec<Event>, LedgerError>;

    /// Every letter that counts as sent (or was returned), as the `Notice`s decide takes,
    /// by account id (see [`notice_of`](super::notice_of)). Cancelled/failed/planned letters are not notices.
    fn prior_notices(&self) -> Result<HashMap<String, Vec<Notice>>, LedgerError>;
}

/// What was referred to, and sent to, the Treasury Offset Program: one referral per
/// notice ever, Treasury actions append-only.
pub trait TreasuryLog {
    /// Records referrals made by a run; returns only those whose notice_key was not
    /// referred before (one referral per notice, ever).
    fn record_referrals(
        &mut self,
        run_id: i64,
        referrals: &[NewReferral],
    ) -> Result<Vec<NewReferral>, LedgerError>;

    /// Records a run's Treasury actions (referrals added, decreased, deleted) in one
    /// transaction; `deadlines` gives each added referral's passed deadline. An action the
    /// run already recorded is skipped. Returns how many were new.
    fn record_treasury(
        &mut self,
        run_id: i64,
        actions: &[TreasuryAction],
        deadlines: &HashMap<LetterKey, NaiveDate>,
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
    fn top_holdings(&self) -> Result<HashMap<String, Vec<TopReferral>>, LedgerError>;

    /// Every first referral of a notice, ordered by run and notice key (the Treasury actions
    /// hold every referral and update).
    fn referrals(&self) -> Result<Vec<ReferralRecord>, LedgerError>;

    /// Every referral of an account, ordered by notice key.
    fn referrals_of_account(&self, account_id: &str) -> Result<Vec<ReferralRecord>, LedgerError>;
}

/// Which exact template versions a legal reviewer approved (append-only).
pub trait ApprovalLog {
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
}

/// Outgoing email and its once-only states (`sending` is committed before the SMTP
/// transaction, `sent` after; an interrupted send becomes `uncertain`, never resent by
/// itself).
pub trait Outbox {
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

    /// Every email whose outcome is unknown (`uncertain`), by key: each waits for a person
    /// (`missive mark KEY sent|failed` or `missive send --resend-uncertain`).
    fn uncertain_emails(&self) -> Result<Vec<LetterKey>, LedgerError>;

    /// A person's verdict on an uncertain email after checking the mail server's log:
    /// `sent` or not (`failed`, never resent), with an event carrying `detail`, in ONE
    /// transaction. Any email that is not uncertain is refused
    /// ([`LedgerError::EmailNotUncertain`]).
    fn resolve_uncertain(
        &mut self,
        key: &LetterKey,
        sent: bool,
        detail: &str,
    ) -> Result<EmailRecord, LedgerError>;
}

/// Mail pieces (IMb serials and certified article numbers, handed out once ever) and
/// the print batches they go in, with their release.
pub trait BatchLog {
    /// Gives each requested letter a mail piece, in ONE transaction: a letter whose
    /// current copy already has a piece not yet in a batch, of the requested class and
    /// routing code, keeps it (a crash before its batch was recorded, a run killed before
    /// rendering it: a letter planned again while only planned keeps its piece); the others get the next IMb serial and, if certified, the next
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

    /// The letters of `keys` whose current file carries the IMb and article number of
    /// their current piece (recorded with
    /// [`RenderedFile::marks`](crate::ledger::RenderedFile)): a batch prints such a file as
    /// it is, and renders a print copy of any other. One read for a batch's letters.
    fn files_marked(&self, keys: &[LetterKey]) -> Result<HashSet<LetterKey>, LedgerError>;

    /// The current piece of each of `keys` that is in no batch yet, by key (a letter
    /// without one is left out): the batch step reads a batch's pieces right before
    /// writing it under its final name, and writes it only if they are the ones allocated.
    fn open_pieces(&self, keys: &[LetterKey])
    -> Result<HashMap<LetterKey, MailPiece>, LedgerError>;

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

/// The work queue: several processes render one run's planned letters, each claiming
/// chunks for a lease (see `ledger/work.rs` for the invariants). The ledger keeps each
/// letter's payload as opaque text; the runner makes and reads it.
pub trait WorkQueue {
    /// Stores the payload of each letter planned in `run_id`, in ONE transaction,
    /// replacing an earlier payload of the key (and clearing its claim). The record step
    /// stores a run's payloads a chunk of accounts at a time. A key the ledger does not
    /// hold fails the whole call with [`LedgerError::UnknownLetter`].
    fn record_payloads(
        &mut self,
        run_id: i64,
        payloads: &[LetterPayload],
    ) -> Result<(), LedgerError>;

    /// Withdraws, in ONE transaction, the payloads of the run's letters still `planned`
    /// whose keys are not in `keep` (the letters the run plans now): a resumed run that no
    /// longer plans a letter never has it rendered. A rendered letter keeps the payload
    /// its file was made from (the batch step reads it back). Returns how many were
    /// withdrawn.
    fn withdraw_payloads(&mut self, run_id: i64, keep: &[LetterKey]) -> Result<usize, LedgerError>;

    /// The payloads `run_id` recorded for `keys` (a key without one is left out): the
    /// batch step reads its letters back from them a batch at a time instead of holding
    /// the run's plan and accounts.
    fn payloads_of(
        &self,
        run_id: i64,
        keys: &[LetterKey],
    ) -> Result<HashMap<LetterKey, LetterPayload>, LedgerError>;

    /// Claims, in ONE transaction, up to `limit` letters of the run that are still
    /// `planned`, have a payload of this run and no unexpired claim, in key order: each
    /// is now claimed by `worker` until now + `lease` by the backend's clock. An expired
    /// claim is claimable again (its worker died or is too slow).
    fn claim_letters(
        &mut self,
        run_id: i64,
        worker: &str,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<ClaimedLetter>, LedgerError>;

    /// The run's letters still planned, how many of them are claimed now, and how many
    /// payloads the run recorded.
    fn work_left(&self, run_id: i64) -> Result<WorkLeft, LedgerError>;
}

/// Every role of the ledger: what a run needs. Implemented for anything that implements all
/// the roles, so `&mut dyn Ledger` works with any backend; call sites bring the role traits
/// into scope with `use crate::ledger::prelude::*`.
pub trait Ledger:
    RunLog + LetterStore + Outbox + BatchLog + ApprovalLog + TreasuryLog + WorkQueue
{
}

impl<T: RunLog + LetterStore + Outbox + BatchLog + ApprovalLog + TreasuryLog + WorkQueue + ?Sized>
    Ledger for T
{
}
