//! A production run, the orchestration layer: the steps in order, and every ledger write
//! of a run between them.
//!
//! A run takes these steps, each a function from values to values ([`Step`] names them
//! for progress); the stages they call (decide, compose, render, mailroom, dispatch,
//! treasury_file) take values and return values and never touch the ledger: every write
//! is here, in this order, and the order is what makes a run safe to kill at any point:
//!
//! 1. **plan** and **record**, a chunk of accounts at a time (see `runner/record.rs`): the
//!    plan consults the ledger, so a letter already rendered, released or sent is
//!    `already_sent` and never produced again; what TOP holds by the ledger goes into
//!    decide, so no referral or update is sent twice. Each chunk's due letters are recorded
//!    as `planned` (one transaction per chunk) before anything is rendered, so a crash
//!    leaves a list of what is owed (the next run plans again and finds the rest); the
//!    emails of letters that go by email (and the email copies of intents to offset) are
//!    composed and recorded with their chunk, so a rendered email letter always has its
//!    email in the ledger;
//! 2. **pieces**: the print letters with an address get their mail pieces (IMb serial,
//!    certified article number) in one transaction, in print order (a range too short
//!    fails the run here, before anything is rendered; a letter that has an open piece
//!    keeps it, so a killed run taken up again renders the same marks);
//! 3. **produce**: the accounts are planned once more to store each letter's payload
//!    (what rendering it needs, with its piece and marks; the two passes must agree, or
//!    the run stops before rendering); this process, and any worker process
//!    (`run --workers N`, `run --worker`), claims chunks of the run's planned letters for a
//!    lease and renders them until none is planned (see `runner/work.rs`). Each PDF is
//!    written under a temporary name and renamed; the ledger marks a chunk `rendered` only
//!    after its files are complete (see [`crate::produce`], part of this layer). A print
//!    letter is composed with its piece's barcode and article number, and the ledger
//!    records which piece its file carries. The run keeps only each letter's key and each
//!    print letter's place in print order, never its plan or accounts;
//! 4. **batch** (unless `--no-batches`): every rendered print letter in no batch is batched,
//!    this run's (read back from its payloads a batch at a time) and any earlier run's (see
//!    [`waiting`]): pieces are allocated in one
//!    transaction before anything is written (the run's own letters have theirs from step
//!    2); a batch's files are written under temporary
//!    names, and the batch is recorded (with its pieces' places) only after they are
//!    complete and its pieces are checked still open. A crash before that leaves the
//!    pieces open: the next attempt batches them again with the same serials and article
//!    numbers, under the same batch name. `control.json` is rewritten from the ledger;
//! 5. **refer**: the run's Treasury actions (new referrals, decreases, deletes) are recorded
//!    in one transaction, then `treasury/<run>.csv` and its control file are written from
//!    the ledger's records, so a crash between the two loses nothing (the next run writes
//!    any missing file);
//! 6. **finish**: `run-<id>.json` is written from the ledger and the run recorded
//!    `finished`;
//! 7. **release** (`--release`): the batches written now are recorded `released`, and
//!    `control.json` rewritten;
//! 8. **send** (`--send`): emails left `sending` by a process that died become `uncertain`;
//!    then each round of messages is recorded `sending` (committed) BEFORE its SMTP
//!    transactions start and its outcomes recorded after ([`send`]).
//!
//! A run that stops on an error in steps 1–6 is recorded `failed` with the reason, when the
//! ledger can still be written. Steps 7 and 8 come after the run finished: an error there
//! leaves the run `finished` and is reported in [`RunReport::stopped`].
//!
//! With `review.require_approval`, letters whose template version (content hash of template,
//! partials and layout) has no approval in the ledger are set aside as they are planned: they are
//! neither recorded nor rendered, and [`RunReport::held`] names their templates. A letter
//! whose email was refused for good with `--fallback-print` is planned as first-class mail.
//!
//! Rerunning the same command after a crash plans again: what was rendered is skipped and
//! what was only planned is rendered now. [`Start::Resume`] does the same under the old
//! run's id, dates and paths.

mod batch;
mod payload;
mod progress;
mod record;
pub(crate) mod records;
mod refer;
mod send;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_send;
mod waiting;
mod work;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::LoadedConfig;
use crate::dispatch::{DispatchError, EmailComposer, Mailer, SendOptions};
use crate::ledger::{BatchRecord, Ledger, LedgerError, NewRun, RunInfo};
use crate::letter::{LetterKey, LetterKind};
use crate::load::SourceError;
use crate::mailroom::Mailroom;
use crate::produce::{FailedLetter, ProduceError, Producer};

pub use batch::{BatchError, BatchReport, write_control};
pub use progress::{NoProgress, Progress, Step};
pub use send::{SendSummary, outbox, recover_sends, send, write_eml_dir};

pub use records::RecordError;
pub use work::{
    NoWorkers, WorkOptions, WorkerError, WorkerReport, Workers, work_as_worker, worker_name,
};

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
    Batch(Box<BatchError>),
    /// Formatting the Treasury file failed (its actions are in the ledger: the next run
    /// writes it).
    #[error(transparent)]
    Treasury(#[from] crate::treasury_file::TreasuryFileError),
    /// Sending could not start (SMTP configuration, TLS).
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// A worker's approval check refused a letter (the coordinator's gate held it back
    /// before it was recorded, so this means the templates changed under the run).
    #[error(transparent)]
    Worker(Box<work::WorkerError>),
    /// The accounts gave other letters when they were planned again to store the
    /// letters' payloads than when the letters were recorded (the file changed during the
    /// run); nothing of a chunk that changed is stored, and the run stops before rendering.
    #[error(
        "the accounts in {} changed while the run was recording them: planned again, they no longer give the letters just recorded; the run stopped before rendering\n\nhint: run again once the accounts are final",
        accounts.display()
    )]
    AccountsChanged {
        /// The accounts path.
        accounts: PathBuf,
    },
    /// The accounts path is neither a regular file nor a directory: a run reads its
    /// accounts twice, so they cannot come from a pipe or a device.
    #[error(
        "{} is neither a regular file nor a directory: a run reads its accounts twice (to record the letters, then to store what rendering each needs)\n\nhint: copy the accounts to a file first",
        accounts.display()
    )]
    AccountsNotAFile {
        /// The accounts path.
        accounts: PathBuf,
    },
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

impl From<BatchError> for RunError {
    fn from(err: BatchError) -> Self {
        RunError::Batch(Box::new(err))
    }
}

/// A new run: what to plan, where to write, and its dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRunSpec {
    /// Accounts path.
    pub accounts: PathBuf,
    /// Output directory.
    pub out_dir: PathBuf,
    /// As-of date.
    pub as_of: NaiveDate,
    /// Mail date.
    pub mail_date: NaiveDate,
}

/// How a run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A new run.
    New(NewRunSpec),
    /// An earlier run taken up again with its own dates, accounts and output directory.
    Resume(i64),
}

/// The print batches a run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Record the batches written now as released to the mailroom at once.
    pub release: bool,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// A new run or a resumed one.
    pub start: Start,
    /// Today: the mail date may not be before it, unless `allow_past_mail_date`.
    pub today: NaiveDate,
    /// Allow a mail date before today (letters dated in the past).
    pub allow_past_mail_date: bool,
    /// Make print batches (`None`: `--no-batches`, a later run batches the letters).
    pub batches: Option<BatchOptions>,
    /// Send the queued emails after the run (`None`: no sending).
    pub send: Option<SendOptions>,
    /// How this process claims and renders the run's letters (chunk, lease).
    pub work: WorkOptions,
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

/// What a run's report keeps of its plan: what `missive run` prints of it, not the letters
/// (so the report does not grow with the run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOutcome {
    /// Accounts or letters that could not be planned, in input order.
    pub errors: Vec<crate::plan::PlanError>,
    /// Liabilities left out because a letter for them was already sent (suppressed
    /// `already_sent`).
    pub already_sent: usize,
}

/// What a run did, from planning to sending.
#[derive(Debug)]
pub struct RunReport {
    /// The run.
    pub run: RunInfo,
    /// What the report keeps of the plan it worked from: its errors and how many
    /// liabilities were already covered (the plan's letters are not held past the run).
    pub plan: PlanOutcome,
    /// Letters recorded as planned in this run.
    pub planned: usize,
    /// How many letters were rendered now (by this process or its workers).
    pub rendered: usize,
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
    /// The print batches made (when the run makes them), as the ledger holds them after
    /// the release step.
    pub batches: Option<BatchReport>,
    /// The batches released by the run (`--release`), by name.
    pub released: Vec<String>,
    /// Emails an earlier send left `sending`, now `uncertain` (`--send`).
    pub recovered_sends: Vec<LetterKey>,
    /// What sending did (`--send`).
    pub send: Option<SendSummary>,
    /// The error a step after the run finished (release, send) stopped on; what the
    /// report shows happened before it. The run itself stays `finished`.
    pub stopped: Option<RunError>,
}

impl RunReport {
    /// True when the run left nothing for a person to look at (exit status 0): every
    /// account planned, no letter failed or held, every email copy composed, no print
    /// letter left out of a batch, and (with `--send`) every email sent.
    pub fn is_clean(&self) -> bool {
        self.plan.errors.is_empty()
            && self.failed.is_empty()
            && self.held.is_empty()
            && self.email_errors.is_empty()
            && self.batches.as_ref().is_none_or(|b| b.left_over.is_empty())
            && self
                .send
                .as_ref()
                .is_none_or(|s| s.all_sent() && self.recovered_sends.is_empty())
            && self.stopped.is_none()
    }

    /// The batches written by the run that were released.
    pub fn released_batches(&self) -> impl Iterator<Item = &BatchRecord> {
        self.batches
            .iter()
            .flat_map(|b| &b.written)
            .filter(|b| self.released.contains(&b.name))
    }
}

/// Makes the SMTP transport when the run sends (not before: a run without `--send` needs
/// no mail server configuration).
pub type MakeMailer<'a> = dyn Fn() -> Result<Box<dyn Mailer + 'a>, DispatchError> + 'a;

/// Everything a run works with: configuration, loaded templates and fonts (through the
/// producer), the email composer, the mailroom, the mail transport and a progress sink.
/// `'m` is the lifetime of what the mail transport borrows.
pub struct Run<'a, 'm> {
    /// The configuration in effect (its hash is recorded with the run).
    pub config: &'a LoadedConfig,
    /// Composes and renders letters (its composer and renderer make the batches too).
    pub producer: &'a Producer<'a>,
    /// Composes the emails.
    pub emails: &'a EmailComposer,
    /// Makes the print batches.
    pub mailroom: &'a Mailroom<'a>,
    /// Makes the transport for the send step.
    pub mailer: &'a MakeMailer<'m>,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Worker processes to start for the produce step ([`NoWorkers`]: this process
    /// renders every letter).
    pub workers: &'a dyn Workers,
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

impl Run<'_, '_> {
    /// Starts or resumes a run and takes every step (see the module docs).
    pub fn run(
        &self,
        ledger: &mut dyn Ledger,
        options: &RunOptions,
    ) -> Result<RunReport, RunError> {
        let (run, spec) = start(ledger, self.config, options)?;
        let run_id = run.id;
        let mut report = match self.carry_out(ledger, run, &spec, options) {
            Ok(report) => report,
            Err(err) => {
                // Best effort: on a read-only file system the ledger may refuse this too;
                // the run then stays `running` and the next run records it `interrupted`.
                let _ = ledger.fail_run(run_id, &error_chain(&err));
                return Err(err);
            }
        };
        if let Err(err) = self.after_finish(ledger, &mut report, options) {
            report.stopped = Some(err);
        }
        Ok(report)
    }

    /// The run itself, once it is recorded: plan, record, produce, batch, refer, finish.
    fn carry_out(
        &self,
        ledger: &mut dyn Ledger,
        run: RunInfo,
        spec: &NewRunSpec,
        options: &RunOptions,
    ) -> Result<RunReport, RunError> {
        let batching = options.batches.is_some();
        let recorded = self.plan_and_record(ledger, run.id, spec, batching)?;

        self.progress.start(Step::Produce, recorded.to_render.len());
        let summary = self.produce(
            ledger,
            run.id,
            &recorded.to_render,
            &spec.out_dir,
            &options.work,
        )?;
        self.progress.finish();

        let batches = if batching {
            self.progress.start(Step::Batch, 0);
            let report = self.batch(ledger, &run, &recorded.print)?;
            self.progress.finish();
            Some(report)
        } else {
            None
        };

        self.progress.start(Step::Refer, 0);
        let (new_referrals, treasury_updates) =
            refer::refer(ledger, run.id, &recorded.treasury, &spec.out_dir)?;
        self.progress.finish();

        self.progress.start(Step::Finish, 0);
        let run = refer::finish(ledger, run.id, &spec.out_dir)?;
        self.progress.finish();

        let mut failed = recorded.email_failed;
        failed.extend(summary.failed);
        Ok(RunReport {
            run,
            planned: recorded.planned,
            rendered: summary.rendered,
            failed,
            email_errors: recorded.email_errors,
            new_referrals,
            treasury_updates,
            plan: recorded.outcome,
            held: recorded.held,
            batches,
            released: Vec::new(),
            recovered_sends: Vec::new(),
            send: None,
            stopped: None,
        })
    }

    /// The steps after the run finished: release its batches, send the queued emails.
    fn after_finish(
        &self,
        ledger: &mut dyn Ledger,
        report: &mut RunReport,
        options: &RunOptions,
    ) -> Result<(), RunError> {
        if let (Some(BatchOptions { release: true }), Some(batches)) =
            (options.batches, report.batches.as_mut())
        {
            self.progress.start(Step::Release, batches.written.len());
            report.released = batch::release(ledger, &report.run, batches)?;
            self.progress.finish();
        }
        if let Some(send_options) = options.send {
            report.recovered_sends = recover_sends(ledger)?;
            let mailer = (self.mailer)()?;
            report.send = Some(send(
                ledger,
                &self.config.config,
                mailer.as_ref(),
                send_options,
                self.progress,
            )?);
        }
        Ok(())
    }
}

/// Records the run: a new one (absolute paths, so `--resume` from another directory finds
/// the same files) or a resumed one with its own dates and paths. The mail date is checked
/// first: a refused run leaves the ledger as it was.
fn start(
    ledger: &mut dyn Ledger,
    config: &LoadedConfig,
    options: &RunOptions,
) -> Result<(RunInfo, NewRunSpec), RunError> {
    match &options.start {
        Start::Resume(id) => {
            let old = ledger.run(*id)?.ok_or(RunError::UnknownRun(*id))?;
            check_mail_date(old.mail_date, options.today, options.allow_past_mail_date)?;
            let run = ledger.resume_run(*id)?;
            let spec = NewRunSpec {
                accounts: PathBuf::from(&run.accounts),
                out_dir: PathBuf::from(&run.out_dir),
                as_of: run.as_of,
                mail_date: run.mail_date,
            };
            Ok((run, spec))
        }
        Start::New(spec) => {
            check_mail_date(spec.mail_date, options.today, options.allow_past_mail_date)?;
            let absolute = |path: &Path| -> Result<PathBuf, RunError> {
                std::path::absolute(path).map_err(|source| {
                    RunError::Produce(ProduceError::Write {
                        path: path.to_owned(),
                        source,
                    })
                })
            };
            let spec = NewRunSpec {
                accounts: absolute(&spec.accounts)?,
                out_dir: absolute(&spec.out_dir)?,
                ..spec.clone()
            };
            let run = ledger.begin_run(&NewRun {
                as_of: spec.as_of,
                mail_date: spec.mail_date,
                config_sha256: config.sha256.clone(),
                accounts: spec.accounts.display().to_string(),
                out_dir: spec.out_dir.display().to_string(),
            })?;
            Ok((run, spec))
        }
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
