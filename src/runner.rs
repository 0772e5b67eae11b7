//! A production run: plan against the ledger, record, render, refer, finish.
//!
//! The order is what makes a run safe to kill at any point:
//! 1. the plan consults the ledger, so a letter already rendered, released or sent is
//!    `already_sent` and never produced again;
//! 2. every due letter is recorded as `planned` in one transaction before anything is
//!    written, so a crash leaves a complete list of what is owed;
//! 3. each PDF is written under a temporary name and renamed; the ledger marks a chunk
//!    `rendered` only after its files are complete;
//! 4. the run's Treasury actions (new referrals, decreases, deletes) are recorded in the
//!    ledger in one transaction, then `treasury/<run>.csv` and its control file are written
//!    from the ledger, so a crash between the two loses nothing (the next run writes any
//!    missing file). What TOP holds by the ledger goes into decide, so nothing is sent twice.
//!
//! With a mailroom, every rendered print letter in no batch is batched, this run's and
//! any earlier run's (see [`waiting`]). A run that stops on an error is recorded `failed`
//! with the reason, when the ledger can still be written.
//!
//! With `review.require_approval`, letters whose template version (content hash of template,
//! partials and layout) has no approval in the ledger are set aside before step 2: they are
//! neither recorded nor rendered, and [`RunReport::held`] names their templates.
//!
//! Letters that go by email (and the email copies of intents to offset) get their email
//! composed and recorded right after they are planned, before anything is rendered, so a
//! rendered email letter always has its email in the ledger; `dispatch` sends it. A letter
//! whose email was refused for good with `--fallback-print` is planned as first-class mail.
//!
//! Rerunning the same command after a crash plans again: what was rendered is skipped and
//! what was only planned is rendered now. `--resume RUN_ID` does the same under the old
//! run's id, dates and paths.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::account::Account;
use crate::compose::template_name_in;
use crate::config::LoadedConfig;
use crate::decide::{DecideContext, DueLetter};
use crate::dispatch::EmailComposer;
use crate::language::Language;
use crate::ledger::{
    EmailRole, Ledger, LedgerError, LetterState, NewRun, PlannedLetter, RenderedFile, RunInfo,
    RunStatus,
};
use crate::letter::{Channel, LetterKind, MailClass};
use crate::load::{self, SourceError};
use crate::mailroom::{BatchReport, Mailroom, MailroomError};
use crate::plan::{Plan, PriorHoldings, PriorNotices, plan_batch_with};
use crate::produce::{FailedLetter, ProduceError, Producer, WrittenLetter, write_atomically};

pub(crate) mod records;
mod waiting;

pub use records::RecordError;

/// A run could not be carried out (nothing further was written).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A letter could not be made into its ledger record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The accounts could not be read at all.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An output file could not be written.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// Making the print batches failed.
    #[error(transparent)]
    Mailroom(Box<MailroomError>),
    /// Writing the Treasury file failed (its actions are in the ledger: the next run
    /// writes it).
    #[error(transparent)]
    Treasury(#[from] crate::treasury_file::TreasuryFileError),
    /// `--resume` named a run the ledger does not have.
    #[error("no run {0} in the ledger; `missive history` lists runs by letter")]
    UnknownRun(i64),
    /// The mail date is in the past.
    #[error(
        "mail date {mail_date} is before today ({today}); letters would be dated in the past\n\nhint: pass --allow-past-mail-date if that is intended"
    )]
    PastMailDate {
        /// The requested mail date.
        mail_date: NaiveDate,
        /// Today.
        today: NaiveDate,
    },
}

impl From<MailroomError> for RunError {
    fn from(err: MailroomError) -> Self {
        RunError::Mailroom(Box::new(err))
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Accounts path.
    pub accounts: PathBuf,
    /// Output directory.
    pub out_dir: PathBuf,
    /// As-of date.
    pub as_of: NaiveDate,
    /// Mail date.
    pub mail_date: NaiveDate,
}

/// A template the run did not use because its exact version is not approved; none of its
/// letters were recorded or rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldTemplate {
    /// The kind it writes.
    pub kind: LetterKind,
    /// Template name.
    pub template: String,
    /// Its current content hash.
    pub template_sha256: String,
    /// Letters of the kind that were due and not rendered.
    pub letters: usize,
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// The run.
    pub run: RunInfo,
    /// The plan it worked from (errors included).
    pub plan: Plan,
    /// Letters recorded as planned in this run.
    pub planned: usize,
    /// Letters rendered now.
    pub written: Vec<WrittenLetter>,
    /// Letters that failed now (an email letter whose email could not be composed too).
    pub failed: Vec<FailedLetter>,
    /// Email copies of intents to offset that could not be composed (the letters go on).
    pub email_errors: Vec<FailedLetter>,
    /// Referrals made for the first time by this run (`add` rows of its Treasury file).
    pub new_referrals: usize,
    /// Decreases and deletes this run sent to the Treasury Offset Program.
    pub treasury_updates: usize,
    /// Templates refused by the approval gate (`review.require_approval`).
    pub held: Vec<HeldTemplate>,
    /// The print batches made (when the run makes them).
    pub batches: Option<BatchReport>,
}

/// Refuses a mail date before `today` unless `allow_past`: deadlines count from the mail
/// date, so a letter dated in the past shortens the taxpayer's window.
pub fn check_mail_date(
    mail_date: NaiveDate,
    today: NaiveDate,
    allow_past: bool,
) -> Result<(), RunError> {
    if mail_date < today && !allow_past {
        return Err(RunError::PastMailDate { mail_date, today });
    }
    Ok(())
}

/// Starts a new run for `request`, or resumes run `resume` with its own dates and paths.
/// `today` guards the mail date unless `allow_past_mail_date`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    ledger: &mut dyn Ledger,
    config: &LoadedConfig,
    producer: &Producer<'_>,
    emails: &EmailComposer,
    request: RunRequest,
    resume: Option<i64>,
    today: NaiveDate,
    allow_past_mail_date: bool,
    mailroom: Option<&Mailroom<'_>>,
    mut progress: impl FnMut(usize, usize),
) -> Result<RunReport, RunError> {
    let (run, request) = match resume {
        Some(id) => {
            let old = ledger.run(id)?.ok_or(RunError::UnknownRun(id))?;
            // Check before touching the run: a refused resume leaves it as it was.
            check_mail_date(old.mail_date, today, allow_past_mail_date)?;
            let run = ledger.resume_run(id)?;
            let request = RunRequest {
                accounts: PathBuf::from(&run.accounts),
                out_dir: PathBuf::from(&run.out_dir),
                as_of: run.as_of,
                mail_date: run.mail_date,
            };
            (run, request)
        }
        None => {
            check_mail_date(request.mail_date, today, allow_past_mail_date)?;
            // Absolute paths, so `--resume` from another directory finds the same files.
            let absolute = |path: &Path| -> Result<PathBuf, RunError> {
                std::path::absolute(path).map_err(|source| {
                    RunError::Produce(ProduceError::Write {
                        path: path.to_owned(),
                        source,
                    })
                })
            };
            let request = RunRequest {
                accounts: absolute(&request.accounts)?,
                out_dir: absolute(&request.out_dir)?,
                ..request
            };
            let run = ledger.begin_run(&NewRun {
                as_of: request.as_of,
                mail_date: request.mail_date,
                config_sha256: config.sha256.clone(),
                accounts: request.accounts.display().to_string(),
                out_dir: request.out_dir.display().to_string(),
            })?;
            (run, request)
        }
    };

    let run_id = run.id;
    match carry_out(
        ledger,
        config,
        producer,
        emails,
        run,
        request,
        mailroom,
        &mut progress,
    ) {
        Ok(report) => Ok(report),
        Err(err) => {
            // Best effort: on a read-only file system the ledger may refuse this too; the
            // run then stays `running` and the next run records it `interrupted`.
            let _ = ledger.fail_run(run_id, &error_chain(&err));
            Err(err)
        }
    }
}

/// What planning a run's accounts gives.
struct PlannedAccounts {
    plan: Plan,
    /// Every account that has letters due (they are composed from it).
    accounts: HashMap<String, Account>,
    /// Name and TIN's last four of every account with Treasury actions (the Treasury file
    /// carries them).
    debtors: HashMap<String, (String, String)>,
}

/// Plans `records` against `prior` notices and what TOP holds by the ledger (`holdings`),
/// at the given dates with the configured policy.
fn plan_accounts(
    config: &LoadedConfig,
    records: impl Iterator<Item = Result<load::RawRecord, load::AccountError>>,
    prior: &PriorNotices,
    holdings: &PriorHoldings,
    as_of: NaiveDate,
    mail_date: NaiveDate,
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
    }
}

/// Why an error happened, with every cause, on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

/// The run itself, once it is recorded: plan, record, render, batch, refer, finish.
#[allow(clippy::too_many_arguments)]
fn carry_out(
    ledger: &mut dyn Ledger,
    config: &LoadedConfig,
    producer: &Producer<'_>,
    emails: &EmailComposer,
    run: RunInfo,
    request: RunRequest,
    mailroom: Option<&Mailroom<'_>>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport, RunError> {
    let mut prior = ledger.prior_notices()?;
    if mailroom.is_some() {
        waiting::forget_own_unbatched(ledger, run.id, &mut prior)?;
    }
    // What TOP holds by the ledger's record goes into decide, so a referral or update
    // already sent is never sent again.
    let holdings = ledger.top_holdings()?;
    let PlannedAccounts {
        mut plan,
        accounts,
        debtors,
    } = plan_accounts(
        config,
        load::records(&request.accounts)?,
        &prior,
        &holdings,
        request.as_of,
        request.mail_date,
    );
    fall_back_to_print(ledger, &mut plan)?;

    // The approval gate: letters whose template version nobody approved are neither
    // recorded nor rendered; the next run after `missive approve` takes them up.
    let held = if config.config.review.require_approval {
        unapproved(ledger, producer, &plan.letters, &accounts)?
    } else {
        Vec::new()
    };
    let planned: Vec<PlannedLetter> = plan
        .letters
        .iter()
        .filter(|l| {
            let template = letter_template(&accounts, l);
            !held.iter().any(|h| h.template == template)
        })
        .map(records::planned_letter)
        .collect::<Result<_, _>>()?;
    let keys = ledger.record_planned(run.id, &planned)?;
    let keys_set: HashSet<_> = keys.iter().collect();
    let (composed, mut email_failed, email_errors) = compose_emails(
        emails,
        &accounts,
        plan.letters.iter().filter(|l| keys_set.contains(&l.key)),
    );
    ledger.record_emails(run.id, &keys, &composed)?;
    for f in &email_failed {
        ledger.set_state(&f.key, LetterState::Failed, Some(run.id), &f.message)?;
    }
    let to_render: Vec<DueLetter> = plan
        .letters
        .iter()
        .filter(|l| keys_set.contains(&l.key) && !email_failed.iter().any(|f| f.key == l.key))
        .cloned()
        .collect();

    let total = to_render.len();
    let mut done = 0;
    let run_id = run.id;
    let summary = producer.produce(
        &to_render,
        &accounts,
        &request.out_dir,
        None,
        |written: &[WrittenLetter], failed: &[FailedLetter]| -> Result<(), RunError> {
            let files: Vec<RenderedFile> = written.iter().map(records::rendered_file).collect();
            ledger.record_rendered(run_id, &files)?;
            for f in failed {
                ledger.set_state(&f.key, LetterState::Failed, Some(run_id), &f.message)?;
            }
            done += written.len() + failed.len();
            progress(done, total);
            Ok(())
        },
    )?;

    let batches = match mailroom {
        Some(mailroom) => {
            let batchable =
                waiting::as_rendered(ledger, producer, run.id, &plan.letters, &accounts)?;
            let mut report =
                mailroom.make_batches(ledger, &run, &batchable, &accounts, &request.out_dir)?;
            waiting::batch_earlier_runs(ledger, config, producer, mailroom, run.id, &mut report)?;
            Some(report)
        }
        None => None,
    };

    // The run's referrals and updates in one transaction, then the Treasury file from the
    // ledger: a crash in between loses nothing (the next run writes the missing file).
    let (actions, deadlines) = crate::treasury_file::actions_of(&plan, &debtors);
    ledger.record_treasury(run.id, &actions, &deadlines)?;
    crate::treasury_file::write_files(ledger, run.id, &request.out_dir)?;
    let sent = ledger.treasury_actions(Some(run.id), None)?;
    let new_referrals = sent.iter().filter(|r| r.action.action == "add").count();
    let treasury_updates = sent.len() - new_referrals;
    write_run_summary(ledger, run.id, &request.out_dir)?;
    ledger.finish_run(run.id, RunStatus::Finished)?;
    let run = ledger.run(run.id)?.ok_or(RunError::UnknownRun(run.id))?;
    email_failed.extend(summary.failed);
    Ok(RunReport {
        run,
        planned: keys.len(),
        written: summary.letters,
        failed: email_failed,
        email_errors,
        new_referrals,
        treasury_updates,
        plan,
        held,
        batches,
    })
}

/// Writes `out_dir/run-<id>.json` from the ledger: every letter this run rendered (across
/// resumes of it) and every letter that failed in it. Each run has its own file, so an
/// empty rerun never hides what an earlier run produced.
fn write_run_summary(ledger: &dyn Ledger, run_id: i64, out_dir: &Path) -> Result<(), RunError> {
    let letters: Vec<serde_json::Value> = ledger
        .letters_of_run(run_id, Some(LetterState::Rendered))?
        .into_iter()
        .map(|l| {
            serde_json::json!({
                "key": l.key, "file": l.file, "pages": l.pages, "sha256": l.file_sha256,
                "template": l.template, "template_sha256": l.template_sha256,
            })
        })
        .collect();
    let failed: Vec<serde_json::Value> = ledger
        .letters_of_run(run_id, Some(LetterState::Failed))?
        .into_iter()
        .map(|l| {
            let reason = ledger
                .events_of(&l.key)
                .ok()
                .and_then(|events| events.last().map(|e| e.detail.clone()))
                .unwrap_or_default();
            serde_json::json!({ "key": l.key, "message": reason })
        })
        .collect();
    let doc = serde_json::json!({ "run_id": run_id, "letters": letters, "failed": failed });
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    write_atomically(&out_dir.join(format!("run-{run_id}.json")), &bytes)?;
    Ok(())
}

/// The template that writes `letter`: its kind's, in its account's language.
pub(crate) fn letter_template(accounts: &HashMap<String, Account>, letter: &DueLetter) -> String {
    let lang = accounts
        .get(&letter.account_id)
        .map_or(Language::En, Language::of);
    template_name_in(letter.kind, lang)
}

/// The templates (kind and language) among `letters` that, at the version loaded now, have
/// no approval: a Spanish template needs its own.
fn unapproved(
    ledger: &dyn Ledger,
    producer: &Producer<'_>,
    letters: &[DueLetter],
    accounts: &HashMap<String, Account>,
) -> Result<Vec<HeldTemplate>, RunError> {
    let hashes = producer.composer.template_hashes();
    let mut counts: std::collections::BTreeMap<(LetterKind, String), usize> =
        std::collections::BTreeMap::new();
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
pub(crate) fn fall_back_to_print(ledger: &dyn Ledger, plan: &mut Plan) -> Result<(), RunError> {
    let keys: std::collections::HashSet<_> = ledger.print_fallbacks()?.into_iter().collect();
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
) -> (
    Vec<crate::ledger::NewEmail>,
    Vec<FailedLetter>,
    Vec<FailedLetter>,
) {
    let (mut emails, mut failed, mut copy_errors) = (Vec::new(), Vec::new(), Vec::new());
    for letter in letters {
        let role = match (letter.channel, letter.email_copy) {
            (Channel::Email, _) => EmailRole::Letter,
            (Channel::Print, true) => EmailRole::Copy,
            (Channel::Print, false) => continue,
        };
        let composed = match accounts.get(&letter.account_id) {
            Some(account) => composer
                .compose(account, letter, role)
                .map_err(|e| e.to_string()),
            None => Err("its account is not loaded".to_owned()),
        };
        match (composed, role) {
            (Ok(email), _) => emails.push(email),
            (Err(message), EmailRole::Letter) => failed.push(FailedLetter {
                key: letter.key.clone(),
                message,
            }),
            (Err(message), EmailRole::Copy) => copy_errors.push(FailedLetter {
                key: letter.key.clone(),
                message,
            }),
        }
    }
    (emails, failed, copy_errors)
}
