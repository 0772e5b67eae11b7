//! The mailroom: a run's print letters as print-ready batches, as pure values.
//!
//! Print letters are split by mail class (certified with return receipt for every intent
//! to offset, first class for the rest), sorted by ZIP+4 then account, and cut into
//! batches of at most `batch_size` letters ([`sort_for_print`]). Each letter's mail piece
//! (an IMb serial, and for certified mail an article number) is numbered by the ledger and
//! coded here ([`piece_codes`]). Each print letter's own PDF carries its piece's barcode
//! and article number in the address block, and a batch is assembled from those files at
//! object level ([`assemble`]), every letter padded to an even page count for duplex.
//! Beside each batch PDF: its `manifest.csv` ([`manifest`]) and, for certified mail, a firm
//! mailing book ([`mailing_book`], `.csv` and `.pdf`); `control.json` holds the run's
//! totals ([`files::control`]).
//!
//! This module reads nothing and writes nothing: it takes letters, accounts and pieces as
//! values and returns sources, rows and file contents ([`assemble`] reads the letters'
//! files and writes the batch file it is given). The run ([`crate::runner`]) allocates the
//! pieces when it records its letters, renders them with their marks, assembles and writes
//! the batch files and records each batch in the ledger, in the order that keeps a crash
//! harmless.

pub mod article;
pub mod assemble;
pub mod files;
pub mod imb;
pub mod source;

use std::collections::HashMap;

use crate::account::Account;
use crate::config::{Config, MailConfig};
use crate::decide::{Amounts, DueLetter};
use crate::letter::{Channel, LetterKey, LetterKind, MailClass};
use crate::money::Money;

use self::files::{BookCsvRow, ManifestRow};
use self::source::{BookHeading, BookRow};

/// What batches are made with: the `[mail]` configuration, the batch size, and the
/// agency as author and sender.
pub struct Mailroom<'a> {
    /// Author written into each PDF (the agency).
    pub author: String,
    /// The `[mail]` configuration.
    pub mail: &'a MailConfig,
    /// Letters per batch.
    pub batch_size: usize,
    /// The agency name and address lines for the mailing book.
    pub sender: (String, Vec<String>),
}

impl<'a> Mailroom<'a> {
    /// The mailroom of `config`, with `batch_size` letters per batch (default: the
    /// configured `mail.batch_size`).
    pub fn from_config(config: &'a Config, batch_size: Option<usize>) -> Mailroom<'a> {
        let address = &config.agency.return_address;
        let mut block = address.block();
        // The first configured line is the agency's name, printed apart.
        if !address.lines.is_empty() {
            block.remove(0);
        }
        Mailroom {
            author: config.agency.name.clone(),
            mail: &config.mail,
            batch_size: batch_size.unwrap_or(config.mail.batch_size),
            sender: (config.agency.name.clone(), block),
        }
    }
}

/// One print letter on its way into a batch.
#[derive(Debug, Clone, Copy)]
pub struct Item<'l> {
    /// The letter.
    pub letter: &'l DueLetter,
    /// Its account (it has a postal address).
    pub account: &'l Account,
    /// Its mail class.
    pub class: MailClass,
}

/// A print letter as print order and the batch step need it before its letter is read:
/// small, so that a run holds one for each of its print letters while the letters
/// themselves (and their accounts) stay in the ledger until their batch is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintEntry {
    /// The letter's key.
    pub key: LetterKey,
    /// Its account.
    pub account_id: String,
    /// Its mail class.
    pub class: MailClass,
    /// The address's ZIP code (5 digits).
    pub zip: String,
    /// The address's ZIP+4 add-on, empty when it has none.
    pub plus4: String,
}

impl PrintEntry {
    /// The entry of `letter` (of `account`) when it can go into a batch: a print letter
    /// with a mail class whose account has a postal address. `None` otherwise.
    pub fn of(letter: &DueLetter, account: &Account) -> Option<PrintEntry> {
        let address = account.address.as_ref()?;
        let class = letter.mail_class?;
        (letter.channel == Channel::Print).then(|| PrintEntry {
            key: letter.key.clone(),
            account_id: account.account_id.clone(),
            class,
            zip: address.zip.five.clone(),
            plus4: address.zip.plus4.clone().unwrap_or_default(),
        })
    }

    /// The IMb routing code of its address: ZIP+4 (9 digits) or ZIP (5), as
    /// [`routing_code`] gives for the account.
    pub fn routing_code(&self) -> String {
        format!("{}{}", self.zip, self.plus4)
    }

    /// Print order: certified before first class, then ZIP, ZIP+4 (none first), account,
    /// key.
    fn sort_key(&self) -> (bool, &str, &str, &str, &str) {
        (
            self.class != MailClass::Certified,
            &self.zip,
            &self.plus4,
            &self.account_id,
            self.key.as_str(),
        )
    }
}

impl AsRef<PrintEntry> for PrintEntry {
    fn as_ref(&self) -> &PrintEntry {
        self
    }
}

/// The print letters that can be batched, in print order, and those that cannot.
#[derive(Debug)]
pub struct ForPrint<'e, T> {
    /// Batchable letters: certified first, then by ZIP, ZIP+4 (none first), account, key.
    pub items: Vec<&'e T>,
    /// Letters in no batch that are not among the entries, as (run id, count), sorted.
    pub left_over: Vec<(i64, usize)>,
}

/// Sorts the letters in no batch (`open`, with the run that rendered each) into print
/// order: those found among `entries` (print letters whose account has an address, see
/// [`PrintEntry::of`]) are batchable; the rest are counted per run as left over.
pub fn sort_for_print<'e, T: AsRef<PrintEntry>>(
    open: &[(LetterKey, i64)],
    entries: &'e [T],
) -> ForPrint<'e, T> {
    let by_key: HashMap<&str, &T> = entries
        .iter()
        .map(|e| (e.as_ref().key.as_str(), e))
        .collect();
    let mut items = Vec::new();
    let mut left_over: HashMap<i64, usize> = HashMap::new();
    for (key, run_id) in open {
        match by_key.get(key.as_str()) {
            Some(entry) => items.push(*entry),
            None => *left_over.entry(*run_id).or_default() += 1,
        }
    }
    let mut left_over: Vec<(i64, usize)> = left_over.into_iter().collect();
    left_over.sort();
    items.sort_by(|a, b| a.as_ref().sort_key().cmp(&b.as_ref().sort_key()));
    ForPrint { items, left_over }
}

/// `entries` in print order (see [`sort_for_print`]).
pub fn in_print_order<T: AsRef<PrintEntry>>(entries: &[T]) -> Vec<&T> {
    let mut items: Vec<&T> = entries.iter().collect();
    items.sort_by(|a, b| a.as_ref().sort_key().cmp(&b.as_ref().sort_key()));
    items
}

/// A batch's name: `<run>-<class>-<seq>` (`7-certified-1`), what `missive release` takes.
pub fn batch_name(run_id: i64, class: MailClass, seq: u32) -> String {
    format!("{run_id}-{}-{seq}", class.as_str())
}

/// A batch PDF's title: `Certified batch 1 of run 7`.
pub fn batch_title(run_id: i64, class: MailClass, seq: u32) -> String {
    let class_title = match class {
        MailClass::Certified => "Certified",
        MailClass::FirstClass => "First-class",
    };
    format!("{class_title} batch {seq} of run {run_id}")
}

/// A mail piece's codes as the ledger recorded them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// IMb serial.
    pub imb_serial: u64,
    /// The 65 IMb bar letters.
    pub imb: String,
    /// Certified article number (20 digits), none for first class.
    pub article_number: Option<String>,
}

/// The codes of a piece, made from the numbers the ledger hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceCodes {
    /// The 20-digit IMb tracking code.
    pub tracking_code: String,
    /// The 65 bar letters.
    pub imb: String,
    /// The 20-digit certified article number (certified pieces only).
    pub article_number: Option<String>,
}

/// A batch's `manifest.csv` and the total amount due on its intent-to-offset letters.
/// `pieces`, `pages` and `file_sha256` (each letter's own PDF, as recorded) go with
/// `items`, in print order.
pub fn manifest(
    items: &[Item<'_>],
    pieces: &[Piece],
    pages: &[u32],
    file_sha256: &[String],
) -> Result<(Vec<u8>, Money), csv::Error> {
    let mut rows = Vec::with_capacity(items.len());
    let mut amount_due = Money::ZERO;
    for (i, (((item, piece), pages), sha)) in items
        .iter()
        .zip(pieces)
        .zip(pages)
        .zip(file_sha256)
        .enumerate()
    {
        let due = amount_due_of(item.letter);
        if let Some(due) = due {
            amount_due = amount_due + due;
        }
        rows.push(ManifestRow {
            sequence: i as u32 + 1,
            key: item.letter.key.to_string(),
            account: item.account.account_id.clone(),
            kind: item.letter.kind.as_str().to_owned(),
            mail_class: item.class,
            zip: zip_text(item.account),
            pages: *pages,
            sheets: pages / 2,
            imb_serial: piece.imb_serial,
            imb: piece.imb.clone(),
            article_number: piece.article_number.clone().unwrap_or_default(),
            amount_due: due,
            file_sha256: sha.clone(),
        });
    }
    Ok((files::manifest_csv(&rows)?, amount_due))
}

/// The firm mailing book of a certified batch: its Typst source and its CSV. `mail_date`
/// is the mail date as printed.
pub fn mailing_book(
    sender: &(String, Vec<String>),
    batch: &str,
    mail_date: String,
    items: &[Item<'_>],
    pieces: &[Piece],
) -> Result<(String, Vec<u8>), csv::Error> {
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
    let heading = BookHeading {
        sender: sender.0.clone(),
        sender_address: sender.1.clone(),
        batch: batch.to_owned(),
        mail_date,
    };
    Ok((
        source::mailing_book_source(&heading, &book),
        files::mailing_book_csv(&csv)?,
    ))
}

/// The IMb routing code of an account's address: ZIP+4 (9 digits) or ZIP (5). No
/// delivery point: it needs address-matching data missive does not have.
pub fn routing_code(account: &Account) -> String {
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

/// The IMb (for the `routing_code` of the address) and article number of a piece of
/// `class` from its serials.
pub fn piece_codes(
    mail: &MailConfig,
    class: MailClass,
    routing_code: &str,
    serial: u64,
    article_serial: Option<u64>,
) -> Result<PieceCodes, String> {
    let service = match class {
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
    let bars = imb::encode(&tracking, routing_code).map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests;
