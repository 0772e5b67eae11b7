//! The runs in SQLite.

use crate::ledger::DbError;
use rusqlite::params;

use super::SqliteLedger;
use super::rows::{RUN_COLUMNS, load_run, run_from_row};
use super::writes::{interrupt_running, now, require_run};
use crate::ledger::stamp;
use crate::ledger::{LedgerError, NewRun, RunInfo, RunLog, RunStatus};

impl RunLog for SqliteLedger {
    fn begin_run(&mut self, run: &NewRun) -> Result<RunInfo, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: "start a run".to_owned(),
            source: DbError::from(source),
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
        Ok(run.started(id, started_at))
    }

    fn resume_run(&mut self, run_id: i64) -> Result<RunInfo, LedgerError> {
        let failed = |source| LedgerError::Run {
            action: format!("resume run {run_id}"),
            source: DbError::from(source),
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
                source: DbError::from(source),
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
                source: DbError::from(source),
            })?;
        if changed == 0 {
            return Err(LedgerError::UnknownRun { run_id });
        }
        Ok(())
    }

    fn run(&self, run_id: i64) -> Result<Option<RunInfo>, LedgerError> {
        load_run(&self.conn, run_id).map_err(|source| LedgerError::Run {
            action: format!("read run {run_id}"),
            source: DbError::from(source),
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
            source: DbError::from(source),
        })
    }
}
