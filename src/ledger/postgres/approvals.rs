//! Template approvals in PostgreSQL: the append-only `approvals` table.

use std::collections::BTreeMap;

use postgres::{GenericClient, Row};

use super::PgLedger;
use super::rows::{Db, all, get, stored, time_at};
use super::typed::Typed;
use crate::ledger::rules;
use crate::ledger::stamp;
use crate::ledger::{Approval, ApprovalLog, DbError, LedgerError, NewApproval};

const COLUMNS: &str = "id, template, template_sha256, reviewer, at, note, sources";

fn approval_from_row(row: &Row) -> Db<Approval> {
    let sources: String = get(row, 6)?;
    let sources: BTreeMap<String, String> = serde_json::from_str(&sources)
        .map_err(|err| stored(row, 6, format!("approved sources are not JSON: {err}")))?;
    Ok(Approval {
        id: get(row, 0)?,
        template: get(row, 1)?,
        template_sha256: get(row, 2)?,
        reviewer: get(row, 3)?,
        at: time_at(row, 4)?,
        note: get(row, 5)?,
        sources,
    })
}

/// Inserts one approval.
fn record(conn: &mut impl GenericClient, approval: &NewApproval) -> Db<Approval> {
    let sources = serde_json::to_string(&approval.sources)
        .map_err(|err| DbError::Stored(format!("approved sources: {err}")))?;
    let at = stamp::now();
    let reviewer = approval.reviewer.trim().to_owned();
    let id: i64 = conn
        .query_one_t(
            "INSERT INTO approvals (template, template_sha256, reviewer, at, note, sources)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &approval.template,
                &approval.template_sha256,
                &reviewer,
                &stamp::text(&at),
                &approval.note,
                &sources,
            ],
        )?
        .try_get(0)?;
    Ok(Approval {
        id,
        template: approval.template.clone(),
        template_sha256: approval.template_sha256.clone(),
        reviewer,
        at,
        note: approval.note.clone(),
        sources: approval.sources.clone(),
    })
}

impl ApprovalLog for PgLedger {
    fn record_approval(&mut self, approval: &NewApproval) -> Result<Approval, LedgerError> {
        if let Some(reason) = rules::reviewer_problem(&approval.reviewer) {
            return Err(LedgerError::BadApproval {
                template: approval.template.clone(),
                reason: reason.to_owned(),
            });
        }
        record(self.client.get_mut(), approval).map_err(|source| LedgerError::Approval {
            action: "record",
            template: approval.template.clone(),
            source,
        })
    }

    fn approvals(&self, template: Option<&str>) -> Result<Vec<Approval>, LedgerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals WHERE $1::TEXT IS NULL OR template = $1 ORDER BY id"
        );
        self.client
            .borrow_mut()
            .query_t(&sql, &[&template])
            .map_err(DbError::from)
            .and_then(|rows| all(rows, approval_from_row))
            .map_err(|source| LedgerError::Approval {
                action: "read",
                template: template.unwrap_or("any template").to_owned(),
                source,
            })
    }

    fn approval_of(
        &self,
        template: &str,
        template_sha256: &str,
    ) -> Result<Option<Approval>, LedgerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals WHERE template = $1 AND template_sha256 = $2
             ORDER BY id DESC LIMIT 1"
        );
        self.client
            .borrow_mut()
            .query_opt_t(&sql, &[&template, &template_sha256])
            .map_err(DbError::from)
            .and_then(|row| row.as_ref().map(approval_from_row).transpose())
            .map_err(|source| LedgerError::Approval {
                action: "read",
                template: template.to_owned(),
                source,
            })
    }
}
