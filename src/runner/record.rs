//! The run's first steps: **plan** (the accounts against the ledger's notices and what TOP
//! holds, less what the approval gate holds back) and **record** (every due letter
//! `planned` in one transaction, then the mail pieces of its print letters allocated in
//! one transaction, then the emails composed and recorded, then each letter's payload for
//! the work queue), then **produce** (chunks claimed from the work queue, each recorded
//! `rendered` once its files are complete).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::{HeldTemplate, Run, RunError, waiting};
use crate::account::Account;
use crate::compose::{MailMarks, template_name_in};
use crate::config::LoadedConfig;
use crate::decide::{DecideContext, DueLetter};
use crate::dispatch::{ComposedEmail, EmailComposer, Role};
use crate::language::Language;
use crate::ledger::{EmailRole, Ledger, LetterState, NewEmail, PlannedLetter};
use crate::letter::{Channel, LetterKey, LetterKind, MailClass};
use crate::load;
use crate::mailroom;
use crate::plan::{Plan, PriorHoldings, PriorNotices, plan_batch_with};
use crate::produce::FailedLetter;

use super::NewRunSpec;

/// What planning a run's accounts gives.
pub(super) struct PlannedAccounts {
    pub(super) plan: Plan,
    /// Every account that has letters due (they are composed from it).
    pub(super) accounts: HashMap<String, Account>,
    /// Name and TIN's last four of every account with Treasury actions (the Treasury file
    /// carries them).
    pub(super) debtors: HashMap<String, (String, String)>,
    /// Templates the approval gate holds back (their letters are not recorded).
    pub(super) held: Vec<HeldTemplate>,
}

/// What recording the plan gives.
pub(super) struct Recorded {
    /// The keys now planned in this run.
    pub(super) keys: Vec<LetterKey>,
    /// The keys of the letters to render, in the plan's order: planned now, and not
    /// failed for their email (the letters themselves are in the ledger's payloads).
    pub(super) to_render: Vec<LetterKey>,
    /// Email letters whose email could not be composed (recorded `failed`).
    pub(super) email_failed: Vec<FailedLetter>,
    /// Email copies that could not be composed (the letters go on).
    pub(super) email_errors: Vec<FailedLetter>,
}

/// A print letter's mail piece and the marks its file is composed with.
pub(super) struct Marked {
    /// The piece's id in the ledger.
    pub(super) piece: i64,
    /// Its IMb and article number as printed.
    pub(super) marks: MailMarks,
}

impl Run<'_, '_> {
    /// **plan**: the run's accounts against the ledger (see the module docs of the runner).
    pub(super) fn plan(
        &self,
        ledger: &dyn Ledger,
        run_id: i64,
        spec: &NewRunSpec,
        batching: bool,
    ) -> Result<PlannedAccounts, RunError> {
        let mut prior = ledger.prior_notices()?;
        if batching {
            waiting::forget_own_unbatched(ledger, run_id, &mut prior)?;
        }
        // What TOP holds by the ledger's record goes into decide, so a referral or update
        // already sent is never sent again.
        let holdings = ledger.top_holdings()?;
        let mut planned = plan_accounts(
            self.config,
            load::records(&spec.accounts)?,
            &prior,
            &holdings,
            spec.as_of,
            spec.mail_date,
        );
        fall_back_to_print(ledger, &mut planned.plan)?;
        // The approval gate: letters whose template version nobody approved are neither
        // recorded nor rendered; the next run after `missive approve` takes them up.
        if self.config.config.review.require_approval {
            let hashes = self.producer.composer.template_hashes();
            planned.held = unapproved(ledger, hashes, &planned.plan.letters, &planned.accounts)?;
        }
        Ok(planned)
    }

    /// **record**: the plan's letters (less those held) `planned` in one transaction, then
    /// their emails; an email letter whose email cannot be composed is recorded `failed`.
    pub(super) fn record(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        planned: &PlannedAccounts,
    ) -> Result<Recorded, RunError> {
        let PlannedAccounts {
            plan,
            accounts,
            held,
            ..
        } = planned;
        let letters: Vec<PlannedLetter> = plan
            .letters
            .iter()
            .filter(|l| {
                let template = letter_template(accounts, l);
                !held.iter().any(|h| h.template == template)
            })
            .map(super::records::planned_letter)
            .collect::<Result<_, _>>()?;
        let keys = ledger.record_planned(run_id, &letters)?;
        // What is recorded is not held while the next records are built (memory peaks
        // here: every letter's payload is built before the one call that stores them).
        drop(letters);
        let pieces = self.allocate_planned(ledger, run_id, &keys, planned)?;
        let keys_set: HashSet<_> = keys.iter().collect();
        let (composed, email_failed, email_errors) = compose_emails(
            self.emails,
            accounts,
            plan.letters.iter().filter(|l| keys_set.contains(&l.key)),
        );
        ledger.record_emails(run_id, &keys, &composed)?;
        drop(composed);
        for f in &email_failed {
            ledger.set_state(&f.key, LetterState::Failed, Some(run_id), &f.message)?;
        }
        let email_failed_keys: HashSet<&LetterKey> = email_failed.iter().map(|f| &f.key).collect();
        let hashes = self.producer.composer.template_hashes();
        let mut to_render = Vec::new();
        let mut payloads = Vec::new();
        for letter in plan
            .letters
            .iter()
            .filter(|l| keys_set.contains(&l.key) && !email_failed_keys.contains(&l.key))
        {
            to_render.push(letter.key.clone());
            // Every letter of the plan has its account (plan_accounts keeps them all); one
            // without is failed rather than left planned with nothing to render it from.
            let Some(account) = accounts.get(&letter.account_id) else {
                let why = "its account is not loaded";
                ledger.set_state(&letter.key, LetterState::Failed, Some(run_id), why)?;
                continue;
            };
            let piece = pieces.get(&letter.key).map(|m| (m.piece, &m.marks));
            let template = letter_template(accounts, letter);
            let with = super::payload::RenderedWith {
                template_sha256: hashes.get(&template).map_or("", String::as_str),
                fonts_sha256: self.producer.renderer.fonts_sha256(),
            };
            payloads.push(super::payload::payload_of(letter, account, piece, with)?);
        }
        ledger.record_payloads(run_id, &payloads)?;
        self.progress.advance(keys.len());
        Ok(Recorded {
            keys,
            to_render,
            email_failed,
            email_errors,
        })
    }

    /// The mail pieces of the print letters with an address among `keys` (planned now), in
    /// ONE ledger transaction and in print order, before anything is rendered: a letter
    /// that has an open piece keeps it, so a resumed run renders the same marks, and a
    /// range too short fails the run here.
    fn allocate_planned(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        keys: &[LetterKey],
        planned: &PlannedAccounts,
    ) -> Result<HashMap<LetterKey, Marked>, RunError> {
        let open: Vec<(LetterKey, i64)> = keys.iter().map(|k| (k.clone(), run_id)).collect();
        let items = mailroom::sort_for_print(&open, &planned.plan.letters, &planned.accounts).items;
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

/// Plans `records` against `prior` notices and what TOP holds by the ledger (`holdings`),
/// at the given dates with the configured policy.
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
    let mut debtors: HashMap<String, (String, String)> = HashMap::new();
    let plan = plan_batch_with(records, prior, holdings, &ctx, |planned| {
        let account = &planned.account;
        if !planned.decision.letters.is_empty() {
            accounts.insert(account.account_id.clone(), account.clone());
        }
        if !planned.decision.referrals.is_empty() || !planned.decision.treasury_updates.is_empty() {
            debtors.insert(
                account.account_id.clone(),
                (
                    account.taxpayer.name.clone(),
                    account.taxpayer.tin_last4.clone(),
                ),
            );
        }
    });
    PlannedAccounts {
        plan,
        accounts,
        debtors,
        held: Vec::new(),
    }
}

/// The template that writes `letter`: its kind's, in its account's language.
pub(super) fn letter_template(accounts: &HashMap<String, Account>, letter: &DueLetter) -> String {
    account_template(accounts.get(&letter.account_id), letter)
}

/// The template that writes `letter` for `account` (none: English).
pub(super) fn account_template(account: Option<&Account>, letter: &DueLetter) -> String {
    template_name_in(letter.kind, account.map_or(Language::En, Language::of))
}

/// The templates (kind and language) among `letters` that, at the version loaded now
/// (`hashes`), have no approval: a Spanish template needs its own.
fn unapproved(
    ledger: &dyn Ledger,
    hashes: &BTreeMap<String, String>,
    letters: &[DueLetter],
    accounts: &HashMap<String, Account>,
) -> Result<Vec<HeldTemplate>, RunError> {
    let mut counts: BTreeMap<(LetterKind, String), usize> = BTreeMap::new();
    for letter in letters {
        *counts
            .entry((letter.kind, letter_template(accounts, letter)))
            .or_default() += 1;
    }
    let mut held = Vec::new();
    for ((kind, template), count) in counts {
        let sha = hashes.get(&template).cloned().unwrap_or_default();
        if ledger.approval_of(&template, &sha)?.is_none() {
            held.push(HeldTemplate {
                kind,
                template,
                template_sha256: sha,
                letters: count,
            });
        }
    }
    Ok(held)
}

/// Letters whose email was refused for good with `--fallback-print` go by first-class mail
/// (if the taxpayer has a postal address): the same key, now printed.
pub(super) fn fall_back_to_print(ledger: &dyn Ledger, plan: &mut Plan) -> Result<(), RunError> {
    let keys: HashSet<_> = ledger.print_fallbacks()?.into_iter().collect();
    if keys.is_empty() {
        return Ok(());
    }
    for letter in &mut plan.letters {
        if letter.channel == Channel::Email && keys.contains(&letter.key) {
            letter.channel = Channel::Print;
            letter.mail_class = Some(MailClass::FirstClass);
            letter
                .why
                .push_str("; by first-class mail because the mail server refused its email");
        }
    }
    Ok(())
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
