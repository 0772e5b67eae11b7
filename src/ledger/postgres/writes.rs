//! The writes of one letter or run in PostgreSQL, each inside the caller's transaction.
//! A letter's row is read `FOR UPDATE` before the rules decide on it, so a concurrent
//! writer of the same letter waits for this transaction to end.

use postgres::GenericClient;

use super::rows::{Db, ids_json, load_run};
use super::typed::{Param, Typed};
use crate::ledger::rules::{self, Planned, RenderOutcome};
use crate::ledger::{LedgerError, LetterState, PlannedLetter, RenderedFile, RunInfo};
use crate::letter::LetterKey;

/// Now, as stored: RFC 3339 UTC with milliseconds, as in SQLite.
pub(super) fn now() -> String {
    crate::ledger::stamp::text(&crate::ledger::stamp::now())
}

/// Appends one event (the only way the code writes to `events`).
pub(super) fn append_event(
    conn: &mut impl GenericClient,
    key: &LetterKey,
    run_id: Option<i64>,
    from: Option<LetterState>,
    to: LetterState,
    at: &str,
    detail: &str,
) -> Db<()> {
    conn.execute_t(
        "INSERT INTO events (key, run_id, from_state, to_state, at, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &key.as_str(),
            &run_id,
            &from.map(LetterState::as_str),
            &to.as_str(),
            &at,
            &detail,
        ],
    )?;
    Ok(())
}

/// Fails with [`LedgerError::UnknownRun`] unless the run is recorded.
pub(super) fn require_run(
    conn: &mut impl GenericClient,
    run_id: i64,
    action: &str,
) -> Result<RunInfo, LedgerError> {
    load_run(conn, run_id)
        .map_err(|source| LedgerError::Run {
            action: format!("{action} (reading run {run_id})"),
            source,
        })?
        .ok_or(LedgerError::UnknownRun { run_id })
}

/// Marks every `running` run except `except` as interrupted.
pub(super) fn interrupt_running(
    conn: &mut impl GenericClient,
    except: Option<i64>,
    at: &str,
) -> Db<()> {
    conn.execute_t(
        "UPDATE runs SET status = 'interrupted', finished_at = $1
         WHERE status = 'running' AND ($2::BIGINT IS NULL OR id <> $2)",
        &[&at, &except],
    )?;
    Ok(())
}

/// Inserts or re-plans one letter (its event is the caller's), or leaves it alone.
pub(super) fn plan_one(
    conn: &mut impl GenericClient,
    run_id: i64,
    letter: &PlannedLetter,
    at: &str,
) -> Db<Planned> {
    let current = conn
        .query_opt_t(
            "SELECT state, run_id, data_sha256 FROM letters WHERE key = $1 FOR UPDATE",
            &[&letter.key.as_str()],
        )?
        .map(|row| -> Db<(LetterState, i64, String)> {
            Ok((
                super::rows::state_at(&row, 0)?,
                row.try_get(1)?,
                row.try_get(2)?,
            ))
        })
        .transpose()?;
    let ids = ids_json(&letter.liability_ids)?;
    let letter_date = letter.letter_date.to_string();
    let deadline = letter.deadline.map(|d| d.to_string());
    let kind = letter.kind.as_str();
    let variant = letter.variant.map(|v| v.as_str());
    let channel = letter.channel.as_str();
    let mail_class = letter.mail_class.map(|m| m.as_str());
    let fields: [&dyn Param; 13] = [
        &letter.key.as_str(),
        &run_id,
        &letter.account_id,
        &kind,
        &variant,
        &channel,
        &mail_class,
        &letter_date,
        &deadline,
        &ids,
        &letter.subject,
        &letter.data_sha256,
        &at,
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
            conn.execute_t(
                "INSERT INTO letters (key, run_id, account_id, kind, variant, channel, mail_class,
                     letter_date, deadline, liability_ids, subject, data_sha256, state,
                     created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'planned', $13, $13)",
                &fields,
            )?;
        }
        Planned::Changed(Some(_), _) => {
            conn.execute_t(
                "UPDATE letters SET run_id = $2, account_id = $3, kind = $4, variant = $5,
                     channel = $6, mail_class = $7, letter_date = $8, deadline = $9,
                     liability_ids = $10, subject = $11, data_sha256 = $12, template = NULL,
                     template_sha256 = NULL, file = NULL, file_sha256 = NULL, pages = NULL,
                     state = 'planned', updated_at = $13
                 WHERE key = $1",
                &fields,
            )?;
        }
        Planned::Unchanged | Planned::Skipped => {}
    }
    Ok(change)
}

/// Marks one planned letter rendered with its file and appends its event.
pub(super) fn render_one(
    conn: &mut impl GenericClient,
    run_id: i64,
    file: &RenderedFile,
    at: &str,
) -> Db<RenderOutcome> {
    let current = conn
        .query_opt_t(
            "SELECT l.state, l.file, l.file_sha256, l.data_sha256, l.run_id, w.payload_sha256
             FROM letters l LEFT JOIN work w ON w.key = l.key AND w.run_id = l.run_id
             WHERE l.key = $1 FOR UPDATE OF l",
            &[&file.key.as_str()],
        )?
        .map(|row| -> Db<rules::RenderTarget> {
            Ok(rules::RenderTarget {
                state: super::rows::state_at(&row, 0)?,
                file: row.try_get(1)?,
                file_sha256: row.try_get(2)?,
                data_sha256: row.try_get(3)?,
                run_id: row.try_get(4)?,
                payload_sha256: row.try_get(5)?,
            })
        })
        .transpose()?;
    let outcome = rules::render_change(current, run_id, file);
    if outcome != RenderOutcome::Done {
        return Ok(outcome);
    }
    conn.execute_t(
        "UPDATE letters SET run_id = $2, template = $3, template_sha256 = $4, file = $5,
             file_sha256 = $6, pages = $7, state = 'rendered', updated_at = $8,
             marked_piece_id = $9
         WHERE key = $1",
        &[
            &file.key.as_str(),
            &run_id,
            &file.template,
            &file.template_sha256,
            &file.file,
            &file.file_sha256,
            &i64::from(file.pages),
            &at,
            &file.marks,
        ],
    )?;
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

/// Moves a letter within the caller's transaction, as `set_state` does (same state: no-op
/// without an event; a forbidden move is refused); `planned` clears its file.
pub(super) fn move_letter(
    conn: &mut impl GenericClient,
    key: &LetterKey,
    to: LetterState,
    run_id: Option<i64>,
    at: &str,
    detail: &str,
) -> Result<bool, LedgerError> {
    let failed = |source| LedgerError::Record {
        key: key.clone(),
        state: to,
        source,
    };
    let current = super::rows::load_letter(conn, key, true)
        .map_err(failed)?
        .ok_or_else(|| LedgerError::UnknownLetter { key: key.clone() })?;
    if !rules::check_move(key, current.state, to)? {
        return Ok(false);
    }
    if let Some(run_id) = run_id {
        require_run(conn, run_id, &format!("record `{key}` as {to}"))?;
    }
    let sql = if to == LetterState::Planned {
        "UPDATE letters SET state = $2, run_id = COALESCE($3, run_id), updated_at = $4,
             template = NULL, template_sha256 = NULL, file = NULL, file_sha256 = NULL,
             pages = NULL
         WHERE key = $1"
    } else {
        "UPDATE letters SET state = $2, run_id = COALESCE($3, run_id), updated_at = $4
         WHERE key = $1"
    };
    conn.execute_t(sql, &[&key.as_str(), &to.as_str(), &run_id, &at])
        .map_err(|e| failed(e.into()))?;
    append_event(conn, key, run_id, Some(current.state), to, at, detail).map_err(failed)?;
    Ok(true)
}
