//! The **send** step, used by `run --send` and `missive send`: the once-only protocol
//! around the dispatch stage's rounds (see [`crate::dispatch`]). Each round's messages are
//! recorded `sending` in one committed transaction BEFORE [`Sender::transmit`] starts
//! their SMTP transactions, and their outcomes in one transaction after; a process that
//! dies in between leaves `sending`, which [`recover_sends`] turns into `uncertain`.

use std::path::{Path, PathBuf};

use super::{Progress, RunError, Step};
use crate::config::Config;
use crate::dispatch::{
    self, ComposedEmail, Mailer, OutgoingEmail, SendOptions, SendOutcome, SendReport, Sender,
    Skipped,
};
use crate::ledger::{Ledger, QueuedEmail, SendRecord};
use crate::letter::LetterKey;

/// What a send did, and what waits for a person afterwards.
#[derive(Debug, Clone, Default)]
pub struct SendSummary {
    /// What happened to each email this send looked at.
    pub report: SendReport,
    /// Every email whose outcome is unknown in the ledger afterwards, by key (those of
    /// earlier sends too): each waits for a person however old it is.
    pub uncertain: Vec<LetterKey>,
}

impl SendSummary {
    /// True when every email looked at was sent and none is uncertain in the ledger.
    pub fn all_sent(&self) -> bool {
        let r = &self.report;
        r.failed.is_empty()
            && r.uncertain.is_empty()
            && r.not_sent.is_empty()
            && r.skipped.is_empty()
            && self.uncertain.is_empty()
    }
}

/// Emails an earlier send left `sending` (its process died mid-transaction) become
/// `uncertain`, never resent automatically. Returns their keys.
pub fn recover_sends(ledger: &mut dyn Ledger) -> Result<Vec<LetterKey>, RunError> {
    Ok(ledger.recover_interrupted_sends()?)
}

/// The emails ready to send (optionally of one run, with uncertain ones when
/// `resend_uncertain`), as the dispatch stage takes them.
pub fn outbox(ledger: &dyn Ledger, options: SendOptions) -> Result<Vec<OutgoingEmail>, RunError> {
    Ok(ledger
        .email_queue(options.run_id, options.resend_uncertain)?
        .into_iter()
        .map(outgoing)
        .collect())
}

/// Dry run: writes every email ready to send as `DIR/<key>.eml` instead of sending it.
/// Changes nothing in the ledger.
pub fn write_eml_dir(
    ledger: &dyn Ledger,
    config: &Config,
    options: SendOptions,
    dir: &Path,
) -> Result<(Vec<PathBuf>, Skipped), RunError> {
    Ok(dispatch::write_eml_dir(
        &outbox(ledger, options)?,
        config,
        dir,
    )?)
}

/// Sends every queued email through `mailer`, each round recorded `sending` before its
/// transactions and its outcomes after. Call [`recover_sends`] first.
pub fn send(
    ledger: &mut dyn Ledger,
    config: &Config,
    mailer: &dyn Mailer,
    options: SendOptions,
    progress: &dyn Progress,
) -> Result<SendSummary, RunError> {
    let queue = outbox(ledger, options)?;
    progress.start(Step::Send, queue.len());
    let mut sender = Sender::new(config, mailer, queue);
    while let Some(round) = sender.next_round() {
        ledger.begin_sending(options.run_id, &round.message_ids())?;
        let skipped = round.skipped;
        let outcomes = sender.transmit(round);
        let settled = outcomes
            .iter()
            .filter(|(_, o)| !matches!(o, SendOutcome::NotDelivered { retrying: true, .. }))
            .count();
        let records: Vec<(LetterKey, SendRecord)> = outcomes
            .into_iter()
            .map(|(key, outcome)| (key, send_record(outcome, options.fallback_print)))
            .collect();
        ledger.record_sends(options.run_id, &records)?;
        progress.advance(skipped + settled);
    }
    progress.finish();
    Ok(SendSummary {
        report: sender.finish(),
        uncertain: ledger.uncertain_emails()?,
    })
}

/// A queued email as the dispatch stage takes it.
fn outgoing(queued: QueuedEmail) -> OutgoingEmail {
    let email = queued.email;
    OutgoingEmail {
        email: ComposedEmail {
            key: email.key,
            to_address: email.to_address,
            to_name: email.to_name,
            subject: email.subject,
            text: email.text,
            html: email.html,
            attach_pdf: email.attach_pdf,
        },
        pdf_path: queued.pdf_path,
        pdf_file: queued.pdf_file,
        pdf_sha256: queued.pdf_sha256,
    }
}

/// How an attempt ended, as the ledger records it: a refusal is a failure (planned as
/// print by later runs with `fallback_print`); not delivered stays in the queue.
fn send_record(outcome: SendOutcome, fallback_print: bool) -> SendRecord {
    match outcome {
        SendOutcome::Sent { reply } => SendRecord::Sent { reply },
        SendOutcome::Refused { reason } => SendRecord::Failed {
            reason,
            fallback_print,
        },
        SendOutcome::Uncertain { reason } => SendRecord::Uncertain { reason },
        SendOutcome::NotDelivered { reason, .. } => SendRecord::NotSent { reason },
    }
}
