//! The in-memory ledger: every role, with the invariants of the SQLite ledger, and nothing
//! stored. For unit-testing a run without files or subprocesses, and as the executable
//! statement of the contract (the contract tests run against it and SQLite alike).
//!
//! Invariants, as in SQLite: each write is all or nothing (it works on a copy of the
//! tables that replaces them only when it succeeds); letter state moves are checked with
//! [`super::rules`] and `LetterState::can_move_to`; events, approvals and Treasury actions
//! are only ever appended; one referral per notice; a letter planned again loses its mail
//! piece; serial counters only move forward and an exhausted range allocates nothing; a
//! piece goes into one batch, once; an email being sent or of unknown outcome is never
//! replaced; a payload recorded again clears its claim. Ids count from 1 in insertion order, as SQLite's `AUTOINCREMENT` does.

mod logs;
mod mailroom;
mod outbox;
mod work;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::rules::{self, Planned};
use super::{
    Approval, BatchRecord, Event, LedgerError, LetterRecord, LetterState, LetterStore, MailPiece,
    NewEmail, NewRun, PlannedLetter, ReferralRecord, RenderedFile, RunInfo, RunLog, RunStatus,
    TreasuryRecord, stamp,
};
use crate::account::Notice;
use crate::letter::LetterKey;

/// A ledger held in memory; `Clone` copies it (a snapshot).
#[derive(Debug, Clone, Default)]
pub struct MemoryLedger {
    tables: Tables,
}

/// A letter with its current mail piece (`letters.piece_id` in SQLite).
#[derive(Debug, Clone)]
struct LetterRow {
    record: LetterRecord,
    piece: Option<i64>,
    /// The piece whose marks the current file carries (`letters.marked_piece_id`).
    marked: Option<i64>,
}

/// An email as composed, with its once-only state.
#[derive(Debug, Clone)]
struct EmailRow {
    email: NewEmail,
    state: super::EmailState,
    fallback_print: bool,
    attempts: u32,
    message_id: Option<String>,
    reply: Option<String>,
    last_error: Option<String>,
    sent_at: Option<DateTime<Utc>>,
}

/// Everything the ledger holds. Letters sit behind `Arc` so the copy a write works on is
/// cheap; the append-only lists are cut back instead of copied when a write fails.
#[derive(Debug, Clone, Default)]
struct Tables {
    runs: Vec<RunInfo>,
    letters: BTreeMap<LetterKey, Arc<LetterRow>>,
    events: Vec<Event>,
    referrals: BTreeMap<LetterKey, ReferralRecord>,
    treasury: Vec<TreasuryRecord>,
    approvals: Vec<Approval>,
    emails: BTreeMap<LetterKey, EmailRow>,
    /// Last IMb serial and certified article serial given out.
    counters: (Option<u64>, Option<u64>),
    pieces: Vec<MailPiece>,
    batches: Vec<BatchRecord>,
    /// The work queue: each letter's payload and claim (`work` in SQLite).
    work: BTreeMap<LetterKey, work::WorkRow>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> MemoryLedger {
        MemoryLedger::default()
    }

    /// Runs `write` on a copy of the tables, which replaces them only if it succeeds: one
    /// transaction. The append-only lists are shared and cut back on failure.
    fn write<T>(
        &mut self,
        write: impl FnOnce(&mut Tables) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let appended = (
            self.tables.events.len(),
            self.tables.treasury.len(),
            self.tables.approvals.len(),
        );
        let events = std::mem::take(&mut self.tables.events);
        let treasury = std::mem::take(&mut self.tables.treasury);
        let approvals = std::mem::take(&mut self.tables.approvals);
        let mut tx = Tables {
            events,
            treasury,
            approvals,
            ..self.tables.clone()
        };
        let result = write(&mut tx);
        if result.is_err() {
            let t = &mut self.tables;
            t.events = std::mem::take(&mut tx.events);
            t.events.truncate(appended.0);
            t.treasury = std::mem::take(&mut tx.treasury);
            t.treasury.truncate(appended.1);
            t.approvals = std::mem::take(&mut tx.approvals);
            t.approvals.truncate(appended.2);
        } else {
            self.tables = tx;
        }
        result
    }
}

impl Tables {
    fn run(&self, run_id: i64) -> Option<&RunInfo> {
        usize::try_from(run_id - 1)
            .ok()
            .and_then(|i| self.runs.get(i))
    }

    fn run_mut(&mut self, run_id: i64) -> Result<&mut RunInfo, LedgerError> {
        usize::try_from(run_id - 1)
            .ok()
            .and_then(|i| self.runs.get_mut(i))
            .ok_or(LedgerError::UnknownRun { run_id })
    }

    fn require_run(&self, run_id: i64) -> Result<(), LedgerError> {
        self.run(run_id)
            .map(|_| ())
            .ok_or(LedgerError::UnknownRun { run_id })
    }

    fn interrupt_running(&mut self, except: Option<i64>, at: DateTime<Utc>) {
        for run in &mut self.runs {
            if run.status == RunStatus::Running && Some(run.id) != except {
                run.status = RunStatus::Interrupted;
                run.finished_at = Some(at);
            }
        }
    }

    fn letter(&self, key: &LetterKey) -> Result<&LetterRow, LedgerError> {
        self.letters
            .get(key)
            .map(AsRef::as_ref)
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })
    }

    fn letter_mut(&mut self, key: &LetterKey) -> Result<&mut LetterRow, LedgerError> {
        self.letters
            .get_mut(key)
            .map(Arc::make_mut)
            .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })
    }

    fn append_event(
        &mut self,
        key: &LetterKey,
        run_id: Option<i64>,
        from: Option<LetterState>,
        to: LetterState,
        at: DateTime<Utc>,
        detail: &str,
    ) {
        self.events.push(Event {
            id: self.events.len() as i64 + 1,
            key: key.clone(),
            run_id,
            from_state: from,
            to_state: to,
            at,
            detail: detail.to_owned(),
        });
    }

    /// Moves a letter as `set_state` does: the same state is a no-op without an event, a
    /// forbidden move is refused; `planned` (from another state) clears the file and the mail
    /// piece. Returns
    /// whether it moved.
    fn move_letter(
        &mut self,
        key: &LetterKey,
        to: LetterState,
        run_id: Option<i64>,
        at: DateTime<Utc>,
        detail: &str,
    ) -> Result<bool, LedgerError> {
        let from = self.letter(key)?.record.state;
        if !rules::check_move(key, from, to)? {
            return Ok(false);
        }
        let row = self.letter_mut(key)?;
        let letter = &mut row.record;
        letter.state = to;
        letter.run_id = run_id.unwrap_or(letter.run_id);
        letter.updated_at = at;
        if to == LetterState::Planned {
            clear_file(letter);
            row.piece = None;
        }
        self.append_event(key, run_id, Some(from), to, at, detail);
        Ok(true)
    }

    fn plan(
        &mut self,
        run_id: i64,
        letter: &PlannedLetter,
        at: DateTime<Utc>,
    ) -> Result<Planned, LedgerError> {
        let current = self.letters.get(&letter.key).map(|row| {
            let r = &row.record;
            (r.state, r.run_id, r.data_sha256.as_str())
        });
        let change = rules::plan_change(current, run_id, letter);
        let Planned::Changed(from, detail) = &change else {
            return Ok(change);
        };
        let created_at = match self.letters.get(&letter.key) {
            Some(row) => row.record.created_at,
            None => at,
        };
        // Planned again before it was rendered: no copy went anywhere, so it keeps its
        // piece (allocation still gives a new one if the class or routing code changed).
        let piece = match self.letters.get(&letter.key) {
            Some(row) if *from == Some(LetterState::Planned) => row.piece,
            _ => None,
        };
        let record = LetterRecord {
            key: letter.key.clone(),
            run_id,
            account_id: letter.account_id.clone(),
            kind: letter.kind,
            variant: letter.variant,
            channel: letter.channel,
            mail_class: letter.mail_class,
            letter_date: letter.letter_date,
            deadline: letter.deadline,
            liability_ids: letter.liability_ids.clone(),
            subject: letter.subject.clone(),
            data_sha256: letter.data_sha256.clone(),
            template: None,
            template_sha256: None,
            file: None,
            file_sha256: None,
            pages: None,
            state: LetterState::Planned,
            created_at,
            updated_at: at,
        };
        self.letters.insert(
            letter.key.clone(),
            Arc::new(LetterRow {
                record,
                piece,
                marked: None,
            }),
        );
        self.append_event(
            &letter.key,
            Some(run_id),
            *from,
            LetterState::Planned,
            at,
            detail,
        );
        Ok(change)
    }

    fn render(
        &mut self,
        run_id: i64,
        file: &RenderedFile,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let current = self.letters.get(&file.key).map(|row| {
            let r = &row.record;
            rules::RenderTarget {
                state: r.state,
                file: r.file.clone(),
                file_sha256: r.file_sha256.clone(),
                data_sha256: r.data_sha256.clone(),
                run_id: r.run_id,
                payload_sha256: self
                    .work
                    .get(&file.key)
                    .and_then(|w| w.payload_of_run(r.run_id))
                    .map(str::to_owned),
            }
        });
        match rules::render_change(current, run_id, file) {
            rules::RenderOutcome::Done => {}
            rules::RenderOutcome::AlreadyRendered => return Ok(()),
            refused => {
                return Err(
                    rules::render_refusal(refused, &file.key, run_id).unwrap_or_else(|| {
                        LedgerError::UnknownLetter {
                            key: file.key.clone(),
                        }
                    }),
                );
            }
        }
        let row = self.letter_mut(&file.key)?;
        row.marked = file.marks;
        let letter = &mut row.record;
        letter.run_id = run_id;
        letter.template = Some(file.template.clone());
        letter.template_sha256 = Some(file.template_sha256.clone());
        letter.file = Some(file.file.clone());
        letter.file_sha256 = Some(file.file_sha256.clone());
        letter.pages = Some(file.pages);
        letter.state = LetterState::Rendered;
        letter.updated_at = at;
        let detail = rules::rendered_detail(run_id, file);
        self.append_event(
            &file.key,
            Some(run_id),
            Some(LetterState::Planned),
            LetterState::Rendered,
            at,
            &detail,
        );
        Ok(())
    }
}

/// A letter entering `planned` is rendered afresh.
fn clear_file(letter: &mut LetterRecord) {
    letter.template = None;
    letter.template_sha256 = None;
    letter.file = None;
    letter.file_sha256 = None;
    letter.pages = None;
}

impl RunLog for MemoryLedger {
    fn begin_run(&mut self, run: &NewRun) -> Result<RunInfo, LedgerError> {
        self.write(|t| {
            let at = stamp::now();
            t.interrupt_running(None, at);
            let info = run.started(t.runs.len() as i64 + 1, at);
            t.runs.push(info.clone());
            Ok(info)
        })
    }

    fn resume_run(&mut self, run_id: i64) -> Result<RunInfo, LedgerError> {
        self.write(|t| {
            t.require_run(run_id)?;
            t.interrupt_running(Some(run_id), stamp::now());
            let run = t.run_mut(run_id)?;
            run.status = RunStatus::Running;
            run.finished_at = None;
            Ok(run.clone())
        })
    }

    fn finish_run(&mut self, run_id: i64, status: RunStatus) -> Result<(), LedgerError> {
        self.write(|t| {
            let run = t.run_mut(run_id)?;
            run.status = status;
            run.finished_at = (status != RunStatus::Running).then(stamp::now);
            Ok(())
        })
    }

    fn fail_run(&mut self, run_id: i64, reason: &str) -> Result<(), LedgerError> {
        self.write(|t| {
            let run = t.run_mut(run_id)?;
            run.status = RunStatus::Failed;
            run.finished_at = Some(stamp::now());
            run.failure = Some(reason.to_owned());
            Ok(())
        })
    }

    fn run(&self, run_id: i64) -> Result<Option<RunInfo>, LedgerError> {
        Ok(self.tables.run(run_id).cloned())
    }

    fn runs(&self) -> Result<Vec<RunInfo>, LedgerError> {
        Ok(self.tables.runs.clone())
    }
}

impl LetterStore for MemoryLedger {
    fn record_planned(
        &mut self,
        run_id: i64,
        letters: &[PlannedLetter],
    ) -> Result<Vec<LetterKey>, LedgerError> {
        self.write(|t| {
            t.require_run(run_id)?;
            let at = stamp::now();
            let mut planned = Vec::with_capacity(letters.len());
            let mut seen = HashSet::with_capacity(letters.len());
            for letter in letters {
                if t.plan(run_id, letter, at)? == Planned::Skipped {
                    continue;
                }
                if seen.insert(&letter.key) {
                    planned.push(letter.key.clone());
                }
            }
            Ok(planned)
        })
    }

    fn record_rendered(&mut self, run_id: i64, files: &[RenderedFile]) -> Result<(), LedgerError> {
        self.write(|t| {
            t.require_run(run_id)?;
            let at = stamp::now();
            files.iter().try_for_each(|file| t.render(run_id, file, at))
        })
    }

    fn set_state(
        &mut self,
        key: &LetterKey,
        to: LetterState,
        run_id: Option<i64>,
        detail: &str,
    ) -> Result<LetterRecord, LedgerError> {
        self.write(|t| {
            let from = t.letter(key)?.record.state;
            if rules::check_move(key, from, to)?
                && let Some(run_id) = run_id
            {
                t.require_run(run_id)?;
            }
            t.move_letter(key, to, run_id, stamp::now(), detail)?;
            Ok(t.letter(key)?.record.clone())
        })
    }

    fn letter(&self, key: &LetterKey) -> Result<Option<LetterRecord>, LedgerError> {
        Ok(self.tables.letters.get(key).map(|row| row.record.clone()))
    }

    fn letters_of_account(&self, account_id: &str) -> Result<Vec<LetterRecord>, LedgerError> {
        Ok(self.letters_where(|l| l.account_id == account_id))
    }

    fn letters_of_run(
        &self,
        run_id: i64,
        state: Option<LetterState>,
    ) -> Result<Vec<LetterRecord>, LedgerError> {
        Ok(self.letters_where(|l| l.run_id == run_id && state.is_none_or(|s| l.state == s)))
    }

    fn letters_of_run_after(
        &self,
        run_id: i64,
        state: Option<LetterState>,
        after: Option<&LetterKey>,
        limit: usize,
    ) -> Result<Vec<LetterRecord>, LedgerError> {
        let mut page = self.letters_where(|l| {
            l.run_id == run_id
                && state.is_none_or(|s| l.state == s)
                && after.is_none_or(|a| l.key.as_str() > a.as_str())
        });
        page.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        page.truncate(limit);
        Ok(page)
    }

    fn events_of(&self, key: &LetterKey) -> Result<Vec<Event>, LedgerError> {
        Ok(self
            .tables
            .events
            .iter()
            .filter(|e| &e.key == key)
            .cloned()
            .collect())
    }

    fn prior_notices(&self) -> Result<HashMap<String, Vec<Notice>>, LedgerError> {
        let mut letters =
            self.letters_where(|l| l.state.counts_as_sent() || l.state == LetterState::Returned);
        letters.sort_by(|a, b| {
            (&a.account_id, a.letter_date, &a.key).cmp(&(&b.account_id, b.letter_date, &b.key))
        });
        rules::notices_by_account(&letters)
    }
}

impl MemoryLedger {
    /// The letters that match, by key.
    fn letters_where(&self, matches: impl Fn(&LetterRecord) -> bool) -> Vec<LetterRecord> {
        self.tables
            .letters
            .values()
            .map(|row| &row.record)
            .filter(|l| matches(l))
            .cloned()
            .collect()
    }
}
