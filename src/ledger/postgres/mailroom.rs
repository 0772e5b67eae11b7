//! Mail pieces, batches and their release in PostgreSQL. Serials and article numbers come
//! from `mail_counters`, whose rows are locked (`SELECT … FOR UPDATE`) by the transaction
//! that records the pieces, so two processes allocating at once take turns, a number is
//! never given out twice and a counter only moves forward (a trigger refuses moving back).

use postgres::{GenericClient, Row};

use super::PgLedger;
use super::rows::{Db, all, enum_at, get, key_at, money_at, num_at, opt_num_at, opt_time_at};
use super::rows::{state_at, time_at};
use super::typed::Typed;
use super::writes::{append_event, now};
use crate::ledger::rules;
use crate::ledger::{
    BatchLog, BatchRecord, BatchState, DbError, LedgerError, LetterState, MailPiece, MakePiece,
    NewBatch, PieceRanges, PieceRequest,
};
use crate::letter::{LetterKey, MailClass};

const PIECE_COLUMNS: &str = "id, key, run_id, mail_class, imb_serial, tracking_code, \
     routing_code, imb, article_number, batch_id, sequence, pages";

const BATCH_COLUMNS: &str = "id, name, run_id, mail_class, seq, file, file_sha256, pieces, \
     pages, sheets, amount_due, state, created_at, released_at";

fn piece_from_row(row: &Row) -> Db<MailPiece> {
    Ok(MailPiece {
        id: get(row, 0)?,
        key: key_at(row, 1)?,
        run_id: get(row, 2)?,
        mail_class: enum_at(row, 3)?,
        imb_serial: num_at(row, 4)?,
        tracking_code: get(row, 5)?,
        routing_code: get(row, 6)?,
        imb: get(row, 7)?,
        article_number: get(row, 8)?,
        batch_id: get(row, 9)?,
        sequence: opt_num_at(row, 10)?,
        pages: opt_num_at(row, 11)?,
    })
}

fn batch_from_row(row: &Row) -> Db<BatchRecord> {
    Ok(BatchRecord {
        id: get(row, 0)?,
        name: get(row, 1)?,
        run_id: get(row, 2)?,
        mail_class: enum_at(row, 3)?,
        seq: num_at(row, 4)?,
        file: get(row, 5)?,
        file_sha256: get(row, 6)?,
        pieces: num_at(row, 7)?,
        pages: num_at(row, 8)?,
        sheets: num_at(row, 9)?,
        amount_due: money_at(row, 10)?,
        state: state_at(row, 11)?,
        created_at: time_at(row, 12)?,
        released_at: opt_time_at(row, 13)?,
    })
}

/// A number as PostgreSQL's BIGINT; a number beyond its range is refused, not clamped.
fn sql_int(n: u64) -> Db<i64> {
    i64::try_from(n).map_err(|_| DbError::Stored(format!("{n} does not fit a BIGINT")))
}

/// The next number of counter `name` within `range` and how many are left, with the
/// counter's row locked until the transaction ends.
fn next_of(conn: &mut impl GenericClient, name: &str, range: (u64, u64)) -> Db<(u64, u64)> {
    let row = conn.query_one_t(
        "SELECT last FROM mail_counters WHERE name = $1 FOR UPDATE",
        &[&name],
    )?;
    let last: Option<u64> = opt_num_at(&row, 0)?;
    Ok(rules::next_in(last, range))
}

fn set_counter(conn: &mut impl GenericClient, name: &str, last: u64) -> Db<()> {
    conn.execute_t(
        "UPDATE mail_counters SET last = $2 WHERE name = $1",
        &[&name, &sql_int(last)?],
    )?;
    Ok(())
}

/// The letter's current piece, if it has one that is not yet in a batch.
fn open_piece(conn: &mut impl GenericClient, key: &LetterKey) -> Db<Option<MailPiece>> {
    conn.query_opt_t(
        &format!(
            "SELECT {PIECE_COLUMNS} FROM mail_pieces
             WHERE id = (SELECT piece_id FROM letters WHERE key = $1) AND batch_id IS NULL"
        ),
        &[&key.as_str()],
    )?
    .as_ref()
    .map(piece_from_row)
    .transpose()
}

/// Inserts one new piece and makes it its letter's current piece; returns its id.
fn insert_piece(
    conn: &mut impl GenericClient,
    run_id: i64,
    request: &PieceRequest,
    serial: u64,
    codes: &crate::ledger::PieceCodes,
    at: &str,
) -> Db<i64> {
    let id: i64 = conn
        .query_one_t(
            "INSERT INTO mail_pieces (key, run_id, mail_class, imb_serial, tracking_code,
                 routing_code, imb, article_number, allocated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &request.key.as_str(),
                &run_id,
                &request.mail_class.as_str(),
                &sql_int(serial)?,
                &codes.tracking_code,
                &request.routing_code,
                &codes.imb,
                &codes.article_number,
                &at,
            ],
        )?
        .try_get(0)?;
    conn.execute_t(
        "UPDATE letters SET piece_id = $2 WHERE key = $1",
        &[&request.key.as_str(), &id],
    )?;
    Ok(id)
}

/// Gives each requested letter a piece, in one transaction (see
/// [`crate::ledger::BatchLog::allocate_pieces`]).
fn allocate(
    tx: &mut impl GenericClient,
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
    // The counters first: allocations take turns from here on.
    let (mut serial, serials_left) = next_of(tx, "imb_serial", ranges.serial).map_err(failed)?;
    let (mut article, articles_left) =
        next_of(tx, "certified_article", ranges.article).map_err(failed)?;
    let mut existing = Vec::with_capacity(requests.len());
    for request in requests {
        let piece = open_piece(tx, &request.key).map_err(failed)?;
        existing.push(piece.filter(|p| rules::piece_fits(p, request)));
    }
    let new: Vec<&PieceRequest> = requests
        .iter()
        .zip(&existing)
        .filter(|(_, piece)| piece.is_none())
        .map(|(r, _)| r)
        .collect();
    rules::check_ranges(&new, serials_left, articles_left, ranges)?;
    let mut pieces = Vec::with_capacity(requests.len());
    let (mut last_serial, mut last_article) = (None, None);
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
        let id = insert_piece(tx, run_id, request, serial, &codes, &at).map_err(|source| {
            LedgerError::Record {
                key: request.key.clone(),
                state: LetterState::Rendered,
                source,
            }
        })?;
        // The counters are moved once, after the loop: they stay locked until the
        // transaction ends, so nobody else sees them in between.
        last_serial = Some(serial);
        serial += 1;
        if article_serial.is_some() {
            last_article = Some(article);
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
    if let Some(last) = last_serial {
        set_counter(tx, "imb_serial", last).map_err(failed)?;
    }
    if let Some(last) = last_article {
        set_counter(tx, "certified_article", last).map_err(failed)?;
    }
    Ok(pieces)
}

/// Records a written batch and puts its pieces in it.
fn record_batch(tx: &mut impl GenericClient, batch: &NewBatch) -> Db<Option<BatchRecord>> {
    let id: i64 = tx
        .query_one_t(
            "INSERT INTO batches (name, run_id, mail_class, seq, file, file_sha256, pieces,
                 pages, sheets, amount_due, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'written', $11) RETURNING id",
            &[
                &batch.name,
                &batch.run_id,
                &batch.mail_class.as_str(),
                &i64::from(batch.seq),
                &batch.file,
                &batch.file_sha256,
                &sql_int(batch.pieces.len() as u64)?,
                &i64::from(batch.pages),
                &i64::from(batch.sheets),
                &batch.amount_due.plain(),
                &now(),
            ],
        )?
        .try_get(0)?;
    for (sequence, (piece, pages)) in batch.pieces.iter().enumerate() {
        let changed = tx.execute_t(
            "UPDATE mail_pieces SET batch_id = $2, sequence = $3, pages = $4
             WHERE id = $1 AND batch_id IS NULL",
            &[
                piece,
                &id,
                &sql_int(sequence as u64 + 1)?,
                &i64::from(*pages),
            ],
        )?;
        if changed != 1 {
            return Err(DbError::Stored(format!(
                "mail piece {piece} is already in a batch or not recorded ({changed} rows changed)"
            )));
        }
    }
    load_batch(tx, &batch.name)
}

/// The batch with this name, if any.
fn load_batch(conn: &mut impl GenericClient, name: &str) -> Db<Option<BatchRecord>> {
    conn.query_opt_t(
        &format!("SELECT {BATCH_COLUMNS} FROM batches WHERE name = $1"),
        &[&name],
    )?
    .as_ref()
    .map(batch_from_row)
    .transpose()
}

/// The pieces of a batch in print order.
fn pieces_of_batch(conn: &mut impl GenericClient, batch_id: i64) -> Db<Vec<MailPiece>> {
    let rows = conn.query_t(
        &format!("SELECT {PIECE_COLUMNS} FROM mail_pieces WHERE batch_id = $1 ORDER BY sequence"),
        &[&batch_id],
    )?;
    all(rows, piece_from_row)
}

/// Marks a batch released and each of its letters `released`.
fn release(
    tx: &mut impl GenericClient,
    name: &str,
    detail: &str,
) -> Result<BatchRecord, LedgerError> {
    let failed = |source| LedgerError::Batch {
        action: format!("release batch {name}"),
        source,
    };
    let unknown = || LedgerError::UnknownBatch {
        name: name.to_owned(),
    };
    let at = now();
    let batch = load_batch(tx, name).map_err(failed)?.ok_or_else(unknown)?;
    if batch.state == BatchState::Released {
        return Ok(batch);
    }
    for piece in pieces_of_batch(tx, batch.id).map_err(failed)? {
        let row = tx
            .query_one_t(
                "SELECT state FROM letters WHERE key = $1 FOR UPDATE",
                &[&piece.key.as_str()],
            )
            .map_err(|e| failed(e.into()))?;
        let state: LetterState = state_at(&row, 0).map_err(failed)?;
        if !rules::check_move(&piece.key, state, LetterState::Released)? {
            continue;
        }
        tx.execute_t(
            "UPDATE letters SET state = 'released', updated_at = $2 WHERE key = $1",
            &[&piece.key.as_str(), &at],
        )
        .map_err(|e| failed(e.into()))?;
        let note = rules::release_note(name, &piece, detail);
        let (to, run) = (LetterState::Released, Some(batch.run_id));
        append_event(tx, &piece.key, run, Some(state), to, &at, &note).map_err(failed)?;
    }
    tx.execute_t(
        "UPDATE batches SET state = 'released', released_at = $2 WHERE id = $1",
        &[&batch.id, &at],
    )
    .map_err(|e| failed(e.into()))?;
    load_batch(tx, name).map_err(failed)?.ok_or_else(unknown)
}

/// Whether every piece is in no batch and still its letter's current piece.
fn pieces_open(conn: &mut impl GenericClient, pieces: &[i64]) -> Db<bool> {
    let open: i64 = conn
        .query_one_t(
            "SELECT count(*) FROM mail_pieces p JOIN letters l ON l.piece_id = p.id
             WHERE p.id = ANY($1) AND p.batch_id IS NULL",
            &[&pieces],
        )?
        .try_get(0)?;
    let distinct: std::collections::HashSet<&i64> = pieces.iter().collect();
    Ok(open == sql_int(distinct.len() as u64)?)
}

impl BatchLog for PgLedger {
    fn allocate_pieces(
        &mut self,
        run_id: i64,
        requests: &[PieceRequest],
        ranges: PieceRanges,
        make: &MakePiece<'_>,
    ) -> Result<Vec<MailPiece>, LedgerError> {
        let failed = |source| LedgerError::Batch {
            action: format!("allocate the mail pieces of run {run_id}"),
            source,
        };
        self.in_tx(&failed, |tx| allocate(tx, run_id, requests, ranges, make))
    }

    fn record_batch(&mut self, batch: &NewBatch) -> Result<BatchRecord, LedgerError> {
        let failed = |source| LedgerError::Batch {
            action: format!("record batch {}", batch.name),
            source,
        };
        self.in_tx(&failed, |tx| {
            record_batch(tx, batch)
                .map_err(failed)?
                .ok_or_else(|| LedgerError::UnknownBatch {
                    name: batch.name.clone(),
                })
        })
    }

    fn batches_of_run(&self, run_id: i64) -> Result<Vec<BatchRecord>, LedgerError> {
        self.read(
            || format!("the batches of run {run_id}"),
            |c| {
                let sql = format!(
                    "SELECT {BATCH_COLUMNS} FROM batches WHERE run_id = $1 ORDER BY mail_class, seq"
                );
                all(c.query_t(&sql, &[&run_id])?, batch_from_row)
            },
        )
    }

    fn batch(&self, name: &str) -> Result<Option<BatchRecord>, LedgerError> {
        self.read(|| format!("batch `{name}`"), |c| load_batch(c, name))
    }

    fn pieces_of_batch(&self, batch_id: i64) -> Result<Vec<MailPiece>, LedgerError> {
        self.read(
            || format!("the pieces of batch {batch_id}"),
            |c| pieces_of_batch(c, batch_id),
        )
    }

    fn file_is_marked(&self, key: &LetterKey) -> Result<bool, LedgerError> {
        self.read(
            || format!("whether the file of `{key}` carries its mail piece's marks"),
            |c| {
                let n: i64 = c
                    .query_one_t(
                        "SELECT count(*) FROM letters
                         WHERE key = $1 AND marked_piece_id IS NOT NULL
                           AND marked_piece_id = piece_id",
                        &[&key.as_str()],
                    )?
                    .try_get(0)?;
                Ok(n == 1)
            },
        )
    }

    fn pieces_open(&self, pieces: &[i64]) -> Result<bool, LedgerError> {
        self.read(
            || "the mail pieces of a batch".to_owned(),
            |c| pieces_open(c, pieces),
        )
    }

    fn unbatched_letters(&self) -> Result<Vec<(LetterKey, i64)>, LedgerError> {
        self.read(
            || "the letters in no batch".to_owned(),
            |c| {
                let rows = c.query_t(
                    "SELECT l.key, l.run_id FROM letters l
                     LEFT JOIN mail_pieces p ON p.id = l.piece_id
                     WHERE l.state = 'rendered' AND l.channel = 'print' AND p.batch_id IS NULL
                     ORDER BY l.key",
                    &[],
                )?;
                all(rows, |row| Ok((key_at(row, 0)?, get(row, 1)?)))
            },
        )
    }

    fn release_batch(&mut self, name: &str, detail: &str) -> Result<BatchRecord, LedgerError> {
        let failed = |source| LedgerError::Batch {
            action: format!("release batch {name}"),
            source,
        };
        self.in_tx(&failed, |tx| release(tx, name, detail))
    }
}
