//! Reading PostgreSQL rows back into records. Values are stored as in SQLite (dates and
//! times as their text forms, amounts as decimal text, liability ids as a JSON list, states
//! by name), so a record read back from either backend is the same; a stored value that
//! does not decode is reported as [`DbError::Stored`] with its column.

use super::typed::Typed;
use chrono::{DateTime, NaiveDate, Utc};
use postgres::GenericClient;
use postgres::Row;
use postgres::types::FromSql;
use serde::de::DeserializeOwned;

use crate::ledger::stamp;
use crate::ledger::{
    BatchState, DbError, EmailRole, EmailState, Event, LetterRecord, LetterState, ReferralRecord,
    RunInfo, RunStatus,
};
use crate::letter::LetterKey;
use crate::money::Money;

/// What every PostgreSQL helper returns.
pub(super) type Db<T> = Result<T, DbError>;

/// The columns of a letter, in the order [`letter_from_row`] reads them.
pub(super) const LETTER_COLUMNS: &str = "key, run_id, account_id, kind, variant, channel, mail_class, \
     letter_date, deadline, liability_ids, subject, data_sha256, template, template_sha256, \
     file, file_sha256, pages, state, created_at, updated_at";

/// The columns of a run, in the order [`run_from_row`] reads them.
pub(super) const RUN_COLUMNS: &str = "id, started_at, finished_at, as_of, mail_date, \
     config_sha256, accounts, out_dir, status, failure";

/// Column `column` of `row` as `T`.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, column: usize) -> Db<T> {
    Ok(row.try_get(column)?)
}

/// The error for a stored value in `column` that does not decode.
pub(super) fn stored(row: &Row, column: usize, message: String) -> DbError {
    let name = row
        .columns()
        .get(column)
        .map_or("?", |c| c.name())
        .to_owned();
    DbError::Stored(format!("column `{name}`: {message}"))
}

/// A state stored by name (`` `mailed` is not a letter state ``).
pub(super) trait StoredName: Sized {
    /// The state named `text`, if any.
    fn from_name(text: &str) -> Option<Self>;
    /// What it is, for the message.
    const NAME: &'static str;
}

macro_rules! stored_name {
    ($($name:ident),+) => {$(
        impl StoredName for $name {
            fn from_name(text: &str) -> Option<Self> {
                $name::parse(text)
            }
            const NAME: &'static str = $name::WHAT;
        }
    )+};
}

stored_name!(LetterState, RunStatus, EmailState, EmailRole, BatchState);

/// A state stored by name.
pub(super) fn state_at<T: StoredName>(row: &Row, column: usize) -> Db<T> {
    let text: String = get(row, column)?;
    T::from_name(&text).ok_or_else(|| stored(row, column, format!("`{text}` is not a {}", T::NAME)))
}

/// An optional state stored by name.
pub(super) fn opt_state_at<T: StoredName>(row: &Row, column: usize) -> Db<Option<T>> {
    match get::<Option<String>>(row, column)? {
        None => Ok(None),
        Some(_) => state_at(row, column).map(Some),
    }
}

/// A time stored as RFC 3339 text (see [`stamp`]).
pub(super) fn time_at(row: &Row, column: usize) -> Db<DateTime<Utc>> {
    let text: String = get(row, column)?;
    stamp::parse(&text).ok_or_else(|| stored(row, column, format!("`{text}` is not a time")))
}

/// An optional time stored as RFC 3339 text.
pub(super) fn opt_time_at(row: &Row, column: usize) -> Db<Option<DateTime<Utc>>> {
    match get::<Option<String>>(row, column)? {
        None => Ok(None),
        Some(_) => time_at(row, column).map(Some),
    }
}

fn date_at(row: &Row, column: usize) -> Db<NaiveDate> {
    let text: String = get(row, column)?;
    text.parse()
        .map_err(|_| stored(row, column, format!("`{text}` is not a date")))
}

fn opt_date_at(row: &Row, column: usize) -> Db<Option<NaiveDate>> {
    match get::<Option<String>>(row, column)? {
        None => Ok(None),
        Some(_) => date_at(row, column).map(Some),
    }
}

/// A snake_case enum (kind, variant, channel, mail class) from its stored name.
pub(super) fn enum_at<T: DeserializeOwned>(row: &Row, column: usize) -> Db<T> {
    let text: String = get(row, column)?;
    serde_json::from_value(serde_json::Value::String(text.clone()))
        .map_err(|_| stored(row, column, format!("`{text}` is not a known value")))
}

fn opt_enum_at<T: DeserializeOwned>(row: &Row, column: usize) -> Db<Option<T>> {
    match get::<Option<String>>(row, column)? {
        None => Ok(None),
        Some(_) => enum_at(row, column).map(Some),
    }
}

/// A letter key.
pub(super) fn key_at(row: &Row, column: usize) -> Db<LetterKey> {
    let text: String = get(row, column)?;
    serde_json::from_value(serde_json::Value::String(text.clone()))
        .map_err(|_| stored(row, column, format!("`{text}` is not a letter key")))
}

/// Liability ids stored as a JSON list.
pub(super) fn ids_at(row: &Row, column: usize) -> Db<Vec<String>> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text)
        .map_err(|_| stored(row, column, format!("`{text}` is not a JSON list of ids")))
}

/// An amount stored as its decimal text.
pub(super) fn money_at(row: &Row, column: usize) -> Db<Money> {
    let text: String = get(row, column)?;
    Money::parse(&text).map_err(|e| stored(row, column, format!("`{text}` is not an amount: {e}")))
}

/// A count or number stored as BIGINT that fits `T` (pages, sequence, attempts).
pub(super) fn num_at<T: TryFrom<i64>>(row: &Row, column: usize) -> Db<T> {
    let n: i64 = get(row, column)?;
    T::try_from(n).map_err(|_| stored(row, column, format!("{n} is out of range")))
}

/// An optional number stored as BIGINT.
pub(super) fn opt_num_at<T: TryFrom<i64>>(row: &Row, column: usize) -> Db<Option<T>> {
    match get::<Option<i64>>(row, column)? {
        None => Ok(None),
        Some(_) => num_at(row, column).map(Some),
    }
}

/// Liability ids as the JSON text stored in the ledger.
pub(super) fn ids_json(ids: &[String]) -> Db<String> {
    serde_json::to_string(ids).map_err(|e| DbError::Stored(format!("liability ids: {e}")))
}

/// A letter from a row of [`LETTER_COLUMNS`].
pub(super) fn letter_from_row(row: &Row) -> Db<LetterRecord> {
    Ok(LetterRecord {
        key: key_at(row, 0)?,
        run_id: get(row, 1)?,
        account_id: get(row, 2)?,
        kind: enum_at(row, 3)?,
        variant: opt_enum_at(row, 4)?,
        channel: enum_at(row, 5)?,
        mail_class: opt_enum_at(row, 6)?,
        letter_date: date_at(row, 7)?,
        deadline: opt_date_at(row, 8)?,
        liability_ids: ids_at(row, 9)?,
        subject: get(row, 10)?,
        data_sha256: get(row, 11)?,
        template: get(row, 12)?,
        template_sha256: get(row, 13)?,
        file: get(row, 14)?,
        file_sha256: get(row, 15)?,
        pages: opt_num_at(row, 16)?,
        state: state_at(row, 17)?,
        created_at: time_at(row, 18)?,
        updated_at: time_at(row, 19)?,
    })
}

/// A run from a row of [`RUN_COLUMNS`].
pub(super) fn run_from_row(row: &Row) -> Db<RunInfo> {
    Ok(RunInfo {
        id: get(row, 0)?,
        started_at: time_at(row, 1)?,
        finished_at: opt_time_at(row, 2)?,
        as_of: date_at(row, 3)?,
        mail_date: date_at(row, 4)?,
        config_sha256: get(row, 5)?,
        accounts: get(row, 6)?,
        out_dir: get(row, 7)?,
        status: state_at(row, 8)?,
        failure: get(row, 9)?,
    })
}

/// An event from `id, key, run_id, from_state, to_state, at, detail`.
pub(super) fn event_from_row(row: &Row) -> Db<Event> {
    Ok(Event {
        id: get(row, 0)?,
        key: key_at(row, 1)?,
        run_id: get(row, 2)?,
        from_state: opt_state_at(row, 3)?,
        to_state: state_at(row, 4)?,
        at: time_at(row, 5)?,
        detail: get(row, 6)?,
    })
}

/// A referral from `notice_key, account_id, liability_ids, amount, deadline_passed, run_id, at`.
pub(super) fn referral_from_row(row: &Row) -> Db<ReferralRecord> {
    Ok(ReferralRecord {
        notice_key: key_at(row, 0)?,
        account_id: get(row, 1)?,
        liability_ids: ids_at(row, 2)?,
        amount: money_at(row, 3)?,
        deadline_passed: date_at(row, 4)?,
        run_id: get(row, 5)?,
        at: time_at(row, 6)?,
    })
}

/// Every row of a query, decoded.
pub(super) fn all<T>(rows: Vec<Row>, decode: impl Fn(&Row) -> Db<T>) -> Db<Vec<T>> {
    rows.iter().map(decode).collect()
}

/// The letter with this key, if recorded; `lock` takes its row lock (`FOR UPDATE`) for
/// the rest of the transaction.
pub(super) fn load_letter(
    conn: &mut impl GenericClient,
    key: &LetterKey,
    lock: bool,
) -> Db<Option<LetterRecord>> {
    let sql = format!(
        "SELECT {LETTER_COLUMNS} FROM letters WHERE key = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    conn.query_opt_t(&sql, &[&key.as_str()])?
        .as_ref()
        .map(letter_from_row)
        .transpose()
}

/// The run with this id, if recorded.
pub(super) fn load_run(conn: &mut impl GenericClient, run_id: i64) -> Db<Option<RunInfo>> {
    conn.query_opt_t(
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"),
        &[&run_id],
    )?
    .as_ref()
    .map(run_from_row)
    .transpose()
}
