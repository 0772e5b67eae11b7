//! Stage 8, `dispatch`: letters that go by email, sent exactly once.
//!
//! An email is composed ([`EmailComposer`]) when its letter is planned (the run records it
//! in the ledger with the letter); a [`Sender`] sends the queued ones ([`OutgoingEmail`])
//! in rounds and says how each attempt ended ([`SendOutcome`]). This module knows nothing
//! of the ledger: the run's `send` step ([`crate::runner::send`]) keeps the once-only
//! protocol around each round:
//!
//! 1. the ledger records the round's messages `sending` (committed) BEFORE
//!    [`Sender::transmit`] starts their SMTP transactions;
//! 2. the transactions run ([`Mailer`]);
//! 3. on the server's 250 the ledger records `sent` with the reply; on a 5xx `failed` (no
//!    retry; with `fallback_print` later runs plan the letter as first-class mail); when
//!    the message certainly did not get through (no connection, 4xx, connection lost before
//!    the message was complete) the sender queues it again with doubling backoff, up to
//!    `email.max_retries` times; when the connection was lost after the message was on the
//!    wire, `uncertain`.
//!
//! A process that dies between 1 and 3 leaves `sending` behind; the next `send` turns it
//! into `uncertain` ([`crate::ledger::Outbox::recover_interrupted_sends`]). Uncertain emails
//! are resent only on request (`--resend-uncertain`): the server may have accepted the
//! message, and a legal notice delivered twice is worse than one an operator must look at.
//!
//! Messages go out in rounds of up to `email.pool_size`, one connection each, at most
//! `email.rate_per_second`: one ledger transaction marks a round `sending`, one records its
//! outcomes. So after a crash at most `pool_size` letters can be uncertain.

mod compose;
mod mailer;
mod message;
mod smtp;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::config::{Config, hex};
use crate::letter::LetterKey;

pub use compose::{ComposedEmail, EmailComposer, Role};
pub use mailer::{ClassifyError, Mailer, SendFailure, TransportMailer};
pub use message::{agency_host, build, message_id};
pub use smtp::{SmtpMailer, reply_text};

/// An error of the dispatch stage.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The email templates could not be read.
    #[error("failed to read email templates from `{}`", path.display())]
    Templates {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An email template does not parse, is missing, or is unsafe.
    #[error("invalid email template `{template}`: {message}")]
    Template {
        /// Template name.
        template: String,
        /// What is wrong.
        message: String,
    },
    /// A letter's email could not be composed.
    #[error("email for `{key}` could not be composed ({template}): {message}")]
    Compose {
        /// The letter.
        key: LetterKey,
        /// The template (empty when the view failed).
        template: String,
        /// Why.
        message: String,
    },
    /// A letter's message could not be built (bad address, …).
    #[error("email for `{key}` could not be built: {message}")]
    Message {
        /// The letter.
        key: LetterKey,
        /// Why.
        message: String,
    },
    /// `email.user` is set but the password variable is not.
    #[error(
        "the SMTP password variable `{var}` is not set\n\nhint: export {var}=… (email.user is set in the configuration)"
    )]
    Password {
        /// The variable's name.
        var: String,
    },
    /// A password would go over a connection without TLS.
    #[error("refusing to send the SMTP password without TLS: set email.tls to `starttls` or `tls`")]
    PlainTextPassword,
    /// TLS could not be set up.
    #[error("failed to set up TLS for SMTP")]
    Tls {
        /// lettre's reason.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// A dry-run file could not be written.
    #[error("failed to write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What `send` does (the run's `send` step reads the queue and records outcomes by these).
#[derive(Debug, Clone, Copy, Default)]
pub struct SendOptions {
    /// Only letters of this run.
    pub run_id: Option<i64>,
    /// Also send emails whose earlier outcome is unknown (deliberately).
    pub resend_uncertain: bool,
    /// A letter refused for good (5xx) is planned as first-class mail by later runs.
    pub fallback_print: bool,
}

/// What happened to each email a send looked at.
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    /// Accepted by the server: key and its reply.
    pub sent: Vec<(LetterKey, String)>,
    /// Refused for good (5xx).
    pub failed: Vec<(LetterKey, String)>,
    /// Outcome unknown: not resent unless asked.
    pub uncertain: Vec<(LetterKey, String)>,
    /// Not delivered after every retry: still queued.
    pub not_sent: Vec<(LetterKey, String)>,
    /// Could not even be attempted (PDF missing or changed, bad address): still queued.
    pub skipped: Skipped,
}

/// An email waiting to be sent, with what is needed to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The composed email.
    pub email: ComposedEmail,
    /// The letter's PDF (the run's output directory joined with its file name).
    pub pdf_path: Option<PathBuf>,
    /// The PDF's file name, for the attachment.
    pub pdf_file: Option<String>,
    /// The SHA-256 recorded for the PDF when it was rendered.
    pub pdf_sha256: Option<String>,
}

/// How one SMTP attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The server accepted the message (250): its reply.
    Sent {
        /// The server's reply line(s).
        reply: String,
    },
    /// The server refused it for good (5xx).
    Refused {
        /// The reply or reason.
        reason: String,
    },
    /// Nobody knows whether the message arrived (connection lost after the message).
    Uncertain {
        /// What happened.
        reason: String,
    },
    /// Certainly not delivered; `retrying` when the sender queued it again (else it gave up
    /// after `email.max_retries` retries). Either way it stays in the queue.
    NotDelivered {
        /// What happened, with the attempt.
        reason: String,
        /// Whether this sender tries it again.
        retrying: bool,
    },
}

/// Spaces messages at most `rate` per second across threads.
struct RateLimiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimiter {
    fn new(rate_per_second: f64) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate_per_second.max(1e-3)),
            next: Mutex::new(Instant::now()),
        }
    }

    fn wait(&self) {
        let slot = match self.next.lock() {
            Ok(mut next) => {
                let now = Instant::now();
                let slot = (*next).max(now);
                *next = slot + self.interval;
                slot
            }
            Err(_) => return,
        };
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
    }
}

/// A message ready for the wire.
struct Prepared {
    key: LetterKey,
    message_id: String,
    envelope: lettre::address::Envelope,
    bytes: Vec<u8>,
}

/// Reads the letter's PDF if the email attaches it, refusing a file whose SHA-256 is not
/// the one recorded when it was rendered (what was rendered is what is sent).
fn read_pdf(outgoing: &OutgoingEmail) -> Result<Option<Vec<u8>>, String> {
    if !outgoing.email.attach_pdf {
        return Ok(None);
    }
    let path = outgoing
        .pdf_path
        .as_ref()
        .ok_or("the ledger has no file for the letter")?;
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let sha = hex(&Sha256::digest(&bytes));
    if outgoing.pdf_sha256.as_deref() != Some(sha.as_str()) {
        return Err(format!(
            "`{}` is not the file that was rendered (sha256 {sha})",
            path.display()
        ));
    }
    Ok(Some(bytes))
}

fn prepare(
    outgoing: &OutgoingEmail,
    config: &Config,
    date: SystemTime,
) -> Result<Prepared, String> {
    let pdf = read_pdf(outgoing)?;
    let id = message_id(&outgoing.email.key, outgoing.pdf_sha256.as_deref(), config);
    let message = build(outgoing, config, &id, date, pdf).map_err(|e| e.to_string())?;
    Ok(Prepared {
        key: outgoing.email.key.clone(),
        message_id: id,
        envelope: message.envelope().clone(),
        bytes: message.formatted(),
    })
}

/// An email in the sender's queue: how many attempts it had, and when it may go next.
type Waiting = (OutgoingEmail, u32, Instant);

/// One round of messages, prepared and about to go out on one connection each.
pub struct Round {
    ready: Vec<(Prepared, OutgoingEmail, u32)>,
    /// Emails of the round that could not even be prepared (now in the report's
    /// `skipped`).
    pub skipped: usize,
}

impl Round {
    /// The (key, Message-ID) of every message of the round: what the ledger marks
    /// `sending` before [`Sender::transmit`].
    pub fn message_ids(&self) -> Vec<(LetterKey, String)> {
        self.ready
            .iter()
            .map(|(p, _, _)| (p.key.clone(), p.message_id.clone()))
            .collect()
    }
}

/// Sends a queue of emails in rounds (see the module docs): [`Sender::next_round`]
/// prepares the next round, [`Sender::transmit`] sends it and says how each attempt ended.
pub struct Sender<'a> {
    config: &'a Config,
    mailer: &'a dyn Mailer,
    limiter: RateLimiter,
    waiting: VecDeque<Waiting>,
    report: SendReport,
}

impl<'a> Sender<'a> {
    /// A sender of `queue` through `mailer`.
    pub fn new(config: &'a Config, mailer: &'a dyn Mailer, queue: Vec<OutgoingEmail>) -> Self {
        Sender {
            config,
            mailer,
            limiter: RateLimiter::new(config.email.rate_per_second),
            waiting: queue.into_iter().map(|q| (q, 0, Instant::now())).collect(),
            report: SendReport::default(),
        }
    }

    /// The next round: up to `email.pool_size` emails whose backoff has passed (waiting
    /// for the soonest if none has), prepared; `None` when the queue is empty.
    pub fn next_round(&mut self) -> Option<Round> {
        let email = &self.config.email;
        loop {
            if self.waiting.is_empty() {
                return None;
            }
            let now = Instant::now();
            let mut round = Vec::new();
            let mut later = VecDeque::new();
            while let Some(item) = self.waiting.pop_front() {
                if round.len() < email.pool_size && item.2 <= now {
                    round.push(item);
                } else {
                    later.push_back(item);
                }
            }
            self.waiting = later;
            if round.is_empty() {
                if let Some(soonest) = self.waiting.iter().map(|w| w.2).min() {
                    std::thread::sleep(soonest.saturating_duration_since(now));
                }
                continue;
            }
            let date = SystemTime::now();
            let mut ready = Vec::new();
            let mut skipped = 0;
            for (outgoing, attempt, _) in round {
                match prepare(&outgoing, self.config, date) {
                    Ok(prepared) => ready.push((prepared, outgoing, attempt)),
                    Err(reason) => {
                        skipped += 1;
                        self.report
                            .skipped
                            .push((outgoing.email.key.clone(), reason));
                    }
                }
            }
            return Some(Round { ready, skipped });
        }
    }

    /// Sends the round's messages at once (one thread and connection each, spaced by the
    /// rate limit) and returns how each ended, in round order; a message certainly not
    /// delivered is queued again with backoff while it has retries left.
    pub fn transmit(&mut self, round: Round) -> Vec<(LetterKey, SendOutcome)> {
        let email = &self.config.email;
        let (limiter, mailer) = (&self.limiter, self.mailer);
        let results: Vec<Result<String, SendFailure>> = std::thread::scope(|scope| {
            let handles: Vec<_> = round
                .ready
                .iter()
                .map(|(p, _, _)| {
                    scope.spawn(move || {
                        limiter.wait();
                        mailer.send(&p.envelope, &p.bytes)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(SendFailure::Unknown(
                            "the sending thread panicked".to_owned(),
                        ))
                    })
                })
                .collect()
        });
        let mut outcomes = Vec::with_capacity(results.len());
        for ((prepared, outgoing, attempt), result) in round.ready.into_iter().zip(results) {
            let key = prepared.key;
            let outcome = match result {
                Ok(reply) => {
                    self.report.sent.push((key.clone(), reply.clone()));
                    SendOutcome::Sent { reply }
                }
                Err(SendFailure::Refused(reason)) => {
                    self.report.failed.push((key.clone(), reason.clone()));
                    SendOutcome::Refused { reason }
                }
                Err(SendFailure::Unknown(reason)) => {
                    self.report.uncertain.push((key.clone(), reason.clone()));
                    SendOutcome::Uncertain { reason }
                }
                Err(SendFailure::NotDelivered(reason)) if attempt < email.max_retries => {
                    let backoff = Duration::from_millis(
                        email.retry_backoff_ms.saturating_mul(1 << attempt.min(16)),
                    );
                    self.waiting
                        .push_back((outgoing, attempt + 1, Instant::now() + backoff));
                    SendOutcome::NotDelivered {
                        reason: format!("attempt {}: {reason}; retrying", attempt + 1),
                        retrying: true,
                    }
                }
                Err(SendFailure::NotDelivered(reason)) => {
                    let reason = format!("{reason} (after {} attempts)", attempt + 1);
                    self.report.not_sent.push((key.clone(), reason.clone()));
                    SendOutcome::NotDelivered {
                        reason,
                        retrying: false,
                    }
                }
            };
            outcomes.push((key, outcome));
        }
        outcomes
    }

    /// What happened to every email of the queue.
    pub fn finish(self) -> SendReport {
        self.report
    }
}

/// Emails not sent or written, each with the reason.
pub type Skipped = Vec<(LetterKey, String)>;

/// Dry run: writes every email of `queue` as `DIR/<key as file stem>.eml` (dated now)
/// instead of sending it. Returns the files written and the emails that could not be built.
pub fn write_eml_dir(
    queue: &[OutgoingEmail],
    config: &Config,
    dir: &Path,
) -> Result<(Vec<PathBuf>, Skipped), DispatchError> {
    std::fs::create_dir_all(dir).map_err(|source| DispatchError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    let date = SystemTime::now();
    for outgoing in queue {
        match prepare(outgoing, config, date) {
            Ok(prepared) => {
                let path = dir.join(format!("{}.eml", prepared.key.file_stem()));
                std::fs::write(&path, &prepared.bytes).map_err(|source| DispatchError::Write {
                    path: path.clone(),
                    source,
                })?;
                written.push(path);
            }
            Err(reason) => skipped.push((outgoing.email.key.clone(), reason)),
        }
    }
    Ok((written, skipped))
}
