//! The mailroom's records: mail pieces (IMb serial, certified article number), print
//! batches and their release. Serials and article numbers come from counters that only
//! move forward, inside the transaction that records the pieces, so a number is never
//! given out twice, even after a crash.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::rows::{decode_err, money_at, opt_time_at, time_at};
use super::stamp;
use super::writes::{append_event, now};
use super::{BatchState, LedgerError, LetterState};
use crate::letter::{LetterKey, MailClass};
use crate::money::Money;

/// A letter that needs a mail piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceRequest {
    /// The letter.
    pub key: LetterKey,
    /// Its mail class.
    pub mail_class: MailClass,
    /// The IMb routing code: ZIP (5 digits) or ZIP+4 (9).
    pub routing_code: String,
}

/// The codes of a mail piece, made by the caller from the numbers the ledger hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceCodes {
    /// The 20-digit IMb tracking code.
    pub tracking_code: String,
    /// The 65 bar letters (`F`, `A`, `D`, `T`).
    pub imb: String,
    /// The 20-digit certified article number (certified pieces only).
    pub article_number: Option<String>,
}

/// Turns the numbers the ledger hands out (IMb serial, certified article serial) into a
/// piece's codes; an `Err` names what is wrong.
pub type MakePiece<'a> = dyn Fn(&PieceRequest, u64, Option<u64>) -> Result<PieceCodes, String> + 'a;

/// The number ranges pieces are allocated from (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceRanges {
    /// IMb serials.
    pub serial: (u64, u64),
    /// Certified article serials.
    pub article: (u64, u64),
}

/// A mail piece as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailPiece {
    /// Piece id.
    pub id: i64,
    /// The letter.
    pub key: LetterKey,
    /// The run that allocated it.
    pub run_id: i64,
    /// Mail class.
    pub mail_class: MailClass,
    /// IMb serial (unique forever).
    pub imb_serial: u64,
    /// IMb tracking code.
    pub tracking_code: String,
    /// IMb routing code.
    pub routing_code: String,
    /// The 65 bar letters.
    pub imb: String,
    /// Certified article number.
    pub article_number: Option<String>,
    /// The batch it was printed in, once recorded.
    pub batch_id: Option<i64>,
    /// Its position in that batch (1-based).
    pub sequence: Option<u32>,
    /// Its page count in that batch (even).
    pub pages: Option<u32>,
}

/// A batch to record: its file is complete on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    /// Name (`7-certified-1`).
    pub name: String,
    /// The run.
    pub run_id: i64,
    /// Mail class.
    pub mail_class: MailClass,
    /// Number within run and class (1, 2, …).
    pub seq: u32,
    /// File name inside the batches directory.
    pub file: String,
    /// SHA-256 of the file.
    pub file_sha256: String,
    /// The pieces in print order with their page counts.
    pub pieces: Vec<(i64, u32)>,
    /// Pages of the file.
    pub pages: u32,
    /// Sheets (duplex: pages / 2).
    pub sheets: u32,
    /// Total amount due on its intent-to-offset letters.
    pub amount_due: Money,
}

/// A batch as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchRecord {
    /// Batch id.
    pub id: i64,
    /// Name (`7-certified-1`).
    pub name: String,
    /// The run.
    pub run_id: i64,
    /// Mail class.
    pub mail_class: MailClass,
    /// Number within run and class.
    pub seq: u32,
    /// File name inside the batches directory.
    pub file: String,
    /// SHA-256 of the file.
    pub file_sha256: String,
    /// Letters in it.
    pub pieces: u32,
    /// Pages.
    pub pages: u32,
    /// Sheets.
    pub sheets: u32,
    /// Total amount due on its intent-to-offset letters.
    pub amount_due: Money,
    /// Written, or released by the operator.
    pub state: BatchState,
    /// When it was recorded.
    #[serde(serialize_with = "stamp::serialize")]
    pub created_at: DateTime<Utc>,
    /// When the operator released it.
    #[serde(serialize_with = "stamp::serialize_opt")]
    pub released_at: Option<DateTime<Utc>>,
}

const PIECE_COLUMNS: &str = "id, key, run_id, mail_class, imb_serial, tracking_code, \
     routing_code, imb, article_number, batch_id, sequence, pages";

const BATCH_COLUMNS: &str = "id, name, run_id, mail_class, seq, file, file_sha256, pieces, \
     pages, sheets, amount_due, state, created_at, released_at";

fn class_at(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<MailClass> {
    let text: String = row.get(column)?;
    match text.as_str() {
        "certified" => Ok(MailClass::Certified),
        "first_class" => Ok(MailClass::FirstClass),
        _ => Err(decode_err(column, format!("`{text}` is not a mail class"))),
    }
}

fn piece_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MailPiece> {
    let key: String = row.get(1)?;
    Ok(MailPiece {
        id: row.get(0)?,
        key: serde_json::from_value(serde_json::Value::String(key.clone()))
            .map_err(|_| decode_err(1, format!("`{key}` is not a letter key")))?,
        run_id: row.get(2)?,
        mail_class: class_at(row, 3)?,
        imb_serial: row.get::<_, i64>(4)?.unsigned_abs(),
        tracking_code: row.get(5)?,
        routing_code: row.get(6)?,
        imb: row.get(7)?,
        article_number: row.get(8)?,
        batch_id: row.get(9)?,
        sequence: row.get(10)?,
        pages: row.get(11)?,
    })
}

fn batch_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BatchRecord> {
    Ok(BatchRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        run_id: row.get(2)?,
        mail_class: class_at(row, 3)?,
        seq: row.get(4)?,
        file: row.get(5)?,
        file_sha256: row.get(6)?,
        pieces: row.get(7)?,
        pages: row.get(8)?,
        sheets: row.get(9)?,
        amount_due: money_at(row, 10)?,
        state: row.get(11)?,
        created_at: time_at(row, 12)?,
        released_at: opt_time_at(row, 13)?,
    })
}

/// The next number of counter `name` within `range`, and how many are left from it.
fn next_of(conn: &Connection, name: &str, range: (u64, u64)) -> rusqlite::Result<(u64, u64)> {
    let last: Option<u64> = conn
        .query_row(
            "SELECT last FROM mail_counters WHERE name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(i64::unsigned_abs);
    let next = last.map_or(range.0, |l| (l + 1).max(range.0));
    let left = if next > range.1 {
        0
    } else {
        range.1 - next + 1
    };
    Ok((next, left))
}

/// A serial as SQLite's signed integer; a number beyond its range is refused, not clamped
/// (the configuration keeps serials at most 999,999,999).
fn sql_int(n: u64) -> rusqlite::Result<i64> {
    i64::try_from(n).map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))
}

fn set_counter(conn: &Connection, name: &str, last: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO mail_counters (name, last) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET last = excluded.last",
        params![name, sql_int(last)?],
    )?;
    Ok(())
}

/// The letter's current piece, if it has one that is not yet in a batch.
fn open_piece(conn: &Connection, key: &LetterKey) -> rusqlite::Result<Option<MailPiece>> {
    conn.prepare_cached(&format!(
        "SELECT {PIECE_COLUMNS} FROM mail_pieces
         WHERE id = (SELECT piece_id FROM letters WHERE key = ?1) AND batch_id IS NULL"
    ))?
    .query_row([key.as_str()], piece_from_row)
    .optional()
}

/// Gives each requested letter a piece, in one transaction (see
/// [`super::Ledger::allocate_pieces`]).
pub(super) fn allocate(
    conn: &mut Connection,
    run_id: i64,
    requests: &[PieceRequest],
    ranges: PieceRanges,
    make: &MakePiece<'_>,
) -> Result<Vec<MailPiece>, LedgerError> {
    let failed = |source| LedgerError::Batch {
        action: format!("allocate the mail pieces of run {run_id}"),
        source,
    };
    let at = now();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(failed)?;
    let mut existing = Vec::with_capacity(requests.len());
    for request in requests {
        existing.push(open_piece(&tx, &request.key).map_err(failed)?);
    }
    let new: Vec<&PieceRequest> = requests
        .iter()
        .zip(&existing)
        .filter(|(_, piece)| piece.is_none())
        .map(|(r, _)| r)
        .collect();
    let certified = new
        .iter()
        .filter(|r| r.mail_class == MailClass::Certified)
        .count() as u64;
    let (mut serial, serials_left) = next_of(&tx, "imb_serial", ranges.serial).map_err(failed)?;
    let (mut article, articles_left) =
        next_of(&tx, "certified_article", ranges.article).map_err(failed)?;
    if (new.len() as u64) > serials_left {
        return Err(LedgerError::RangeExhausted {
            what: "IMb serial",
            key: "serial_last",
            needed: new.len() as u64,
            left: serials_left,
            last: ranges.serial.1,
        });
    }
    if certified > articles_left {
        return Err(LedgerError::RangeExhausted {
            what: "certified article number",
            key: "certified_last",
            needed: certified,
            left: articles_left,
            last: ranges.article.1,
        });
    }
    let mut pieces = Vec::with_capacity(requests.len());
    for (request, piece) in requests.iter().zip(existing) {
        if let Some(piece) = piece {
            pieces.push(piece);
            continue;
        }
        let article_serial = (request.mail_class == MailClass::Certified).then_some(article);
        let codes =
            make(request, serial, article_serial).map_err(|message| LedgerError::PieceCodes {
                key: request.key.clone(),
                message,
            })?;
        let record = |source| LedgerError::Record {
            key: request.key.clone(),
            state: LetterState::Rendered,
            source,
        };
        tx.prepare_cached(
            "INSERT INTO mail_pieces (key, run_id, mail_class, imb_serial, tracking_code,
                 routing_code, imb, article_number, allocated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                request.key.as_str(),
                run_id,
                request.mail_class.as_str(),
                sql_int(serial)?,
                codes.tracking_code,
                request.routing_code,
                codes.imb,
                codes.article_number,
                at,
            ])
        })
        .map_err(record)?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE letters SET piece_id = ?2 WHERE key = ?1",
            params![request.key.as_str(), id],
        )
        .map_err(record)?;
        set_counter(&tx, "imb_serial", serial).map_err(failed)?;
        serial += 1;
        if article_serial.is_some() {
            set_counter(&tx, "certified_article", article).map_err(failed)?;
            article += 1;
        }
        pieces.push(MailPiece {
            id,
            key: request.key.clone(),
            run_id,
            mail_class: request.mail_class,
            imb_serial: serial - 1,
            tracking_code: codes.tracking_code,
            routing_code: request.routing_code.clone(),
            imb: codes.imb,
            article_number: codes.article_number,
            batch_id: None,
            sequence: None,
            pages: None,
        });
    }
    tx.commit().map_err(failed)?;
    Ok(pieces)
}

/// Records a written batch and puts its pieces in it, in one transaction.
pub(super) fn record_batch(
    conn: &mut Connection,
    batch: &NewBatch,
) -> Result<BatchRecord, LedgerError> {
    let failed = |source| LedgerError::Batch {
        action: format!("record batch {}", batch.name),
        source,
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(failed)?;
    tx.execute(
        "INSERT INTO batches (name, run_id, mail_class, seq, file, file_sha256, pieces, pages,
             sheets, amount_due, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'written', ?11)",
        params![
            batch.name,
            batch.run_id,
            batch.mail_class.as_str(),
            batch.seq,
            batch.file,
            batch.file_sha256,
            batch.pieces.len() as u32,
            batch.pages,
            batch.sheets,
            batch.amount_due.plain(),
            now(),
        ],
    )
    .map_err(failed)?;
    let id = tx.last_insert_rowid();
    for (sequence, (piece, pages)) in batch.pieces.iter().enumerate() {
        let changed = tx
            .execute(
                "UPDATE mail_pieces SET batch_id = ?2, sequence = ?3, pages = ?4
                 WHERE id = ?1 AND batch_id IS NULL",
                params![piece, id, sequence as u32 + 1, pages],
            )
            .map_err(failed)?;
        if changed != 1 {
            return Err(failed(rusqlite::Error::StatementChangedRows(changed)));
        }
    }
    let record = load_batch(&tx, &batch.name)
        .map_err(failed)?
        .ok_or_else(|| LedgerError::UnknownBatch {
            name: batch.name.clone(),
        })?;
    tx.commit().map_err(failed)?;
    Ok(record)
}

/// The batch with this name, if any.
pub(super) fn load_batch(conn: &Connection, name: &str) -> rusqlite::Result<Option<BatchRecord>> {
    conn.query_row(
        &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE name = ?1"),
        [name],
        batch_from_row,
    )
    .optional()
}

/// Every batch of a run, by class and number.
pub(super) fn batches_of_run(conn: &Connection, run_id: i64) -> rusqlite::Result<Vec<BatchRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {BATCH_COLUMNS} FROM batches WHERE run_id = ?1 ORDER BY mail_class, seq"
    ))?;
    let rows = stmt.query_map([run_id], batch_from_row)?;
    rows.collect()
}

/// The pieces of a batch in print order.
pub(super) fn pieces_of_batch(
    conn: &Connection,
    batch_id: i64,
) -> rusqlite::Result<Vec<MailPiece>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {PIECE_COLUMNS} FROM mail_pieces WHERE batch_id = ?1 ORDER BY sequence"
    ))?;
    let rows = stmt.query_map([batch_id], piece_from_row)?;
    rows.collect()
}

/// Rendered print letters whose current copy is in no batch yet, with their run, by key.
pub(super) fn unbatched(conn: &Connection) -> rusqlite::Result<Vec<(LetterKey, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT l.key, l.run_id FROM letters l
         LEFT JOIN mail_pieces p ON p.id = l.piece_id
         WHERE l.state = 'rendered' AND l.channel = 'print' AND p.batch_id IS NULL
         ORDER BY l.key",
    )?;
    let rows = stmt.query_map([], |row| {
        let key: String = row.get(0)?;
        let key = serde_json::from_value(serde_json::Value::String(key.clone()))
            .map_err(|_| decode_err(0, format!("`{key}` is not a letter key")))?;
        Ok((key, row.get(1)?))
    })?;
    rows.collect()
}

/// Whether every piece is in no batch and still its letter's current piece.
pub(super) fn pieces_open(conn: &Connection, pieces: &[i64]) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*) FROM mail_pieces p JOIN letters l ON l.piece_id = p.id
         WHERE p.id = ?1 AND p.batch_id IS NULL",
    )?;
    for piece in pieces {
        let n: i64 = stmt.query_row([piece], |r| r.get(0))?;
        if n != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Marks a batch released and each of its letters `released`, in one transaction.
pub(super) fn release(
    conn: &mut Connection,
    name: &str,
    detail: &str,
) -> Result<BatchRecord, LedgerError> {
    let failed = |source| LedgerError::Batch {
        action: format!("release batch {name}"),
        source,
    };
    let at = now();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(failed)?;
    let batch =
        load_batch(&tx, name)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownBatch {
                name: name.to_owned(),
            })?;
    if batch.state == BatchState::Released {
        return Ok(batch);
    }
    for piece in pieces_of_batch(&tx, batch.id).map_err(failed)? {
        let state: LetterState = tx
            .query_row(
                "SELECT state FROM letters WHERE key = ?1",
                [piece.key.as_str()],
                |r| r.get(0),
            )
            .map_err(failed)?;
        if state == LetterState::Released {
            continue;
        }
        if !state.can_move_to(LetterState::Released) {
            return Err(LedgerError::Transition {
                key: piece.key.clone(),
                from: state,
                to: LetterState::Released,
                allowed: super::allowed_moves(state),
            });
        }
        tx.execute(
            "UPDATE letters SET state = 'released', updated_at = ?2 WHERE key = ?1",
            params![piece.key.as_str(), at],
        )
        .map_err(failed)?;
        let note = format!(
            "released in batch {name} (piece {}, IMb serial {}{}){}{detail}",
            piece.sequence.unwrap_or_default(),
            piece.imb_serial,
            piece
                .article_number
                .as_deref()
                .map(|a| format!(", article {a}"))
                .unwrap_or_default(),
            if detail.is_empty() { "" } else { ": " },
        );
        append_event(
            &tx,
            &piece.key,
            Some(batch.run_id),
            Some(state),
            LetterState::Released,
            &at,
            &note,
        )
        .map_err(failed)?;
    }
    tx.execute(
        "UPDATE batches SET state = 'released', released_at = ?2 WHERE id = ?1",
        params![batch.id, at],
    )
    .map_err(failed)?;
    let batch =
        load_batch(&tx, name)
            .map_err(failed)?
            .ok_or_else(|| LedgerError::UnknownBatch {
                name: name.to_owned(),
            })?;
    tx.commit().map_err(failed)?;
    Ok(batch)
}
