//! The **produce** step as a work queue: several processes render one run.
//!
//! The record step stores, for every letter it will render, a payload in the ledger
//! ([`super::payload`]: the due letter with the fields the plan JSON leaves out, its account,
//! its mail marks and piece), so that any process with the same configuration, templates,
//! fonts and output directory can render it without the accounts file. Rendering is then a
//! loop ([`work_through`]): claim a chunk of the run's planned letters for a lease, render
//! it, record it `rendered` (or `failed`), until nothing is claimable; the coordinator
//! (the process that runs `run`) then waits until no letter of the run is planned, taking
//! over any claim whose lease ran out (its worker died). Workers (`run --worker`,
//! [`work_as_worker`]) run the same loop on the ledger's running run.
//!
//! Each process pipelines the loop (`claim_loop`): a render thread renders one composed
//! chunk while the process's own thread writes the files of the chunk before, records it
//! and claims and composes the next, so the render threads do not wait for the disk, the
//! ledger's commit or the payloads. Only that own thread touches the ledger, and it
//! records a chunk `rendered` only after writing its files, so a file recorded is complete
//! on disk; at most [`PIPELINE_DEPTH`] chunks are claimed and not yet recorded at a time.
//!
//! Invariants: a letter is rendered only from its payload, and only when the payload's
//! plan entry hashes to the `data_sha256` the ledger recorded for it (else it fails with a
//! clear message: never a different letter); the ledger records a letter rendered once
//! (`record_rendered` is a no-op for the same file again), so a letter rendered twice after
//! a lease ran out is one `rendered` event, and its file (same bytes) is written by one
//! process at a time ([`crate::produce::write_atomically`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::payload::read_payload;
use super::records::rendered_file;
use super::{Progress, RunError};
use crate::account::Account;
use crate::compose::MailMarks;
use crate::decide::DueLetter;
use crate::ledger::{ClaimedLetter, Ledger, LedgerError, LetterState, RenderedFile, RunStatus};
use crate::letter::LetterKey;
use crate::produce::{
    ComposedChunk, FailedLetter, ProduceError, Producer, RenderedChunk, WrittenLetter,
};

/// How a process takes part in a run's produce step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkOptions {
    /// The name its claims carry (`host:pid` by default).
    pub worker: String,
    /// Letters claimed at a time.
    pub chunk: usize,
    /// How long a claim lasts: a process that dies leaves its chunk to others after it.
    pub lease: Duration,
    /// How long to wait between looks at the ledger when nothing is claimable.
    pub poll: Duration,
}

impl Default for WorkOptions {
    /// This process, [`crate::produce::RUN_CHUNK`] letters a claim, a 5-minute lease
    /// (a chunk renders in seconds), polling every 200 ms.
    fn default() -> Self {
        WorkOptions {
            worker: worker_name(),
            chunk: crate::produce::RUN_CHUNK,
            lease: Duration::from_secs(300),
            poll: Duration::from_millis(200),
        }
    }
}

/// `host:pid`, the name of this process's claims.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Worker processes a coordinator starts for its produce step (`run --workers N`); the
/// command line starts them, the runner only says when.
pub trait Workers {
    /// Starts them: the run's letters and payloads are recorded.
    fn start(&self, run_id: i64);

    /// Waits for them to exit (the run has no planned letter left) and reports any that
    /// failed; their letters were taken over when their leases ran out.
    fn wait(&self);
}

/// No worker processes: the coordinator renders every letter itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWorkers;

impl Workers for NoWorkers {
    fn start(&self, _run_id: i64) {}

    fn wait(&self) {}
}

/// A claimed chunk from its claim to its record: what recording its letters needs.
struct Claim {
    /// Each letter's mail piece and marks (print letters with an address).
    pieces: HashMap<LetterKey, (i64, MailMarks)>,
    /// The data and payload hashes each letter was made from: recording refuses the file
    /// if the letter was planned again (other data, another payload) meanwhile.
    made_from: HashMap<LetterKey, (String, String)>,
}

/// Reads claimed letters from their payloads (failing those that cannot be read), checks
/// them against this process's fonts and templates (and approvals), and composes them a
/// [`Producer::chunk`] at a time: what is left is to render, write and record each
/// composed chunk.
fn prepare_claimed(
    ledger: &mut dyn Ledger,
    job: &Job<'_>,
    claimed: &[ClaimedLetter],
    gate: &mut Gate,
) -> Result<Prepared, Stop> {
    let Job {
        producer,
        run_id,
        out_dir,
        progress,
    } = *job;
    let mut letters = Vec::with_capacity(claimed.len());
    let mut accounts: HashMap<String, Account> = HashMap::new();
    let mut claim = Claim {
        pieces: HashMap::new(),
        made_from: HashMap::new(),
    };
    let mut unreadable = Vec::new();
    for item in claimed {
        // The plan hash came with the claim, from the same transaction.
        match read_payload(item, &item.data_sha256) {
            Ok(payload) => {
                let own_fonts = producer.renderer.fonts_sha256();
                if payload.fonts_sha256 != own_fonts {
                    return Err(Stop::Gate(WorkerError::OtherFonts {
                        run_fonts: if payload.fonts_sha256.is_empty() {
                            "(none recorded: planned by an older missive)".to_owned()
                        } else {
                            payload.fonts_sha256
                        },
                        own_fonts: own_fonts.to_owned(),
                    }));
                }
                gate.check(
                    ledger,
                    producer,
                    &payload.letter,
                    &payload.account,
                    &payload.template_sha256,
                )?;
                claim.made_from.insert(
                    item.key.clone(),
                    (item.data_sha256.clone(), item.payload_sha256.clone()),
                );
                if let (Some(piece), Some(marks)) = (payload.piece, payload.marks) {
                    claim.pieces.insert(item.key.clone(), (piece, marks));
                }
                accounts.insert(payload.account.account_id.clone(), payload.account);
                letters.push(payload.letter);
            }
            Err(message) => unreadable.push(FailedLetter {
                key: item.key.clone(),
                message,
            }),
        }
    }
    for f in &unreadable {
        ledger.set_state(&f.key, LetterState::Failed, Some(run_id), &f.message)?;
    }
    progress.advance(unreadable.len());
    let marks = |key: &LetterKey| claim.pieces.get(key).map(|(_, marks)| marks);
    let composed = letters
        .chunks(producer.chunk.max(1))
        .map(|chunk| producer.compose_chunk(chunk, &accounts, &marks, out_dir))
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunError::from)?;
    Ok(Prepared {
        claim: Rc::new(claim),
        chunks: composed,
        unreadable,
    })
}

/// A claim read and composed ([`prepare_claimed`]).
struct Prepared {
    claim: Rc<Claim>,
    /// Its letters composed, a [`Producer::chunk`] at a time.
    chunks: Vec<ComposedChunk>,
    /// Its letters whose payloads could not be read (recorded `failed` already).
    unreadable: Vec<FailedLetter>,
}

/// Records a chunk whose files are complete on disk: its written letters `rendered` (with
/// the piece each file carries and the hashes it was made from), its failures `failed`.
fn record_chunk(
    ledger: &mut dyn Ledger,
    job: &Job<'_>,
    claim: &Claim,
    written: &[WrittenLetter],
    failed: &[FailedLetter],
) -> Result<(), RunError> {
    let files: Vec<RenderedFile> = written
        .iter()
        .map(|w| {
            let piece = claim.pieces.get(&w.key).map(|(piece, _)| *piece);
            let (data, payload) = claim.made_from.get(&w.key).cloned().unwrap_or_default();
            rendered_file(w, piece, data, Some(payload))
        })
        .collect();
    ledger.record_rendered(job.run_id, &files)?;
    for f in failed {
        ledger.set_state(&f.key, LetterState::Failed, Some(job.run_id), &f.message)?;
    }
    job.progress.advance(written.len() + failed.len());
    Ok(())
}

/// Chunks composed and handed to the render thread, oldest first, each with its claim.
/// The render thread renders them in this order; this process's thread (the ledger's only
/// writer) writes each one's files and records it while the next one renders.
struct Pipeline<'s> {
    /// To the render thread (`None` once closed).
    to_render: Option<mpsc::Sender<ComposedChunk>>,
    /// From it, in the order sent.
    rendered: mpsc::Receiver<Result<RenderedChunk, ProduceError>>,
    /// The claim of each chunk sent and not yet written, in the order sent.
    waiting: VecDeque<Rc<Claim>>,
    /// Tells the render thread to skip what it has not started (this loop stopped).
    cancel: &'s AtomicBool,
}

/// Chunks kept in the pipeline: one rendering while the one before is written and
/// recorded and the next is claimed and composed.
const PIPELINE_DEPTH: usize = 2;

impl Pipeline<'_> {
    /// Hands a composed chunk of `claim` to the render thread.
    fn send(&mut self, chunk: ComposedChunk, claim: &Rc<Claim>) -> Result<(), RunError> {
        let sent = self
            .to_render
            .as_ref()
            .is_some_and(|to_render| to_render.send(chunk).is_ok());
        if !sent {
            return Err(ProduceError::RenderThread.into());
        }
        self.waiting.push_back(Rc::clone(claim));
        Ok(())
    }

    /// Waits for the oldest chunk to be rendered, writes its files and records it; hands
    /// each letter written to `written` and returns those that failed. `None` when no
    /// chunk is waiting.
    fn finish_next(
        &mut self,
        ledger: &mut dyn Ledger,
        job: &Job<'_>,
        written: &mut impl FnMut(WrittenLetter),
    ) -> Option<Result<Vec<FailedLetter>, RunError>> {
        let claim = self.waiting.pop_front()?;
        Some((|| {
            let rendered = self
                .rendered
                .recv()
                .map_err(|_| ProduceError::RenderThread)??;
            let outcome = job.producer.write_chunk(rendered, job.out_dir)?;
            record_chunk(ledger, job, &claim, &outcome.written, &outcome.failed)?;
            outcome.written.into_iter().for_each(written);
            Ok(outcome.failed)
        })())
    }
}

impl Drop for Pipeline<'_> {
    /// Stops the render thread after the chunk it is rendering: what it has not started
    /// stays claimed, and is claimable again when the lease runs out.
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.to_render = None;
    }
}

/// When a claim loop stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// No letter of the run is planned any more (the coordinator: it waits for workers).
    NothingPlanned,
    /// As `NothingPlanned` once the run recorded its payloads, or when the run stops
    /// being `running` (a worker).
    RunDone,
}

/// Why a claim loop stopped early.
#[derive(Debug, thiserror::Error)]
enum Stop {
    /// The ledger or the output failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A worker's template version is not approved.
    #[error(transparent)]
    Gate(WorkerError),
}

impl From<LedgerError> for Stop {
    fn from(err: LedgerError) -> Self {
        Stop::Run(err.into())
    }
}

/// The approval gate as a worker applies it: with `on`, a letter is rendered only when
/// its template version (this process's) is approved in the ledger; `approved` caches the
/// answers by template.
struct Gate {
    on: bool,
    approved: HashMap<String, bool>,
}

impl Gate {
    /// Refuses (the whole worker) a letter whose template version is not the one the
    /// run planned with, or (approvals on) nobody approved.
    fn check(
        &mut self,
        ledger: &dyn Ledger,
        producer: &Producer<'_>,
        letter: &DueLetter,
        account: &Account,
        run_version: &str,
    ) -> Result<(), Stop> {
        let template = super::record::account_template(Some(account), letter);
        let sha = producer
            .composer
            .template_hashes()
            .get(&template)
            .cloned()
            .unwrap_or_default();
        if sha != run_version {
            return Err(Stop::Gate(WorkerError::OtherTemplates {
                template,
                run_version: run_version.to_owned(),
                own_version: sha,
            }));
        }
        if !self.on {
            return Ok(());
        }
        let approved = match self.approved.get(&template) {
            Some(known) => *known,
            None => {
                let known = ledger.approval_of(&template, &sha)?.is_some();
                self.approved.insert(template.clone(), known);
                known
            }
        };
        if approved {
            Ok(())
        } else {
            Err(Stop::Gate(WorkerError::NotApproved {
                template,
                template_sha256: sha,
            }))
        }
    }
}

/// What rendering claimed letters needs besides the ledger.
struct Job<'a> {
    producer: &'a Producer<'a>,
    run_id: i64,
    out_dir: &'a std::path::Path,
    progress: &'a dyn Progress,
}

/// Claims and renders chunks of the run's letters until `until`; hands each letter this
/// process rendered to `written` and returns those it failed.
///
/// Rendering is pipelined: the render threads render one chunk while this thread writes
/// the files of the chunk before and records it, and claims and composes the next, so
/// they do not wait for the disk, the ledger's commit or the payloads. A chunk is
/// recorded `rendered` only after its files are complete on disk, and only this thread
/// touches the ledger. Up to [`PIPELINE_DEPTH`] claims are held at a time, each under its
/// lease.
fn claim_loop(
    ledger: &mut dyn Ledger,
    job: &Job<'_>,
    options: &WorkOptions,
    until: Until,
    mut gate: Gate,
    mut written: impl FnMut(WrittenLetter),
) -> Result<Vec<FailedLetter>, Stop> {
    let cancel = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (to_render, render_queue) = mpsc::channel::<ComposedChunk>();
        let (rendered_tx, rendered) = mpsc::channel();
        let producer = job.producer;
        let cancel_ref = &cancel;
        let renderer = std::thread::Builder::new()
            .name("missive-produce".to_owned())
            .spawn_scoped(scope, move || {
                for chunk in render_queue {
                    if cancel_ref.load(Ordering::Relaxed) {
                        break;
                    }
                    if rendered_tx.send(producer.render_chunk(chunk)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|source| RunError::from(ProduceError::StartThread(source)))?;
        let mut pipeline = Pipeline {
            to_render: Some(to_render),
            rendered,
            waiting: VecDeque::new(),
            cancel: &cancel,
        };
        let outcome = claim_chunks(
            ledger,
            job,
            options,
            until,
            &mut gate,
            &mut pipeline,
            &mut written,
        );
        // Joined here, not by the scope: a render thread that panicked is this loop's
        // error (the run is recorded failed), not a panic of the whole process.
        drop(pipeline);
        match (renderer.join(), outcome) {
            (Ok(()), outcome) | (Err(_), outcome @ Err(_)) => outcome,
            (Err(_), Ok(_)) => Err(RunError::from(ProduceError::RenderThread).into()),
        }
    })
}

/// The body of [`claim_loop`], with the render thread started.
fn claim_chunks(
    ledger: &mut dyn Ledger,
    job: &Job<'_>,
    options: &WorkOptions,
    until: Until,
    gate: &mut Gate,
    pipeline: &mut Pipeline<'_>,
    written: &mut impl FnMut(WrittenLetter),
) -> Result<Vec<FailedLetter>, Stop> {
    let run_id = job.run_id;
    let mut failed = Vec::new();
    loop {
        if pipeline.waiting.len() < PIPELINE_DEPTH {
            let claimed = ledger.claim_letters(
                run_id,
                &options.worker,
                options.chunk.max(1),
                options.lease,
            )?;
            if !claimed.is_empty() {
                match prepare_claimed(ledger, job, &claimed, gate) {
                    Ok(prepared) => {
                        failed.extend(prepared.unreadable);
                        for chunk in prepared.chunks {
                            pipeline.send(chunk, &prepared.claim)?;
                        }
                    }
                    Err(stop) => {
                        // What was claimed before is rendered and recorded first, as
                        // when chunks were taken one at a time.
                        while let Some(done) = pipeline.finish_next(ledger, job, written) {
                            failed.extend(done?);
                        }
                        return Err(stop);
                    }
                }
                continue;
            }
        }
        if let Some(done) = pipeline.finish_next(ledger, job, written) {
            failed.extend(done?);
            continue;
        }
        let left = ledger.work_left(run_id)?;
        let finished = match until {
            Until::NothingPlanned => left.planned == 0,
            Until::RunDone => {
                (left.planned == 0 && left.recorded > 0)
                    || ledger
                        .run(run_id)?
                        .is_none_or(|r| r.status != RunStatus::Running)
            }
        };
        if finished {
            return Ok(failed);
        }
        std::thread::sleep(options.poll);
    }
}

/// What the coordinator's produce step gives the run's report.
#[derive(Debug, Default)]
pub(super) struct Produced {
    /// Letters of the run rendered, by this process or a worker.
    pub(super) rendered: usize,
    /// Letters of the run that failed, `to_render`'s in its order, then any other.
    pub(super) failed: Vec<FailedLetter>,
}

/// Letters read from the ledger in one call when the coordinator looks up what other
/// processes rendered.
pub(super) const OTHERS_READ: usize = 1024;

/// The coordinator's produce step: renders what it can claim of `to_render` (and any other
/// letter planned in the run with a payload), waits until no letter of the run is planned
/// (workers render the rest; expired claims are taken over), then counts the letters
/// rendered and lists those that failed, whoever rendered them. Of the letters it rendered
/// itself it keeps only the keys, so what it holds is a key per letter.
pub(super) fn work_through(
    ledger: &mut dyn Ledger,
    producer: &Producer<'_>,
    run_id: i64,
    to_render: &[LetterKey],
    out_dir: &std::path::Path,
    options: &WorkOptions,
    progress: &dyn Progress,
) -> Result<Produced, RunError> {
    std::fs::create_dir_all(out_dir).map_err(|source| crate::produce::ProduceError::Write {
        path: out_dir.to_owned(),
        source,
    })?;
    let gate = Gate {
        on: false,
        approved: HashMap::new(),
    };
    let job = Job {
        producer,
        run_id,
        out_dir,
        progress,
    };
    let mut written: HashSet<LetterKey> = HashSet::new();
    let own = claim_loop(ledger, &job, options, Until::NothingPlanned, gate, |w| {
        written.insert(w.key);
    })
    .map_err(|e| match e {
        Stop::Run(e) => e,
        // The coordinator renders only what its own approval gate let through.
        Stop::Gate(e) => RunError::Worker(Box::new(e)),
    })?;
    let mut failed: HashMap<LetterKey, FailedLetter> =
        own.into_iter().map(|f| (f.key.clone(), f)).collect();
    let mut produced = Produced::default();
    // What other processes rendered is read from the ledger a slice of keys at a time: one
    // call each, and never every letter's record at once.
    for keys in to_render.chunks(OTHERS_READ) {
        let others: Vec<LetterKey> = keys
            .iter()
            .filter(|k| !written.contains(*k) && !failed.contains_key(*k))
            .cloned()
            .collect();
        let records = ledger.letters(&others)?;
        for key in keys {
            if written.remove(key) {
                produced.rendered += 1;
            } else if let Some(f) = failed.remove(key) {
                produced.failed.push(f);
            } else {
                // Rendered (or failed) by a worker: as the ledger holds it.
                from_ledger(ledger, key, records.get(key), &mut produced)?;
            }
        }
    }
    // Letters of the run this process rendered that the plan did not list now (an earlier
    // attempt of a resumed run planned them).
    produced.rendered += written.len();
    produced.failed.extend(failed.into_values());
    Ok(produced)
}

/// What the ledger holds of a letter another process rendered or failed (`record`, read
/// with the others in one call).
fn from_ledger(
    ledger: &dyn Ledger,
    key: &LetterKey,
    record: Option<&crate::ledger::LetterRecord>,
    produced: &mut Produced,
) -> Result<(), RunError> {
    let Some(record) = record.cloned() else {
        return Ok(());
    };
    match record.state {
        LetterState::Failed => {
            let message = ledger
                .events_of(key)?
                .pop()
                .map(|e| e.detail)
                .unwrap_or_default();
            produced.failed.push(FailedLetter {
                key: key.clone(),
                message,
            });
        }
        LetterState::Planned => {}
        _ => produced.rendered += 1,
    }
    Ok(())
}

/// A worker could not take part in a run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The ledger refused or failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The running run was recorded with another configuration.
    #[error(
        "run {run_id} was started with configuration sha256 {run_config}, but this worker's configuration `{config}` has sha256 {own_config}: start the worker with the coordinator's configuration"
    )]
    OtherConfig {
        /// The run.
        run_id: i64,
        /// The run's configuration hash.
        run_config: String,
        /// This worker's configuration file.
        config: String,
        /// Its hash.
        own_config: String,
    },
    /// Approvals are required and a template version of this worker is not approved.
    #[error(
        "template `{template}` (version {template_sha256}) is not approved in the ledger: this worker's templates differ from the approved ones; start it with the coordinator's templates"
    )]
    NotApproved {
        /// The template.
        template: String,
        /// This worker's version of it.
        template_sha256: String,
    },
    /// This worker's version of a template is not the one the run planned the letter with.
    #[error(
        "template `{template}`: the run composes with version {run_version}, this worker has version {own_version}; start it with the coordinator's templates"
    )]
    OtherTemplates {
        /// The template.
        template: String,
        /// The version the run planned with.
        run_version: String,
        /// This worker's version.
        own_version: String,
    },
    /// This worker's fonts are not the ones the run renders with.
    #[error(
        "the run renders with fonts sha256 {run_fonts}, this worker's fonts have sha256 {own_fonts}: letters would break lines and pages differently; start it with the coordinator's fonts (--fonts)"
    )]
    OtherFonts {
        /// The coordinator's fonts' hash.
        run_fonts: String,
        /// This worker's.
        own_fonts: String,
    },
}

/// What a worker did.
#[derive(Debug, Default)]
pub struct WorkerReport {
    /// The runs it worked on, in order.
    pub runs: Vec<i64>,
    /// Letters it rendered.
    pub written: Vec<WrittenLetter>,
    /// Letters it failed.
    pub failed: Vec<FailedLetter>,
}

/// A worker process (`run --worker`): joins the ledger's running run (waiting up to `wait`
/// for one), renders what it can claim until the run has no planned letter left, follows
/// a new running run if its own stops running, and returns. Refuses a run recorded with
/// another configuration, and (with approvals required) template versions nobody approved.
pub fn work_as_worker(
    ledger: &mut dyn Ledger,
    config: &crate::config::LoadedConfig,
    producer: &Producer<'_>,
    options: &WorkOptions,
    wait: Duration,
    progress: &dyn Progress,
) -> Result<WorkerReport, WorkerError> {
    let mut report = WorkerReport::default();
    let mut waiting_since = Instant::now();
    loop {
        let running = ledger
            .runs()
            .map_err(RunError::from)?
            .into_iter()
            .rev()
            .find(|r| r.status == RunStatus::Running);
        let Some(run) = running else {
            if waiting_since.elapsed() >= wait {
                return Ok(report);
            }
            std::thread::sleep(options.poll);
            continue;
        };
        if run.config_sha256 != config.sha256 {
            return Err(WorkerError::OtherConfig {
                run_id: run.id,
                run_config: run.config_sha256,
                config: config.path.as_ref().map_or_else(
                    || "(built-in default)".to_owned(),
                    |p| p.display().to_string(),
                ),
                own_config: config.sha256.clone(),
            });
        }
        report.runs.push(run.id);
        let out_dir = std::path::PathBuf::from(&run.out_dir);
        std::fs::create_dir_all(&out_dir).map_err(|source| {
            RunError::Produce(crate::produce::ProduceError::Write {
                path: out_dir.clone(),
                source,
            })
        })?;
        let gate = Gate {
            on: config.config.review.require_approval,
            approved: HashMap::new(),
        };
        let job = Job {
            producer,
            run_id: run.id,
            out_dir: &out_dir,
            progress,
        };
        let written = &mut report.written;
        let failed = claim_loop(ledger, &job, options, Until::RunDone, gate, |w| {
            written.push(w);
        })
        .map_err(|e| match e {
            Stop::Run(e) => WorkerError::Run(e),
            Stop::Gate(e) => e,
        })?;
        report.failed.extend(failed);
        // Done with this run; another may be running now (its coordinator died and a new
        // one started): follow it, else leave.
        let status = ledger
            .run(run.id)
            .map_err(RunError::from)?
            .map(|r| r.status);
        if status == Some(RunStatus::Running) {
            return Ok(report);
        }
        waiting_since = Instant::now();
    }
}
