//! The writes of letters and runs in PostgreSQL, each inside the caller's transaction.
//! A letter's row is read `FOR UPDATE` before the rules decide on it, so a concurrent
//! writer of the same letter waits for this transaction to end; several letters are read
//! in one statement, locked in key order (one order for every writer: no deadlock), and
//! written back in one statement per table (`unnest` of the call's columns), so a call
//! costs a few round trips to the server whatever its number of letters.

use std::collections::{HashMap, HashSet};

use postgres::{GenericClient, Row};

use super::rows::{Db, get, ids_json, load_run, state_at};
use super::typed::Typed;
use crate::ledger::rules::{self, Planned, RenderOutcome};
use crate::ledger::{DbError, LedgerError, LetterState, PlannedLetter, RenderedFile, RunInfo};
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

/// The letters a set-based write reads `FOR UPDATE`, locked in key order: every
/// transaction that locks several letters (planning, recording rendered files, releasing)
/// takes them in that one order, so a resumed coordinator planning a chunk while a worker
/// records it wait for each other instead of deadlocking.
fn locked_rows(conn: &mut impl GenericClient, sql: &str, keys: &[&str]) -> Db<Vec<Row>> {
    Ok(conn.query_t(sql, &[&keys.to_vec()])?)
}

/// Takes `FOR KEY SHARE` on the letter rows of `keys`, in key order, before a statement
/// inserts rows that reference them (work, emails): the foreign key check would otherwise
/// take the same locks in the statement's own order, and a worker holding some of those
/// letters `FOR UPDATE` (in key order) while waiting for another could deadlock with it.
pub(super) fn share_letters_in_order(conn: &mut impl GenericClient, keys: &[&str]) -> Db<()> {
    conn.query_t(
        "SELECT 1 FROM letters WHERE key = ANY($1) ORDER BY key FOR KEY SHARE",
        &[&keys.to_vec()],
    )?;
    Ok(())
}

/// One event a set-based write appends: the letter, the state it leaves (`None`: new)
/// and its note.
pub(super) type NewEvent<'a> = (&'a LetterKey, Option<LetterState>, String);

/// Appends events moving letters to `to` in one statement, in the order given (their
/// ids follow it, as if appended one by one).
pub(super) fn append_events(
    conn: &mut impl GenericClient,
    run_id: Option<i64>,
    to: LetterState,
    at: &str,
    events: &[NewEvent<'_>],
) -> Db<()> {
    if events.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    let from: Vec<Option<&str>> = events
        .iter()
        .map(|(_, f, _)| f.map(LetterState::as_str))
        .collect();
    let details: Vec<&str> = events.iter().map(|(_, _, d)| d.as_str()).collect();
    conn.execute_t(
        "INSERT INTO events (key, run_id, from_state, to_state, at, detail)
         SELECT u.key, $4, u.from_state, $5, $6, u.detail
         FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
             AS u(key, from_state, detail, n)
         ORDER BY u.n",
        &[&keys, &from, &details, &run_id, &to.as_str(), &at],
    )?;
    Ok(())
}

/// The error of recording run `run_id`'s `what` ("planned", "rendered") letters: one for
/// the whole call, since a set-based statement fails for no single letter.
pub(super) fn letters_failed(
    run_id: i64,
    what: &'static str,
) -> impl Fn(DbError) -> LedgerError + Copy {
    move |source| LedgerError::Run {
        action: format!("record the {what} letters of run {run_id}"),
        source,
    }
}

/// Plans a call's letters in a few statements whatever their number: their rows read
/// `FOR UPDATE` in key order, the rules decide on each in the order given (a key given
/// twice sees its first change), then one insert of the new letters, one update of the
/// re-planned ones and one insert of the events. Returns the keys planned in this run,
/// each once, in the order given.
pub(super) fn plan_all(
    conn: &mut impl GenericClient,
    run_id: i64,
    letters: &[PlannedLetter],
    at: &str,
) -> Result<Vec<LetterKey>, LedgerError> {
    let failed = letters_failed(run_id, "planned");
    let keys: Vec<&str> = letters.iter().map(|l| l.key.as_str()).collect();
    let rows = locked_rows(
        conn,
        "SELECT key, state, run_id, data_sha256 FROM letters
         WHERE key = ANY($1) ORDER BY key FOR UPDATE",
        &keys,
    )
    .map_err(failed)?;
    let mut current: HashMap<String, (LetterState, i64, String)> = HashMap::new();
    for row in &rows {
        let key: String = get(row, 0).map_err(failed)?;
        let decoded =
            (|| Ok((state_at(row, 1)?, get(row, 2)?, get(row, 3)?)))().map_err(|source| {
                LedgerError::Record {
                    key: LetterKey::from_text(&key),
                    state: LetterState::Planned,
                    source,
                }
            })?;
        current.insert(key, decoded);
    }
    let recorded: HashSet<String> = current.keys().cloned().collect();
    let mut written: HashMap<&str, &PlannedLetter> = HashMap::new();
    let mut events = Vec::new();
    let mut planned = Vec::with_capacity(letters.len());
    let mut seen = HashSet::with_capacity(letters.len());
    for letter in letters {
        let was = current
            .get(letter.key.as_str())
            .map(|(state, run, data)| (*state, *run, data.as_str()));
        match rules::plan_change(was, run_id, letter) {
            Planned::Skipped => continue,
            Planned::Unchanged => {}
            Planned::Changed(from, detail) => {
                events.push((&letter.key, from, detail));
                let now_planned = (LetterState::Planned, run_id, letter.data_sha256.clone());
                current.insert(letter.key.as_str().to_owned(), now_planned);
                written.insert(letter.key.as_str(), letter);
            }
        }
        if seen.insert(&letter.key) {
            planned.push(letter.key.clone());
        }
    }
    let (updated, inserted): (Vec<&PlannedLetter>, Vec<&PlannedLetter>) = written
        .into_values()
        .partition(|l| recorded.contains(l.key.as_str()));
    write_letters(conn, run_id, &inserted, at, INSERT_LETTERS).map_err(failed)?;
    write_letters(conn, run_id, &updated, at, REPLAN_LETTERS).map_err(failed)?;
    append_events(conn, Some(run_id), LetterState::Planned, at, &events).map_err(failed)?;
    Ok(planned)
}

/// New letters from the columns [`write_letters`] passes.
const INSERT_LETTERS: &str = "INSERT INTO letters (key, run_id, account_id, kind, variant,
         channel, mail_class, letter_date, deadline, liability_ids, subject, data_sha256,
         state, created_at, updated_at)
     SELECT u.key, $12, u.account_id, u.kind, u.variant, u.channel, u.mail_class,
         u.letter_date, u.deadline, u.liability_ids, u.subject, u.data_sha256, 'planned',
         $13, $13
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
         AS u(key, account_id, kind, variant, channel, mail_class, letter_date, deadline,
             liability_ids, subject, data_sha256)";

/// Recorded letters planned again (their file cleared) from the same columns.
const REPLAN_LETTERS: &str = "UPDATE letters l SET run_id = $12, account_id = u.account_id,
         kind = u.kind, variant = u.variant, channel = u.channel, mail_class = u.mail_class,
         letter_date = u.letter_date, deadline = u.deadline, liability_ids = u.liability_ids,
         subject = u.subject, data_sha256 = u.data_sha256, template = NULL,
         template_sha256 = NULL, file = NULL, file_sha256 = NULL, pages = NULL,
         state = 'planned', updated_at = $13
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
         AS u(key, account_id, kind, variant, channel, mail_class, letter_date, deadline,
             liability_ids, subject, data_sha256)
     WHERE l.key = u.key";

/// Writes planned letters' columns with `sql` ([`INSERT_LETTERS`] or [`REPLAN_LETTERS`]).
fn write_letters(
    conn: &mut impl GenericClient,
    run_id: i64,
    letters: &[&PlannedLetter],
    at: &str,
    sql: &str,
) -> Db<()> {
    if letters.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&PlannedLetter) -> &str| -> Vec<&str> {
        letters.iter().map(|l| f(l)).collect::<Vec<&str>>()
    };
    let ids = letters
        .iter()
        .map(|l| ids_json(&l.liability_ids))
        .collect::<Db<Vec<String>>>()?;
    let variants: Vec<Option<&str>> = letters
        .iter()
        .map(|l| l.variant.map(|v| v.as_str()))
        .collect();
    let classes: Vec<Option<&str>> = letters
        .iter()
        .map(|l| l.mail_class.map(|m| m.as_str()))
        .collect();
    let dates: Vec<String> = letters.iter().map(|l| l.letter_date.to_string()).collect();
    let deadlines: Vec<Option<String>> = letters
        .iter()
        .map(|l| l.deadline.map(|d| d.to_string()))
        .collect();
    conn.execute_t(
        sql,
        &[
            &text(|l| l.key.as_str()),
            &text(|l| l.account_id.as_str()),
            &text(|l| l.kind.as_str()),
            &variants,
            &text(|l| l.channel.as_str()),
            &classes,
            &dates,
            &deadlines,
            &ids,
            &text(|l| l.subject.as_str()),
            &text(|l| l.data_sha256.as_str()),
            &run_id,
            &at,
        ],
    )?;
    Ok(())
}

/// Records a chunk's rendered files in a few statements whatever their number: the
/// letters read `FOR UPDATE` in key order, the rules decide on each file in the order
/// given (the first refusal fails the whole chunk, naming its letter), then one update of
/// the letters and one insert of their events.
pub(super) fn render_all(
    conn: &mut impl GenericClient,
    run_id: i64,
    files: &[RenderedFile],
    at: &str,
) -> Result<(), LedgerError> {
    let failed = letters_failed(run_id, "rendered");
    let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
    let rows = locked_rows(
        conn,
        "SELECT l.key, l.state, l.file, l.file_sha256, l.data_sha256, l.run_id,
             w.payload_sha256
         FROM letters l LEFT JOIN work w ON w.key = l.key AND w.run_id = l.run_id
         WHERE l.key = ANY($1) ORDER BY l.key FOR UPDATE OF l",
        &keys,
    )
    .map_err(failed)?;
    let mut current: HashMap<String, rules::RenderTarget> = HashMap::new();
    for row in &rows {
        let key: String = get(row, 0).map_err(failed)?;
        let target = (|| {
            Ok(rules::RenderTarget {
                state: state_at(row, 1)?,
                file: get(row, 2)?,
                file_sha256: get(row, 3)?,
                data_sha256: get(row, 4)?,
                run_id: get(row, 5)?,
                payload_sha256: get(row, 6)?,
            })
        })()
        .map_err(|source| LedgerError::Record {
            key: LetterKey::from_text(&key),
            state: LetterState::Rendered,
            source,
        })?;
        current.insert(key, target);
    }
    let mut done: Vec<&RenderedFile> = Vec::with_capacity(files.len());
    for file in files {
        let target = current.get_mut(file.key.as_str());
        let outcome = rules::render_change(target.as_deref().cloned(), run_id, file);
        if let Some(refused) = rules::render_refusal(outcome.clone(), &file.key, run_id) {
            return Err(refused);
        }
        if let (RenderOutcome::Done, Some(target)) = (outcome, target) {
            target.state = LetterState::Rendered;
            target.file = Some(file.file.clone());
            target.file_sha256 = Some(file.file_sha256.clone());
            done.push(file);
        }
    }
    if done.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&RenderedFile) -> &str| -> Vec<&str> { done.iter().map(|d| f(d)).collect() };
    let pages: Vec<i64> = done.iter().map(|f| i64::from(f.pages)).collect();
    let marks: Vec<Option<i64>> = done.iter().map(|f| f.marks).collect();
    conn.execute_t(
        "UPDATE letters l SET run_id = $7, template = u.template,
             template_sha256 = u.template_sha256, file = u.file, file_sha256 = u.file_sha256,
             pages = u.pages, state = 'rendered', updated_at = $8, marked_piece_id = u.marks
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
             $6::bigint[], $9::bigint[])
             AS u(key, template, template_sha256, file, file_sha256, pages, marks)
         WHERE l.key = u.key",
        &[
            &text(|f| f.key.as_str()),
            &text(|f| f.template.as_str()),
            &text(|f| f.template_sha256.as_str()),
            &text(|f| f.file.as_str()),
            &text(|f| f.file_sha256.as_str()),
            &pages,
            &run_id,
            &at,
            &marks,
        ],
    )
    .map_err(|e| failed(e.into()))?;
    let events: Vec<NewEvent<'_>> = done
        .iter()
        .map(|f| {
            let detail = rules::rendered_detail(run_id, f);
            (&f.key, Some(LetterState::Planned), detail)
        })
        .collect();
    append_events(conn, Some(run_id), LetterState::Rendered, at, &events).map_err(failed)
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
