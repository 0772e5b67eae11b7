//! Mail pieces and batches in the in-memory ledger: counters only move forward, an
//! exhausted range allocates nothing, a piece goes into one batch, once.

use std::collections::{HashMap, HashSet};

use super::{MemoryLedger, Tables};
use crate::ledger::rules;
use crate::ledger::{
    BatchLog, BatchRecord, BatchState, LedgerError, LetterState, MailPiece, MakePiece, NewBatch,
    PieceRanges, PieceRequest, stamp,
};
use crate::letter::{Channel, LetterKey, MailClass};

impl Tables {
    /// The letter's current piece, if it is in no batch yet.
    fn open_piece(&self, key: &LetterKey) -> Option<&MailPiece> {
        let id = self.letters.get(key)?.piece?;
        self.piece(id).filter(|p| p.batch_id.is_none())
    }

    fn piece(&self, id: i64) -> Option<&MailPiece> {
        usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.pieces.get(i))
    }

    fn batch_named(&self, name: &str) -> Option<&BatchRecord> {
        self.batches.iter().find(|b| b.name == name)
    }

    fn batch_pieces(&self, batch_id: i64) -> Vec<MailPiece> {
        let mut pieces: Vec<MailPiece> = self
            .pieces
            .iter()
            .filter(|p| p.batch_id == Some(batch_id))
            .cloned()
            .collect();
        pieces.sort_by_key(|p| p.sequence);
        pieces
    }
}

impl BatchLog for MemoryLedger {
    fn allocate_pieces(
        &mut self,
        run_id: i64,
        requests: &[PieceRequest],
        ranges: PieceRanges,
        make: &MakePiece<'_>,
    ) -> Result<Vec<MailPiece>, LedgerError> {
        self.write(|t| {
            t.require_run(run_id)?;
            let existing: Vec<Option<MailPiece>> = requests
                .iter()
                .map(|r| {
                    t.open_piece(&r.key)
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
            let (mut serial, serials_left) = rules::next_in(t.counters.0, ranges.serial);
            let (mut article, articles_left) = rules::next_in(t.counters.1, ranges.article);
            rules::check_ranges(&new, serials_left, articles_left, ranges)?;
            let mut pieces = Vec::with_capacity(requests.len());
            for (request, piece) in requests.iter().zip(existing) {
                if let Some(piece) = piece {
                    pieces.push(piece);
                    continue;
                }
                let article_serial =
                    (request.mail_class == MailClass::Certified).then_some(article);
                let codes = make(request, serial, article_serial).map_err(|message| {
                    LedgerError::PieceCodes {
                        key: request.key.clone(),
                        message,
                    }
                })?;
                let piece = MailPiece {
                    id: t.pieces.len() as i64 + 1,
                    key: request.key.clone(),
                    run_id,
                    mail_class: request.mail_class,
                    imb_serial: serial,
                    tracking_code: codes.tracking_code,
                    routing_code: request.routing_code.clone(),
                    imb: codes.imb,
                    article_number: codes.article_number,
                    batch_id: None,
                    sequence: None,
                    pages: None,
                };
                t.letter_mut(&request.key)?.piece = Some(piece.id);
                t.pieces.push(piece.clone());
                t.counters.0 = Some(serial);
                serial += 1;
                if article_serial.is_some() {
                    t.counters.1 = Some(article);
                    article += 1;
                }
                pieces.push(piece);
            }
            Ok(pieces)
        })
    }

    fn open_pieces(
        &self,
        keys: &[LetterKey],
    ) -> Result<HashMap<LetterKey, MailPiece>, LedgerError> {
        let t = &self.tables;
        Ok(keys
            .iter()
            .filter_map(|key| {
                let id = t.letters.get(key)?.piece?;
                let piece = t.piece(id).filter(|p| p.batch_id.is_none())?;
                Some((key.clone(), piece.clone()))
            })
            .collect())
    }

    fn record_batch(&mut self, batch: &NewBatch) -> Result<BatchRecord, LedgerError> {
        self.write(|t| {
            let refused = |reason: String| LedgerError::Refused {
                action: format!("record batch {}", batch.name),
                reason,
            };
            t.require_run(batch.run_id)?;
            if t.batch_named(&batch.name).is_some() {
                return Err(refused("a batch of that name is recorded".to_owned()));
            }
            if t.batches.iter().any(|b| {
                (b.run_id, b.mail_class, b.seq) == (batch.run_id, batch.mail_class, batch.seq)
            }) {
                return Err(refused(format!(
                    "run {} has a {} batch {} already",
                    batch.run_id,
                    batch.mail_class.as_str(),
                    batch.seq
                )));
            }
            let record = BatchRecord {
                id: t.batches.len() as i64 + 1,
                name: batch.name.clone(),
                run_id: batch.run_id,
                mail_class: batch.mail_class,
                seq: batch.seq,
                file: batch.file.clone(),
                file_sha256: batch.file_sha256.clone(),
                pieces: batch.pieces.len() as u32,
                pages: batch.pages,
                sheets: batch.sheets,
                amount_due: batch.amount_due,
                state: BatchState::Written,
                created_at: stamp::now(),
                released_at: None,
            };
            for (sequence, (id, pages)) in batch.pieces.iter().enumerate() {
                let piece = usize::try_from(id - 1)
                    .ok()
                    .and_then(|i| t.pieces.get_mut(i))
                    .filter(|p| p.batch_id.is_none())
                    .ok_or_else(|| refused(format!("piece {id} is unknown or in a batch")))?;
                piece.batch_id = Some(record.id);
                piece.sequence = Some(sequence as u32 + 1);
                piece.pages = Some(*pages);
            }
            t.batches.push(record.clone());
            Ok(record)
        })
    }

    fn batches_of_run(&self, run_id: i64) -> Result<Vec<BatchRecord>, LedgerError> {
        let mut batches: Vec<BatchRecord> = self
            .tables
            .batches
            .iter()
            .filter(|b| b.run_id == run_id)
            .cloned()
            .collect();
        batches.sort_by(|a, b| (a.mail_class.as_str(), a.seq).cmp(&(b.mail_class.as_str(), b.seq)));
        Ok(batches)
    }

    fn batch(&self, name: &str) -> Result<Option<BatchRecord>, LedgerError> {
        Ok(self.tables.batch_named(name).cloned())
    }

    fn files_marked(&self, keys: &[LetterKey]) -> Result<HashSet<LetterKey>, LedgerError> {
        Ok(keys
            .iter()
            .filter(|key| {
                self.tables
                    .letters
                    .get(*key)
                    .is_some_and(|row| row.marked.is_some() && row.marked == row.piece)
            })
            .cloned()
            .collect())
    }

    fn pieces_of_batch(&self, batch_id: i64) -> Result<Vec<MailPiece>, LedgerError> {
        Ok(self.tables.batch_pieces(batch_id))
    }

    fn unbatched_letters(&self) -> Result<Vec<(LetterKey, i64)>, LedgerError> {
        let t = &self.tables;
        Ok(t.letters
            .values()
            .filter(|row| {
                row.record.state == LetterState::Rendered
                    && row.record.channel == Channel::Print
                    && row
                        .piece
                        .and_then(|id| t.piece(id))
                        .is_none_or(|p| p.batch_id.is_none())
            })
            .map(|row| (row.record.key.clone(), row.record.run_id))
            .collect())
    }

    fn release_batch(&mut self, name: &str, detail: &str) -> Result<BatchRecord, LedgerError> {
        self.write(|t| {
            let batch = t
                .batch_named(name)
                .cloned()
                .ok_or_else(|| LedgerError::UnknownBatch {
                    name: name.to_owned(),
                })?;
            if batch.state == BatchState::Released {
                return Ok(batch);
            }
            let at = stamp::now();
            for piece in t.batch_pieces(batch.id) {
                let from = t.letter(&piece.key)?.record.state;
                if !rules::check_move(&piece.key, from, LetterState::Released)? {
                    continue;
                }
                let letter = &mut t.letter_mut(&piece.key)?.record;
                letter.state = LetterState::Released;
                letter.updated_at = at;
                let note = rules::release_note(name, &piece, detail);
                t.append_event(
                    &piece.key,
                    Some(batch.run_id),
                    Some(from),
                    LetterState::Released,
                    at,
                    &note,
                );
            }
            let record = t
                .batches
                .iter_mut()
                .find(|b| b.id == batch.id)
                .ok_or_else(|| LedgerError::UnknownBatch {
                    name: name.to_owned(),
                })?;
            record.state = BatchState::Released;
            record.released_at = Some(at);
            Ok(record.clone())
        })
    }
}
