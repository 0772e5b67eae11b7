//! Template approvals in SQLite: the append-only `approvals` table.

use crate::ledger::DbError;
use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteLedger;
use super::rows::{decode_err, time_at};
use crate::ledger::rules;
use crate::ledger::stamp;
use crate::ledger::{Approval, ApprovalLog, LedgerError, NewApproval};

const COLUMNS: &str = "id, template, template_sha256, reviewer, at, note, sources";

fn approval_from_row(row: &Row<'_>) -> rusqlite::Result<Approval> {
    let sources: String = row.get(6)?;
    let sources: BTreeMap<String, String> = serde_json::from_str(&sources)
        .map_err(|err| decode_err(6, format!("approved sources are not JSON: {err}")))?;
    Ok(Approval {
        id: row.get(0)?,
        template: row.get(1)?,
        template_sha256: row.get(2)?,
        reviewer: row.get(3)?,
        at: time_at(row, 4)?,
        note: row.get(5)?,
        sources,
    })
}

/// Inserts one approval.
pub(super) fn record(conn: &Connection, approval: &NewApproval) -> Result<Approval, LedgerError> {
    if let Some(reason) = rules::reviewer_problem(&approval.reviewer) {
        return Err(LedgerError::BadApproval {
            template: approval.template.clone(),
            reason: reason.to_owned(),
        });
    }
    let failed = |source| LedgerError::Approval {
        action: "record",
        template: approval.template.clone(),
        source: DbError::from(source),
    };
    let sources = serde_json::to_string(&approval.sources)
        .map_err(|err| failed(rusqlite::Error::ToSqlConversionFailure(Box::new(err))))?;
    let at = stamp::now();
    let reviewer = approval.reviewer.trim().to_owned();
    conn.execute(
        "INSERT INTO approvals (template, template_sha256, reviewer, at, note, sources)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            approval.template,
            approval.template_sha256,
            reviewer,
            stamp::text(&at),
            approval.note,
            sources
        ],
    )
    .map_err(failed)?;
    Ok(Approval {
        id: conn.last_insert_rowid(),
        template: approval.template.clone(),
        template_sha256: approval.template_sha256.clone(),
        reviewer,
        at,
        note: approval.note.clone(),
        sources: approval.sources.clone(),
    })
}

/// Every approval (of one template), oldest first.
pub(super) fn list(
    conn: &Connection,
    template: Option<&str>,
) -> Result<Vec<Approval>, LedgerError> {
    let read = || -> rusqlite::Result<Vec<Approval>> {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE ?1 IS NULL OR template = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([template], approval_from_row)?;
        rows.collect()
    };
    read().map_err(|source| LedgerError::Approval {
        action: "read",
        template: template.unwrap_or("any template").to_owned(),
        source: DbError::from(source),
    })
}

/// The latest approval of one exact version.
pub(super) fn of(
    conn: &Connection,
    template: &str,
    template_sha256: &str,
) -> Result<Option<Approval>, LedgerError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE template = ?1 AND template_sha256 = ?2
         ORDER BY id DESC LIMIT 1"
    ))
    .and_then(|mut stmt| {
        stmt.query_row([template, template_sha256], approval_from_row)
            .optional()
    })
    .map_err(|source| LedgerError::Approval {
        action: "read",
        template: template.to_owned(),
        source: DbError::from(source),
    })
}

impl ApprovalLog for SqliteLedger {
    fn record_approval(&mut self, approval: &NewApproval) -> Result<Approval, LedgerError> {
        record(&self.conn, approval)
    }

    fn approvals(&self, template: Option<&str>) -> Result<Vec<Approval>, LedgerError> {
        list(&self.conn, template)
    }

    fn approval_of(
        &self,
        template: &str,
        template_sha256: &str,
    ) -> Result<Option<Approval>, LedgerError> {
        of(&self.conn, template, template_sha256)
    }
}
