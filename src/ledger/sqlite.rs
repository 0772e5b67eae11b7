//! The SQLite ledger: one file beside the output, WAL mode, every change in a transaction.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior, params};

use super::approvals;
use super::emails as email;
use super::lock::RunLock;
use super::mailroom;
use super::prelude::*;
use super::rows::{
    LETTER_COLUMNS, RUN_COLUMNS, event_from_row, ids_json, letter_from_row, load_letter, load_run,
    referral_from_row, run_from_row,
};
use super::stamp;
use super::writes::{
    Planned, RenderOutcome, append_event, interrupt_running, now, plan_one, render_one, require_run,
};
use super::{
    Approval, BatchRecord, EmailRecord, Event, LedgerError, LetterRecord, LetterState, MailPiece,
    MakePiece, NewApproval, NewBatch, NewEmail, NewReferral, NewRun, PieceRanges, PieceRequest,
    PlannedLetter, QueuedEmail, ReferralRecord, RenderedFile, RunInfo, RunStatus, SendRecord,
    allowed_moves, notice_of, schema,
};
use crate::account::Notice;
use crate::letter::LetterKey;

/// A ledger in one SQLite file.
#[derive(Debug)]
pub struct SqliteLedger {
    conn: Connection,
    path: PathBuf,
}

impl SqliteLedger {
    /// Opens or creates the ledger file: WAL mode, foreign keys on, busy timeout (5 s),
    /// migrations applied (schema versions in code, `PRAGMA user_version`; a database from a
    /// NEWER version is refused). A file that is not a SQLite database, is corrupt or is
    /// unwritable, or a directory that does not exist, gives a clear error naming the path.
    pub fn open(path: &Path) -> Result<SqliteLedger, LedgerError> {
        let conn = schema::open(path)?;
        Ok(SqliteLedger {
            conn,
            path: path.to_owned(),
        })
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the exclusive run lock (`<canonical ledger path>.lock`, locked with
    /// `File::try_lock`; the OS releases it when the process dies, even by SIGKILL). The
    /// path is canonicalized first (symlinks, `..`, relative paths resolved), so two names
    /// of the same ledger file share one lock. A second holder gets [`LedgerError::Locked`]
    /// at once. The guard releases on drop.
    pub fn lock_for_run(&self) -> Result<RunLock, LedgerError> {
        let canonical =
            std::fs::canonicalize(&self.path).map_err(|source| LedgerError::LockFile {
                path: self.path.clone(),
                source,
            })?;
        RunLock::acquire(&canonical)
    }

    /// The connection, for tests that check what the code must not be able to do.
    #[cfg(test)]
    pub(super) fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl SqliteLedger {
    fn write_tx(&mut self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        // IMMEDIATE takes the write lock up front, so a concurrent writer waits on the busy
        // timeout instead of failing mid-transaction.
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
    }

    fn read_letters(
        &self,
        what: impl Fn() -> String,
        sql: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<LetterRecord>, LedgerError> {
        let read = || -> rusqlite::Result<Vec<LetterRecord>> {
            let mut stmt = self.conn.prepare_cached(sql)?;
            let rows = stmt.query_map(args, letter_from_row)?;
            rows.collect()
        };
        read().map_err(|source| LedgerError::Read {
            what: what(),
            source,
        })
    }
}

impl SqliteLedger {
    fn read_referrals(
        &self,
        what: String,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<ReferralRecord>, LedgerError> {
        let read = || -> rusqlite::Result<Vec<ReferralRecord>> {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT notice_key, account_id, liability_ids, amount, deadline_passed, run_id, at
                 FROM referrals {filter}"
            ))?;
            let rows = stmt.query_map(args, referral_from_row)?;
            rows.collect()
        };
        read().map_err(|source| LedgerError::Read { what, source })
    }
}

impl RunLog for SqliteLedger {
    fn begin_run(&mut self, run: &NewRun) -> Result<RunInfo, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: "start a run".to_owned(),
            source,
        };
        let started_at = stamp::now();
        let at = stamp::text(&started_at);
        let tx = self.write_tx().map_err(failed)?;
        interrupt_running(&tx, None, &at).map_err(failed)?;
        tx.execute(
            "INSERT INTO runs (started_at, as_of, mail_date, config_sha256, accounts, out_dir,
                 status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running')",
            params![
                at,
                run.as_of.to_string(),
                run.mail_date.to_string(),
                run.config_sha256,
                run.accounts,
                run.out_dir
            ],
        )
        .map_err(failed)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(failed)?;
        Ok(RunInfo {
            id,
            started_at,
            finished_at: None,
            as_of: run.as_of,
            mail_date: run.mail_date,
            config_sha256: run.config_sha256.clone(),
            accounts: run.accounts.clone(),
            out_dir: run.out_dir.clone(),
            status: RunStatus::Running,
            failure: None,
        })
    }

    fn resume_run(&mut self, run_id: i64) -> Result<RunInfo, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: format!("resume run {run_id}"),
            source,
        };
        let at = now();
        let tx = self.write_tx().map_err(failed)?;
        require_run(&tx, run_id, "resume a run")?;
        interrupt_running(&tx, Some(run_id), &at).map_err(failed)?;
        tx.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL WHERE id = ?1",
            [run_id],
        )
        .map_err(failed)?;
        let info = require_run(&tx, run_id, "resume a run")?;
        tx.commit().map_err(failed)?;
        Ok(info)
    }

    fn finish_run(&mut self, run_id: i64, status: RunStatus) -> Result<(), LedgerError> {
        let finished_at = (status != RunStatus::Running).then(now);
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
                params![run_id, status.as_str(), finished_at],
            )
            .map_err(|source| LedgerError::Run {
                action: format!("record run {run_id} as {status}"),
                source,
            })?;
        if changed == 0 {
            return Err(LedgerError::UnknownRun { run_id });
        }
        Ok(())
    }

    fn fail_run(&mut self, run_id: i64, reason: &str) -> Result<(), LedgerError> {
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET status = 'failed', finished_at = ?2, failure = ?3 WHERE id = ?1",
                params![run_id, now(), reason],
            )
            .map_err(|source| LedgerError::Run {
                action: format!("record run {run_id} as failed"),
                source,
            })?;
        if changed == 0 {
            return Err(LedgerError::UnknownRun { run_id });
        }
        Ok(())
    }

    fn run(&self, run_id: i64) -> Result<Option<RunInfo>, LedgerError> {
        load_run(&self.conn, run_id).map_err(|source| LedgerError::Run {
            action: format!("read run {run_id}"),
            source,
        })
    }

    fn runs(&self) -> Result<Vec<RunInfo>, LedgerError> {
        let read = || -> rusqlite::Result<Vec<RunInfo>> {
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id");
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([], run_from_row)?;
            rows.collect()
        };
        read().map_err(|source| LedgerError::Run {
            action: "list the runs".to_owned(),
            source,
        })
    }
}

impl LetterStore for SqliteLedger {
    fn record_planned(
        &mut self,
        run_id: i64,
        letters: &[PlannedLetter],
    ) -> Result<Vec<LetterKey>, LedgerError> {
        let begin_failed = |source| LedgerError::Run {
            action: format!("record the planned letters of run {run_id}"),
            source,
        };
        let at = now();
        let tx = self.write_tx().map_err(begin_failed)?;
        require_run(&tx, run_id, "record planned letters")?;
        let mut planned = Vec::with_capacity(letters.len());
        let mut seen = HashSet::with_capacity(letters.len());
        for letter in letters {
            let failed = |source| LedgerError::Record {
                key: letter.key.clone(),
                state: LetterState::Planned,
                source,
            };
            match plan_one(&tx, run_id, letter, &at).map_err(failed)? {
                Planned::Skipped => continue,
                Planned::Unchanged => {}
                Planned::Changed(from, detail) => {
                    append_event(
                        &tx,
                        &letter.key,
                        Some(run_id),
                        from,
                        LetterState::Planned,
                        &at,
                        &detail,
                    )
                    .map_err(failed)?;
                }
            }
            if seen.insert(&letter.key) {
                planned.push(letter.key.clone());
            }
        }
        tx.commit().map_err(begin_failed)?;
        Ok(planned)
    }

    fn record_rendered(&mut self, run_id: i64, files: &[RenderedFile]) -> Result<(), LedgerError> {
        let begin_failed = |source| LedgerError::Run {
            action: format!("record the rendered letters of run {run_id}"),
            source,
        };
        let at = now();
        let tx = self.write_tx().map_err(begin_failed)?;
        require_run(&tx, run_id, "record rendered letters")?;
        for file in files {
            let outcome =
                render_one(&tx, run_id, file, &at).map_err(|source| LedgerError::Record {
                    key: file.key.clone(),
                    state: LetterState::Rendered,
                    source,
                })?;
            match outcome {
                RenderOutcome::Done | RenderOutcome::AlreadyRendered => {}
                RenderOutcome::Refused(state) => {
                    return Err(LedgerError::NotPlanned {
                        key: file.key.clone(),
                        state,
                    });
                }
                RenderOutcome::Unknown => {
                    return Err(LedgerError::UnknownLetter {
                        key: file.key.clone(),
                    });
                }
            }
        }
        tx.commit().map_err(begin_failed)
    }

    fn set_state(
        &mut self,
        key: &LetterKey,
        to: LetterState,
        run_id: Option<i64>,
        detail: &str,
    ) -> Result<LetterRecord, LedgerError> {
        let failed = |source| LedgerError::Record {
            key: key.clone(),
            state: to,
            source,
        };
        let at = now();
        let tx = self.write_tx().map_err(failed)?;
        let current = load_letter(&tx, key)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
        if current.state == to {
            return Ok(current);
        }
        if !current.state.can_move_to(to) {
            return Err(LedgerError::Transition {
                key: key.clone(),
                from: current.state,
                to,
                allowed: allowed_moves(current.state),
            });
        }
        if let Some(run_id) = run_id {
            require_run(&tx, run_id, &format!("record `{key}` as {to}"))?;
        }
        let sql = if to == LetterState::Planned {
            "UPDATE letters SET state = ?2, run_id = COALESCE(?3, run_id), updated_at = ?4,
                 template = NULL, template_sha256 = NULL, file = NULL, file_sha256 = NULL,
                 pages = NULL
             WHERE key = ?1"
        } else {
            "UPDATE letters SET state = ?2, run_id = COALESCE(?3, run_id), updated_at = ?4
             WHERE key = ?1"
        };
        tx.execute(sql, params![key.as_str(), to.as_str(), run_id, at])
            .map_err(failed)?;
        append_event(&tx, key, run_id, Some(current.state), to, &at, detail).map_err(failed)?;
        let updated = load_letter(&tx, key)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
        tx.commit().map_err(failed)?;
        Ok(updated)
    }

    fn letter(&self, key: &LetterKey) -> Result<Option<LetterRecord>, LedgerError> {
        load_letter(&self.conn, key).map_err(|source| LedgerError::Read {
            what: format!("letter `{key}`"),
            source,
        })
    }

    fn letters_of_account(&self, account_id: &str) -> Result<Vec<LetterRecord>, LedgerError> {
        self.read_letters(
            || format!("the letters of account `{account_id}`"),
            &format!("SELECT {LETTER_COLUMNS} FROM letters WHERE account_id = ?1 ORDER BY key"),
            [account_id],
        )
    }

    fn letters_of_run(
        &self,
        run_id: i64,
        state: Option<LetterState>,
    ) -> Result<Vec<LetterRecord>, LedgerError> {
        self.read_letters(
            || match state {
                Some(state) => format!("the {state} letters of run {run_id}"),
                None => format!("the letters of run {run_id}"),
            },
            &format!(
                "SELECT {LETTER_COLUMNS} FROM letters
                 WHERE run_id = ?1 AND (?2 IS NULL OR state = ?2) ORDER BY key"
            ),
            params![run_id, state.map(LetterState::as_str)],
        )
    }

    fn events_of(&self, key: &LetterKey) -> Result<Vec<Event>, LedgerError> {
        let read = || -> rusqlite::Result<Vec<Event>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, key, run_id, from_state, to_state, at, detail
                 FROM events WHERE key = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([key.as_str()], event_from_row)?;
            rows.collect()
        };
        read().map_err(|source| LedgerError::Read {
            what: format!("the events of `{key}`"),
            source,
        })
    }

    fn prior_notices(&self) -> Result<HashMap<String, Vec<Notice>>, LedgerError> {
        let states: Vec<String> = LetterState::ALL
            .into_iter()
            .filter(|s| s.counts_as_sent() || *s == LetterState::Returned)
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let letters = self.read_letters(
            || "the letters already produced".to_owned(),
            &format!(
                "SELECT {LETTER_COLUMNS} FROM letters WHERE state IN ({})
                 ORDER BY account_id, letter_date, key",
                states.join(", ")
            ),
            [],
        )?;
        let mut notices: HashMap<String, Vec<Notice>> = HashMap::new();
        for letter in &letters {
            if let Some(notice) = notice_of(letter)? {
                notices
                    .entry(letter.account_id.clone())
                    .or_default()
                    .push(notice);
            }
        }
        Ok(notices)
    }
}

impl TreasuryLog for SqliteLedger {
    fn record_referrals(
        &mut self,
        run_id: i64,
        referrals: &[NewReferral],
    ) -> Result<Vec<NewReferral>, LedgerError> {
        let begin_failed = |source| LedgerError::Run {
            action: format!("record the referrals of run {run_id}"),
            source,
        };
        let at = now();
        let tx = self.write_tx().map_err(begin_failed)?;
        require_run(&tx, run_id, "record referrals")?;
        let mut new = Vec::new();
        for referral in referrals {
            let insert = || -> rusqlite::Result<usize> {
                super::treasury::insert_referral(
                    &tx,
                    referral,
                    &ids_json(&referral.liability_ids)?,
                    run_id,
                    &at,
                )
            };
            let inserted = insert().map_err(|source| LedgerError::Referral {
                key: referral.notice_key.clone(),
                source,
            })?;
            if inserted == 1 {
                new.push(referral.clone());
            }
        }
        tx.commit().map_err(begin_failed)?;
        Ok(new)
    }

    fn record_treasury(
        &mut self,
        run_id: i64,
        actions: &[super::TreasuryAction],
        deadlines: &std::collections::HashMap<crate::letter::LetterKey, chrono::NaiveDate>,
    ) -> Result<usize, LedgerError> {
        super::treasury::record(&mut self.conn, run_id, actions, deadlines)
    }

    fn treasury_actions(
        &self,
        run_id: Option<i64>,
        account_id: Option<&str>,
    ) -> Result<Vec<super::TreasuryRecord>, LedgerError> {
        super::treasury::list(&self.conn, run_id, account_id).map_err(|source| LedgerError::Read {
            what: "the Treasury actions".to_owned(),
            source,
        })
    }

    fn treasury_runs(&self) -> Result<Vec<i64>, LedgerError> {
        super::treasury::runs_with_actions(&self.conn).map_err(|source| LedgerError::Read {
            what: "the runs with Treasury actions".to_owned(),
            source,
        })
    }

    fn top_holdings(
        &self,
    ) -> Result<std::collections::HashMap<String, Vec<crate::account::TopReferral>>, LedgerError>
    {
        super::treasury::holdings(&self.conn).map_err(|source| LedgerError::Read {
            what: "what the Treasury Offset Program holds".to_owned(),
            source,
        })
    }

    fn referrals(&self) -> Result<Vec<ReferralRecord>, LedgerError> {
        self.read_referrals(
            "every referral".to_owned(),
            "ORDER BY run_id, notice_key",
            [],
        )
    }

    fn referrals_of_account(&self, account_id: &str) -> Result<Vec<ReferralRecord>, LedgerError> {
        self.read_referrals(
            format!("the referrals of account `{account_id}`"),
            "WHERE account_id = ?1 ORDER BY notice_key",
            [account_id],
        )
    }
}

impl ApprovalLog for SqliteLedger {
    fn record_approval(&mut self, approval: &NewApproval) -> Result<Approval, LedgerError> {
        approvals::record(&self.conn, approval)
    }

    fn approvals(&self, template: Option<&str>) -> Result<Vec<Approval>, LedgerError> {
        approvals::list(&self.conn, template)
    }

    fn approval_of(
        &self,
        template: &str,
        template_sha256: &str,
    ) -> Result<Option<Approval>, LedgerError> {
        approvals::of(&self.conn, template, template_sha256)
    }
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
            source,
        };
        let at = now();
        let tx = self.write_tx().map_err(failed)?;
        require_run(&tx, run_id, "record emails")?;
        email::record(&tx, run_id, planned, emails, &at).map_err(failed)?;
        tx.commit().map_err(failed)
    }

    fn email_queue(
        &self,
        run_id: Option<i64>,
        resend_uncertain: bool,
    ) -> Result<Vec<QueuedEmail>, LedgerError> {
        email::queue(&self.conn, run_id, resend_uncertain).map_err(|source| LedgerError::Read {
            what: "the emails to send".to_owned(),
            source,
        })
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
        let tx = self.write_tx().map_err(failed)?;
        email::begin(&tx, run_id, sends, &at)?;
        tx.commit().map_err(failed)
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
        let tx = self.write_tx().map_err(failed)?;
        email::finish(&tx, run_id, outcomes, &at)?;
        tx.commit().map_err(failed)
    }

    fn recover_interrupted_sends(&mut self) -> Result<Vec<LetterKey>, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: "mark interrupted sends uncertain".to_owned(),
            source,
        };
        let at = now();
        let tx = self.write_tx().map_err(failed)?;
        let keys = email::recover(&tx, &at)?;
        tx.commit().map_err(failed)?;
        Ok(keys)
    }

    fn print_fallbacks(&self) -> Result<Vec<LetterKey>, LedgerError> {
        email::print_fallbacks(&self.conn).map_err(|source| LedgerError::Read {
            what: "the letters to fall back to print".to_owned(),
            source,
        })
    }

    fn email(&self, key: &LetterKey) -> Result<Option<EmailRecord>, LedgerError> {
        email::load(&self.conn, key).map_err(|source| LedgerError::Read {
            what: format!("the email of `{key}`"),
            source,
        })
    }

    fn uncertain_emails(&self) -> Result<Vec<LetterKey>, LedgerError> {
        email::uncertain(&self.conn).map_err(|source| LedgerError::Read {
            what: "the uncertain emails".to_owned(),
            source,
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
            source,
        };
        let tx = self.write_tx().map_err(failed)?;
        let record = email::resolve(&tx, key, sent, detail, &now())?;
        tx.commit().map_err(failed)?;
        Ok(record)
    }
}

impl BatchLog for SqliteLedger {
    fn allocate_pieces(
        &mut self,
        run_id: i64,
        requests: &[PieceRequest],
        ranges: PieceRanges,
        make: &MakePiece<'_>,
    ) -> Result<Vec<MailPiece>, LedgerError> {
        mailroom::allocate(&mut self.conn, run_id, requests, ranges, make)
    }

    fn record_batch(&mut self, batch: &NewBatch) -> Result<BatchRecord, LedgerError> {
        mailroom::record_batch(&mut self.conn, batch)
    }

    fn batches_of_run(&self, run_id: i64) -> Result<Vec<BatchRecord>, LedgerError> {
        mailroom::batches_of_run(&self.conn, run_id).map_err(|source| LedgerError::Read {
            what: format!("the batches of run {run_id}"),
            source,
        })
    }

    fn batch(&self, name: &str) -> Result<Option<BatchRecord>, LedgerError> {
        mailroom::load_batch(&self.conn, name).map_err(|source| LedgerError::Read {
            what: format!("batch `{name}`"),
            source,
        })
    }

    fn pieces_of_batch(&self, batch_id: i64) -> Result<Vec<MailPiece>, LedgerError> {
        mailroom::pieces_of_batch(&self.conn, batch_id).map_err(|source| LedgerError::Read {
            what: format!("the pieces of batch {batch_id}"),
            source,
        })
    }

    fn pieces_open(&self, pieces: &[i64]) -> Result<bool, LedgerError> {
        mailroom::pieces_open(&self.conn, pieces).map_err(|source| LedgerError::Read {
            what: "the mail pieces of a batch".to_owned(),
            source,
        })
    }

    fn unbatched_letters(&self) -> Result<Vec<(LetterKey, i64)>, LedgerError> {
        mailroom::unbatched(&self.conn).map_err(|source| LedgerError::Read {
            what: "the letters in no batch".to_owned(),
            source,
        })
    }

    fn release_batch(&mut self, name: &str, detail: &str) -> Result<BatchRecord, LedgerError> {
        mailroom::release(&mut self.conn, name, detail)
    }
}
