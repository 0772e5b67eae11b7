//! The run's **batch** and **release** steps: the mailroom's pure pieces put in the order
//! that keeps a crash harmless.
//!
//! 1. every batchable letter gets its mail piece in ONE ledger transaction before anything
//!    is written (the run's own letters got theirs when they were recorded and keep them;
//!    a range too short for all fails here, with nothing batched);
//! 2. per batch, on this thread: the ledger is asked whether the pieces are still open and
//!    for its letters' files; a letter whose file does not carry its piece's marks
//!    (rendered by a version that allocated pieces only here) is rendered alone with them
//!    as a temporary print copy, removed once the batch is written;
//! 3. up to [`write::AT_ONCE`] batches at a time, each on its own thread, while this thread
//!    prepares the next (2.): the batch PDF is assembled at object level from its letters'
//!    own files ([`Assembler`], no second typesetting: the file of a letter IS its printed
//!    copy, marks included), each letter padded to an even page count, under a temporary
//!    name and renamed; the manifest and (certified) mailing book are written under
//!    temporary names and renamed;
//! 4. only then is each batch recorded with its pieces' places, in ONE transaction, one
//!    batch after the other in order, on this thread (the ledger has one writer). When a
//!    batch fails, the batches before it stand and those written beside it after it are
//!    neither recorded nor left on disk, and nothing more is prepared: the ledger and the
//!    batch directory end as if the batches had been written one at a time.
//!
//! Each batch being written holds one letter's parsed PDF at a time; mailing books are
//! typeset one at a time. A crash before 4 leaves the pieces open: the next attempt
//! batches them again with the same serials and article numbers, under the same batch
//! names. `control.json` is always rewritten from the ledger's batches of the run, after
//! recording and after a release.

use std::path::{Path, PathBuf};

use super::record::PrintLetter;
use super::{Run, RunError};
use crate::account::Account;
use crate::compose::{ComposeError, MailMarks};
use crate::decide::DueLetter;
use crate::ledger::{
    BatchRecord, Ledger, LedgerError, MailPiece, PieceCodes, PieceRanges, PieceRequest, RunInfo,
};
use crate::letter::{LetterKey, MailClass};
use crate::mailroom::assemble::{AssembleError, Assembler};
use crate::mailroom::{self, PrintEntry, article};
use crate::produce::{ProduceError, write_atomically};
use crate::render::RenderError;

mod letters;
mod write;

pub(super) use self::letters::{BatchLetters, FromPayloads, FromPlan};
use self::write::{Prepared, PrintCopies, Writer};

/// One batch to write: its mail class, number, letters and their pieces.
/// Only the ids of the pieces are held for every batch; a batch's pieces are read when it
/// is prepared.
type Chunk<'i> = (MailClass, u32, &'i [&'i PrintLetter], &'i [i64]);

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
    /// A letter's print copy (its file carries no marks) could not be rendered.
    #[error("batch {batch}: the print copy of letter `{key}` could not be rendered")]
    PrintCopy {
        /// The batch.
        batch: String,
        /// The letter.
        key: String,
        /// Why.
        #[source]
        source: Box<RenderError>,
    },
    /// The batch PDF could not be assembled from its letters' files.
    #[error("batch {batch}: the batch PDF could not be assembled")]
    Assemble {
        /// The batch.
        batch: String,
        /// Why.
        #[source]
        source: Box<AssembleError>,
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
    /// **batch**: this run's rendered print letters (`print`, read back from their
    /// payloads a batch at a time) and those earlier runs left in no batch (see
    /// [`super::waiting`]).
    pub(super) fn batch(
        &self,
        ledger: &mut dyn Ledger,
        run: &RunInfo,
        print: &[PrintLetter],
    ) -> Result<BatchReport, RunError> {
        let hashes = self.producer.composer.template_hashes();
        let batchable = super::waiting::as_rendered(ledger, hashes, run.id, print)?;
        let batchable = with_payloads(ledger, run.id, batchable)?;
        let source = FromPayloads { run_id: run.id };
        let out_dir = Path::new(&run.out_dir);
        let mut report = self.make_batches(ledger, run, &batchable, &source, out_dir)?;
        super::waiting::batch_earlier_runs(self, ledger, run.id, &mut report)?;
        Ok(report)
    }

    /// Batches every print letter of `letters` that is rendered and in no batch yet, into
    /// `out_dir/batches/`, reading each batch's letters from `source`, and rewrites the
    /// run's `control.json`.
    pub(super) fn make_batches(
        &self,
        ledger: &mut dyn Ledger,
        run: &RunInfo,
        letters: &[&PrintLetter],
        source: &dyn BatchLetters,
        out_dir: &Path,
    ) -> Result<BatchReport, BatchError> {
        let open = ledger.unbatched_letters()?;
        let for_print = mailroom::sort_for_print(&open, letters);
        let mut report = BatchReport {
            left_over: for_print.left_over,
            ..BatchReport::default()
        };
        let items: Vec<&PrintLetter> = for_print.items.into_iter().copied().collect();
        drop(open);
        // One transaction for every piece; of each only its id is kept.
        let pieces: Vec<i64> = if items.is_empty() {
            Vec::new()
        } else {
            let allocated = self.allocate(ledger, run.id, &items)?;
            allocated.iter().map(|p| p.id).collect()
        };
        let dir = out_dir.join("batches");
        std::fs::create_dir_all(&dir).map_err(|source| ProduceError::Write {
            path: dir.clone(),
            source,
        })?;
        let existing = ledger.batches_of_run(run.id)?;
        let size = self.mailroom.batch_size.max(1);
        let by_class: Vec<(MailClass, Vec<&PrintLetter>, Vec<i64>)> =
            [MailClass::Certified, MailClass::FirstClass]
                .into_iter()
                .map(|class| {
                    let (of_class, class_pieces) = items
                        .iter()
                        .zip(&pieces)
                        .filter(|(item, _)| item.entry.class == class)
                        .map(|(item, piece)| (*item, *piece))
                        .unzip();
                    (class, of_class, class_pieces)
                })
                .collect();
        // Every batch to write, in order: certified first, numbered on from the run's last.
        let mut chunks: Vec<Chunk<'_>> = Vec::new();
        for (class, of_class, class_pieces) in &by_class {
            let last = existing
                .iter()
                .filter(|b| b.mail_class == *class)
                .map(|b| b.seq)
                .max()
                .unwrap_or(0);
            chunks.extend(
                (last + 1..)
                    .zip(of_class.chunks(size).zip(class_pieces.chunks(size)))
                    .map(|(seq, (chunk, chunk_pieces))| (*class, seq, chunk, chunk_pieces)),
            );
        }
        let writer = Writer {
            assembler: Assembler::new(self.producer.renderer),
            book: write::MailingBook {
                renderer: self.producer.renderer,
                sender: &self.mailroom.sender,
                author: &self.mailroom.author,
                one_at_a_time: std::sync::Mutex::new(()),
            },
            run,
            dir: &dir,
        };
        self.write_batches(ledger, &writer, &chunks, source, out_dir, &mut report)?;
        report.control_file = write_control(ledger, run)?;
        Ok(report)
    }

    /// Gives every print letter its mail piece in one ledger transaction, in the order
    /// given.
    pub(super) fn allocate<T: AsRef<PrintEntry>>(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        items: &[T],
    ) -> Result<Vec<MailPiece>, BatchError> {
        let requests: Vec<PieceRequest> = items
            .iter()
            .map(|item| {
                let entry = item.as_ref();
                PieceRequest {
                    key: entry.key.clone(),
                    mail_class: entry.class,
                    routing_code: entry.routing_code(),
                }
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

    /// Writes the batches of `chunks` in order, [`write::AT_ONCE`] at a time, each on its
    /// own thread, while this thread prepares the next one (ledger reads, print copies) and
    /// records the written ones one by one in order, so the ledger sees the same records in
    /// the same order as if they were written one after the other. On the first failure,
    /// nothing more is prepared, the batches after the failed one are not recorded and
    /// their files are removed (written one after the other, they would never have been),
    /// and its error is returned: the batches before it stand, including those prepared
    /// before a batch whose preparation failed. A batch whose writing failed leaves no
    /// file under its name (its record never came).
    fn write_batches(
        &self,
        ledger: &mut dyn Ledger,
        writer: &Writer<'_>,
        chunks: &[Chunk<'_>],
        source: &dyn BatchLetters,
        letters_dir: &Path,
        report: &mut BatchReport,
    ) -> Result<(), BatchError> {
        std::thread::scope(|scope| {
            let mut chunks = chunks.iter();
            let mut writing = std::collections::VecDeque::with_capacity(write::AT_ONCE);
            // A batch whose letters cannot be read or that cannot be prepared comes after
            // every batch prepared before it: those are written and recorded first, as one
            // at a time would have.
            let mut unprepared = None;
            let mut failed = None;
            loop {
                while failed.is_none() && unprepared.is_none() && writing.len() < write::AT_ONCE {
                    let Some(chunk) = chunks.next() else { break };
                    let prepared = read_batch(&*ledger, source, writer.run.id, chunk).and_then(
                        |(letters, pieces)| {
                            self.prepare(ledger, writer, chunk, letters, pieces, letters_dir)
                        },
                    );
                    match prepared {
                        Ok(batch) => {
                            let name = batch.name.clone();
                            writing.push_back((name, scope.spawn(move || writer.write(batch))));
                        }
                        Err(err) => unprepared = Some(err),
                    }
                }
                let Some((name, thread)) = writing.pop_front() else {
                    break;
                };
                let outcome = thread.join().unwrap_or_else(|_| {
                    Err(BatchError::Check {
                        batch: name.clone(),
                        message: "the thread writing it panicked".to_owned(),
                    })
                });
                if failed.is_some() {
                    write::remove_files(writer.dir, &name);
                    continue;
                }
                let batch = match outcome {
                    Ok(batch) => batch,
                    Err(err) => {
                        // Written in part (its PDF, say, but not its mailing book or
                        // manifest): nothing stays under the name of a batch the ledger does
                        // not hold.
                        write::remove_files(writer.dir, &name);
                        failed = Some(err);
                        continue;
                    }
                };
                // Not removed when recording fails: on PostgreSQL a lost answer may hide a
                // commit, and the next attempt writes the same batch under the same name.
                match ledger.record_batch(&batch) {
                    Ok(record) => {
                        report.written.push(record);
                        self.progress.advance(batch.pieces.len());
                    }
                    Err(err) => failed = Some(err.into()),
                }
            }
            match failed.or(unprepared) {
                Some(err) => Err(err),
                None => Ok(()),
            }
        })
    }

    /// Prepares one batch on the ledger's thread: makes sure its pieces are still open,
    /// reads its letters' files from the ledger, and renders a print copy of any letter
    /// whose file does not carry its piece's marks. `letters_dir` holds the letters' files
    /// (the output directory of the run that rendered them).
    fn prepare(
        &self,
        ledger: &mut dyn Ledger,
        writer: &Writer<'_>,
        &(class, seq, ..): &Chunk<'_>,
        letters: Vec<(DueLetter, Account)>,
        pieces: Vec<MailPiece>,
        letters_dir: &Path,
    ) -> Result<Prepared, BatchError> {
        let name = mailroom::batch_name(writer.run.id, class, seq);
        let items = write::items(&letters, class);
        let check = |message: String| BatchError::Check {
            batch: name.clone(),
            message,
        };
        let mut files = Vec::with_capacity(items.len());
        // The recorded hash of each file printed as it is (a print copy has none): the
        // assembler refuses a file another process replaced after it was recorded.
        let mut expected = Vec::with_capacity(items.len());
        let mut letter_sha256 = Vec::with_capacity(items.len());
        let mut recorded_pages = Vec::with_capacity(items.len());
        let mut copies = PrintCopies::default();
        // The batch's letters and which files carry their marks: two reads for the batch.
        let keys: Vec<LetterKey> = items.iter().map(|item| item.letter.key.clone()).collect();
        let mut records = ledger.letters(&keys)?;
        let marked = ledger.files_marked(&keys)?;
        for (item, piece) in items.iter().zip(&pieces) {
            let key = &item.letter.key;
            let record = records.remove(key);
            // Only rendered letters are batched, and a rendered letter has its file.
            let Some((file, sha, pages)) =
                record.and_then(|r| Some((r.file?, r.file_sha256?, r.pages)))
            else {
                return Err(check(format!(
                    "letter `{key}` has no file on record in the ledger"
                )));
            };
            if marked.contains(key) {
                files.push(letters_dir.join(file));
                expected.push(Some(sha.clone()));
                recorded_pages.push(pages);
            } else {
                files.push(copies.render(self, item, piece, &name, writer.dir)?);
                expected.push(None);
                recorded_pages.push(None);
            }
            letter_sha256.push(sha);
        }
        drop(items);
        Ok(Prepared {
            class,
            seq,
            name,
            letters,
            pieces,
            files,
            expected,
            letter_sha256,
            recorded_pages,
            copies,
        })
    }
}

/// `letters` less those the run rendered before it was taken up again whose payload is gone
/// (a version before issue 15's streamed run withdrew them when the run was resumed): they
/// stay in no batch, reported as left over, and the next run batches them from their
/// run's accounts ([`super::waiting::batch_earlier_runs`]).
fn with_payloads<'p>(
    ledger: &dyn Ledger,
    run_id: i64,
    letters: Vec<&'p PrintLetter>,
) -> Result<Vec<&'p PrintLetter>, RunError> {
    let earlier: Vec<LetterKey> = letters
        .iter()
        .filter(|l| !l.planned_now)
        .map(|l| l.entry.key.clone())
        .collect();
    if earlier.is_empty() {
        return Ok(letters);
    }
    let mut stored = std::collections::HashSet::new();
    for slice in earlier.chunks(super::work::OTHERS_READ) {
        stored.extend(ledger.payloads_of(run_id, slice)?.into_keys());
    }
    Ok(letters
        .into_iter()
        .filter(|l| l.planned_now || stored.contains(&l.entry.key))
        .collect())
}

/// A batch's letters with their accounts, and its mail pieces, in print order.
type ReadBatch = (Vec<(DueLetter, Account)>, Vec<MailPiece>);

/// A batch's letters (from `source`) and its mail pieces (from the ledger), read right
/// before it is prepared. The lock keeps other runs out; this makes sure of it before
/// anything carries the batch's final name: each piece must still be open and its letter's
/// own, the one allocated for it.
fn read_batch(
    ledger: &dyn Ledger,
    source: &dyn BatchLetters,
    run_id: i64,
    &(class, seq, letters, ids): &Chunk<'_>,
) -> Result<ReadBatch, BatchError> {
    let name = mailroom::batch_name(run_id, class, seq);
    let keys: Vec<LetterKey> = letters.iter().map(|l| l.entry.key.clone()).collect();
    let mut open = ledger.open_pieces(&keys)?;
    let mut pieces = Vec::with_capacity(ids.len());
    for (key, id) in keys.iter().zip(ids) {
        match open.remove(key) {
            Some(piece) if piece.id == *id => pieces.push(piece),
            _ => {
                return Err(BatchError::Check {
                    batch: name,
                    message: "its mail pieces are no longer open in the ledger (another run batched them); nothing written".to_owned(),
                });
            }
        }
    }
    Ok((source.read(ledger, &name, letters)?, pieces))
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
