//! The writes of one letter or run, each inside the caller's transaction.

use crate::ledger::DbError;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{ids_json, load_run};
use crate::ledger::rules::{self, Planned, RenderOutcome};
use crate::ledger::stamp;
use crate::ledger::{LedgerError, LetterState, PlannedLetter, RenderedFile, RunInfo};
use crate::letter::LetterKey;

/// Now, as stored: RFC 3339 UTC with milliseconds (`2026-12-01T02:03:04.567Z`).
pub(super) fn now() -> String {
    stamp::text(&stamp::now())
}

/// Appends one event (the only way the code writes to `events`).
pub(super) fn append_event(
    conn: &Connection,
    key: &LetterKey,
    run_id: Option<i64>,
    from: Option<LetterState>,
    to: LetterState,
    at: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (key, run_id, from_state, to_state, at, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        key.as_str(),
        run_id,
        from.map(LetterState::as_str),
        to.as_str(),
        at,
        detail
    ])?;
    Ok(())
}

/// Fails with [`LedgerError::UnknownRun`] unless the run is recorded.
pub(super) fn require_run(
    conn: &Connection,
    run_id: i64,
    action: &str,
) -> Result<RunInfo, LedgerError> {
    load_run(conn, run_id)
        .map_err(|source| LedgerError::Run {
            action: format!("{action} (reading run {run_id})"),
            source: DbError::from(source),
        })?
        .ok_or(LedgerError::UnknownRun { run_id })
}

/// Marks every `running` run except `except` as interrupted.
pub(super) fn interrupt_running(
    conn: &Connection,
    except: Option<i64>,
    at: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE runs SET status = 'interrupted', finished_at = ?1
         WHERE status = 'running' AND (?2 IS NULL OR id <> ?2)",
        params![at, except],
    )?;
    Ok(())
}

/// Inserts or re-plans one letter (its event is the caller's), or leaves it alone.
pub(super) fn plan_one(
    conn: &Connection,
    run_id: i64,
    letter: &PlannedLetter,
    at: &str,
) -> rusqlite::Result<Planned> {
    let current: Option<(LetterState, i64, String)> = conn
        .prepare_cached("SELECT state, run_id, data_sha256 FROM letters WHERE key = ?1")?
        .query_row([letter.key.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let ids = ids_json(&letter.liability_ids)?;
    let letter_date = letter.letter_date.to_string();
    let deadline = letter.deadline.map(|d| d.to_string());
    let fields = params![
        letter.key.as_str(),
        run_id,
        letter.account_id,
        letter.kind.as_str(),
        letter.variant.map(|v| v.as_str()),
        letter.channel.as_str(),
        letter.mail_class.map(|m| m.as_str()),
        letter_date,
        deadline,
        ids,
        letter.subject,
        letter.data_sha256,
        at,
    ];
    let change = rules::plan_change(
        current
            .as_ref()
            .map(|(state, run, data)| (*state, *run, data.as_str())),
        run_id,
        letter,
    );
    match &change {
        Planned::Changed(None, _) => {
            conn.prepare_cached(
                "INSERT INTO letters (key, run_id, account_id, kind, variant, channel, mail_class,
                     letter_date, deadline, liability_ids, subject, data_sha256, state,
                     created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'planned', ?13, ?13)",
            )?
            .execute(fields)?;
        }
        Planned::Changed(Some(_), _) => {
            conn.prepare_cached(
                "UPDATE letters SET run_id = ?2, account_id = ?3, kind = ?4, variant = ?5,
                     channel = ?6, mail_class = ?7, letter_date = ?8, deadline = ?9,
                     liability_ids = ?10, subject = ?11, data_sha256 = ?12, template = NULL,
                     template_sha256 = NULL, file = NULL, file_sha256 = NULL, pages = NULL,
                     state = 'planned', updated_at = ?13
                 WHERE key = ?1",
            )?
            .execute(fields)?;
        }
        Planned::Unchanged | Planned::Skipped => {}
    }
    Ok(change)
}

/// Marks one planned letter rendered with its file and appends its event.
pub(super) fn render_one(
    conn: &Connection,
    run_id: i64,
    file: &RenderedFile,
    at: &str,
) -> rusqlite::Result<RenderOutcome> {
    let current = conn
        .prepare_cached(
            "SELECT l.state, l.file, l.file_sha256, l.data_sha256, l.run_id, w.payload_sha256
             FROM letters l LEFT JOIN work w ON w.key = l.key AND w.run_id = l.run_id
             WHERE l.key = ?1",
        )?
        .query_row([file.key.as_str()], |r| {
            Ok(rules::RenderTarget {
                state: r.get(0)?,
                file: r.get(1)?,
                file_sha256: r.get(2)?,
                data_sha256: r.get(3)?,
                run_id: r.get(4)?,
                payload_sha256: r.get(5)?,
            })
        })
        .optional()?;
    let outcome = rules::render_change(current, run_id, file);
    if outcome != RenderOutcome::Done {
        return Ok(outcome);
    }
    conn.prepare_cached(
        "UPDATE letters SET run_id = ?2, template = ?3, template_sha256 = ?4, file = ?5,
             file_sha256 = ?6, pages = ?7, state = 'rendered', updated_at = ?8,
             marked_piece_id = ?9
         WHERE key = ?1",
    )?
    .execute(params![
        file.key.as_str(),
        run_id,
        file.template,
        file.template_sha256,
        file.file,
        file.file_sha256,
        file.pages,
        at,
        file.marks,
    ])?;
    let detail = rules::rendered_detail(run_id, file);
    append_event(
        conn,
        &file.key,
        Some(run_id),
        Some(LetterState::Planned),
        LetterState::Rendered,
        at,
        &detail,
    )?;
    Ok(RenderOutcome::Done)
}
