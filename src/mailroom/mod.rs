//! The mailroom: a run's print letters as print-ready batches.
//!
//! Print letters are split by mail class (certified with return receipt for every intent
//! to offset, first class for the rest), sorted by ZIP+4 then account, and cut into
//! batches of at most `batch_size` letters. Each letter gets a mail piece from the ledger
//! (an IMb serial, and for certified mail an article number) before anything is written;
//! a range too short for the whole run fails then, with nothing batched. Each batch is
//! composed again with its pieces' barcodes and article numbers in the address blocks and
//! compiled as ONE Typst document (see [`source`]), every letter padded to an even page
//! count for duplex. Beside each batch PDF: its `manifest.csv` and, for certified mail, a
//! firm mailing book (`.csv` and `.pdf`); `control.json` holds the run's totals.
//!
//! Crash safety: every file is written under a temporary name and renamed, and a batch is
//! recorded in the ledger (with its pieces' places) only after its files are complete. A
//! crash before that leaves the pieces open: the next attempt batches them again with the
//! same serials and article numbers, under the same batch name.

pub mod article;
pub mod assemble;
pub mod files;
pub mod imb;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::compose::{ComposeError, Composer, MailMarks};
use crate::config::{MailConfig, hex};
use crate::decide::{Amounts, DueLetter};
use crate::ledger::{
    BatchRecord, Ledger, LedgerError, MailPiece, NewBatch, PieceCodes, PieceRanges, PieceRequest,
    RunInfo,
};
use crate::letter::{Channel, LetterKind, MailClass};
use crate::money::Money;
use crate::produce::{ProduceError, write_atomically};
use crate::render::{LetterSource, RenderError, Renderer};

use self::files::{BookCsvRow, ManifestRow};
use self::source::{BookHeading, BookRow};

/// Batches could not be made. Batches recorded before the error stand.
#[derive(Debug, thiserror::Error)]
pub enum MailroomError {
    /// The ledger refused or failed (a range exhausted is reported here, before any
    /// batch is written).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] ProduceError),
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

/// Everything needed to make batches.
pub struct Mailroom<'a> {
    /// Loaded templates.
    pub composer: &'a Composer,
    /// Loaded fonts and layout.
    pub renderer: &'a Renderer,
    /// Author written into each PDF (the agency).
    pub author: String,
    /// The `[mail]` configuration.
    pub mail: &'a MailConfig,
    /// Letters per batch.
    pub batch_size: usize,
    /// The agency name and address lines for the mailing book.
    pub sender: (String, Vec<String>),
}

/// One letter on its way into a batch.
struct Item<'l> {
    letter: &'l DueLetter,
    account: &'l Account,
    class: MailClass,
    piece: Option<MailPiece>,
}

impl Mailroom<'_> {
    /// Batches every print letter of `letters` (the run's plan) that is rendered and in no
    /// batch yet, into `out_dir/batches/`, and rewrites the run's `control.json`.
    pub fn make_batches(
        &self,
        ledger: &mut dyn Ledger,
        run: &RunInfo,
        letters: &[DueLetter],
        accounts: &HashMap<String, Account>,
        out_dir: &Path,
    ) -> Result<BatchReport, MailroomError> {
        let mut report = BatchReport::default();
        let open = ledger.unbatched_letters()?;
        let by_key: HashMap<&str, &DueLetter> =
            letters.iter().map(|l| (l.key.as_str(), l)).collect();
        let mut items = Vec::new();
        let mut left_over: HashMap<i64, usize> = HashMap::new();
        for (key, run_id) in &open {
            let letter = by_key.get(key.as_str());
            let account = letter.and_then(|l| accounts.get(&l.account_id));
            let class = letter.and_then(|l| l.mail_class);
            match (letter, account, class) {
                (Some(letter), Some(account), Some(class))
                    if letter.channel == Channel::Print && account.address.is_some() =>
                {
                    items.push(Item {
                        letter,
                        account,
                        class,
                        piece: None,
                    })
                }
                _ => *left_over.entry(*run_id).or_default() += 1,
            }
        }
        report.left_over = left_over.into_iter().collect();
        report.left_over.sort();
        // Certified first, then by ZIP, ZIP+4 (none first), account, key.
        items.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
        if !items.is_empty() {
            self.allocate(ledger, run.id, &mut items)?;
        }
        let dir = out_dir.join("batches");
        std::fs::create_dir_all(&dir).map_err(|source| ProduceError::Write {
            path: dir.clone(),
            source,
        })?;
        let existing = ledger.batches_of_run(run.id)?;
        for class in [MailClass::Certified, MailClass::FirstClass] {
            let of_class: Vec<&Item> = items.iter().filter(|i| i.class == class).collect();
            let mut seq = existing
                .iter()
                .filter(|b| b.mail_class == class)
                .map(|b| b.seq)
                .max()
                .unwrap_or(0);
            for chunk in of_class.chunks(self.batch_size.max(1)) {
                seq += 1;
                let batch = self.write_batch(run, class, seq, chunk, &dir, ledger)?;
                report.written.push(batch);
            }
        }
        report.control_file = write_control(ledger, run)?;
        Ok(report)
    }

    /// Gives every item its mail piece in one ledger transaction.
    fn allocate(
        &self,
        ledger: &mut dyn Ledger,
        run_id: i64,
        items: &mut [Item<'_>],
    ) -> Result<(), MailroomError> {
        let requests: Vec<PieceRequest> = items
            .iter()
            .map(|item| PieceRequest {
                key: item.letter.key.clone(),
                mail_class: item.class,
                routing_code: routing_code(item.account),
            })
            .collect();
        let mail = self.mail;
        let make = |request: &PieceRequest, serial: u64, article_serial: Option<u64>| {
            piece_codes(mail, request, serial, article_serial)
        };
        let ranges = PieceRanges {
            serial: (mail.serial_first, mail.serial_last),
            article: (mail.certified_first, mail.certified_last),
        };
        let pieces = ledger.allocate_pieces(run_id, &requests, ranges, &make)?;
        for (item, piece) in items.iter_mut().zip(pieces) {
            item.piece = Some(piece);
        }
        Ok(())
    }

    /// Composes, renders, checks and writes one batch with its manifest (and mailing
    /// book), then records it.
    fn write_batch(
        &self,
        run: &RunInfo,
        class: MailClass,
        seq: u32,
        items: &[&Item<'_>],
        dir: &Path,
        ledger: &mut dyn Ledger,
    ) -> Result<BatchRecord, MailroomError> {
        let name = format!("{}-{}-{seq}", run.id, class.as_str());
        let mut sources = Vec::with_capacity(items.len());
        let mut pieces = Vec::with_capacity(items.len());
        for item in items {
            let piece = item.piece.as_ref().ok_or_else(|| MailroomError::Check {
                batch: name.clone(),
                message: format!("letter `{}` has no mail piece", item.letter.key),
            })?;
            let marks = MailMarks {
                imb: piece.imb.clone(),
                article: piece.article_number.as_deref().map(article::grouped),
            };
            let composed = self
                .composer
                .compose_piece(item.account, item.letter, Some(&marks))
                .map_err(|source| MailroomError::Compose {
                    batch: name.clone(),
                    key: item.letter.key.to_string(),
                    source,
                })?;
            sources.push(composed.source);
            pieces.push(piece);
        }
        let refs: Vec<&str> = sources.iter().map(String::as_str).collect();
        let class_title = match class {
            MailClass::Certified => "Certified",
            MailClass::FirstClass => "First-class",
        };
        let job = LetterSource {
            main: source::batch_source(&refs),
            date: run.mail_date,
            title: format!("{class_title} batch {seq} of run {}", run.id),
            author: self.author.clone(),
            lang: "en".to_owned(),
        };
        drop(sources);
        let (pdf, starts) = self
            .renderer
            .render_pdf_marked(&job, source::LETTER_START)
            .map_err(|source| MailroomError::Render {
                batch: name.clone(),
                what: "the batch PDF",
                source,
            })?;
        let check = |message: String| MailroomError::Check {
            batch: name.clone(),
            message,
        };
        if starts.len() != items.len() || starts.first() != Some(&1) {
            return Err(check(format!(
                "{} letters went in but {} letter starts were found",
                items.len(),
                starts.len(),
            )));
        }
        // A letter runs from its first page to the page before the next letter's first.
        let mut page_counts = Vec::with_capacity(starts.len());
        let ends = starts.iter().skip(1).map(|s| s - 1).chain([pdf.pages]);
        for ((item, start), end) in items.iter().zip(&starts).zip(ends) {
            let pages = (end + 1).saturating_sub(*start);
            if pages == 0 || pages % 2 != 0 {
                return Err(check(format!(
                    "letter `{}` has {pages} pages in the batch, not an even number",
                    item.letter.key
                )));
            }
            page_counts.push(u32::try_from(pages).unwrap_or(u32::MAX));
        }
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

        let mut rows = Vec::with_capacity(items.len());
        let mut amount_due = Money::ZERO;
        for (i, ((item, piece), pages)) in items.iter().zip(&pieces).zip(&page_counts).enumerate() {
            let due = amount_due_of(item.letter);
            if let Some(due) = due {
                amount_due = amount_due + due;
            }
            let recorded = ledger.letter(&item.letter.key)?;
            rows.push(ManifestRow {
                sequence: i as u32 + 1,
                key: item.letter.key.to_string(),
                account: item.account.account_id.clone(),
                kind: item.letter.kind.as_str().to_owned(),
                mail_class: class,
                zip: zip_text(item.account),
                pages: *pages,
                sheets: pages / 2,
                imb_serial: piece.imb_serial,
                imb: piece.imb.clone(),
                article_number: piece.article_number.clone().unwrap_or_default(),
                amount_due: due,
                file_sha256: recorded.and_then(|r| r.file_sha256).unwrap_or_default(),
            });
        }
        write_atomically(
            &dir.join(format!("{name}.manifest.csv")),
            files::manifest_csv(&rows).as_bytes(),
        )?;
        if class == MailClass::Certified {
            self.write_mailing_book(run, &name, items, &pieces, dir)?;
        }
        let pages = u32::try_from(pdf.pages).unwrap_or(u32::MAX);
        let batch = NewBatch {
            name: name.clone(),
            run_id: run.id,
            mail_class: class,
            seq,
            file,
            file_sha256,
            pieces: pieces.iter().map(|p| p.id).zip(page_counts).collect(),
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
        items: &[&Item<'_>],
        pieces: &[&MailPiece],
        dir: &Path,
    ) -> Result<(), MailroomError> {
        let mut book = Vec::with_capacity(items.len());
        let mut csv = Vec::with_capacity(items.len());
        for (i, (item, piece)) in items.iter().zip(pieces).enumerate() {
            let Some(address) = &item.account.address else {
                continue;
            };
            let article = piece.article_number.clone().unwrap_or_default();
            let street = address.street_lines();
            book.push(BookRow {
                sequence: i as u32 + 1,
                article: article::grouped(&article),
                names: item.letter.recipients.clone(),
                address: address.block(),
                service: "First-Class Mail, Certified Mail, Return Receipt".to_owned(),
            });
            csv.push(BookCsvRow {
                sequence: i as u32 + 1,
                article_number: article,
                name: item.letter.recipients.join(" and "),
                street: street.join(", "),
                city: address.city.clone(),
                state: address.state.clone(),
                zip: address.zip.to_string(),
            });
        }
        write_atomically(
            &dir.join(format!("{name}.mailing-book.csv")),
            files::mailing_book_csv(&csv).as_bytes(),
        )?;
        let heading = BookHeading {
            sender: self.sender.0.clone(),
            sender_address: self.sender.1.clone(),
            batch: name.to_owned(),
            mail_date: crate::compose::filters::long_date(run.mail_date),
        };
        let job = LetterSource {
            main: source::mailing_book_source(&heading, &book),
            date: run.mail_date,
            title: format!("Firm mailing book, certified batch {name}"),
            author: self.author.clone(),
            lang: "en".to_owned(),
        };
        let pdf = self
            .renderer
            .render_pdf(&job)
            .map_err(|source| MailroomError::Render {
                batch: name.to_owned(),
                what: "the mailing book",
                source,
            })?;
        write_atomically(&dir.join(format!("{name}.mailing-book.pdf")), &pdf.bytes)?;
        Ok(())
    }
}

/// Print order: certified before first class, then ZIP, ZIP+4 (none first), account, key.
fn sort_key<'a>(item: &'a Item<'_>) -> (bool, &'a str, &'a str, &'a str, &'a str) {
    let (five, plus4) = item
        .account
        .address
        .as_ref()
        .map(|a| (a.zip.five.as_str(), a.zip.plus4.as_deref().unwrap_or("")))
        .unwrap_or(("", ""));
    (
        item.class != MailClass::Certified,
        five,
        plus4,
        item.account.account_id.as_str(),
        item.letter.key.as_str(),
    )
}

/// The IMb routing code of an account's address: ZIP+4 (9 digits) or ZIP (5). No
/// delivery point: it needs address-matching data missive does not have.
fn routing_code(account: &Account) -> String {
    account
        .address
        .as_ref()
        .map(|a| format!("{}{}", a.zip.five, a.zip.plus4.as_deref().unwrap_or("")))
        .unwrap_or_default()
}

fn zip_text(account: &Account) -> String {
    account
        .address
        .as_ref()
        .map(|a| a.zip.to_string())
        .unwrap_or_default()
}

/// The amount an intent to offset asks for (its payoff); `None` for other letters.
fn amount_due_of(letter: &DueLetter) -> Option<Money> {
    match (letter.kind, &letter.amounts) {
        (LetterKind::IntentToOffset, Amounts::IntentToOffset { payoff, .. }) => Some(*payoff),
        _ => None,
    }
}

/// The IMb and article number of a piece from its serials.
fn piece_codes(
    mail: &MailConfig,
    request: &PieceRequest,
    serial: u64,
    article_serial: Option<u64>,
) -> Result<PieceCodes, String> {
    let service = match request.mail_class {
        MailClass::Certified => &mail.service_type_certified,
        MailClass::FirstClass => &mail.service_type_first_class,
    };
    let width = 15usize.saturating_sub(mail.mailer_id.len());
    let tracking = imb::tracking_code(
        &mail.barcode_id,
        service,
        &mail.mailer_id,
        &format!("{serial:0width$}"),
    )
    .map_err(|e| e.to_string())?;
    let bars = imb::encode(&tracking, &request.routing_code).map_err(|e| e.to_string())?;
    let article_number = match article_serial {
        Some(n) => Some(
            article::article_number(&mail.certified_prefix, n)
                .ok_or_else(|| format!("article serial {n} does not fit after the prefix"))?,
        ),
        None => None,
    };
    Ok(PieceCodes {
        tracking_code: tracking,
        imb: bars,
        article_number,
    })
}

/// Rewrites `batches/<run>-control.json` in the run's output directory from the ledger's
/// batches of the run (none: nothing written). Called after batches are recorded and after
/// a release, so the file always says what the ledger says.
pub fn write_control(ledger: &dyn Ledger, run: &RunInfo) -> Result<Option<PathBuf>, MailroomError> {
    let batches = ledger.batches_of_run(run.id)?;
    if batches.is_empty() {
        return Ok(None);
    }
    let control = files::control(run.id, run.mail_date.to_string(), &batches);
    let mut json = serde_json::to_vec_pretty(&control).unwrap_or_default();
    json.push(b'\n');
    let path = Path::new(&run.out_dir)
        .join("batches")
        .join(format!("{}-control.json", run.id));
    write_atomically(&path, &json)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests;
