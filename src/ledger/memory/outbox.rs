//! Outgoing email in the in-memory ledger: the same once-only states as SQLite
//! (`sending` before the SMTP transaction, an interrupted send `uncertain`, an email in
//! flight never replaced).

use std::path::PathBuf;

use super::{EmailRow, MemoryLedger, Tables};
use crate::ledger::rules;
use crate::ledger::{
    EmailRecord, EmailRole, EmailState, LedgerError, LetterState, NewEmail, Outbox, QueuedEmail,
    SendRecord, stamp,
};
use crate::letter::{Channel, LetterKey, LetterKind};

impl EmailRow {
    fn record(&self, key: &LetterKey) -> EmailRecord {
        EmailRecord {
            key: key.clone(),
            role: self.email.role,
            to_address: self.email.to_address.clone(),
            subject: self.email.subject.clone(),
            state: self.state,
            fallback_print: self.fallback_print,
            attempts: self.attempts,
            message_id: self.message_id.clone(),
            reply: self.reply.clone(),
            last_error: self.last_error.clone(),
            sent_at: self.sent_at,
        }
    }
}

impl Tables {
    fn email_mut(&mut self, key: &LetterKey) -> Result<&mut EmailRow, LedgerError> {
        self.emails
            .get_mut(key)
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })
    }

    /// Records how SMTP attempts ended (shared by `record_sends` and the recovery).
    fn finish_sends(
        &mut self,
        run_id: Option<i64>,
        outcomes: &[(LetterKey, SendRecord)],
    ) -> Result<(), LedgerError> {
        let at = stamp::now();
        for (key, outcome) in outcomes {
            let done = outcome.outcome();
            let email = self.email_mut(key)?;
            email.state = done.email;
            if let Some(reply) = done.reply {
                email.reply = Some(reply.to_owned());
            }
            if let Some(error) = done.error {
                email.last_error = Some(error.to_owned());
            }
            email.fallback_print |= done.fallback_print;
            if done.email == EmailState::Sent {
                email.sent_at = Some(at);
            }
            if email.email.role == EmailRole::Letter {
                self.move_letter(key, done.letter, run_id, at, &done.detail)?;
            }
        }
        Ok(())
    }

    /// Whether an email is ready to send (the same rule as SQLite's queue query).
    fn ready(&self, key: &LetterKey, email: &EmailRow, resend_uncertain: bool) -> bool {
        let Some(letter) = self.letters.get(key).map(|row| &row.record) else {
            return false;
        };
        let uncertain = resend_uncertain && email.state == EmailState::Uncertain;
        match email.email.role {
            EmailRole::Letter => {
                letter.channel == Channel::Email
                    && ((email.state == EmailState::Pending
                        && letter.state == LetterState::Rendered)
                        || (uncertain && letter.state == LetterState::Uncertain))
            }
            EmailRole::Copy => {
                letter.kind == LetterKind::IntentToOffset
                    && matches!(letter.state, LetterState::Rendered | LetterState::Released)
                    && (email.state == EmailState::Pending || uncertain)
            }
        }
    }
}

impl Outbox for MemoryLedger {
    fn record_emails(
        &mut self,
        run_id: i64,
        planned: &[LetterKey],
        emails: &[NewEmail],
    ) -> Result<(), LedgerError> {
        self.write(|t| {
            t.require_run(run_id)?;
            let with_email: std::collections::HashSet<&LetterKey> =
                emails.iter().map(|e| &e.key).collect();
            for key in planned.iter().filter(|k| !with_email.contains(k)) {
                if let Some(email) = t.emails.get_mut(key)
                    && email.state == EmailState::Pending
                {
                    email.state = EmailState::Cancelled;
                    email.last_error = Some(rules::NO_LONGER_EMAIL.to_owned());
                }
            }
            for email in emails {
                if !t.letters.contains_key(&email.key) {
                    return Err(LedgerError::Refused {
                        action: format!("record the emails of run {run_id}"),
                        reason: format!("`{}` is not in the ledger", email.key),
                    });
                }
                let fallback_print = match t.emails.get(&email.key) {
                    Some(old) if old.state.is_in_flight() => continue,
                    Some(old) => old.fallback_print,
                    None => false,
                };
                t.emails.insert(
                    email.key.clone(),
                    EmailRow {
                        email: email.clone(),
                        state: EmailState::Pending,
                        fallback_print,
                        attempts: 0,
                        message_id: None,
                        reply: None,
                        last_error: None,
                        sent_at: None,
                    },
                );
            }
            Ok(())
        })
    }

    fn email_queue(
        &self,
        run_id: Option<i64>,
        resend_uncertain: bool,
    ) -> Result<Vec<QueuedEmail>, LedgerError> {
        let t = &self.tables;
        let mut queue = Vec::new();
        for (key, email) in &t.emails {
            let Some(letter) = t.letters.get(key).map(|row| &row.record) else {
                continue;
            };
            if run_id.is_some_and(|id| letter.run_id != id)
                || !t.ready(key, email, resend_uncertain)
            {
                continue;
            }
            let Some(run) = t.run(letter.run_id) else {
                continue;
            };
            queue.push(QueuedEmail {
                email: email.email.clone(),
                state: email.state,
                attempts: email.attempts,
                pdf_path: letter
                    .file
                    .as_ref()
                    .map(|f| PathBuf::from(&run.out_dir).join(f)),
                pdf_file: letter.file.clone(),
                pdf_sha256: letter.file_sha256.clone(),
            });
        }
        Ok(queue)
    }

    fn begin_sending(
        &mut self,
        run_id: Option<i64>,
        sends: &[(LetterKey, String)],
    ) -> Result<(), LedgerError> {
        self.write(|t| {
            let at = stamp::now();
            for (key, message_id) in sends {
                let email = t.email_mut(key)?;
                email.state = EmailState::Sending;
                email.attempts += 1;
                email.message_id = Some(message_id.clone());
                if email.email.role == EmailRole::Letter {
                    let detail = rules::sending_detail(&email.email.to_address, message_id);
                    t.move_letter(key, LetterState::Sending, run_id, at, &detail)?;
                }
            }
            Ok(())
        })
    }

    fn record_sends(
        &mut self,
        run_id: Option<i64>,
        outcomes: &[(LetterKey, SendRecord)],
    ) -> Result<(), LedgerError> {
        self.write(|t| t.finish_sends(run_id, outcomes))
    }

    fn recover_interrupted_sends(&mut self) -> Result<Vec<LetterKey>, LedgerError> {
        self.write(|t| {
            let outcomes: Vec<(LetterKey, SendRecord)> = t
                .emails
                .iter()
                .filter(|(_, e)| e.state == EmailState::Sending)
                .map(|(key, _)| {
                    let reason = rules::INTERRUPTED_SEND.to_owned();
                    (key.clone(), SendRecord::Uncertain { reason })
                })
                .collect();
            t.finish_sends(None, &outcomes)?;
            Ok(outcomes.into_iter().map(|(key, _)| key).collect())
        })
    }

    fn print_fallbacks(&self) -> Result<Vec<LetterKey>, LedgerError> {
        Ok(self.keys_where(|e| e.fallback_print))
    }

    fn email(&self, key: &LetterKey) -> Result<Option<EmailRecord>, LedgerError> {
        Ok(self.tables.emails.get(key).map(|e| e.record(key)))
    }

    fn uncertain_emails(&self) -> Result<Vec<LetterKey>, LedgerError> {
        Ok(self.keys_where(|e| e.state == EmailState::Uncertain))
    }

    fn resolve_uncertain(
        &mut self,
        key: &LetterKey,
        sent: bool,
        detail: &str,
    ) -> Result<EmailRecord, LedgerError> {
        self.write(|t| {
            let at = stamp::now();
            let (to, email_to) = if sent {
                (LetterState::Sent, EmailState::Sent)
            } else {
                (LetterState::Failed, EmailState::Failed)
            };
            let email = t.email_mut(key)?;
            if email.state != EmailState::Uncertain {
                return Err(LedgerError::EmailNotUncertain {
                    key: key.clone(),
                    state: email.state,
                });
            }
            email.state = email_to;
            if sent {
                email.sent_at = Some(at);
            }
            if email.email.role == EmailRole::Letter {
                t.move_letter(key, to, None, at, detail)?;
            } else {
                let state = t.letter(key)?.record.state;
                let detail = rules::copy_verdict_detail(detail);
                t.append_event(key, None, Some(state), state, at, &detail);
            }
            Ok(t.email_mut(key)?.record(key))
        })
    }
}

impl MemoryLedger {
    /// The keys of the emails that match, by key.
    fn keys_where(&self, matches: impl Fn(&EmailRow) -> bool) -> Vec<LetterKey> {
        self.tables
            .emails
            .iter()
            .filter(|(_, e)| matches(e))
            .map(|(key, _)| key.clone())
            .collect()
    }
}
