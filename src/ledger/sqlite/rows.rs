//! Reading the ledger's rows back into records; a stored value that does not decode is
//! reported as SQLite's conversion error, with the column.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, Type, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::de::DeserializeOwned;

use crate::ledger::stamp;
use crate::ledger::{
    BatchState, EmailRole, EmailState, Event, LetterRecord, LetterState, ReferralRecord, RunInfo,
    RunStatus,
};
use crate::letter::LetterKey;
use crate::money::Money;

/// The columns of a letter, in the order [`letter_from_row`] reads them.
pub(super) const LETTER_COLUMNS: &str = "key, run_id, account_id, kind, variant, channel, mail_class, \
     letter_date, deadline, liability_ids, subject, data_sha256, template, template_sha256, \
     file, file_sha256, pages, state, created_at, updated_at";

/// The columns of a run, in the order [`run_from_row`] reads them.
pub(super) const RUN_COLUMNS: &str =
    "id, started_at, finished_at, as_of, mail_date, config_sha256, accounts, out_dir, status,
     failure";

/// A stored value that does not decode, as the error SQLite's row access reports.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Decode(String);

/// The error for a stored value in `column` that does not decode.
pub(super) fn decode_err(column: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, Box::new(Decode(message)))
}

/// The states stored by name: written as their name, read back or refused with the
/// name that does not decode (`` `mailed` is not a letter state ``).
macro_rules! stored_as_name {
    ($($name:ident),+) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    FromSqlError::Other(Box::new(Decode(format!(
                        "`{text}` is not a {}",
                        $name::WHAT
                    ))))
                })
            }
        }
    )+};
}

stored_as_name!(LetterState, RunStatus, EmailState, EmailRole, BatchState);

/// A time stored as RFC 3339 text (see [`stamp`]).
pub(super) fn time_at(row: &Row<'_>, column: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(column)?;
    stamp::parse(&text).ok_or_else(|| decode_err(column, format!("`{text}` is not a time")))
}

/// An optional time stored as RFC 3339 text.
pub(super) fn opt_time_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<String>>(column)? {
        None => Ok(None),
        Some(_) => time_at(row, column).map(Some),
    }
}

fn date_at(row: &Row<'_>, column: usize) -> rusqlite::Result<NaiveDate> {
    let text: String = row.get(column)?;
    text.parse()
        .map_err(|_| decode_err(column, format!("`{text}` is not a date")))
}

fn opt_date_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<NaiveDate>> {
    match row.get::<_, Option<String>>(column)? {
        None => Ok(None),
        Some(_) => date_at(row, column).map(Some),
    }
}

/// A snake_case enum (kind, variant, channel, mail class) from its stored name.
fn enum_at<T: DeserializeOwned>(row: &Row<'_>, column: usize) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    serde_json::from_value(serde_json::Value::String(text.clone()))
        .map_err(|_| decode_err(column, format!("`{text}` is not a known value")))
}

fn opt_enum_at<T: DeserializeOwned>(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<T>> {
    match row.get::<_, Option<String>>(column)? {
        None => Ok(None),
        Some(_) => enum_at(row, column).map(Some),
    }
}

fn key_at(row: &Row<'_>, column: usize) -> rusqlite::Result<LetterKey> {
    let text: String = row.get(column)?;
    serde_json::from_value(serde_json::Value::String(text.clone()))
        .map_err(|_| decode_err(column, format!("`{text}` is not a letter key")))
}

/// Liability ids stored as a JSON list.
pub(super) fn ids_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Vec<String>> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text)
        .map_err(|_| decode_err(column, format!("`{text}` is not a JSON list of ids")))
}

/// An amount stored as its decimal text.
pub(super) fn money_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Money> {
    let text: String = row.get(column)?;
    Money::parse(&text).map_err(|e| decode_err(column, format!("`{text}` is not an amount: {e}")))
}

/// Liability ids as the JSON text stored in the ledger.
pub(super) fn ids_json(ids: &[String]) -> rusqlite::Result<String> {
    serde_json::to_string(ids).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A letter from a row of [`LETTER_COLUMNS`].
pub(super) fn letter_from_row(row: &Row<'_>) -> rusqlite::Result<LetterRecord> {
    Ok(LetterRecord {
        key: key_at(row, 0)?,
        run_id: row.get(1)?,
        account_id: row.get(2)?,
        kind: enum_at(row, 3)?,
        variant: opt_enum_at(row, 4)?,
        channel: enum_at(row, 5)?,
        mail_class: opt_enum_at(row, 6)?,
        letter_date: date_at(row, 7)?,
        deadline: opt_date_at(row, 8)?,
        liability_ids: ids_at(row, 9)?,
        subject: row.get(10)?,
        data_sha256: row.get(11)?,
        template: row.get(12)?,
        template_sha256: row.get(13)?,
        file: row.get(14)?,
        file_sha256: row.get(15)?,
        pages: row.get(16)?,
        state: row.get(17)?,
        created_at: time_at(row, 18)?,
        updated_at: time_at(row, 19)?,
    })
}

/// A run from a row of [`RUN_COLUMNS`].
pub(super) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunInfo> {
    Ok(RunInfo {
        id: row.get(0)?,
        started_at: time_at(row, 1)?,
        finished_at: opt_time_at(row, 2)?,
        as_of: date_at(row, 3)?,
        mail_date: date_at(row, 4)?,
        config_sha256: row.get(5)?,
        accounts: row.get(6)?,
        out_dir: row.get(7)?,
        status: row.get(8)?,
        failure: row.get(9)?,
    })
}

/// An event from `id, key, run_id, from_state, to_state, at, detail`.
pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: row.get(0)?,
        key: key_at(row, 1)?,
        run_id: row.get(2)?,
        from_state: row.get(3)?,
        to_state: row.get(4)?,
        at: time_at(row, 5)?,
        detail: row.get(6)?,
    })
}

/// A referral from `notice_key, account_id, liability_ids, amount, deadline_passed, run_id, at`.
pub(super) fn referral_from_row(row: &Row<'_>) -> rusqlite::Result<ReferralRecord> {
    Ok(ReferralRecord {
        notice_key: key_at(row, 0)?,
        account_id: row.get(1)?,
        liability_ids: ids_at(row, 2)?,
        amount: money_at(row, 3)?,
        deadline_passed: date_at(row, 4)?,
        run_id: row.get(5)?,
        at: time_at(row, 6)?,
    })
}

/// The letter with this key, if recorded.
pub(super) fn load_letter(
    conn: &Connection,
    key: &LetterKey,
) -> rusqlite::Result<Option<LetterRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {LETTER_COLUMNS} FROM letters WHERE key = ?1"
    ))?
    .query_row([key.as_str()], letter_from_row)
    .optional()
}

/// The run with this id, if recorded.
pub(super) fn load_run(conn: &Connection, run_id: i64) -> rusqlite::Result<Option<RunInfo>> {
    conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?
        .query_row([run_id], run_from_row)
        .optional()
}
