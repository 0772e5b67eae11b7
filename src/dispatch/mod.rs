//! Stage 8, `dispatch`: letters that go by email, sent exactly once.
//!
//! An email is composed ([`EmailComposer`]) when its letter is planned and stored in the
//! ledger with it; [`send_queue`] sends what is queued. For each message:
//!
//! 1. the ledger records it `sending` (committed) BEFORE the SMTP transaction starts;
//! 2. the transaction runs ([`Mailer`]);
//! 3. on the server's 250 the ledger records `sent` with the reply; on a 5xx `failed` (no
//!    retry; with `fallback_print` later runs plan the letter as first-class mail); when
//!    the message certainly did not get through (no connection, 4xx, connection lost before
//!    the message was complete) it goes back to the queue and is retried with doubling
//!    backoff, up to `email.max_retries` times; when the connection was lost after the
//!    message was on the wire, `uncertain`.
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
mod tests;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::config::{Config, hex};
use crate::ledger::{Ledger, LedgerError, QueuedEmail, SendRecord};
use crate::letter::LetterKey;

pub use compose::EmailComposer;
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
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
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

/// What `send` does.
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
/// the one the ledger recorded (what was rendered is what is sent).
fn read_pdf(queued: &QueuedEmail) -> Result<Option<Vec<u8>>, String> {
    if !queued.email.attach_pdf {
        return Ok(None);
    }
    let path = queued
        .pdf_path
        .as_ref()
        .ok_or("the ledger has no file for the letter")?;
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let sha = hex(&Sha256::digest(&bytes));
    if queued.pdf_sha256.as_deref() != Some(sha.as_str()) {
        return Err(format!(
            "`{}` is not the file that was rendered (sha256 {sha})",
            path.display()
        ));
    }
    Ok(Some(bytes))
}

fn prepare(queued: &QueuedEmail, config: &Config, date: SystemTime) -> Result<Prepared, String> {
    let pdf = read_pdf(queued)?;
    let id = message_id(&queued.email.key, queued.pdf_sha256.as_deref(), config);
    let message = build(queued, config, &id, date, pdf).map_err(|e| e.to_string())?;
    Ok(Prepared {
        key: queued.email.key.clone(),
        message_id: id,
        envelope: message.envelope().clone(),
        bytes: message.formatted(),
    })
}

/// Sends every queued email (see the module docs), calling `progress(done, total)`.
pub fn send_queue(
    ledger: &mut dyn Ledger,
    config: &Config,
    mailer: &dyn Mailer,
    options: SendOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<SendReport, DispatchError> {
    let email = &config.email;
    let queue = ledger.email_queue(options.run_id, options.resend_uncertain)?;
    let total = queue.len();
    let mut waiting: VecDeque<(QueuedEmail, u32, Instant)> =
        queue.into_iter().map(|q| (q, 0, Instant::now())).collect();
    let limiter = RateLimiter::new(email.rate_per_second);
    let mut report = SendReport::default();
    let mut done = 0;
    while !waiting.is_empty() {
        // The next round: up to pool_size emails whose backoff has passed.
        let now = Instant::now();
        let mut round = Vec::new();
        let mut later = VecDeque::new();
        while let Some(item) = waiting.pop_front() {
            if round.len() < email.pool_size && item.2 <= now {
                round.push(item);
            } else {
                later.push_back(item);
            }
        }
        waiting = later;
        if round.is_empty() {
            if let Some(soonest) = waiting.iter().map(|w| w.2).min() {
                std::thread::sleep(soonest.saturating_duration_since(now));
            }
            continue;
        }
        let date = SystemTime::now();
        let mut ready = Vec::new();
        for (queued, attempt, _) in round {
            match prepare(&queued, config, date) {
                Ok(prepared) => ready.push((prepared, queued, attempt)),
                Err(reason) => {
                    done += 1;
                    report.skipped.push((queued.email.key.clone(), reason));
                }
            }
        }
        let sends: Vec<(LetterKey, String)> = ready
            .iter()
            .map(|(p, _, _)| (p.key.clone(), p.message_id.clone()))
            .collect();
        ledger.begin_sending(options.run_id, &sends)?;
        let results: Vec<Result<String, SendFailure>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ready
                .iter()
                .map(|(p, _, _)| {
                    let limiter = &limiter;
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
        for ((prepared, queued, attempt), result) in ready.into_iter().zip(results) {
            let key = prepared.key;
            let record = match result {
                Ok(reply) => {
                    report.sent.push((key.clone(), reply.clone()));
                    SendRecord::Sent { reply }
                }
                Err(SendFailure::Refused(reason)) => {
                    report.failed.push((key.clone(), reason.clone()));
                    SendRecord::Failed {
                        reason,
                        fallback_print: options.fallback_print,
                    }
                }
                Err(SendFailure::Unknown(reason)) => {
                    report.uncertain.push((key.clone(), reason.clone()));
                    SendRecord::Uncertain { reason }
                }
                Err(SendFailure::NotDelivered(reason)) if attempt < email.max_retries => {
                    let backoff = Duration::from_millis(
                        email.retry_backoff_ms.saturating_mul(1 << attempt.min(16)),
                    );
                    waiting.push_back((queued, attempt + 1, Instant::now() + backoff));
                    outcomes.push((
                        key,
                        SendRecord::NotSent {
                            reason: format!("attempt {}: {reason}; retrying", attempt + 1),
                        },
                    ));
                    continue;
                }
                Err(SendFailure::NotDelivered(reason)) => {
                    let reason = format!("{reason} (after {} attempts)", attempt + 1);
                    report.not_sent.push((key.clone(), reason.clone()));
                    SendRecord::NotSent { reason }
                }
            };
            done += 1;
            outcomes.push((key, record));
        }
        ledger.record_sends(options.run_id, &outcomes)?;
        progress(done, total);
    }
    Ok(report)
}

/// Emails not sent or written, each with the reason.
pub type Skipped = Vec<(LetterKey, String)>;

/// Dry run: writes every queued email as `DIR/<key as file stem>.eml` (dated now) instead
/// of sending it. Changes nothing in the ledger. Returns the files written and the emails
/// that could not be built.
pub fn write_eml_dir(
    ledger: &dyn Ledger,
    config: &Config,
    options: SendOptions,
    dir: &Path,
) -> Result<(Vec<PathBuf>, Skipped), DispatchError> {
    std::fs::create_dir_all(dir).map_err(|source| DispatchError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    let date = SystemTime::now();
    for queued in ledger.email_queue(options.run_id, options.resend_uncertain)? {
        match prepare(&queued, config, date) {
            Ok(prepared) => {
                let path = dir.join(format!("{}.eml", prepared.key.file_stem()));
                std::fs::write(&path, &prepared.bytes).map_err(|source| DispatchError::Write {
                    path: path.clone(),
                    source,
                })?;
                written.push(path);
            }
            Err(reason) => skipped.push((queued.email.key.clone(), reason)),
        }
    }
    Ok((written, skipped))
}
