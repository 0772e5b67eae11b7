//! The work queue in SQLite: the `work` table (payload and claim per letter key).
//!
//! Claims are taken inside `BEGIN IMMEDIATE`, so two processes claiming at once take the
//! write lock in turn and never get the same letter. Lease times are RFC 3339 text in one
//! format, so they compare as text.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::TimeDelta;
use rusqlite::{OptionalExtension, params};

use super::SqliteLedger;
use super::writes::require_run;
use crate::ledger::stamp;
use crate::ledger::{
    ClaimedLetter, LedgerError, LetterPayload, WorkLeft, WorkQueue, payload_sha256,
};
use crate::letter::LetterKey;

/// A SQLite failure while doing `action` on the work queue.
fn failed(action: String) -> impl Fn(rusqlite::Error) -> LedgerError {
    move |source| LedgerError::Run {
        action: action.clone(),
        source: source.into(),
    }
}

impl WorkQueue for SqliteLedger {
    fn record_payloads(
        &mut self,
        run_id: i64,
        payloads: &[LetterPayload],
    ) -> Result<(), LedgerError> {
        let fail = failed(format!("record the letters' payloads of run {run_id}"));
        let tx = self.write_tx().map_err(&fail)?;
        require_run(&tx, run_id, "record the letters' payloads")?;
        for item in payloads {
            let known = tx
                .prepare_cached("SELECT 1 FROM letters WHERE key = ?1")
                .and_then(|mut s| s.query_row([item.key.as_str()], |_| Ok(())).optional())
                .map_err(&fail)?;
            if known.is_none() {
                return Err(LedgerError::UnknownLetter {
                    key: item.key.clone(),
                });
            }
            tx.prepare_cached(
                "INSERT INTO work (key, run_id, payload, payload_sha256, data_sha256, worker,
                 lease_until)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL)
             ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id,
                 payload = excluded.payload, payload_sha256 = excluded.payload_sha256,
                 data_sha256 = excluded.data_sha256, worker = NULL, lease_until = NULL",
            )
            .and_then(|mut s| {
                s.execute(params![
                    item.key.as_str(),
                    run_id,
                    item.payload,
                    payload_sha256(&item.payload),
                    item.data_sha256
                ])
            })
            .map_err(&fail)?;
        }
        tx.commit().map_err(&fail)
    }

    fn withdraw_payloads(&mut self, run_id: i64, keep: &[LetterKey]) -> Result<usize, LedgerError> {
        let fail = failed(format!("withdraw the letters' payloads of run {run_id}"));
        let keep: HashSet<&str> = keep.iter().map(LetterKey::as_str).collect();
        let tx = self.write_tx().map_err(&fail)?;
        require_run(&tx, run_id, "withdraw the letters' payloads")?;
        let stale: Vec<String> = {
            let mut select = tx
                .prepare_cached(
                    "SELECT w.key FROM work w JOIN letters l ON l.key = w.key
                     WHERE w.run_id = ?1 AND l.state = 'planned'",
                )
                .map_err(&fail)?;
            let keys = select
                .query_map([run_id], |r| r.get::<_, String>(0))
                .map_err(&fail)?;
            let mut stale = Vec::new();
            for key in keys {
                let key = key.map_err(&fail)?;
                if !keep.contains(key.as_str()) {
                    stale.push(key);
                }
            }
            stale
        };
        for key in &stale {
            tx.prepare_cached("DELETE FROM work WHERE key = ?1")
                .and_then(|mut s| s.execute([key]))
                .map_err(&fail)?;
        }
        tx.commit().map_err(&fail)?;
        Ok(stale.len())
    }

    fn payloads_of(
        &self,
        run_id: i64,
        keys: &[LetterKey],
    ) -> Result<HashMap<LetterKey, LetterPayload>, LedgerError> {
        let fail = failed(format!("read the letters' payloads of run {run_id}"));
        let mut select = self
            .conn
            .prepare_cached("SELECT payload, data_sha256 FROM work WHERE key = ?1 AND run_id = ?2")
            .map_err(&fail)?;
        let mut found = HashMap::with_capacity(keys.len());
        for key in keys {
            let row = select
                .query_row(params![key.as_str(), run_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
                .map_err(&fail)?;
            if let Some((payload, data_sha256)) = row {
                let item = LetterPayload {
                    key: key.clone(),
                    payload,
                    data_sha256,
                };
                found.insert(key.clone(), item);
            }
        }
        Ok(found)
    }

    fn claim_letters(
        &mut self,
        run_id: i64,
        worker: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedLetter>, LedgerError> {
        let fail = failed(format!("claim letters of run {run_id} for `{worker}`"));
        let now = stamp::now();
        // Capped at a year, so the sum never overflows (the CLI allows a day at most).
        let lease = lease.min(Duration::from_secs(365 * 86_400));
        let until = now + TimeDelta::from_std(lease).unwrap_or(TimeDelta::zero());
        let (now, until) = (stamp::text(&now), stamp::text(&until));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let tx = self.write_tx().map_err(&fail)?;
        let claimed = {
            // From the run's planned letters (`letters_by_run_state`, in key order) to
            // their work rows, never the other way: `work` keeps the payload of every
            // letter rendered, and its columns after the payload (which spills to
            // overflow pages) cost a read of the whole payload per row, so a scan of
            // `work` from the first key re-read every rendered letter's payload at each
            // claim (a second of a 10k run). `CROSS JOIN` fixes that order for SQLite.
            let mut select = tx
                .prepare_cached(
                    "SELECT w.key, w.payload, w.payload_sha256, l.data_sha256
                     FROM letters l CROSS JOIN work w ON w.key = l.key
                     JOIN runs r ON r.id = w.run_id AND r.status = 'running'
                     WHERE w.run_id = ?1 AND l.run_id = ?1 AND l.state = 'planned'
                       AND w.data_sha256 = l.data_sha256
                       AND (w.lease_until IS NULL OR w.lease_until <= ?2)
                     ORDER BY l.key LIMIT ?3",
                )
                .map_err(&fail)?;
            let rows = select
                .query_map(params![run_id, now, limit], |r| {
                    Ok(ClaimedLetter {
                        key: LetterKey::from_text(&r.get::<_, String>(0)?),
                        payload: r.get(1)?,
                        payload_sha256: r.get(2)?,
                        data_sha256: r.get(3)?,
                    })
                })
                .map_err(&fail)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&fail)?
        };
        for letter in &claimed {
            tx.prepare_cached("UPDATE work SET worker = ?2, lease_until = ?3 WHERE key = ?1")
                .and_then(|mut s| s.execute(params![letter.key.as_str(), worker, until]))
                .map_err(&fail)?;
        }
        tx.commit().map_err(&fail)?;
        Ok(claimed)
    }

    fn work_left(&self, run_id: i64) -> Result<WorkLeft, LedgerError> {
        let now = stamp::text(&stamp::now());
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        self.conn
            .query_row(
                "SELECT
                    (SELECT count(*) FROM letters l JOIN work w ON w.key = l.key
                     WHERE l.run_id = ?1 AND l.state = 'planned' AND w.run_id = ?1),
                    (SELECT count(*) FROM letters l JOIN work w ON w.key = l.key
                     WHERE l.run_id = ?1 AND l.state = 'planned' AND w.run_id = ?1
                       AND w.lease_until > ?2),
                    (SELECT count(*) FROM work WHERE run_id = ?1)",
                params![run_id, now],
                |r| {
                    Ok(WorkLeft {
                        planned: count(r.get(0)?),
                        claimed: count(r.get(1)?),
                        recorded: count(r.get(2)?),
                    })
                },
            )
            .map_err(failed(format!("read the work left in run {run_id}")))
    }
}
