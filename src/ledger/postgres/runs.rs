//! The runs in PostgreSQL.

use super::PgLedger;
use super::rows::{RUN_COLUMNS, all, load_run, run_from_row};
use super::typed::Typed;
use super::writes::{interrupt_running, now, require_run};
use crate::ledger::stamp;
use crate::ledger::{DbError, LedgerError, NewRun, RunInfo, RunLog, RunStatus};

impl RunLog for PgLedger {
    fn begin_run(&mut self, run: &NewRun) -> Result<RunInfo, LedgerError> {
        let started_at = stamp::now();
        let at = stamp::text(&started_at);
        let mut write = || -> Result<i64, DbError> {
            let mut tx = self.client.get_mut().transaction()?;
            interrupt_running(&mut tx, None, &at)?;
            let id: i64 = tx
                .query_one_t(
                    "INSERT INTO runs (started_at, as_of, mail_date, config_sha256, accounts,
                         out_dir, status)
                     VALUES ($1, $2, $3, $4, $5, $6, 'running') RETURNING id",
                    &[
                        &at,
                        &run.as_of.to_string(),
                        &run.mail_date.to_string(),
                        &run.config_sha256,
                        &run.accounts,
                        &run.out_dir,
                    ],
                )?
                .try_get(0)?;
            tx.commit()?;
            Ok(id)
        };
        let id = write().map_err(|source| LedgerError::Run {
            action: "start a run".to_owned(),
            source,
        })?;
        Ok(run.started(id, started_at))
    }

    fn resume_run(&mut self, run_id: i64) -> Result<RunInfo, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: format!("resume run {run_id}"),
            source,
        };
        let at = now();
        let mut tx = self
            .client
            .get_mut()
            .transaction()
            .map_err(|e| failed(e.into()))?;
        require_run(&mut tx, run_id, "resume a run")?;
        interrupt_running(&mut tx, Some(run_id), &at).map_err(failed)?;
        tx.execute_t(
            "UPDATE runs SET status = 'running', finished_at = NULL WHERE id = $1",
            &[&run_id],
        )
        .map_err(|e| failed(e.into()))?;
        let info = require_run(&mut tx, run_id, "resume a run")?;
        tx.commit().map_err(|e| failed(e.into()))?;
        Ok(info)
    }

    fn finish_run(&mut self, run_id: i64, status: RunStatus) -> Result<(), LedgerError> {
        let finished_at = (status != RunStatus::Running).then(now);
        let changed = self
            .client
            .get_mut()
            .execute_t(
                "UPDATE runs SET status = $2, finished_at = $3 WHERE id = $1",
                &[&run_id, &status.as_str(), &finished_at],
            )
            .map_err(|source| LedgerError::Run {
                action: format!("record run {run_id} as {status}"),
                source: source.into(),
            })?;
        if changed == 0 {
            return Err(LedgerError::UnknownRun { run_id });
        }
        Ok(())
    }

    fn fail_run(&mut self, run_id: i64, reason: &str) -> Result<(), LedgerError> {
        let changed = self
            .client
            .get_mut()
            .execute_t(
                "UPDATE runs SET status = 'failed', finished_at = $2, failure = $3 WHERE id = $1",
                &[&run_id, &now(), &reason],
            )
            .map_err(|source| LedgerError::Run {
                action: format!("record run {run_id} as failed"),
                source: source.into(),
            })?;
        if changed == 0 {
            return Err(LedgerError::UnknownRun { run_id });
        }
        Ok(())
    }

    fn run(&self, run_id: i64) -> Result<Option<RunInfo>, LedgerError> {
        load_run(&mut *self.client.borrow_mut(), run_id).map_err(|source| LedgerError::Run {
            action: format!("read run {run_id}"),
            source,
        })
    }

    fn runs(&self) -> Result<Vec<RunInfo>, LedgerError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id");
        self.client
            .borrow_mut()
            .query_t(&sql, &[])
            .map_err(DbError::from)
            .and_then(|rows| all(rows, run_from_row))
            .map_err(|source| LedgerError::Run {
                action: "list the runs".to_owned(),
                source,
            })
    }
}
