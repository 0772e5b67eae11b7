//! The run's **batch** and **release** steps: the mailroom's pure pieces put in the order
//! that keeps a crash harmless.
//!
//! 1. every batchable letter gets its mail piece in ONE ledger transaction before anything
//!    is written (a range too short for all fails here, with nothing batched);
//! 2. per batch: its letters are composed again with their pieces' barcodes and article
//!    numbers, compiled as one document and checked (one start per letter, even page
//!    counts); the ledger is asked whether the pieces are still open; the PDF, manifest and
//!    (certified) mailing book are written under temporary names and renamed;
//! 3. only then is the batch recorded with its pieces' places, in ONE transaction.
//!
//! A crash before 3 leaves the pieces open: the next attempt batches them again with the
//! same serials and article numbers, under the same batch name. `control.json` is always
//! rewritten from the ledger's batches of the run, after recording and after a release.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Run, RunError};
use crate::account::Account;
use crate::compose::{ComposeError, MailMarks};
use crate::config::hex;
use crate::decide::DueLetter;
use crate::ledger::{
    BatchRecord, Ledger, LedgerError, MailPiece, NewBatch, PieceCodes, PieceRanges, PieceRequest,
    RunInfo,
};
use crate::letter::MailClass;
use crate::mailroom::{self, Item, Piece, article, source};
use crate::produce::{ProduceError, write_atomically};
use crate::render::{LetterSource, RenderError};

/// Batches could not be made. Batches recorded before the error stand.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The ledger refused or failed (a range exhausted is reported here, before any
    /// batch is written).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] ProduceError),
    /// A manifest or mailing book could not be laid out as CSV.
    #[error("failed to build a batch's CSV file")]
    Csv(#[from] csv::Error),
    /// A letter could not be composed for its batch.
    #[error("batch {batch}: letter `{key}` could not be composed")]
    Compose {
        /// The batch.
        batch: String,
        /// The letter.
        key: String,
        /// Why.
        #[source]
        source: ComposeError,
    },
    /// Typst failed on a batch or mailing book.
    #[error("batch {batch}: {what} could not be rendered")]
    Render {
        /// The batch.
        batch: String,
        /// The batch PDF or its mailing book.
        what: &'static str,
        /// Why.
        #[source]
        source: RenderError,
    },
    /// The rendered batch does not hold what was put into it.
    #[error("batch {batch}: {message}")]
    Check {
        /// The batch.
        batch: String,
        /// What does not add up.
        message: String,
    },
    /// `control.json` could not be formatted.
    #[error("failed to format the control totals of run {run_id}")]
    Control {
        /// The run.
        run_id: i64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// What batching a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// The batches written now.
    pub written: Vec<BatchRecord>,
    /// Rendered print letters still in no batch afterwards, as (run id, count).
    pub left_over: Vec<(i64, usize)>,
    /// Why letters of earlier runs could not be batched, one line each.
    pub problems: Vec<String>,
    /// `control.json` of the run.
    pub control_file: Option<PathBuf>,
}

impl Run<'_, '_> {
    /// **batch**: this run's rendered print letters and those earlier runs left in no
    /// batch (see [`super::waiting`]).
    pub(super) fn batch(
        &self,
        ledger: &mut dyn Ledger,
        run: &RunInfo,
        letters: &[DueLetter],
        accounts: &HashMap<String, Account>,
    ) -> Result<BatchReport, RunError> {
        let hashes = self.producer.composer.template_hashes();
        let batchable = super::waiting::as_rendered(ledger, hashes, run.id, letters, accounts)?;
        let mut report =
            self.make_batches(ledger, run, &batchable, accounts, Path::new(&run.out_dir))?;
        super::waiting::batch_earlier_runs(self, ledger, run.id, &mut report)?;
        Ok(report)
    }

    /// Batches every print letter of `letters` that is rendered and in no batch yet, into
    /// `out_dir/batches/`, and rewrites the run's `control.json`.
    pub(super) fn make_batches(
        &self,
        ledger: &mut dyn Ledger,
        run: &RunInfo,
        letters: &[DueLetter],
        accounts: &HashMap<String, Account>,
        out_dir: &Path,
    ) -> Result<BatchReport, BatchError> {
        let open = ledger.unbatched_letters()?;
        let for_print = mailroom::sort_for_print(&open, letters, accounts);
        let mut report = BatchReport {
            left_over: for_print.left_over,
            ..BatchReport::default()
        };
        let items = for_print.items;
        let pieces = if items.is_empty() {
            Vec::new()
        } else {
            self.allocate(ledger, run.id, &items)?
        };
        let dir = out_dir.join("batches");
        std::fs::create_dir_all(&dir).map_err(|source| ProduceError::Write {
            path: dir.clone(),
            source,
        })?;
        let existing = ledger.batches_of_run(run.id)?;
        for class in [MailClass::Certified, MailClass::FirstClass] {
            let (of_class, class_pieces): (Vec<Item<'_>>, Vec<&MailPiece>) = items
                .iter()
                .zip(&pieces)
                .filter(|(item, _)| item.class == class)
                .map(|(item, piece)| (*item, piece))
                .unzip();
            let mut seq = existing
                .iter()
                .filter(|b| b.mail_class == class)
                .map(|b| b.seq)
                .max()
                .unwrap_or(0);
            let size = self.mailroom.batch_size.max(1);
            for (chunk, chunk_pieces) in of_class.chunks(size).zip(class_pieces.chunks(size)) {
                seq += 1;
                let batch = self.write_batch(ledger, run, class, seq, chunk, chunk_pieces, &dir)?;
                report.written.push(batch);
            }
        }
        report.control_file = write_control(ledger, run)?;
        Ok(report)
    }

    /// Gives every item its mail piece in one ledger transaction, in item order.
    pub(super) fn allocate(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        items: &[Item<'_>],
    ) -> Result<Vec<MailPiece>, BatchError> {
        let requests: Vec<PieceRequest> = items
            .iter()
            .map(|item| PieceRequest {
                key: item.letter.key.clone(),
                mail_class: item.class,
                routing_code: mailroom::routing_code(item.account),
            })
            .collect();
        let mail = self.mailroom.mail;
        let make = |request: &PieceRequest, serial: u64, article_serial: Option<u64>| {
            mailroom::piece_codes(
                mail,
                request.mail_class,
                &request.routing_code,
                serial,
                article_serial,
            )
            .map(|codes| PieceCodes {
                tracking_code: codes.tracking_code,
                imb: codes.imb,
                article_number: codes.article_number,
            })
        };
        let ranges = PieceRanges {
            serial: (mail.serial_first, mail.serial_last),
            article: (mail.certified_first, mail.certified_last),
        };
        let pieces = ledger.allocate_pieces(run_id, &requests, ranges, &make)?;
        if pieces.len() != items.len() {
            return Err(BatchError::Check {
                batch: format!("of run {run_id}"),
                message: format!(
                    "{} letters asked for mail pieces but {} were given",
                    items.len(),
                    pieces.len()
                ),
            });
        }
        Ok(pieces)
    }

    /// Composes, renders, checks and writes one batch with its manifest (and mailing
    /// book), then records it.
    #[allow(clippy::too_many_arguments)]
    fn write_batch(
        &self,
        ledger: &mut dyn Ledger,
        run: &RunInfo,
        class: MailClass,
        seq: u32,
        items: &[Item<'_>],
        pieces: &[&MailPiece],
        dir: &Path,
    ) -> Result<BatchRecord, BatchError> {
        let name = mailroom::batch_name(run.id, class, seq);
        let mut sources = Vec::with_capacity(items.len());
        for (item, piece) in items.iter().zip(pieces) {
            let marks = marks_of(piece);
            let composed = self
                .producer
                .composer
                .compose_piece(item.account, item.letter, Some(&marks))
                .map_err(|source| BatchError::Compose {
                    batch: name.clone(),
                    key: item.letter.key.to_string(),
                    source,
                })?;
            sources.push(composed.source);
        }
        let refs: Vec<&str> = sources.iter().map(String::as_str).collect();
        let job = LetterSource {
            main: source::batch_source(&refs),
            date: run.mail_date,
            title: mailroom::batch_title(run.id, class, seq),
            author: self.mailroom.author.clone(),
            lang: "en".to_owned(),
        };
        drop(sources);
        let (pdf, starts) = self
            .producer
            .renderer
            .render_pdf_marked(&job, source::LETTER_START)
            .map_err(|source| BatchError::Render {
                batch: name.clone(),
                what: "the batch PDF",
                source,
            })?;
        let check = |message: String| BatchError::Check {
            batch: name.clone(),
            message,
        };
        let page_counts = mailroom::page_counts(items.len(), &starts, pdf.pages, |i| {
            items[i].letter.key.to_string()
        })
        .map_err(check)?;
        // The lock keeps other runs out; this makes sure of it before anything carries the
        // batch's final name: the pieces must still be open and their letters' own.
        let ids: Vec<i64> = pieces.iter().map(|p| p.id).collect();
        if !ledger.pieces_open(&ids)? {
            return Err(check(
                "its mail pieces are no longer open in the ledger (another run batched them); nothing written".to_owned(),
            ));
        }
        let file = format!("{name}.pdf");
        write_atomically(&dir.join(&file), &pdf.bytes)?;
        let file_sha256 = hex(&Sha256::digest(&pdf.bytes));

        let codes: Vec<Piece> = pieces
            .iter()
            .map(|p| Piece {
                imb_serial: p.imb_serial,
                imb: p.imb.clone(),
                article_number: p.article_number.clone(),
            })
            .collect();
        let mut letter_sha256 = Vec::with_capacity(items.len());
        for item in items {
            let recorded = ledger.letter(&item.letter.key)?.and_then(|r| r.file_sha256);
            // Only rendered letters are batched, and a rendered letter has its file's hash.
            let sha = recorded.ok_or_else(|| {
                check(format!(
                    "letter `{}` has no file on record in the ledger",
                    item.letter.key
                ))
            })?;
            letter_sha256.push(sha);
        }
        let (manifest, amount_due) =
            mailroom::manifest(items, &codes, &page_counts, &letter_sha256)?;
        write_atomically(&dir.join(format!("{name}.manifest.csv")), &manifest)?;
        if class == MailClass::Certified {
            self.write_mailing_book(run, &name, items, &codes, dir)?;
        }
        let pages = u32::try_from(pdf.pages).unwrap_or(u32::MAX);
        let batch = NewBatch {
            name,
            run_id: run.id,
            mail_class: class,
            seq,
            file,
            file_sha256,
            pieces: ids.into_iter().zip(page_counts).collect(),
            pages,
            sheets: pages / 2,
            amount_due,
        };
        Ok(ledger.record_batch(&batch)?)
    }

    /// The firm mailing book of a certified batch, as CSV and as PDF.
    fn write_mailing_book(
        &self,
        run: &RunInfo,
        name: &str,
        items: &[Item<'_>],
        pieces: &[Piece],
        dir: &Path,
    ) -> Result<(), BatchError> {
        let mail_date = crate::compose::filters::long_date(run.mail_date);
        let (source, csv) =
            mailroom::mailing_book(&self.mailroom.sender, name, mail_date, items, pieces)?;
        write_atomically(&dir.join(format!("{name}.mailing-book.csv")), &csv)?;
        let job = LetterSource {
            main: source,
            date: run.mail_date,
            title: format!("Firm mailing book, certified batch {name}"),
            author: self.mailroom.author.clone(),
            lang: "en".to_owned(),
        };
        let pdf = self
            .producer
            .renderer
            .render_pdf(&job)
            .map_err(|source| BatchError::Render {
                batch: name.to_owned(),
                what: "the mailing book",
                source,
            })?;
        write_atomically(&dir.join(format!("{name}.mailing-book.pdf")), &pdf.bytes)?;
        Ok(())
    }
}

/// **release**: every batch of `report` recorded `released` (as `missive release` does),
/// then `control.json` rewritten. Returns the names released; `report` holds the batches
/// as released.
pub(super) fn release(
    ledger: &mut dyn Ledger,
    run: &RunInfo,
    report: &mut BatchReport,
) -> Result<Vec<String>, RunError> {
    let mut released = Vec::with_capacity(report.written.len());
    for batch in &mut report.written {
        *batch = ledger.release_batch(&batch.name, "released by `run --release`")?;
        released.push(batch.name.clone());
    }
    if !report.written.is_empty() {
        write_control(ledger, run)?;
    }
    Ok(released)
}

/// Rewrites `batches/<run>-control.json` in the run's output directory from the ledger's
/// batches of the run (none: nothing written). Called after batches are recorded and after
/// a release, so the file always says what the ledger says.
pub fn write_control(ledger: &dyn Ledger, run: &RunInfo) -> Result<Option<PathBuf>, BatchError> {
    let batches = ledger.batches_of_run(run.id)?;
    if batches.is_empty() {
        return Ok(None);
    }
    let batches = batches
        .into_iter()
        .map(|b| mailroom::files::ControlBatch {
            name: b.name,
            mail_class: b.mail_class,
            file: b.file,
            sha256: b.file_sha256,
            state: b.state.as_str().to_owned(),
            pieces: b.pieces,
            pages: b.pages,
            sheets: b.sheets,
            amount_due: b.amount_due,
        })
        .collect();
    let control = mailroom::files::control(run.id, run.mail_date.to_string(), batches);
    let mut json = serde_json::to_vec_pretty(&control).map_err(|source| BatchError::Control {
        run_id: run.id,
        source,
    })?;
    json.push(b'\n');
    let path = Path::new(&run.out_dir)
        .join("batches")
        .join(format!("{}-control.json", run.id));
    write_atomically(&path, &json)?;
    Ok(Some(path))
}

/// A letter's marks as its file prints them.
pub(super) fn marks_of(piece: &MailPiece) -> MailMarks {
    MailMarks {
        imb: piece.imb.clone(),
        article: piece.article_number.as_deref().map(article::grouped),
    }
}
