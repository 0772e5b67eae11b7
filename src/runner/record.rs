//! The run's first steps: **plan** and **record**, streamed a chunk of accounts at a time
//! so that a run never holds its whole plan or its accounts, then **produce** (chunks
//! claimed from the work queue, each recorded `rendered` once its files are complete).
//!
//! 1. Planning pass: the accounts are planned [`CHUNK`] at a time against the ledger's
//!    notices and what TOP holds. Each chunk's letters, less those the approval gate holds
//!    back, are recorded `planned` (one transaction per chunk), then their emails composed
//!    and recorded; an email letter whose email cannot be composed is recorded `failed`.
//!    What is kept of a chunk is small: each letter's key, each print letter's
//!    [`PrintLetter`] (what print order and the batch step need), the Treasury actions.
//! 2. The mail pieces of every print letter with an address are allocated in ONE
//!    transaction, in print order, before anything is rendered (a letter that has an open
//!    piece keeps it, so a killed run taken up again renders the same marks; a range too
//!    short fails the run here).
//! 3. Payload pass: the payloads an earlier attempt of the run stored for letters it no
//!    longer plans are withdrawn; the accounts are planned again, chunk by chunk, and each
//!    recorded letter's payload (letter, account, piece and marks) is stored in the work
//!    queue (stored again unchanged, a payload keeps its hash, so a worker rendering it
//!    meanwhile records its file). The two passes must give the same letters with the same
//!    data, accounts, templates and fonts, in the same chunks and order: each chunk's
//!    digest of its letters' keys and payloads without the piece is compared before that
//!    chunk is stored, and accounts that changed in between stop the run there, before it
//!    renders anything.
//!
//! Nothing is rendered before step 3 is complete (workers the run starts start after it;
//! a worker started by hand may render a letter whose payload is stored, which is its own
//! letter with its final marks).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{HeldTemplate, PlanOutcome, Run, RunError, Step, waiting};
use crate::account::Account;
use crate::compose::{MailMarks, template_name_in};
use crate::config::LoadedConfig;
use crate::decide::{DecideContext, DueLetter, Referral, SuppressReason, TreasuryUpdate};
use crate::dispatch::{ComposedEmail, EmailComposer, Role};
use crate::language::Language;
use crate::ledger::{EmailRole, Ledger, LetterPayload, LetterState, NewEmail, PlannedLetter};
use crate::letter::{Channel, LetterKey, LetterKind, MailClass};
use crate::load;
use crate::mailroom::{self, PrintEntry};
use crate::plan::{self, Plan, Planned, PriorHoldings, PriorNotices, plan_batch_with, plan_chunks};
use crate::produce::FailedLetter;

use super::NewRunSpec;

/// Accounts planned at a time by the run: a chunk's accounts and letters are held while
/// they are recorded, then dropped.
pub(super) const CHUNK: usize = plan::CHUNK;

/// What planning a run's accounts gives when the whole plan is held (an earlier run's
/// letters planned again to be batched, see [`waiting`]).
pub(super) struct PlannedAccounts {
    pub(super) plan: Plan,
    /// Every account that has letters due (they are composed from it).
    pub(super) accounts: HashMap<String, Account>,
}

/// A print letter of the run as the batch step needs it, kept for every print letter
/// (with an address) while the letter itself and its account stay in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PrintLetter {
    /// What print order needs.
    pub(super) entry: PrintEntry,
    /// The plan hash it was recorded with (its payload must hash to it).
    pub(super) data_sha256: String,
    /// The template that writes it.
    pub(super) template: String,
    /// Recorded `planned` by this attempt of the run (its piece is allocated before
    /// rendering); false for a letter the run rendered before it was taken up again.
    pub(super) planned_now: bool,
}

impl PrintLetter {
    /// The print letter of `letter` (of `account`) with plan hash `data_sha256`, when it
    /// can go into a batch ([`PrintEntry::of`]).
    pub(super) fn of(
        letter: &DueLetter,
        account: &Account,
        data_sha256: String,
        planned_now: bool,
    ) -> Option<PrintLetter> {
        Some(PrintLetter {
            entry: PrintEntry::of(letter, account)?,
            data_sha256,
            template: account_template(Some(account), letter),
            planned_now,
        })
    }
}

impl AsRef<PrintEntry> for PrintLetter {
    fn as_ref(&self) -> &PrintEntry {
        &self.entry
    }
}

/// The run's Treasury actions as planned, and the debtors they name.
#[derive(Debug, Default)]
pub(super) struct TreasuryPlan {
    /// Referrals due, by account and notice.
    pub(super) referrals: Vec<Referral>,
    /// Decreases and deletes, by account, notice and liabilities.
    pub(super) updates: Vec<TreasuryUpdate>,
    /// Name and TIN's last four of every account with Treasury actions (the Treasury file
    /// carries them).
    pub(super) debtors: HashMap<String, (String, String)>,
}

/// What the plan and record steps leave for the steps after them: per letter only its key,
/// per print letter its [`PrintLetter`].
pub(super) struct Recorded {
    /// Letters recorded as planned in this run.
    pub(super) planned: usize,
    /// The keys of the letters to render, in the plan's order (chunk by chunk): planned
    /// now, and not failed for their email (the letters themselves are in the ledger's
    /// payloads).
    pub(super) to_render: Vec<LetterKey>,
    /// The print letters of the plan whose account has an address, in the same order:
    /// those among `to_render`, and those this run rendered before it was taken up again
    /// (waiting for their batch).
    pub(super) print: Vec<PrintLetter>,
    /// Email letters whose email could not be composed (recorded `failed`).
    pub(super) email_failed: Vec<FailedLetter>,
    /// Email copies that could not be composed (the letters go on).
    pub(super) email_errors: Vec<FailedLetter>,
    /// The run's Treasury actions.
    pub(super) treasury: TreasuryPlan,
    /// The plan's errors and its count of letters already sent.
    pub(super) outcome: PlanOutcome,
    /// Templates the approval gate held back (their letters are not recorded).
    pub(super) held: Vec<HeldTemplate>,
}

/// A print letter's mail piece and the marks its file is composed with.
pub(super) struct Marked {
    /// The piece's id in the ledger.
    pub(super) piece: i64,
    /// Its IMb and article number as printed.
    pub(super) marks: MailMarks,
}

/// The approval gate (`review.require_approval`): each template's approval asked of the
/// ledger once, and the letters held back counted per template.
struct Gate<'h> {
    /// Whether approval is required at all.
    required: bool,
    /// The templates' versions loaded now.
    hashes: &'h BTreeMap<String, String>,
    /// Each template asked about: approved or not.
    answers: HashMap<String, bool>,
    /// Letters held back, by kind and template.
    held: BTreeMap<(LetterKind, String), usize>,
}

impl Gate<'_> {
    /// Whether `letter`, written by `template`, may be recorded; a letter held back is
    /// counted.
    fn lets_through(
        &mut self,
        ledger: &dyn Ledger,
        letter: &DueLetter,
        template: &str,
    ) -> Result<bool, RunError> {
        if !self.required {
            return Ok(true);
        }
        let approved = match self.answers.get(template) {
            Some(approved) => *approved,
            None => {
                let sha = self.hashes.get(template).map_or("", String::as_str);
                let approved = ledger.approval_of(template, sha)?.is_some();
                self.answers.insert(template.to_owned(), approved);
                approved
            }
        };
        if !approved {
            *self
                .held
                .entry((letter.kind, template.to_owned()))
                .or_default() += 1;
        }
        Ok(approved)
    }

    /// The templates held back, with their versions and how many letters each held.
    fn held(self) -> Vec<HeldTemplate> {
        self.held
            .into_iter()
            .map(|((kind, template), letters)| HeldTemplate {
                kind,
                template_sha256: self.hashes.get(&template).cloned().unwrap_or_default(),
                template,
                letters,
            })
            .collect()
    }
}

/// A chunk of planned accounts as the record step takes it: its letters in the plan's
/// order (with `--fallback-print` applied) and the accounts that have letters.
struct ChunkLetters {
    letters: Vec<DueLetter>,
    accounts: HashMap<String, Account>,
}

/// Feeds a letter into its chunk's digest: its key and its payload without the piece (the
/// letter with every field, its account, its template's version, the fonts). The two
/// passes over the accounts must see the same letters with the same data, addresses and
/// languages, in the same chunks and order. Returns that payload (a letter without a
/// piece is stored with it as it is).
fn digest_letter(
    digest: &mut Sha256,
    letter: &DueLetter,
    account: &Account,
    with: super::payload::RenderedWith<'_>,
) -> Result<LetterPayload, RunError> {
    let bare = super::payload::payload_of(letter, account, None, with)?;
    digest.update(letter.key.as_str().as_bytes());
    digest.update([0]);
    digest.update(bare.payload.as_bytes());
    digest.update([0]);
    Ok(bare)
}

/// What a payload of `letter` (of `account`) says it is rendered with.
fn rendered_with<'a>(
    run: &'a Run<'_, '_>,
    letter: &DueLetter,
    account: &Account,
) -> super::payload::RenderedWith<'a> {
    let template = account_template(Some(account), letter);
    let hashes = run.producer.composer.template_hashes();
    super::payload::RenderedWith {
        template_sha256: hashes.get(&template).map_or("", String::as_str),
        fonts_sha256: run.producer.renderer.fonts_sha256(),
    }
}

impl Run<'_, '_> {
    /// **plan** and **record**: the run's accounts against the ledger, streamed (see the
    /// module docs).
    pub(super) fn plan_and_record(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        spec: &NewRunSpec,
        batching: bool,
    ) -> Result<Recorded, RunError> {
        // The accounts are read twice: a pipe or a device would give the second pass
        // nothing (or wait for a writer that never comes).
        if let Ok(metadata) = std::fs::metadata(&spec.accounts)
            && !metadata.is_file()
            && !metadata.is_dir()
        {
            return Err(RunError::AccountsNotAFile {
                accounts: spec.accounts.clone(),
            });
        }
        let mut prior = ledger.prior_notices()?;
        if batching {
            waiting::forget_own_unbatched(ledger, run_id, &mut prior)?;
        }
        // What TOP holds by the ledger's record goes into decide, so a referral or update
        // already sent is never sent again.
        let holdings = ledger.top_holdings()?;
        let fallbacks: HashSet<LetterKey> = ledger.print_fallbacks()?.into_iter().collect();
        let calendar = self.config.config.holiday_calendar();
        let ctx = DecideContext {
            as_of: spec.as_of,
            mail_date: spec.mail_date,
            policy: &self.config.config.policy,
            calendar: &calendar,
        };
        let mut gate = Gate {
            required: self.config.config.review.require_approval,
            hashes: self.producer.composer.template_hashes(),
            answers: HashMap::new(),
            held: BTreeMap::new(),
        };
        let mut recorded = Recorded {
            planned: 0,
            to_render: Vec::new(),
            print: Vec::new(),
            email_failed: Vec::new(),
            email_errors: Vec::new(),
            treasury: TreasuryPlan::default(),
            outcome: PlanOutcome::default(),
            held: Vec::new(),
        };
        // One digest per chunk of the planning pass, compared before the payload pass
        // stores the same chunk's payloads.
        let mut digests: Vec<Vec<u8>> = Vec::new();

        self.progress.start(Step::Plan, 0);
        let tally = plan_chunks(
            load::records(&spec.accounts)?,
            &prior,
            &holdings,
            &ctx,
            CHUNK,
            |chunk| {
                let chunk = take_chunk(chunk, &fallbacks, Some(&mut recorded));
                let mut digest = Sha256::new();
                self.record_chunk(ledger, run_id, chunk, &mut gate, &mut recorded, &mut digest)?;
                digests.push(digest.finalize().to_vec());
                Ok::<(), RunError>(())
            },
        )?;
        self.progress.finish();
        recorded.outcome.errors = tally.errors;
        plan::sort_treasury(
            &mut recorded.treasury.referrals,
            &mut recorded.treasury.updates,
        );
        recorded.held = gate.held();

        self.progress.start(Step::Record, recorded.to_render.len());
        let pieces = self.allocate_planned(ledger, run_id, &recorded.print)?;
        // What an earlier attempt of the run stored for letters it no longer plans is
        // withdrawn; then the payloads, a chunk of accounts at a time (a payload stored
        // again unchanged keeps its hash, so a worker still rendering it records its file).
        ledger.withdraw_payloads(run_id, &recorded.to_render)?;
        let mut payloads = PayloadPass {
            accounts: &spec.accounts,
            to_render: &recorded.to_render,
            next: 0,
            pieces: &pieces,
            digests: &digests,
            chunk: 0,
        };
        plan_chunks(
            load::records(&spec.accounts)?,
            &prior,
            &holdings,
            &ctx,
            CHUNK,
            |chunk| {
                let chunk = take_chunk(chunk, &fallbacks, None);
                self.store_payloads(ledger, run_id, &chunk, &mut payloads)
            },
        )?;
        if payloads.next != recorded.to_render.len() || payloads.chunk != digests.len() {
            return Err(RunError::AccountsChanged {
                accounts: spec.accounts.clone(),
            });
        }
        self.progress.finish();
        Ok(recorded)
    }

    /// Records one chunk's letters (less those the gate holds back) as planned, then their
    /// emails; keeps each recorded letter's key (and print letter) in `recorded`.
    fn record_chunk(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        chunk: ChunkLetters,
        gate: &mut Gate<'_>,
        recorded: &mut Recorded,
        digest: &mut Sha256,
    ) -> Result<(), RunError> {
        let ChunkLetters { letters, accounts } = chunk;
        let mut admitted = Vec::with_capacity(letters.len());
        for letter in letters {
            let template = account_template(accounts.get(&letter.account_id), &letter);
            if gate.lets_through(&*ledger, &letter, &template)? {
                admitted.push(letter);
            }
        }
        let planned: Vec<PlannedLetter> = admitted
            .iter()
            .map(super::records::planned_letter)
            .collect::<Result<_, _>>()?;
        let keys = ledger.record_planned(run_id, &planned)?;
        recorded.planned += keys.len();
        let data: HashMap<&LetterKey, &str> = planned
            .iter()
            .map(|p| (&p.key, p.data_sha256.as_str()))
            .collect();
        let keys_set: HashSet<&LetterKey> = keys.iter().collect();
        let (composed, email_failed, email_errors) = compose_emails(
            self.emails,
            &accounts,
            admitted.iter().filter(|l| keys_set.contains(&l.key)),
        );
        ledger.record_emails(run_id, &keys, &composed)?;
        drop(composed);
        for f in &email_failed {
            ledger.set_state(&f.key, LetterState::Failed, Some(run_id), &f.message)?;
        }
        let failed: HashSet<&LetterKey> = email_failed.iter().map(|f| &f.key).collect();
        for letter in admitted.iter().filter(|l| !failed.contains(&l.key)) {
            let sha = data.get(&letter.key).copied().unwrap_or_default();
            // Not planned now: the ledger counts it as sent. When this run rendered it
            // before it was taken up again, it still waits for its batch (the batch step
            // finds out from the ledger), so it is kept as a print letter too.
            let planned_now = keys_set.contains(&letter.key);
            if planned_now {
                if let Some(account) = accounts.get(&letter.account_id) {
                    digest_letter(
                        digest,
                        letter,
                        account,
                        rendered_with(self, letter, account),
                    )?;
                }
                recorded.to_render.push(letter.key.clone());
            }
            if let Some(account) = accounts.get(&letter.account_id)
                && let Some(print) = PrintLetter::of(letter, account, sha.to_owned(), planned_now)
            {
                recorded.print.push(print);
            }
        }
        recorded.email_failed.extend(email_failed);
        recorded.email_errors.extend(email_errors);
        self.progress.advance(keys.len());
        Ok(())
    }

    /// Stores the payload of each of the chunk's letters that the planning pass recorded
    /// to render (the next keys of `pass.to_render`, in the same order), once the chunk
    /// is known to be what the planning pass recorded: its digest must be the one the
    /// planning pass made of the same chunk, else nothing of it is stored.
    fn store_payloads(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        chunk: &ChunkLetters,
        pass: &mut PayloadPass<'_>,
    ) -> Result<(), RunError> {
        let changed = || RunError::AccountsChanged {
            accounts: pass.accounts.to_owned(),
        };
        let mut digest = Sha256::new();
        let mut payloads = Vec::new();
        let mut unloaded = Vec::new();
        for letter in &chunk.letters {
            if pass.to_render.get(pass.next) != Some(&letter.key) {
                continue;
            }
            pass.next += 1;
            // Every letter of a chunk has its account (take_chunk keeps them together); one
            // without is failed rather than left planned with nothing to render it from.
            let Some(account) = chunk.accounts.get(&letter.account_id) else {
                unloaded.push(&letter.key);
                continue;
            };
            let with = rendered_with(self, letter, account);
            let bare = digest_letter(&mut digest, letter, account, with)?;
            payloads.push(match pass.pieces.get(&letter.key) {
                Some(m) => {
                    super::payload::payload_of(letter, account, Some((m.piece, &m.marks)), with)?
                }
                None => bare,
            });
        }
        let expected = pass.digests.get(pass.chunk).ok_or_else(changed)?;
        pass.chunk += 1;
        if digest.finalize().as_slice() != expected.as_slice() {
            return Err(changed());
        }
        for key in unloaded {
            let why = "its account is not loaded";
            ledger.set_state(key, LetterState::Failed, Some(run_id), why)?;
        }
        ledger.record_payloads(run_id, &payloads)?;
        self.progress.advance(payloads.len());
        Ok(())
    }

    /// The mail pieces of the run's print letters with an address, in ONE ledger
    /// transaction and in print order, before anything is rendered: a letter that has an
    /// open piece keeps it, so a resumed run renders the same marks, and a range too short
    /// fails the run here.
    fn allocate_planned(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        print: &[PrintLetter],
    ) -> Result<HashMap<LetterKey, Marked>, RunError> {
        let planned: Vec<&PrintLetter> = print.iter().filter(|p| p.planned_now).collect();
        let items = mailroom::in_print_order(&planned);
        if items.is_empty() {
            return Ok(HashMap::new());
        }
        let pieces = self.allocate(ledger, run_id, &items)?;
        Ok(pieces
            .into_iter()
            .map(|piece| {
                let marked = Marked {
                    piece: piece.id,
                    marks: super::batch::marks_of(&piece),
                };
                (piece.key, marked)
            })
            .collect())
    }

    /// **produce**: renders the run's letters into `out_dir` through the work queue (see
    /// [`super::work`]): this process claims and renders chunks while the worker processes
    /// `self.workers` starts do the same, waits until no letter of the run is planned, and
    /// returns what happened to each of `letters`.
    pub(super) fn produce(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        letters: &[LetterKey],
        out_dir: &Path,
        work: &super::WorkOptions,
    ) -> Result<super::work::Produced, RunError> {
        self.workers.start(run_id);
        let summary = super::work::work_through(
            ledger,
            self.producer,
            run_id,
            letters,
            out_dir,
            work,
            self.progress,
        );
        self.workers.wait();
        summary
    }
}

/// The payload pass's place: the keys the planning pass recorded to render, how many of
/// them have their payload stored, the pieces allocated, the planning pass's digest of
/// each chunk and how many chunks were stored.
struct PayloadPass<'a> {
    accounts: &'a Path,
    to_render: &'a [LetterKey],
    next: usize,
    pieces: &'a HashMap<LetterKey, Marked>,
    digests: &'a [Vec<u8>],
    chunk: usize,
}

/// A chunk of planned accounts as letters in the plan's order (`--fallback-print` applied
/// to the keys in `fallbacks`) with the accounts that have letters. With `tally`, the
/// chunk's Treasury actions, debtors and letters already sent are added to it.
fn take_chunk(
    chunk: Vec<Planned>,
    fallbacks: &HashSet<LetterKey>,
    mut tally: Option<&mut Recorded>,
) -> ChunkLetters {
    let mut letters = Vec::new();
    let mut accounts = HashMap::new();
    for Planned {
        account, decision, ..
    } in chunk
    {
        if let Some(tally) = tally.as_deref_mut() {
            tally.outcome.already_sent += decision
                .suppressed
                .iter()
                .filter(|s| s.reason == SuppressReason::AlreadySent)
                .count();
            if !decision.referrals.is_empty() || !decision.treasury_updates.is_empty() {
                tally.treasury.debtors.insert(
                    account.account_id.clone(),
                    (
                        account.taxpayer.name.clone(),
                        account.taxpayer.tin_last4.clone(),
                    ),
                );
            }
            tally.treasury.referrals.extend(decision.referrals);
            tally.treasury.updates.extend(decision.treasury_updates);
        }
        if !decision.letters.is_empty() {
            letters.extend(decision.letters);
            accounts.insert(account.account_id.clone(), account);
        }
    }
    fall_back_in(fallbacks, &mut letters);
    plan::sort_letters(&mut letters);
    ChunkLetters { letters, accounts }
}

/// Plans `records` against `prior` notices and what TOP holds by the ledger (`holdings`),
/// at the given dates with the configured policy, holding the whole plan and the accounts
/// that have letters.
pub(super) fn plan_accounts(
    config: &LoadedConfig,
    records: impl Iterator<Item = Result<load::RawRecord, load::AccountError>>,
    prior: &PriorNotices,
    holdings: &PriorHoldings,
    as_of: chrono::NaiveDate,
    mail_date: chrono::NaiveDate,
) -> PlannedAccounts {
    let calendar = config.config.holiday_calendar();
    let ctx = DecideContext {
        as_of,
        mail_date,
        policy: &config.config.policy,
        calendar: &calendar,
    };
    let mut accounts: HashMap<String, Account> = HashMap::new();
    let plan = plan_batch_with(records, prior, holdings, &ctx, |planned| {
        if !planned.decision.letters.is_empty() {
            let account = &planned.account;
            accounts.insert(account.account_id.clone(), account.clone());
        }
    });
    PlannedAccounts { plan, accounts }
}

/// The template that writes `letter` for `account` (none: English).
pub(super) fn account_template(account: Option<&Account>, letter: &DueLetter) -> String {
    template_name_in(letter.kind, account.map_or(Language::En, Language::of))
}

/// Letters whose email was refused for good with `--fallback-print` go by first-class mail
/// (if the taxpayer has a postal address): the same key, now printed.
pub(super) fn fall_back_to_print(ledger: &dyn Ledger, plan: &mut Plan) -> Result<(), RunError> {
    let keys: HashSet<_> = ledger.print_fallbacks()?.into_iter().collect();
    fall_back_in(&keys, &mut plan.letters);
    Ok(())
}

/// [`fall_back_to_print`] for the email letters among `letters` whose keys are in `keys`.
fn fall_back_in(keys: &HashSet<LetterKey>, letters: &mut [DueLetter]) {
    if keys.is_empty() {
        return;
    }
    for letter in letters {
        if letter.channel == Channel::Email && keys.contains(&letter.key) {
            letter.channel = Channel::Print;
            letter.mail_class = Some(MailClass::FirstClass);
            letter
                .why
                .push_str("; by first-class mail because the mail server refused its email");
        }
    }
}

/// The emails of the letters planned now: the letter itself for channel email, a copy for
/// an intent to offset with `email_copy`. Returns the emails, the email letters that must
/// fail (their email cannot be composed) and the copies that could not be composed.
fn compose_emails<'a>(
    composer: &EmailComposer,
    accounts: &HashMap<String, Account>,
    letters: impl Iterator<Item = &'a DueLetter>,
) -> (Vec<NewEmail>, Vec<FailedLetter>, Vec<FailedLetter>) {
    let (mut emails, mut failed, mut copy_errors) = (Vec::new(), Vec::new(), Vec::new());
    for letter in letters {
        let role = match (letter.channel, letter.email_copy) {
            (Channel::Email, _) => Role::Letter,
            (Channel::Print, true) => Role::Copy,
            (Channel::Print, false) => continue,
        };
        let composed = match accounts.get(&letter.account_id) {
            Some(account) => composer
                .compose(account, letter, role)
                .map_err(|e| e.to_string()),
            None => Err("its account is not loaded".to_owned()),
        };
        match (composed, role) {
            (Ok(email), _) => emails.push(new_email(email, role)),
            (Err(message), Role::Letter) => failed.push(FailedLetter {
                key: letter.key.clone(),
                message,
            }),
            (Err(message), Role::Copy) => copy_errors.push(FailedLetter {
                key: letter.key.clone(),
                message,
            }),
        }
    }
    (emails, failed, copy_errors)
}

/// A composed email as the ledger records it.
pub(super) fn new_email(email: ComposedEmail, role: Role) -> NewEmail {
    NewEmail {
        key: email.key,
        role: match role {
            Role::Letter => EmailRole::Letter,
            Role::Copy => EmailRole::Copy,
        },
        to_address: email.to_address,
        to_name: email.to_name,
        subject: email.subject,
        text: email.text,
        html: email.html,
        attach_pdf: email.attach_pdf,
    }
}
