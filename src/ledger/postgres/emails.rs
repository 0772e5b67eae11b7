//! Outgoing email in PostgreSQL: the `emails` table and the once-only protocol around each
//! SMTP transaction (`sending` committed before, `sent` with the server's reply after).
//! Each function here runs inside the caller's transaction.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use postgres::{GenericClient, Row};

use super::PgLedger;
use super::rows::{Db, all, get, key_at, load_letter, num_at, opt_time_at, state_at};
use super::typed::Typed;
use super::writes::{append_event, move_letter, now, require_run};
use crate::ledger::emails::SendOutcome;
use crate::ledger::rules;
use crate::ledger::{
    EmailRecord, EmailRole, EmailState, LedgerError, LetterState, NewEmail, Outbox, QueuedEmail,
    SendRecord,
};
use crate::letter::LetterKey;

/// Inserts or replaces the emails of planned letters; cancels a pending email of a planned
/// letter that no longer goes by email. An email being sent or of uncertain outcome is
/// never replaced. One statement each, whatever the number of letters (a key given twice
/// keeps its last email, as if recorded one by one).
fn record(
    conn: &mut impl GenericClient,
    run_id: i64,
    planned: &[LetterKey],
    emails: &[NewEmail],
    at: &str,
) -> Db<()> {
    let with_email: HashSet<&LetterKey> = emails.iter().map(|e| &e.key).collect();
    let without: Vec<&str> = planned
        .iter()
        .filter(|k| !with_email.contains(k))
        .map(LetterKey::as_str)
        .collect();
    if !without.is_empty() {
        conn.execute_t(
            "UPDATE emails SET state = 'cancelled', updated_at = $2, last_error = $3
             WHERE key = ANY($1) AND state = 'pending'",
            &[&without, &at, &rules::NO_LONGER_EMAIL],
        )?;
    }
    let mut last: HashMap<&str, &NewEmail> = HashMap::with_capacity(emails.len());
    for email in emails {
        last.insert(email.key.as_str(), email);
    }
    if last.is_empty() {
        return Ok(());
    }
    let emails: Vec<&NewEmail> = last.into_values().collect();
    let keys: Vec<&str> = emails.iter().map(|e| e.key.as_str()).collect();
    super::writes::share_letters_in_order(conn, &keys)?;
    let text = |f: fn(&NewEmail) -> &str| -> Vec<&str> { emails.iter().map(|e| f(e)).collect() };
    conn.execute_t(
        "INSERT INTO emails (key, role, run_id, to_address, to_name, subject, text_body,
             html_body, attach_pdf, state, updated_at)
         SELECT u.key, u.role, $9, u.to_address, u.to_name, u.subject, u.text_body,
             u.html_body, u.attach_pdf, 'pending', $10
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::text[], $8::boolean[])
             AS u(key, role, to_address, to_name, subject, text_body, html_body, attach_pdf)
         ON CONFLICT (key) DO UPDATE SET role = excluded.role, run_id = excluded.run_id,
             to_address = excluded.to_address, to_name = excluded.to_name,
             subject = excluded.subject, text_body = excluded.text_body,
             html_body = excluded.html_body, attach_pdf = excluded.attach_pdf,
             state = 'pending', attempts = 0, message_id = NULL, reply = NULL,
             last_error = NULL, sent_at = NULL, updated_at = excluded.updated_at
         WHERE emails.state NOT IN ('sending', 'uncertain')",
        &[
            &text(|e| e.key.as_str()),
            &text(|e| e.role.as_str()),
            &text(|e| e.to_address.as_str()),
            &text(|e| e.to_name.as_str()),
            &text(|e| e.subject.as_str()),
            &text(|e| e.text.as_str()),
            &text(|e| e.html.as_str()),
            &emails.iter().map(|e| e.attach_pdf).collect::<Vec<bool>>(),
            &run_id,
            &at,
        ],
    )?;
    Ok(())
}

fn queued_from_row(row: &Row) -> Db<QueuedEmail> {
    let out_dir: String = get(row, 10)?;
    let file: Option<String> = get(row, 11)?;
    Ok(QueuedEmail {
        email: NewEmail {
            key: key_at(row, 0)?,
            role: state_at(row, 1)?,
            to_address: get(row, 2)?,
            to_name: get(row, 3)?,
            subject: get(row, 4)?,
            text: get(row, 5)?,
            html: get(row, 6)?,
            attach_pdf: get(row, 7)?,
        },
        state: state_at(row, 8)?,
        attempts: num_at(row, 9)?,
        pdf_path: file.as_ref().map(|f| PathBuf::from(&out_dir).join(f)),
        pdf_file: file,
        pdf_sha256: get(row, 12)?,
    })
}

/// Emails ready to send (see the SQLite backend: the same query).
fn queue(
    conn: &mut impl GenericClient,
    run_id: Option<i64>,
    resend_uncertain: bool,
) -> Db<Vec<QueuedEmail>> {
    let rows = conn.query_t(
        "SELECT e.key, e.role, e.to_address, e.to_name, e.subject, e.text_body, e.html_body,
                e.attach_pdf, e.state, e.attempts, r.out_dir, l.file, l.file_sha256
         FROM emails e JOIN letters l ON l.key = e.key JOIN runs r ON r.id = l.run_id
         WHERE ($1::BIGINT IS NULL OR l.run_id = $1)
           AND ((e.role = 'letter' AND l.channel = 'email'
                 AND ((e.state = 'pending' AND l.state = 'rendered')
                      OR ($2 AND e.state = 'uncertain' AND l.state = 'uncertain')))
             OR (e.role = 'copy' AND l.kind = 'intent_to_offset'
                 AND l.state IN ('rendered', 'released')
                 AND (e.state = 'pending' OR ($2 AND e.state = 'uncertain'))))
         ORDER BY e.key",
        &[&run_id, &resend_uncertain],
    )?;
    all(rows, queued_from_row)
}

fn role_and_address(
    conn: &mut impl GenericClient,
    key: &LetterKey,
) -> Db<Option<(EmailRole, String)>> {
    conn.query_opt_t(
        "SELECT role, to_address FROM emails WHERE key = $1 FOR UPDATE",
        &[&key.as_str()],
    )?
    .map(|row| Ok((state_at(&row, 0)?, get(&row, 1)?)))
    .transpose()
}

/// Marks emails `sending` (and a letter email's letter too) before the SMTP transaction.
fn begin(
    conn: &mut impl GenericClient,
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
        conn.execute_t(
            "UPDATE emails SET state = 'sending', attempts = attempts + 1, message_id = $2,
                 updated_at = $3
             WHERE key = $1",
            &[&key.as_str(), message_id, &at],
        )
        .map_err(|e| failed(e.into()))?;
        if role == EmailRole::Letter {
            let detail = rules::sending_detail(&to, message_id);
            move_letter(conn, key, LetterState::Sending, run_id, at, &detail)?;
        }
    }
    Ok(())
}

/// Records how SMTP attempts ended.
fn finish(
    conn: &mut impl GenericClient,
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
        conn.execute_t(
            "UPDATE emails SET state = $2, reply = COALESCE($3, reply),
                 last_error = COALESCE($4, last_error),
                 fallback_print = fallback_print OR $5,
                 sent_at = CASE WHEN $2 = 'sent' THEN $6 ELSE sent_at END, updated_at = $6
             WHERE key = $1",
            &[
                &key.as_str(),
                &email_state.as_str(),
                &reply,
                &error,
                &fallback,
                &at,
            ],
        )
        .map_err(|e| failed(e.into()))?;
        if role == EmailRole::Letter {
            move_letter(conn, key, letter_state, run_id, at, &detail)?;
        }
    }
    Ok(())
}

fn keys_where(conn: &mut impl GenericClient, sql: &str) -> Db<Vec<LetterKey>> {
    all(conn.query_t(sql, &[])?, |row| key_at(row, 0))
}

/// Every email left `sending` becomes `uncertain`, its letter too. Returns their keys.
fn recover(conn: &mut impl GenericClient, at: &str) -> Result<Vec<LetterKey>, LedgerError> {
    let keys = keys_where(
        conn,
        "SELECT key FROM emails WHERE state = 'sending' ORDER BY key FOR UPDATE",
    )
    .map_err(|source| LedgerError::Read {
        what: "the emails being sent".to_owned(),
        source,
    })?;
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

/// A person's verdict on an uncertain email (see the SQLite backend: the same records).
fn resolve(
    conn: &mut impl GenericClient,
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
    let email = load(conn, key, true)
        .map_err(failed)?
        .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
    if email.state != EmailState::Uncertain {
        return Err(LedgerError::EmailNotUncertain {
            key: key.clone(),
            state: email.state,
        });
    }
    conn.execute_t(
        "UPDATE emails SET state = $2,
             sent_at = CASE WHEN $2 = 'sent' THEN $3 ELSE sent_at END, updated_at = $3
         WHERE key = $1",
        &[&key.as_str(), &email_to.as_str(), &at],
    )
    .map_err(|e| failed(e.into()))?;
    if email.role == EmailRole::Letter {
        move_letter(conn, key, to, None, at, detail)?;
    } else {
        let letter = load_letter(conn, key, true)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
        let detail = rules::copy_verdict_detail(detail);
        let state = Some(letter.state);
        append_event(conn, key, None, state, letter.state, at, &detail).map_err(failed)?;
    }
    load(conn, key, false)
        .map_err(failed)?
        .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })
}

/// The email recorded for a letter key; `lock` takes its row lock.
fn load(conn: &mut impl GenericClient, key: &LetterKey, lock: bool) -> Db<Option<EmailRecord>> {
    let sql = format!(
        "SELECT key, role, to_address, subject, state, fallback_print, attempts, message_id,
                reply, last_error, sent_at
         FROM emails WHERE key = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    conn.query_opt_t(&sql, &[&key.as_str()])?
        .map(|r| {
            Ok(EmailRecord {
                key: key_at(&r, 0)?,
                role: state_at(&r, 1)?,
                to_address: get(&r, 2)?,
                subject: get(&r, 3)?,
                state: state_at(&r, 4)?,
                fallback_print: get(&r, 5)?,
                attempts: num_at(&r, 6)?,
                message_id: get(&r, 7)?,
                reply: get(&r, 8)?,
                last_error: get(&r, 9)?,
                sent_at: opt_time_at(&r, 10)?,
            })
        })
        .transpose()
}

impl Outbox for PgLedger {
    fn record_emails(
        &mut self,
        run_id: i64,
        planned: &[LetterKey],
        emails: &[NewEmail],
    ) -> Result<(), LedgerError> {
        let failed = |source| LedgerError::Run {
            action: format!("record the emails of run {run_id}"),
            source,
        };
        let at = now();
        self.in_tx(&failed, |tx| {
            require_run(tx, run_id, "record emails")?;
            record(tx, run_id, planned, emails, &at).map_err(failed)
        })
    }

    fn email_queue(
        &self,
        run_id: Option<i64>,
        resend_uncertain: bool,
    ) -> Result<Vec<QueuedEmail>, LedgerError> {
        self.read(
            || "the emails to send".to_owned(),
            |c| queue(c, run_id, resend_uncertain),
        )
    }

    fn begin_sending(
        &mut self,
        run_id: Option<i64>,
        sends: &[(LetterKey, String)],
    ) -> Result<(), LedgerError> {
        let failed = |source| LedgerError::Run {
            action: "record emails as sending".to_owned(),
            source,
        };
        let at = now();
        self.in_tx(&failed, |tx| begin(tx, run_id, sends, &at))
    }

    fn record_sends(
        &mut self,
        run_id: Option<i64>,
        outcomes: &[(LetterKey, SendRecord)],
    ) -> Result<(), LedgerError> {
        let failed = |source| LedgerError::Run {
            action: "record the outcome of sending emails".to_owned(),
            source,
        };
        let at = now();
        self.in_tx(&failed, |tx| finish(tx, run_id, outcomes, &at))
    }

    fn recover_interrupted_sends(&mut self) -> Result<Vec<LetterKey>, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: "mark interrupted sends uncertain".to_owned(),
            source,
        };
        let at = now();
        self.in_tx(&failed, |tx| recover(tx, &at))
    }

    fn print_fallbacks(&self) -> Result<Vec<LetterKey>, LedgerError> {
        self.read(
            || "the letters to fall back to print".to_owned(),
            |c| keys_where(c, "SELECT key FROM emails WHERE fallback_print"),
        )
    }

    fn email(&self, key: &LetterKey) -> Result<Option<EmailRecord>, LedgerError> {
        self.read(|| format!("the email of `{key}`"), |c| load(c, key, false))
    }

    fn uncertain_emails(&self) -> Result<Vec<LetterKey>, LedgerError> {
        self.read(
            || "the uncertain emails".to_owned(),
            |c| {
                keys_where(
                    c,
                    "SELECT key FROM emails WHERE state = 'uncertain' ORDER BY key",
                )
            },
        )
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
            source,
        };
        let at = now();
        self.in_tx(&failed, |tx| resolve(tx, key, sent, detail, &at))
    }
}
