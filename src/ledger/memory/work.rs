//! The work queue in memory: payloads and claims by letter key, with the clock of this
//! process as the backend's clock. One process is the only worker of a memory ledger, so
//! a claim keeps its lease but not the worker's name.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::MemoryLedger;
use crate::ledger::{
    ClaimedLetter, LedgerError, LetterPayload, LetterState, RunStatus, WorkLeft, WorkQueue,
    payload_sha256, stamp,
};
use crate::letter::LetterKey;

/// A letter's payload for a run, and its claim (`work` in SQLite).
#[derive(Debug, Clone)]
pub(super) struct WorkRow {
    run_id: i64,
    payload: String,
    payload_sha256: String,
    data_sha256: String,
    lease_until: Option<DateTime<Utc>>,
}

impl WorkRow {
    /// The payload's hash when it belongs to `run_id`: what `record_rendered` checks.
    pub(super) fn payload_of_run(&self, run_id: i64) -> Option<&str> {
        (self.run_id == run_id).then_some(self.payload_sha256.as_str())
    }

    /// Claimed by someone whose lease has not run out at `now`.
    fn held_at(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_some_and(|until| until > now)
    }
}

impl WorkQueue for MemoryLedger {
    fn record_payloads(
        &mut self,
        run_id: i64,
        payloads: &[LetterPayload],
    ) -> Result<(), LedgerError> {
        self.write(|t| {
            t.require_run(run_id)?;
            for item in payloads {
                if !t.letters.contains_key(&item.key) {
                    return Err(LedgerError::UnknownLetter {
                        key: item.key.clone(),
                    });
                }
                t.work.insert(
                    item.key.clone(),
                    WorkRow {
                        run_id,
                        payload: item.payload.clone(),
                        payload_sha256: payload_sha256(&item.payload),
                        data_sha256: item.data_sha256.clone(),
                        lease_until: None,
                    },
                );
            }
            Ok(())
        })
    }

    fn withdraw_payloads(&mut self, run_id: i64, keep: &[LetterKey]) -> Result<usize, LedgerError> {
        let keep: HashSet<&LetterKey> = keep.iter().collect();
        self.write(|t| {
            t.require_run(run_id)?;
            let before = t.work.len();
            let letters = &t.letters;
            t.work.retain(|key, row| {
                let planned = letters
                    .get(key)
                    .is_some_and(|l| l.record.state == LetterState::Planned);
                row.run_id != run_id || !planned || keep.contains(key)
            });
            Ok(before - t.work.len())
        })
    }

    fn payloads_of(
        &self,
        run_id: i64,
        keys: &[LetterKey],
    ) -> Result<HashMap<LetterKey, LetterPayload>, LedgerError> {
        let work = &self.tables.work;
        Ok(keys
            .iter()
            .filter_map(|key| {
                let row = work.get(key).filter(|row| row.run_id == run_id)?;
                let item = LetterPayload {
                    key: key.clone(),
                    payload: row.payload.clone(),
                    data_sha256: row.data_sha256.clone(),
                };
                Some((key.clone(), item))
            })
            .collect())
    }

    fn claim_letters(
        &mut self,
        run_id: i64,
        _worker: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedLetter>, LedgerError> {
        let now = stamp::now();
        // Capped at a year, so the sum never overflows (the CLI allows a day at most).
        let lease = lease.min(Duration::from_secs(365 * 86_400));
        let until = now + TimeDelta::from_std(lease).unwrap_or(TimeDelta::zero());
        self.write(|t| {
            let mut claimed = Vec::new();
            if !t
                .runs
                .iter()
                .any(|r| r.id == run_id && r.status == RunStatus::Running)
            {
                return Ok(claimed);
            }
            for (key, row) in t.work.iter_mut() {
                if claimed.len() >= limit {
                    break;
                }
                let planned_here = t.letters.get(key).is_some_and(|l| {
                    l.record.state == LetterState::Planned
                        && l.record.run_id == run_id
                        && l.record.data_sha256 == row.data_sha256
                });
                if row.run_id != run_id || !planned_here || row.held_at(now) {
                    continue;
                }
                row.lease_until = Some(until);
                claimed.push(ClaimedLetter {
                    key: key.clone(),
                    payload: row.payload.clone(),
                    payload_sha256: row.payload_sha256.clone(),
                    // Claimable only when the letter's data is the payload's.
                    data_sha256: row.data_sha256.clone(),
                });
            }
            Ok(claimed)
        })
    }

    fn work_left(&self, run_id: i64) -> Result<WorkLeft, LedgerError> {
        let now = stamp::now();
        let t = &self.tables;
        let mut left = WorkLeft {
            recorded: t.work.values().filter(|w| w.run_id == run_id).count(),
            ..WorkLeft::default()
        };
        for (key, letter) in &t.letters {
            if letter.record.run_id != run_id || letter.record.state != LetterState::Planned {
                continue;
            }
            let Some(work) = t.work.get(key).filter(|w| w.run_id == run_id) else {
                continue;
            };
            left.planned += 1;
            if work.held_at(now) {
                left.claimed += 1;
            }
        }
        Ok(left)
    }
}
