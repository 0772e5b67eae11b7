//! Outgoing email in the ledger: what to send, and what each SMTP outcome records
//! (`sending` committed before the transaction, `sent` with the server's reply after).

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::stamp;
use super::{EmailRole, EmailState, LetterState};
use crate::letter::LetterKey;

/// An email composed for a planned letter, to be recorded with [`super::Outbox::record_emails`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmail {
    /// The letter's key (one email per key).
    pub key: LetterKey,
    /// The letter itself or a copy.
    pub role: EmailRole,
    /// The taxpayer's (valid) address.
    pub to_address: String,
    /// The taxpayer's name, for the To header.
    pub to_name: String,
    /// Subject, one line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body (autoescaped).
    pub html: String,
    /// Whether the letter's PDF goes with it.
    pub attach_pdf: bool,
}

/// An email waiting to be sent, with what is needed to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEmail {
    /// The composed email.
    pub email: NewEmail,
    /// The email's state (`pending`, or `uncertain` for a deliberate resend).
    pub state: EmailState,
    /// Attempts recorded so far.
    pub attempts: u32,
    /// The letter's PDF (the run's output directory joined with its file name).
    pub pdf_path: Option<PathBuf>,
    /// The PDF's file name, for the attachment.
    pub pdf_file: Option<String>,
    /// The SHA-256 the ledger recorded for the PDF.
    pub pdf_sha256: Option<String>,
}

/// How one SMTP attempt ended, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendRecord {
    /// The server accepted the message (250): its reply.
    Sent {
        /// The server's reply line(s).
        reply: String,
    },
    /// The server refused it for good (5xx).
    Failed {
        /// The reply or reason.
        reason: String,
        /// Plan the letter as first-class mail from now on.
        fallback_print: bool,
    },
    /// Nobody knows whether the message arrived (connection lost after the message).
    Uncertain {
        /// What happened.
        reason: String,
    },
    /// Certainly not delivered (connection refused, 4xx, lost before the message was
    /// complete): back in the queue.
    NotSent {
        /// What happened.
        reason: String,
    },
}

/// What the ledger records for one SMTP outcome: the email's and the letter's new state,
/// the event's note, and what the email row keeps. Every backend records the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SendOutcome<'a> {
    /// The email's new state.
    pub email: EmailState,
    /// The new state of a letter email's letter.
    pub letter: LetterState,
    /// The event's note.
    pub detail: String,
    /// The server's reply to keep (accepted messages).
    pub reply: Option<&'a str>,
    /// The failure to keep as the last error.
    pub error: Option<&'a str>,
    /// Plan the letter as print from now on.
    pub fallback_print: bool,
}

impl SendRecord {
    /// What the ledger records for this outcome.
    pub(super) fn outcome(&self) -> SendOutcome<'_> {
        let (email, letter, detail, reply, error, fallback_print) = match self {
            SendRecord::Sent { reply } => (
                EmailState::Sent,
                LetterState::Sent,
                format!("sent by email; the server replied: {reply}"),
                Some(reply.as_str()),
                None,
                false,
            ),
            SendRecord::Failed {
                reason,
                fallback_print,
            } => (
                EmailState::Failed,
                LetterState::Failed,
                if *fallback_print {
                    format!(
                        "the server refused the email: {reason}; the next run plans it as first-class mail"
                    )
                } else {
                    format!("the server refused the email: {reason}")
                },
                None,
                Some(reason.as_str()),
                *fallback_print,
            ),
            SendRecord::Uncertain { reason } => (
                EmailState::Uncertain,
                LetterState::Uncertain,
                format!(
                    "outcome unknown ({reason}); not resent unless `missive send --resend-uncertain`"
                ),
                None,
                Some(reason.as_str()),
                false,
            ),
            SendRecord::NotSent { reason } => (
                EmailState::Pending,
                LetterState::Rendered,
                format!("not delivered ({reason}); still queued"),
                None,
                Some(reason.as_str()),
                false,
            ),
        };
        SendOutcome {
            email,
            letter,
            detail,
            reply,
            error,
            fallback_print,
        }
    }
}

/// An email as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EmailRecord {
    /// The letter's key.
    pub key: LetterKey,
    /// The letter itself or a copy.
    pub role: EmailRole,
    /// Recipient address.
    pub to_address: String,
    /// Subject.
    pub subject: String,
    /// Where it stands.
    pub state: EmailState,
    /// Later runs plan the letter as print.
    pub fallback_print: bool,
    /// SMTP attempts made.
    pub attempts: u32,
    /// The Message-ID of the last attempt.
    pub message_id: Option<String>,
    /// The server's reply to the accepted message.
    pub reply: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was accepted (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize_opt")]
    pub sent_at: Option<DateTime<Utc>>,
}
