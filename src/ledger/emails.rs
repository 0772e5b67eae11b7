//! Outgoing email in the ledger: what to send, and the once-only protocol around each SMTP
//! transaction (`sending` committed before, `sent` with the server's reply after).
//!
//! Each function here runs inside the caller's transaction; [`super::SqliteLedger`]'s
//! [`super::Ledger`] methods open it.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{load_letter, opt_time_at};
use super::stamp;
use super::writes::append_event;
use super::{EmailRole, EmailState, LedgerError, LetterState, allowed_moves};
use crate::letter::LetterKey;

/// An email composed for a planned letter, to be recorded with [`super::Ledger::record_emails`].
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

/// Inserts or replaces the emails of planned letters; cancels a pending email of a planned
/// letter that no longer goes by email. An email being sent or of uncertain outcome is
/// never replaced.
pub(super) fn record(
    conn: &Connection,
    run_id: i64,
    planned: &[LetterKey],
    emails: &[NewEmail],
    at: &str,
) -> rusqlite::Result<()> {
    let with_email: std::collections::HashSet<&LetterKey> = emails.iter().map(|e| &e.key).collect();
    for key in planned.iter().filter(|k| !with_email.contains(k)) {
        conn.prepare_cached(
            "UPDATE emails SET state = 'cancelled', updated_at = ?2,
                 last_error = 'the letter no longer goes by email'
             WHERE key = ?1 AND state = 'pending'",
        )?
        .execute(params![key.as_str(), at])?;
    }
    for email in emails {
        conn.prepare_cached(
            "INSERT INTO emails (key, role, run_id, to_address, to_name, subject, text_body,
                 html_body, attach_pdf, state, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10)
             ON CONFLICT (key) DO UPDATE SET role = excluded.role, run_id = excluded.run_id,
                 to_address = excluded.to_address, to_name = excluded.to_name,
                 subject = excluded.subject, text_body = excluded.text_body,
                 html_body = excluded.html_body, attach_pdf = excluded.attach_pdf,
                 state = 'pending', attempts = 0, message_id = NULL, reply = NULL,
                 last_error = NULL, sent_at = NULL, updated_at = excluded.updated_at
             WHERE emails.state NOT IN ('sending', 'uncertain')",
        )?
        .execute(params![
            email.key.as_str(),
            email.role.as_str(),
            run_id,
            email.to_address,
            email.to_name,
            email.subject,
            email.text,
            email.html,
            email.attach_pdf,
            at
        ])?;
    }
    Ok(())
}

/// Emails ready to send: a letter email whose letter is `rendered` (channel email), a copy
/// whose intent to offset is rendered or released; with `resend_uncertain`, uncertain ones
/// too. Optionally only letters last touched by `run_id`. Ordered by key.
pub(super) fn queue(
    conn: &Connection,
    run_id: Option<i64>,
    resend_uncertain: bool,
) -> rusqlite::Result<Vec<QueuedEmail>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.key, e.role, e.to_address, e.to_name, e.subject, e.text_body, e.html_body,
                e.attach_pdf, e.state, e.attempts, r.out_dir, l.file, l.file_sha256
         FROM emails e JOIN letters l ON l.key = e.key JOIN runs r ON r.id = l.run_id
         WHERE (?1 IS NULL OR l.run_id = ?1)
           AND ((e.role = 'letter' AND l.channel = 'email'
                 AND ((e.state = 'pending' AND l.state = 'rendered')
                      OR (?2 AND e.state = 'uncertain' AND l.state = 'uncertain')))
             OR (e.role = 'copy' AND l.kind = 'intent_to_offset'
                 AND l.state IN ('rendered', 'released')
                 AND (e.state = 'pending' OR (?2 AND e.state = 'uncertain'))))
         ORDER BY e.key",
    )?;
    let rows = stmt.query_map(params![run_id, resend_uncertain], |row| {
        let out_dir: String = row.get(10)?;
        let file: Option<String> = row.get(11)?;
        Ok(QueuedEmail {
            email: NewEmail {
                key: LetterKey::from_text(&row.get::<_, String>(0)?),
                role: row.get(1)?,
                to_address: row.get(2)?,
                to_name: row.get(3)?,
                subject: row.get(4)?,
                text: row.get(5)?,
                html: row.get(6)?,
                attach_pdf: row.get(7)?,
            },
            state: row.get(8)?,
            attempts: row.get(9)?,
            pdf_path: file.as_ref().map(|f| PathBuf::from(&out_dir).join(f)),
            pdf_file: file,
            pdf_sha256: row.get(12)?,
        })
    })?;
    rows.collect()
}

/// Moves a letter within the caller's transaction, as `set_state` does (same-state is a
/// no-op without an event; a forbidden move is refused).
fn move_letter(
    conn: &Connection,
    key: &LetterKey,
    to: LetterState,
    run_id: Option<i64>,
    at: &str,
    detail: &str,
) -> Result<(), LedgerError> {
    let failed = |source| LedgerError::Record {
        key: key.clone(),
        state: to,
        source,
    };
    let current = load_letter(conn, key)
        .map_err(failed)?
        .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
    if current.state == to {
        return Ok(());
    }
    if !current.state.can_move_to(to) {
        return Err(LedgerError::Transition {
            key: key.clone(),
            from: current.state,
            to,
            allowed: allowed_moves(current.state),
        });
    }
    conn.prepare_cached(
        "UPDATE letters SET state = ?2, run_id = COALESCE(?3, run_id), updated_at = ?4
         WHERE key = ?1",
    )
    .and_then(|mut s| s.execute(params![key.as_str(), to.as_str(), run_id, at]))
    .map_err(failed)?;
    append_event(conn, key, run_id, Some(current.state), to, at, detail).map_err(failed)
}

fn role_and_address(
    conn: &Connection,
    key: &LetterKey,
) -> rusqlite::Result<Option<(EmailRole, String)>> {
    conn.prepare_cached("SELECT role, to_address FROM emails WHERE key = ?1")?
        .query_row([key.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Marks emails `sending` (and a letter email's letter too) before the SMTP transaction.
pub(super) fn begin(
    conn: &Connection,
    run_id: Option<i64>,
    sends: &[(LetterKey, String)],
    at: &str,
) -> Result<(), LedgerError> {
    for (key, message_id) in sends {
        let failed = |source| LedgerError::Record {
            key: key.clone(),
            state: LetterState::Sending,
            source,
        };
        let (role, to) = role_and_address(conn, key)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
        conn.prepare_cached(
            "UPDATE emails SET state = 'sending', attempts = attempts + 1, message_id = ?2,
                 updated_at = ?3
             WHERE key = ?1",
        )
        .and_then(|mut s| s.execute(params![key.as_str(), message_id, at]))
        .map_err(failed)?;
        if role == EmailRole::Letter {
            let detail = format!("sending by email to {to}, Message-ID {message_id}");
            move_letter(conn, key, LetterState::Sending, run_id, at, &detail)?;
        }
    }
    Ok(())
}

/// Records how SMTP attempts ended.
pub(super) fn finish(
    conn: &Connection,
    run_id: Option<i64>,
    outcomes: &[(LetterKey, SendRecord)],
    at: &str,
) -> Result<(), LedgerError> {
    for (key, outcome) in outcomes {
        let SendOutcome {
            email: email_state,
            letter: letter_state,
            detail,
            reply,
            error,
            fallback_print: fallback,
        } = outcome.outcome();
        let failed = |source| LedgerError::Record {
            key: key.clone(),
            state: letter_state,
            source,
        };
        let (role, _) = role_and_address(conn, key)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
        conn.prepare_cached(
            "UPDATE emails SET state = ?2, reply = COALESCE(?3, reply),
                 last_error = COALESCE(?4, last_error),
                 fallback_print = MAX(fallback_print, ?5),
                 sent_at = CASE WHEN ?2 = 'sent' THEN ?6 ELSE sent_at END, updated_at = ?6
             WHERE key = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                key.as_str(),
                email_state,
                reply,
                error,
                fallback,
                at
            ])
        })
        .map_err(failed)?;
        if role == EmailRole::Letter {
            move_letter(conn, key, letter_state, run_id, at, &detail)?;
        }
    }
    Ok(())
}

/// Every email left `sending` (its process died mid-transaction) becomes `uncertain`, its
/// letter too. Returns their keys.
pub(super) fn recover(conn: &Connection, at: &str) -> Result<Vec<LetterKey>, LedgerError> {
    let read = || -> rusqlite::Result<Vec<String>> {
        let mut stmt =
            conn.prepare_cached("SELECT key FROM emails WHERE state = 'sending' ORDER BY key")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    };
    let keys: Vec<LetterKey> = read()
        .map_err(|source| LedgerError::Read {
            what: "the emails being sent".to_owned(),
            source,
        })?
        .iter()
        .map(|k| LetterKey::from_text(k))
        .collect();
    let outcomes: Vec<(LetterKey, SendRecord)> = keys
        .iter()
        .map(|k| {
            (
                k.clone(),
                SendRecord::Uncertain {
                    reason: "a send was interrupted before the server's reply was recorded"
                        .to_owned(),
                },
            )
        })
        .collect();
    finish(conn, None, &outcomes, at)?;
    Ok(keys)
}

/// Keys of every email whose outcome is unknown (`uncertain`), by key.
pub(super) fn uncertain(conn: &Connection) -> rusqlite::Result<Vec<LetterKey>> {
    let mut stmt =
        conn.prepare_cached("SELECT key FROM emails WHERE state = 'uncertain' ORDER BY key")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|k| k.map(|k| LetterKey::from_text(&k))).collect()
}

/// A person's verdict on an uncertain email after reading the mail server's log: `sent`
/// (the server has it) or `failed` (it does not; nothing is resent). The email and, for a
/// letter email, the letter move; an event with `detail` records it either way (for an
/// email copy, as an event of its intent to offset that keeps the letter's state).
pub(super) fn resolve(
    conn: &Connection,
    key: &LetterKey,
    sent: bool,
    detail: &str,
    at: &str,
) -> Result<EmailRecord, LedgerError> {
    let (to, email_to) = if sent {
        (LetterState::Sent, EmailState::Sent)
    } else {
        (LetterState::Failed, EmailState::Failed)
    };
    let failed = |source| LedgerError::Record {
        key: key.clone(),
        state: to,
        source,
    };
    let email = load(conn, key)
        .map_err(failed)?
        .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
    if email.state != EmailState::Uncertain {
        return Err(LedgerError::EmailNotUncertain {
            key: key.clone(),
            state: email.state,
        });
    }
    conn.prepare_cached(
        "UPDATE emails SET state = ?2,
             sent_at = CASE WHEN ?2 = 'sent' THEN ?3 ELSE sent_at END, updated_at = ?3
         WHERE key = ?1",
    )
    .and_then(|mut s| s.execute(params![key.as_str(), email_to, at]))
    .map_err(failed)?;
    if email.role == EmailRole::Letter {
        move_letter(conn, key, to, None, at, detail)?;
    } else {
        let letter = load_letter(conn, key)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
        let detail = format!("email copy: {detail}");
        append_event(
            conn,
            key,
            None,
            Some(letter.state),
            letter.state,
            at,
            &detail,
        )
        .map_err(failed)?;
    }
    load(conn, key)
        .map_err(failed)?
        .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })
}

/// Keys whose email was refused for good with `--fallback-print`.
pub(super) fn print_fallbacks(conn: &Connection) -> rusqlite::Result<Vec<LetterKey>> {
    let mut stmt = conn.prepare_cached("SELECT key FROM emails WHERE fallback_print = 1")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|k| k.map(|k| LetterKey::from_text(&k))).collect()
}

/// The email recorded for a letter key.
pub(super) fn load(conn: &Connection, key: &LetterKey) -> rusqlite::Result<Option<EmailRecord>> {
    conn.prepare_cached(
        "SELECT key, role, to_address, subject, state, fallback_print, attempts, message_id,
                reply, last_error, sent_at
         FROM emails WHERE key = ?1",
    )?
    .query_row([key.as_str()], |r| {
        Ok(EmailRecord {
            key: LetterKey::from_text(&r.get::<_, String>(0)?),
            role: r.get(1)?,
            to_address: r.get(2)?,
            subject: r.get(3)?,
            state: r.get(4)?,
            fallback_print: r.get(5)?,
            attempts: r.get(6)?,
            message_id: r.get(7)?,
            reply: r.get(8)?,
            last_error: r.get(9)?,
            sent_at: opt_time_at(r, 10)?,
        })
    })
    .optional()
}
