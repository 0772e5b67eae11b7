//! Writing prepared batches: each batch PDF assembled from its letters' files, checked,
//! its manifest (and certified mailing book) written, ready to be recorded.
//!
//! # Invariants
//! - Nothing here touches the ledger: the caller prepares batches (ledger reads, print
//!   copies) and records them, one at a time and in order, on its own thread.
//! - Batches are independent files, so up to [`AT_ONCE`] of them are written at a time,
//!   each on its own thread (and each certified batch's mailing book on one more), while
//!   the caller prepares the next; the caller records them in its own order, whatever
//!   finished first.
//! - Every file of a batch is written under a temporary name and renamed; a batch the
//!   caller does not record (one before it failed) is removed with [`remove_files`].

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::BatchError;
use crate::account::Account;
use crate::decide::DueLetter;
use crate::ledger::{MailPiece, NewBatch, RunInfo};
use crate::letter::MailClass;
use crate::mailroom::assemble::{Assembler, BatchInfo};
use crate::mailroom::{self, Item, Piece};
use crate::produce::write_atomically;
use crate::render::{LetterSource, Renderer};

/// How many batches are written at a time, each on its own thread, while the run thread
/// prepares the next. Each holds one letter's parsed PDF; mailing books are typeset one at
/// a time whatever this is. Three rather than two lets a small batch (the last of a class)
/// be written beside the largest instead of after it: 1k `run` 3.20-3.25 s against
/// 3.27-3.37 s in 4 alternating pairs, 10k peak RSS 188-216 MiB against 194-200 (issue 15
/// asks for at most 250; docs/performance.md). 1 writes the batches one at a time.
pub(super) const AT_ONCE: usize = 3;

/// A batch whose ledger reads are done: what [`Writer::write`] needs to write it, owned, so
/// that it can move to the thread that writes it while the next batch is prepared.
pub(super) struct Prepared {
    /// Its mail class and number within the class.
    pub(super) class: MailClass,
    /// Its number within its class and run.
    pub(super) seq: u32,
    /// `7-certified-1`.
    pub(super) name: String,
    /// Its letters with their accounts, in print order.
    pub(super) letters: Vec<(DueLetter, Account)>,
    /// Their mail pieces, in the same order.
    pub(super) pieces: Vec<MailPiece>,
    /// The file printed for each letter (its own, or a print copy).
    pub(super) files: Vec<PathBuf>,
    /// The recorded hash of each file printed as it is (a print copy has none).
    pub(super) expected: Vec<Option<String>>,
    /// The recorded hash of each letter's own file (for the manifest).
    pub(super) letter_sha256: Vec<String>,
    /// The recorded page count of each file printed as it is.
    pub(super) recorded_pages: Vec<Option<u32>>,
    /// Print copies made for it, removed once it is written (or failed).
    pub(super) copies: PrintCopies,
}

/// Writes prepared batches of one run into one directory; shared by the threads that
/// write them.
pub(super) struct Writer<'a> {
    /// Assembles the batch PDFs.
    pub(super) assembler: Assembler,
    /// Typesets certified batches' mailing books.
    pub(super) book: MailingBook<'a>,
    /// The run the batches belong to.
    pub(super) run: &'a RunInfo,
    /// The batch directory.
    pub(super) dir: &'a Path,
}

/// A batch's letters of `class` as the mailroom's pure pieces take them.
pub(super) fn items(letters: &[(DueLetter, Account)], class: MailClass) -> Vec<Item<'_>> {
    letters
        .iter()
        .map(|(letter, account)| Item {
            letter,
            account,
            class,
        })
        .collect()
}

impl Writer<'_> {
    /// Assembles, checks and writes one batch with its manifest (and mailing book); returns
    /// what to record.
    pub(super) fn write(&self, prepared: Prepared) -> Result<NewBatch, BatchError> {
        let Prepared {
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
        } = prepared;
        let items = items(&letters, class);
        let items = items.as_slice();
        let (run, dir) = (self.run, self.dir);
        let check = |message: String| BatchError::Check {
            batch: name.clone(),
            message,
        };
        let info = BatchInfo {
            title: mailroom::batch_title(run.id, class, seq),
            author: self.book.author.to_owned(),
            lang: "en".to_owned(),
            date: run.mail_date,
        };
        let file = format!("{name}.pdf");
        let codes: Vec<Piece> = pieces
            .iter()
            .map(|p| Piece {
                imb_serial: p.imb_serial,
                imb: p.imb.clone(),
                article_number: p.article_number.clone(),
            })
            .collect();
        // The mailing book is typeset on a second thread while the batch is assembled on
        // this one: both are single-threaded, and both files are complete before the batch
        // is recorded, whichever finishes first.
        let (assembled, book) = std::thread::scope(|scope| {
            let book = (class == MailClass::Certified).then(|| {
                let (name, codes) = (&name, &codes);
                scope.spawn(move || self.book.write(run, name, items, codes, dir))
            });
            let assembled =
                self.assembler
                    .assemble_file_checked(&info, &files, &expected, &dir.join(&file));
            let book = book.map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|_| Err(check("the mailing book's thread panicked".to_owned())))
            });
            (assembled, book)
        });
        drop(copies);
        let assembled = assembled.map_err(|source| {
            // The mailing book was typeset beside a batch that is not written: it goes too,
            // so nothing under the batch's name is left for the mailroom. Best effort: a
            // book left behind is overwritten by the next attempt at this batch.
            for ext in ["csv", "pdf"] {
                let _ = std::fs::remove_file(dir.join(format!("{name}.mailing-book.{ext}")));
            }
            BatchError::Assemble {
                batch: name.clone(),
                source: Box::new(source),
            }
        })?;
        book.transpose()?;
        for ((item, recorded), in_batch) in items
            .iter()
            .zip(&recorded_pages)
            .zip(&assembled.letter_pages)
        {
            if let Some(pages) = recorded
                && pages + pages % 2 != *in_batch
            {
                return Err(check(format!(
                    "letter `{}` has {in_batch} pages in the batch but {pages} on record",
                    item.letter.key
                )));
            }
        }

        let (manifest, amount_due) =
            mailroom::manifest(items, &codes, &assembled.letter_pages, &letter_sha256)?;
        write_atomically(&dir.join(format!("{name}.manifest.csv")), &manifest)?;
        Ok(NewBatch {
            name,
            run_id: run.id,
            mail_class: class,
            seq,
            file,
            file_sha256: assembled.sha256,
            pieces: pieces
                .iter()
                .map(|p| p.id)
                .zip(assembled.letter_pages)
                .collect(),
            pages: assembled.pages,
            sheets: assembled.pages / 2,
            amount_due,
        })
    }
}

/// Removes every file batch `name` may have in `dir` (its PDF, manifest and mailing book):
/// a batch written beside one that failed is not recorded, and would not have been written
/// had the batches been written one after the other. Best effort: a file left behind is
/// overwritten by the next attempt at the batch, under the same name.
pub(super) fn remove_files(dir: &Path, name: &str) {
    for suffix in [
        "pdf",
        "manifest.csv",
        "mailing-book.csv",
        "mailing-book.pdf",
    ] {
        let _ = std::fs::remove_file(dir.join(format!("{name}.{suffix}")));
    }
}

/// What typesets a certified batch's firm mailing book: borrowed from the run, so it can
/// work on its own thread while the batch is assembled.
pub(super) struct MailingBook<'a> {
    /// Typesets it.
    pub(super) renderer: &'a Renderer,
    /// The sender's name and address lines.
    pub(super) sender: &'a (String, Vec<String>),
    /// The agency, as the book's (and the batch's) author.
    pub(super) author: &'a str,
    /// Held while a book is typeset: one book at a time. Typst holds a book's whole
    /// layout until it is exported and forgotten, the largest allocation of the batch step;
    /// two at once took a run of 2 100 print letters from 182 to 255-282 MiB, over the
    /// 250 MiB budget, while the batches' own assembly runs two at a time beside it.
    pub(super) one_at_a_time: Mutex<()>,
}

impl MailingBook<'_> {
    /// Writes the mailing book of batch `name` as CSV and as PDF.
    fn write(
        &self,
        run: &RunInfo,
        name: &str,
        items: &[Item<'_>],
        pieces: &[Piece],
        dir: &Path,
    ) -> Result<(), BatchError> {
        let mail_date = crate::compose::filters::long_date(run.mail_date);
        let (source, csv) = mailroom::mailing_book(self.sender, name, mail_date, items, pieces)?;
        write_atomically(&dir.join(format!("{name}.mailing-book.csv")), &csv)?;
        let job = LetterSource {
            main: source,
            date: run.mail_date,
            title: format!("Firm mailing book, certified batch {name}"),
            author: self.author.to_owned(),
            lang: "en".to_owned(),
        };
        let pdf = {
            let _typesetting = self
                .one_at_a_time
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let pdf = self.renderer.render_pdf(&job);
            // A mailing book is typeset once and its memoized layout never reused.
            crate::render::forget_memoized();
            pdf.map_err(|source| BatchError::Render {
                batch: name.to_owned(),
                what: "the mailing book",
                source,
            })?
        };
        write_atomically(&dir.join(format!("{name}.mailing-book.pdf")), &pdf.bytes)?;
        Ok(())
    }
}

/// Print copies of letters whose file carries no marks (rendered by a version of missive
/// that allocated pieces only when batching): each is composed and rendered alone with its
/// piece's marks under a temporary name in the batch directory, and removed once the batch
/// is assembled (or failed). A crash leaves at most these files; the next attempt
/// overwrites them under the same names.
#[derive(Default)]
pub(super) struct PrintCopies {
    paths: Vec<PathBuf>,
}

impl PrintCopies {
    /// Renders `item`'s print copy with `piece`'s marks; returns its path.
    pub(super) fn render(
        &mut self,
        run: &super::Run<'_, '_>,
        item: &Item<'_>,
        piece: &MailPiece,
        batch: &str,
        dir: &Path,
    ) -> Result<PathBuf, BatchError> {
        let key = &item.letter.key;
        let composed = run
            .producer
            .composer
            .compose_piece(item.account, item.letter, Some(&super::marks_of(piece)))
            .map_err(|source| BatchError::Compose {
                batch: batch.to_owned(),
                key: key.to_string(),
                source,
            })?;
        let job = LetterSource {
            main: composed.source,
            date: composed.date,
            title: composed.title,
            author: run.producer.author.clone(),
            lang: composed.lang,
        };
        let pdf =
            run.producer
                .renderer
                .render_pdf(&job)
                .map_err(|source| BatchError::PrintCopy {
                    batch: batch.to_owned(),
                    key: key.to_string(),
                    source: Box::new(source),
                })?;
        let path = dir.join(format!(".{batch}.{}.print.pdf", key.file_stem()));
        write_atomically(&path, &pdf.bytes)?;
        self.paths.push(path.clone());
        Ok(path)
    }
}

impl Drop for PrintCopies {
    fn drop(&mut self) {
        for path in &self.paths {
            // A copy left behind is overwritten by the next attempt; nothing depends on it.
            let _ = std::fs::remove_file(path);
        }
    }
}
