//! Outgoing email in SQLite: the `emails` table and the once-only protocol around each SMTP
//! transaction (`sending` committed before, `sent` with the server's reply after).
//!
//! Each function here runs inside the caller's transaction; [`super::SqliteLedger`]'s
//! [`crate::ledger::Outbox`] methods open it.

use crate::ledger::DbError;
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteLedger;
use super::rows::{load_letter, opt_time_at};
use super::writes::{append_event, now, require_run};
use crate::ledger::emails::SendOutcome;
use crate::ledger::rules;
use crate::ledger::{
    EmailRecord, EmailRole, EmailState, LedgerError, LetterState, NewEmail, Outbox, QueuedEmail,
    SendRecord,
};
use crate::letter::LetterKey;

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
            "UPDATE emails SET state = 'cancelled', updated_at = ?2, last_error = ?3
             WHERE key = ?1 AND state = 'pending'",
        )?
        .execute(params![key.as_str(), at, rules::NO_LONGER_EMAIL])?;
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
        source: DbError::from(source),
    };
    let current = load_letter(conn, key)
        .map_err(failed)?
        .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
    if !rules::check_move(key, current.state, to)? {
        return Ok(());
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
            source: DbError::from(source),
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
            let detail = rules::sending_detail(&to, message_id);
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
            source: DbError::from(source),
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
            source: DbError::from(source),
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
                    reason: rules::INTERRUPTED_SEND.to_owned(),
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
        source: DbError::from(source),
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
        let detail = rules::copy_verdict_detail(detail);
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

impl Outbox for SqliteLedger {
    fn record_emails(
        &mut self,
        run_id: i64,
        planned: &[LetterKey],
        emails: &[NewEmail],
    ) -> Result<(), LedgerError> {
        let failed = |source| LedgerError::Run {
            action: format!("record the emails of run {run_id}"),
            source: DbError::from(source),
        };
        let at = now();
        let tx = self.write_tx().map_err(failed)?;
        require_run(&tx, run_id, "record emails")?;
        record(&tx, run_id, planned, emails, &at).map_err(failed)?;
        tx.commit().map_err(failed)
    }

    fn email_queue(
        &self,
        run_id: Option<i64>,
        resend_uncertain: bool,
    ) -> Result<Vec<QueuedEmail>, LedgerError> {
        queue(&self.conn, run_id, resend_uncertain).map_err(|source| LedgerError::Read {
            what: "the emails to send".to_owned(),
            source: DbError::from(source),
        })
    }

    fn begin_sending(
        &mut self,
        run_id: Option<i64>,
        sends: &[(LetterKey, String)],
    ) -> Result<(), LedgerError> {
        let failed = |source| LedgerError::Run {
            action: "record emails as sending".to_owned(),
            source: DbError::from(source),
        };
        let at = now();
        let tx = self.write_tx().map_err(failed)?;
        begin(&tx, run_id, sends, &at)?;
        tx.commit().map_err(failed)
    }

    fn record_sends(
        &mut self,
        run_id: Option<i64>,
        outcomes: &[(LetterKey, SendRecord)],
    ) -> Result<(), LedgerError> {
        let failed = |source| LedgerError::Run {
            action: "record the outcome of sending emails".to_owned(),
            source: DbError::from(source),
        };
        let at = now();
        let tx = self.write_tx().map_err(failed)?;
        finish(&tx, run_id, outcomes, &at)?;
        tx.commit().map_err(failed)
    }

    fn recover_interrupted_sends(&mut self) -> Result<Vec<LetterKey>, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: "mark interrupted sends uncertain".to_owned(),
            source: DbError::from(source),
        };
        let at = now();
        let tx = self.write_tx().map_err(failed)?;
        let keys = recover(&tx, &at)?;
        tx.commit().map_err(failed)?;
        Ok(keys)
    }

    fn print_fallbacks(&self) -> Result<Vec<LetterKey>, LedgerError> {
        print_fallbacks(&self.conn).map_err(|source| LedgerError::Read {
            what: "the letters to fall back to print".to_owned(),
            source: DbError::from(source),
        })
    }

    fn email(&self, key: &LetterKey) -> Result<Option<EmailRecord>, LedgerError> {
        load(&self.conn, key).map_err(|source| LedgerError::Read {
            what: format!("the email of `{key}`"),
            source: DbError::from(source),
        })
    }

    fn uncertain_emails(&self) -> Result<Vec<LetterKey>, LedgerError> {
        uncertain(&self.conn).map_err(|source| LedgerError::Read {
            what: "the uncertain emails".to_owned(),
            source: DbError::from(source),
        })
    }

    fn resolve_uncertain(
        &mut self,
        key: &LetterKey,
        sent: bool,
        detail: &str,
    ) -> Result<EmailRecord, LedgerError> {
        let failed = |source| LedgerError::Record {
            key: key.clone(),
            state: if sent {
                LetterState::Sent
            } else {
                LetterState::Failed
            },
            source: DbError::from(source),
        };
        let tx = self.write_tx().map_err(failed)?;
        let record = resolve(&tx, key, sent, detail, &now())?;
        tx.commit().map_err(failed)?;
        Ok(record)
    }
}
