//! The work queue in PostgreSQL: the `work` table (payload and claim per letter key).
//!
//! Workers on several machines claim at once: each claim reads the claimable rows
//! `FOR UPDATE SKIP LOCKED`, so two transactions never take the same letter and neither
//! waits for the other's chunk. Leases run on the server's clock (`now()`), so the
//! machines' clocks do not matter.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use postgres::GenericClient;

use super::PgLedger;
use super::rows::{Db, get};
use super::typed::Typed;
use super::writes::require_run;
use crate::ledger::{
    ClaimedLetter, DbError, LedgerError, LetterPayload, WorkLeft, WorkQueue, payload_sha256,
};
use crate::letter::LetterKey;

/// A database failure while doing `action` on the work queue.
fn failed(action: String) -> impl Fn(DbError) -> LedgerError {
    move |source| LedgerError::Run {
        action: action.clone(),
        source,
    }
}

/// Stores a call's payloads in one statement, replacing an earlier one of each key and
/// clearing its claim (a key given twice keeps its last payload, as if stored one by one).
/// Every key must be a recorded letter: the first that is not (in the order given) is
/// returned and nothing is stored.
fn store_all<'a>(
    conn: &mut impl GenericClient,
    run_id: i64,
    payloads: &'a [LetterPayload],
) -> Db<Option<&'a LetterKey>> {
    let keys: Vec<&str> = payloads.iter().map(|p| p.key.as_str()).collect();
    let known: HashSet<String> = conn
        .query_t("SELECT key FROM letters WHERE key = ANY($1)", &[&keys])?
        .iter()
        .map(|row| get(row, 0))
        .collect::<Db<_>>()?;
    if let Some(unknown) = payloads.iter().find(|p| !known.contains(p.key.as_str())) {
        return Ok(Some(&unknown.key));
    }
    super::writes::share_letters_in_order(conn, &keys)?;
    let mut last: HashMap<&str, &LetterPayload> = HashMap::with_capacity(payloads.len());
    for item in payloads {
        last.insert(item.key.as_str(), item);
    }
    let items: Vec<&LetterPayload> = last.into_values().collect();
    if items.is_empty() {
        return Ok(None);
    }
    conn.execute_t(
        "INSERT INTO work (key, run_id, payload, payload_sha256, data_sha256, worker,
             lease_until)
         SELECT u.key, $5, u.payload, u.payload_sha256, u.data_sha256, NULL, NULL
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
             AS u(key, payload, payload_sha256, data_sha256)
         ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id,
             payload = excluded.payload, payload_sha256 = excluded.payload_sha256,
             data_sha256 = excluded.data_sha256, worker = NULL, lease_until = NULL",
        &[
            &items.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(),
            &items.iter().map(|i| i.payload.as_str()).collect::<Vec<_>>(),
            &items
                .iter()
                .map(|i| payload_sha256(&i.payload))
                .collect::<Vec<_>>(),
            &items
                .iter()
                .map(|i| i.data_sha256.as_str())
                .collect::<Vec<_>>(),
            &run_id,
        ],
    )?;
    Ok(None)
}

/// Claims up to `limit` claimable letters of the run for `worker` for `lease_ms`, in key
/// order. The lock is on the work rows only: a letter's row stays free for
/// `record_rendered` of another chunk.
fn claim(
    conn: &mut impl GenericClient,
    run_id: i64,
    worker: &str,
    limit: i64,
    lease_ms: i64,
) -> Db<Vec<ClaimedLetter>> {
    let rows = conn.query_t(
        "WITH claimable AS (
             SELECT w.key, l.data_sha256 FROM work w JOIN letters l ON l.key = w.key
             JOIN runs r ON r.id = w.run_id AND r.status = 'running'
             WHERE w.run_id = $1 AND l.run_id = $1 AND l.state = 'planned'
               AND w.data_sha256 = l.data_sha256
               AND (w.lease_until IS NULL OR w.lease_until <= now())
             ORDER BY w.key LIMIT $2
             FOR UPDATE OF w SKIP LOCKED
         )
         UPDATE work w SET worker = $3,
             lease_until = now() + $4::bigint * interval '1 millisecond'
         FROM claimable c WHERE w.key = c.key
         RETURNING w.key, w.payload, w.payload_sha256, c.data_sha256",
        &[&run_id, &limit, &worker, &lease_ms],
    )?;
    let mut claimed = rows
        .iter()
        .map(|row| {
            Ok(ClaimedLetter {
                key: LetterKey::from_text(&get::<String>(row, 0)?),
                payload: get(row, 1)?,
                payload_sha256: get(row, 2)?,
                data_sha256: get(row, 3)?,
            })
        })
        .collect::<Db<Vec<_>>>()?;
    // UPDATE … RETURNING keeps no order: key order, as the other backends.
    claimed.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    Ok(claimed)
}

impl WorkQueue for PgLedger {
    fn record_payloads(
        &mut self,
        run_id: i64,
        payloads: &[LetterPayload],
    ) -> Result<(), LedgerError> {
        let fail = failed(format!("record the letters' payloads of run {run_id}"));
        self.in_tx(&fail, |tx| {
            require_run(tx, run_id, "record the letters' payloads")?;
            match store_all(tx, run_id, payloads).map_err(&fail)? {
                Some(key) => Err(LedgerError::UnknownLetter { key: key.clone() }),
                None => Ok(()),
            }
        })
    }

    fn withdraw_payloads(&mut self, run_id: i64, keep: &[LetterKey]) -> Result<usize, LedgerError> {
        let fail = failed(format!("withdraw the letters' payloads of run {run_id}"));
        let keep: Vec<&str> = keep.iter().map(LetterKey::as_str).collect();
        self.in_tx(&fail, |tx| {
            require_run(tx, run_id, "withdraw the letters' payloads")?;
            let withdrawn = tx
                .execute_t(
                    "DELETE FROM work w USING letters l
                     WHERE w.run_id = $1 AND l.key = w.key AND l.state = 'planned'
                       AND NOT (w.key = ANY($2))",
                    &[&run_id, &keep],
                )
                .map_err(|e| fail(e.into()))?;
            Ok(usize::try_from(withdrawn).unwrap_or(usize::MAX))
        })
    }

    fn payloads_of(
        &self,
        run_id: i64,
        keys: &[LetterKey],
    ) -> Result<HashMap<LetterKey, LetterPayload>, LedgerError> {
        let texts: Vec<&str> = keys.iter().map(LetterKey::as_str).collect();
        self.read(
            || format!("the payloads of {} letters of run {run_id}", keys.len()),
            |conn| {
                let rows = conn.query_t(
                    "SELECT key, payload, data_sha256 FROM work
                     WHERE key = ANY($1) AND run_id = $2",
                    &[&texts, &run_id],
                )?;
                rows.iter()
                    .map(|row| {
                        let key = LetterKey::from_text(&get::<String>(row, 0)?);
                        let item = LetterPayload {
                            key: key.clone(),
                            payload: get(row, 1)?,
                            data_sha256: get(row, 2)?,
                        };
                        Ok((key, item))
                    })
                    .collect()
            },
        )
    }

    fn claim_letters(
        &mut self,
        run_id: i64,
        worker: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<ClaimedLetter>, LedgerError> {
        let fail = failed(format!("claim letters of run {run_id} for `{worker}`"));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self.in_tx(&fail, |tx| {
            claim(tx, run_id, worker, limit, lease_ms).map_err(&fail)
        })
    }

    fn work_left(&self, run_id: i64) -> Result<WorkLeft, LedgerError> {
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        self.read(
            || format!("the work left in run {run_id}"),
            |conn| {
                let row = conn.query_one_t(
                    "SELECT
                        (SELECT count(*) FROM letters l JOIN work w ON w.key = l.key
                         WHERE l.run_id = $1 AND l.state = 'planned' AND w.run_id = $1),
                        (SELECT count(*) FROM letters l JOIN work w ON w.key = l.key
                         WHERE l.run_id = $1 AND l.state = 'planned' AND w.run_id = $1
                           AND w.lease_until > now()),
                        (SELECT count(*) FROM work WHERE run_id = $1)",
                    &[&run_id],
                )?;
                Ok(WorkLeft {
                    planned: count(get(&row, 0)?),
                    claimed: count(get(&row, 1)?),
                    recorded: count(get(&row, 2)?),
                })
            },
        )
    }
}
