//! Mail pieces, batches and their release in PostgreSQL. Serials and article numbers come
//! from `mail_counters`, whose rows are locked (`SELECT … FOR UPDATE`) by the transaction
//! that records the pieces, so two processes allocating at once take turns, a number is
//! never given out twice and a counter only moves forward (a trigger refuses moving back).
//! A call's pieces, batch members and released letters are read and written in one
//! statement each (`= ANY($1)`, `unnest`), not one per letter.

use std::collections::{HashMap, HashSet};

use postgres::{GenericClient, Row};

use super::PgLedger;
use super::rows::{Db, all, enum_at, get, key_at, money_at, num_at, opt_num_at, opt_time_at};
use super::rows::{state_at, time_at};
use super::typed::Typed;
use super::writes::{append_events, now};
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

/// The letters' current pieces that are not yet in a batch, by key, in one query.
fn open_pieces(conn: &mut impl GenericClient, keys: &[&str]) -> Db<HashMap<LetterKey, MailPiece>> {
    let rows = conn.query_t(
        &format!(
            "SELECT {PIECE_COLUMNS} FROM mail_pieces
             WHERE id IN (SELECT piece_id FROM letters WHERE key = ANY($1))
               AND batch_id IS NULL"
        ),
        &[&keys.to_vec()],
    )?;
    let pieces = all(rows, piece_from_row)?;
    Ok(pieces.into_iter().map(|p| (p.key.clone(), p)).collect())
}

/// A new piece's codes, before it has an id.
struct NewPiece<'a> {
    request: &'a PieceRequest,
    serial: u64,
    codes: crate::ledger::PieceCodes,
}

/// Inserts new pieces in one statement and makes each its letter's current piece (a
/// letter given twice keeps its last); returns their ids, in the order given.
fn insert_pieces(
    conn: &mut impl GenericClient,
    run_id: i64,
    new: &[NewPiece<'_>],
    at: &str,
) -> Db<Vec<i64>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let serials = new
        .iter()
        .map(|p| sql_int(p.serial))
        .collect::<Db<Vec<i64>>>()?;
    let keys: Vec<&str> = new.iter().map(|p| p.request.key.as_str()).collect();
    let rows = conn.query_t(
        "INSERT INTO mail_pieces (key, run_id, mail_class, imb_serial, tracking_code,
             routing_code, imb, article_number, allocated_at)
         SELECT u.key, $8, u.mail_class, u.imb_serial, u.tracking_code, u.routing_code, u.imb,
             u.article_number, $9
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
             $7::text[]) WITH ORDINALITY
             AS u(key, mail_class, imb_serial, tracking_code, routing_code, imb,
                 article_number, n)
         ORDER BY u.n
         RETURNING id, imb_serial",
        &[
            &keys,
            &new.iter()
                .map(|p| p.request.mail_class.as_str())
                .collect::<Vec<_>>(),
            &serials,
            &new.iter()
                .map(|p| p.codes.tracking_code.as_str())
                .collect::<Vec<_>>(),
            &new.iter()
                .map(|p| p.request.routing_code.as_str())
                .collect::<Vec<_>>(),
            &new.iter().map(|p| p.codes.imb.as_str()).collect::<Vec<_>>(),
            &new.iter()
                .map(|p| p.codes.article_number.as_deref())
                .collect::<Vec<_>>(),
            &run_id,
            &at,
        ],
    )?;
    // Serials are unique: they say which row each id is.
    let by_serial: HashMap<i64, i64> = rows
        .iter()
        .map(|row| Ok((get(row, 1)?, get(row, 0)?)))
        .collect::<Db<_>>()?;
    let ids = serials
        .iter()
        .map(|serial| {
            by_serial.get(serial).copied().ok_or_else(|| {
                DbError::Stored(format!(
                    "the mail piece with IMb serial {serial} was not inserted"
                ))
            })
        })
        .collect::<Db<Vec<i64>>>()?;
    let mut current: HashMap<&str, i64> = HashMap::with_capacity(new.len());
    for (key, id) in keys.iter().zip(&ids) {
        current.insert(key, *id);
    }
    let (keys, pieces): (Vec<&str>, Vec<i64>) = current.into_iter().unzip();
    conn.execute_t(
        "UPDATE letters l SET piece_id = u.piece_id
         FROM unnest($1::text[], $2::bigint[]) AS u(key, piece_id) WHERE l.key = u.key",
        &[&keys, &pieces],
    )?;
    Ok(ids)
}

/// Gives each requested letter a piece, in one transaction (see
/// [`crate::ledger::BatchLog::allocate_pieces`]): the letters locked in key order first (by the caller), then the counters, the open
/// pieces read in one query, the new ones inserted in one statement.
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
    let keys: Vec<&str> = requests.iter().map(|r| r.key.as_str()).collect();
    let open = open_pieces(tx, &keys).map_err(failed)?;
    let existing: Vec<Option<MailPiece>> = requests
        .iter()
        .map(|r| {
            open.get(&r.key)
                .filter(|p| rules::piece_fits(p, r))
                .cloned()
        })
        .collect();
    let new: Vec<&PieceRequest> = requests
        .iter()
        .zip(&existing)
        .filter(|(_, piece)| piece.is_none())
        .map(|(r, _)| r)
        .collect();
    rules::check_ranges(&new, serials_left, articles_left, ranges)?;
    let mut made = Vec::with_capacity(new.len());
    let (mut last_serial, mut last_article) = (None, None);
    for request in new {
        let article_serial = (request.mail_class == MailClass::Certified).then_some(article);
        let codes =
            make(request, serial, article_serial).map_err(|message| LedgerError::PieceCodes {
                key: request.key.clone(),
                message,
            })?;
        made.push(NewPiece {
            request,
            serial,
            codes,
        });
        // The counters are moved once, below: they stay locked until the transaction
        // ends, so nobody else sees them in between.
        last_serial = Some(serial);
        serial += 1;
        if article_serial.is_some() {
            last_article = Some(article);
            article += 1;
        }
    }
    let ids = insert_pieces(tx, run_id, &made, &at).map_err(failed)?;
    let mut made = made.into_iter().zip(ids);
    let mut pieces = Vec::with_capacity(requests.len());
    for piece in existing {
        if let Some(piece) = piece {
            pieces.push(piece);
            continue;
        }
        let Some((new, id)) = made.next() else {
            return Err(failed(DbError::Stored(
                "fewer mail pieces were inserted than requested".to_owned(),
            )));
        };
        pieces.push(MailPiece {
            id,
            key: new.request.key.clone(),
            run_id,
            mail_class: new.request.mail_class,
            imb_serial: new.serial,
            tracking_code: new.codes.tracking_code,
            routing_code: new.request.routing_code.clone(),
            imb: new.codes.imb,
            article_number: new.codes.article_number,
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
    let ids: Vec<i64> = batch.pieces.iter().map(|(piece, _)| *piece).collect();
    let sequences = (1..=ids.len() as u64)
        .map(sql_int)
        .collect::<Db<Vec<i64>>>()?;
    let pages: Vec<i64> = batch.pieces.iter().map(|(_, p)| i64::from(*p)).collect();
    let changed: HashSet<i64> = tx
        .query_t(
            "UPDATE mail_pieces p SET batch_id = $4, sequence = u.sequence, pages = u.pages
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(id, sequence, pages)
             WHERE p.id = u.id AND p.batch_id IS NULL
             RETURNING p.id",
            &[&ids, &sequences, &pages, &id],
        )?
        .iter()
        .map(|row| get(row, 0))
        .collect::<Db<_>>()?;
    // Each piece must have been changed, once: the first that was not (in print order;
    // a piece given twice is in a batch by its second time) is named, as if they had
    // been put in one by one.
    let mut seen = HashSet::with_capacity(ids.len());
    if let Some(piece) = ids
        .iter()
        .find(|piece| !seen.insert(**piece) || !changed.contains(piece))
    {
        return Err(DbError::Stored(format!(
            "mail piece {piece} is already in a batch or not recorded (0 rows changed)"
        )));
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
    let pieces = pieces_of_batch(tx, batch.id).map_err(failed)?;
    let keys: Vec<&str> = pieces.iter().map(|p| p.key.as_str()).collect();
    // The letters locked in key order, as every writer of several letters does.
    let mut states: HashMap<String, LetterState> = HashMap::with_capacity(keys.len());
    for row in tx
        .query_t(
            "SELECT key, state FROM letters WHERE key = ANY($1) ORDER BY key FOR UPDATE",
            &[&keys],
        )
        .map_err(|e| failed(e.into()))?
    {
        states.insert(
            get(&row, 0).map_err(failed)?,
            state_at(&row, 1).map_err(failed)?,
        );
    }
    let mut events = Vec::with_capacity(pieces.len());
    for piece in &pieces {
        let state = states.get_mut(piece.key.as_str()).ok_or_else(|| {
            failed(DbError::Stored(format!(
                "the letter `{}` of mail piece {} is not recorded",
                piece.key, piece.id
            )))
        })?;
        if !rules::check_move(&piece.key, *state, LetterState::Released)? {
            continue;
        }
        events.push((
            &piece.key,
            Some(*state),
            rules::release_note(name, piece, detail),
        ));
        *state = LetterState::Released;
    }
    let released: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    tx.execute_t(
        "UPDATE letters SET state = 'released', updated_at = $2 WHERE key = ANY($1)",
        &[&released, &at],
    )
    .map_err(|e| failed(e.into()))?;
    let run = Some(batch.run_id);
    append_events(tx, run, LetterState::Released, &at, &events).map_err(failed)?;
    tx.execute_t(
        "UPDATE batches SET state = 'released', released_at = $2 WHERE id = $1",
        &[&batch.id, &at],
    )
    .map_err(|e| failed(e.into()))?;
    load_batch(tx, name).map_err(failed)?.ok_or_else(unknown)
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
        self.in_tx(&failed, |tx| {
            // Letter rows are locked in key order first, as every writer of letters does
            // (the pieces' foreign key checks would otherwise lock them in print order),
            // so allocating never deadlocks with a worker recording the same letters.
            let keys: Vec<&str> = requests.iter().map(|r| r.key.as_str()).collect();
            tx.query_t(
                "SELECT 1 FROM letters WHERE key = ANY($1) ORDER BY key FOR UPDATE",
                &[&keys],
            )
            .map_err(|e| failed(e.into()))?;
            allocate(tx, run_id, requests, ranges, make)
        })
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

    fn files_marked(&self, keys: &[LetterKey]) -> Result<HashSet<LetterKey>, LedgerError> {
        let texts: Vec<&str> = keys.iter().map(LetterKey::as_str).collect();
        self.read(
            || {
                format!(
                    "whether the files of {} letters carry their mail pieces' marks",
                    keys.len()
                )
            },
            |c| {
                c.query_t(
                    "SELECT key FROM letters
                     WHERE key = ANY($1) AND marked_piece_id IS NOT NULL
                       AND marked_piece_id = piece_id",
                    &[&texts],
                )?
                .iter()
                .map(|row| key_at(row, 0))
                .collect()
            },
        )
    }

    fn open_pieces(
        &self,
        keys: &[LetterKey],
    ) -> Result<HashMap<LetterKey, MailPiece>, LedgerError> {
        let texts: Vec<&str> = keys.iter().map(LetterKey::as_str).collect();
        self.read(
            || "the mail pieces of a batch".to_owned(),
            |c| open_pieces(c, &texts),
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
