//! Mail pieces, batches and their release in SQLite. Serials and article numbers come from
//! `mail_counters`, which only move forward, inside the transaction that records the
//! pieces, so a number is never given out twice, even after a crash.

use std::collections::{HashMap, HashSet};

use crate::ledger::DbError;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteLedger;
use super::rows::{decode_err, money_at, opt_time_at, time_at};
use super::writes::{append_event, now};
use crate::ledger::rules;
use crate::ledger::{
    BatchLog, BatchRecord, BatchState, LedgerError, LetterState, MailPiece, MakePiece, NewBatch,
    PieceRanges, PieceRequest,
};
use crate::letter::{LetterKey, MailClass};

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
    Ok(rules::next_in(last, range))
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
        source: DbError::from(source),
    };
    let at = now();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(failed)?;
    let mut existing = Vec::with_capacity(requests.len());
    for request in requests {
        let piece = open_piece(&tx, &request.key).map_err(failed)?;
        existing.push(piece.filter(|p| rules::piece_fits(p, request)));
    }
    let new: Vec<&PieceRequest> = requests
        .iter()
        .zip(&existing)
        .filter(|(_, piece)| piece.is_none())
        .map(|(r, _)| r)
        .collect();
    let (mut serial, serials_left) = next_of(&tx, "imb_serial", ranges.serial).map_err(failed)?;
    let (mut article, articles_left) =
        next_of(&tx, "certified_article", ranges.article).map_err(failed)?;
    rules::check_ranges(&new, serials_left, articles_left, ranges)?;
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
            source: DbError::from(source),
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
        source: DbError::from(source),
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
/// Marks a batch released and each of its letters `released`, in one transaction.
pub(super) fn release(
    conn: &mut Connection,
    name: &str,
    detail: &str,
) -> Result<BatchRecord, LedgerError> {
    let failed = |source| LedgerError::Batch {
        action: format!("release batch {name}"),
        source: DbError::from(source),
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
        if !rules::check_move(&piece.key, state, LetterState::Released)? {
            continue;
        }
        tx.execute(
            "UPDATE letters SET state = 'released', updated_at = ?2 WHERE key = ?1",
            params![piece.key.as_str(), at],
        )
        .map_err(failed)?;
        let note = rules::release_note(name, &piece, detail);
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

impl BatchLog for SqliteLedger {
    fn allocate_pieces(
        &mut self,
        run_id: i64,
        requests: &[PieceRequest],
        ranges: PieceRanges,
        make: &MakePiece<'_>,
    ) -> Result<Vec<MailPiece>, LedgerError> {
        allocate(&mut self.conn, run_id, requests, ranges, make)
    }

    fn record_batch(&mut self, batch: &NewBatch) -> Result<BatchRecord, LedgerError> {
        record_batch(&mut self.conn, batch)
    }

    fn batches_of_run(&self, run_id: i64) -> Result<Vec<BatchRecord>, LedgerError> {
        batches_of_run(&self.conn, run_id).map_err(|source| LedgerError::Read {
            what: format!("the batches of run {run_id}"),
            source: DbError::from(source),
        })
    }

    fn batch(&self, name: &str) -> Result<Option<BatchRecord>, LedgerError> {
        load_batch(&self.conn, name).map_err(|source| LedgerError::Read {
            what: format!("batch `{name}`"),
            source: DbError::from(source),
        })
    }

    fn pieces_of_batch(&self, batch_id: i64) -> Result<Vec<MailPiece>, LedgerError> {
        pieces_of_batch(&self.conn, batch_id).map_err(|source| LedgerError::Read {
            what: format!("the pieces of batch {batch_id}"),
            source: DbError::from(source),
        })
    }

    fn files_marked(&self, keys: &[LetterKey]) -> Result<HashSet<LetterKey>, LedgerError> {
        let mut marked = HashSet::new();
        // In process: one cached statement a key costs no round trip.
        for key in keys {
            let n = self
                .conn
                .prepare_cached(
                    "SELECT count(*) FROM letters
                     WHERE key = ?1 AND marked_piece_id IS NOT NULL AND marked_piece_id = piece_id",
                )
                .and_then(|mut stmt| stmt.query_row([key.as_str()], |r| r.get::<_, i64>(0)))
                .map_err(|source| LedgerError::Read {
                    what: format!("whether the file of `{key}` carries its mail piece's marks"),
                    source: DbError::from(source),
                })?;
            if n == 1 {
                marked.insert(key.clone());
            }
        }
        Ok(marked)
    }

    fn open_pieces(
        &self,
        keys: &[LetterKey],
    ) -> Result<HashMap<LetterKey, MailPiece>, LedgerError> {
        let mut open = HashMap::with_capacity(keys.len());
        for key in keys {
            let piece = open_piece(&self.conn, key).map_err(|source| LedgerError::Read {
                what: "the mail pieces of a batch".to_owned(),
                source: DbError::from(source),
            })?;
            if let Some(piece) = piece {
                open.insert(key.clone(), piece);
            }
        }
        Ok(open)
    }

    fn unbatched_letters(&self) -> Result<Vec<(LetterKey, i64)>, LedgerError> {
        unbatched(&self.conn).map_err(|source| LedgerError::Read {
            what: "the letters in no batch".to_owned(),
            source: DbError::from(source),
        })
    }

    fn release_batch(&mut self, name: &str, detail: &str) -> Result<BatchRecord, LedgerError> {
        release(&mut self.conn, name, detail)
    }
}
