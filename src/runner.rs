//! A production run: plan against the ledger, record, render, refer, finish.
//!
//! The order is what makes a run safe to kill at any point:
//! 1. the plan consults the ledger, so a letter already rendered, released or sent is
//!    `already_sent` and never produced again;
//! 2. every due letter is recorded as `planned` in one transaction before anything is
//!    written, so a crash leaves a complete list of what is owed;
//! 3. each PDF is written under a temporary name and renamed; the ledger marks a chunk
//!    `rendered` only after its files are complete;
//! 4. new referrals are recorded in the ledger, then `referrals.csv` is regenerated from
//!    the ledger, so a crash between the two loses nothing (the next run rewrites it).
//!
//! Rerunning the same command after a crash plans again: what was rendered is skipped and
//! what was only planned is rendered now. `--resume RUN_ID` does the same under the old
//! run's id, dates and paths.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::account::{Account, Notice};
use crate::config::LoadedConfig;
use crate::decide::{DecideContext, DueLetter};
use crate::ledger::{
    Ledger, LedgerError, LetterState, NewRun, PlannedLetter, RenderedFile, RunInfo, RunStatus,
    notice_of,
};
use crate::letter::LetterKey;
use crate::load::{self, SourceError};
use crate::mailroom::{BatchReport, Mailroom, MailroomError};
use crate::plan::{Plan, plan_batch};
use crate::produce::{FailedLetter, ProduceError, Producer, WrittenLetter, write_atomically};

/// A run could not be carried out (nothing further was written).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The accounts could not be read at all.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An output file could not be written.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// Making the print batches failed.
    #[error(transparent)]
    Mailroom(Box<MailroomError>),
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
    /// Letters that failed now.
    pub failed: Vec<FailedLetter>,
    /// Referrals made for the first time by this run.
    pub new_referrals: usize,
    /// The print batches made (when the run makes them).
    pub batches: Option<BatchReport>,
}

/// Starts a new run for `request`, or resumes run `resume` with its own dates and paths.
/// `today` guards the mail date unless `allow_past_mail_date`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    ledger: &mut dyn Ledger,
    config: &LoadedConfig,
    producer: &Producer<'_>,
    request: RunRequest,
    resume: Option<i64>,
    today: NaiveDate,
    allow_past_mail_date: bool,
    mailroom: Option<&Mailroom<'_>>,
    mut progress: impl FnMut(usize, usize),
) -> Result<RunReport, RunError> {
    let (run, request) = match resume {
        Some(id) => {
            if ledger.run(id)?.is_none() {
                return Err(RunError::UnknownRun(id));
            }
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
            if request.mail_date < today && !allow_past_mail_date {
                return Err(RunError::PastMailDate {
                    mail_date: request.mail_date,
                    today,
                });
            }
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
    if resume.is_some() && request.mail_date < today && !allow_past_mail_date {
        return Err(RunError::PastMailDate {
            mail_date: request.mail_date,
            today,
        });
    }

    let calendar = config.config.holiday_calendar();
    let ctx = DecideContext {
        as_of: request.as_of,
        mail_date: request.mail_date,
        policy: &config.config.policy,
        calendar: &calendar,
    };
    let mut prior = ledger.prior_notices()?;
    if mailroom.is_some() {
        forget_own_unbatched(ledger, run.id, &mut prior)?;
    }
    let mut accounts: HashMap<String, Account> = HashMap::new();
    let plan = plan_batch(load::records(&request.accounts)?, &prior, &ctx, |planned| {
        if !planned.decision.letters.is_empty() {
            accounts.insert(planned.account.account_id.clone(), planned.account.clone());
        }
    });

    let planned: Vec<PlannedLetter> = plan.letters.iter().map(PlannedLetter::from_due).collect();
    let keys = ledger.record_planned(run.id, &planned)?;
    let to_render: Vec<DueLetter> = {
        let keys: std::collections::HashSet<_> = keys.iter().collect();
        plan.letters
            .iter()
            .filter(|l| keys.contains(&l.key))
            .cloned()
            .collect()
    };

    // Each run writes its own summary, so an empty rerun never hides an earlier run's.
    let summary_file = format!("run-{}.json", run.id);
    let total = to_render.len();
    let mut done = 0;
    let run_id = run.id;
    let summary = producer.produce(
        &to_render,
        &accounts,
        &request.out_dir,
        &summary_file,
        |written: &[WrittenLetter], failed: &[FailedLetter]| -> Result<(), RunError> {
            let files: Vec<RenderedFile> = written.iter().map(RenderedFile::from).collect();
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
            Some(mailroom.make_batches(ledger, &run, &plan.letters, &accounts, &request.out_dir)?)
        }
        None => None,
    };

    let new_referrals = ledger.record_referrals(run.id, &plan.referrals)?;
    write_referrals_csv(ledger, &request.out_dir)?;
    ledger.finish_run(run.id, RunStatus::Finished)?;
    let run = ledger.run(run.id)?.ok_or(RunError::UnknownRun(run.id))?;
    Ok(RunReport {
        run,
        planned: keys.len(),
        written: summary.letters,
        failed: summary.failed,
        new_referrals: new_referrals.len(),
        plan,
        batches,
    })
}

/// A resumed run whose letters were rendered but not batched (it died in between) plans
/// them again from the same data, so that they can be batched: their notices are left
/// out of what decide sees as already sent. The ledger still never renders them twice
/// (`record_planned` skips a letter that counts as sent).
fn forget_own_unbatched(
    ledger: &dyn Ledger,
    run_id: i64,
    prior: &mut HashMap<String, Vec<Notice>>,
) -> Result<(), RunError> {
    let open: HashSet<LetterKey> = ledger
        .unbatched_letters()?
        .into_iter()
        .filter(|(_, run)| *run == run_id)
        .map(|(key, _)| key)
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    for letter in ledger.letters_of_run(run_id, Some(LetterState::Rendered))? {
        if !open.contains(&letter.key) {
            continue;
        }
        if let (Some(notice), Some(list)) = (notice_of(&letter)?, prior.get_mut(&letter.account_id))
            && let Some(at) = list.iter().position(|n| *n == notice)
        {
            list.remove(at);
        }
    }
    Ok(())
}

/// Regenerates `out_dir/referrals.csv` from every referral in the ledger: one row per
/// referred liability, with the run that referred it.
fn write_referrals_csv(ledger: &dyn Ledger, out_dir: &Path) -> Result<(), RunError> {
    let mut csv = String::from(
        "run_id,referred_at,account_id,notice_key,deadline_passed,referral_amount,liability_id\n",
    );
    for r in ledger.referrals()? {
        for liability in &r.liability_ids {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{}",
                r.run_id,
                r.at,
                csv_field(&r.account_id),
                csv_field(r.notice_key.as_str()),
                r.deadline_passed,
                r.amount,
                csv_field(liability)
            );
        }
    }
    write_atomically(&out_dir.join("referrals.csv"), csv.as_bytes())?;
    Ok(())
}

/// Quotes a CSV field when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
