//! The mailroom's plain files: a batch's `manifest.csv`, a certified batch's mailing book
//! as CSV, and the run's `control.json` with totals per batch and per mail class.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::ledger::BatchRecord;
use crate::letter::MailClass;
use crate::money::Money;

/// One line of a batch manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRow {
    /// Position in the batch (1-based): the order of the pages.
    pub sequence: u32,
    /// Letter key.
    pub key: String,
    /// Account id.
    pub account: String,
    /// Letter kind.
    pub kind: String,
    /// Mail class.
    pub mail_class: MailClass,
    /// ZIP or ZIP+4 as on the address.
    pub zip: String,
    /// Pages of this letter in the batch (even).
    pub pages: u32,
    /// Sheets (duplex).
    pub sheets: u32,
    /// IMb serial.
    pub imb_serial: u64,
    /// The 65 IMb bar letters.
    pub imb: String,
    /// Certified article number (20 digits), empty for first class.
    pub article_number: String,
    /// Amount due (intent to offset: the payoff), empty for other kinds.
    pub amount_due: Option<Money>,
    /// SHA-256 of the letter's own PDF, as recorded in the ledger.
    pub file_sha256: String,
}

/// `manifest.csv` of a batch.
pub fn manifest_csv(rows: &[ManifestRow]) -> String {
    let mut csv = String::from(
        "sequence,key,account,kind,mail_class,zip,pages,sheets,imb_serial,imb,article_number,amount_due,file_sha256\n",
    );
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.sequence,
            field(&r.key),
            field(&r.account),
            r.kind,
            r.mail_class.as_str(),
            r.zip,
            r.pages,
            r.sheets,
            r.imb_serial,
            r.imb,
            r.article_number,
            r.amount_due.map(Money::plain).unwrap_or_default(),
            r.file_sha256
        );
    }
    csv
}

/// One line of a firm mailing book, as CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookCsvRow {
    /// Position in the batch.
    pub sequence: u32,
    /// Article number (20 digits).
    pub article_number: String,
    /// Addressee names, joined with " and ".
    pub name: String,
    /// Street lines joined with ", ".
    pub street: String,
    /// City.
    pub city: String,
    /// State.
    pub state: String,
    /// ZIP or ZIP+4.
    pub zip: String,
}

/// `mailing-book.csv` of a certified batch.
pub fn mailing_book_csv(rows: &[BookCsvRow]) -> String {
    let mut csv =
        String::from("sequence,article_number,name,street,city,state,zip,postage_class,services\n");
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},First-Class Mail,Certified Mail;Return Receipt",
            r.sequence,
            r.article_number,
            field(&r.name),
            field(&r.street),
            field(&r.city),
            r.state,
            r.zip
        );
    }
    csv
}

/// Totals of a set of batches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Batches.
    pub batches: u32,
    /// Letters (mail pieces).
    pub pieces: u32,
    /// Pages printed.
    pub pages: u32,
    /// Sheets (duplex: two pages a sheet).
    pub sheets: u32,
    /// Total amount due on intent-to-offset letters.
    pub amount_due: Money,
}

impl Totals {
    fn add(&mut self, batch: &BatchRecord) {
        self.batches += 1;
        self.pieces += batch.pieces;
        self.pages += batch.pages;
        self.sheets += batch.sheets;
        self.amount_due = self.amount_due + batch.amount_due;
    }
}

/// One batch in `control.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlBatch {
    /// Name (`7-certified-1`), what `missive release` takes.
    pub name: String,
    /// Mail class.
    pub mail_class: MailClass,
    /// The PDF.
    pub file: String,
    /// Its SHA-256.
    pub sha256: String,
    /// `written` or `released`.
    pub state: String,
    /// Letters.
    pub pieces: u32,
    /// Pages.
    pub pages: u32,
    /// Sheets.
    pub sheets: u32,
    /// Amount due on intent-to-offset letters.
    pub amount_due: Money,
}

/// `control.json`: every batch of a run with totals per mail class and overall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    /// The run.
    pub run_id: i64,
    /// The mail date.
    pub mail_date: String,
    /// Every batch, by class and number.
    pub batches: Vec<ControlBatch>,
    /// Totals per mail class.
    pub classes: BTreeMap<String, Totals>,
    /// Totals of the run.
    pub total: Totals,
}

/// The control totals of a run's batches, as recorded in the ledger.
pub fn control(run_id: i64, mail_date: String, batches: &[BatchRecord]) -> Control {
    let mut classes: BTreeMap<String, Totals> = BTreeMap::new();
    let mut total = Totals::default();
    for batch in batches {
        classes
            .entry(batch.mail_class.as_str().to_owned())
            .or_default()
            .add(batch);
        total.add(batch);
    }
    Control {
        run_id,
        mail_date,
        batches: batches
            .iter()
            .map(|b| ControlBatch {
                name: b.name.clone(),
                mail_class: b.mail_class,
                file: b.file.clone(),
                sha256: b.file_sha256.clone(),
                state: b.state.as_str().to_owned(),
                pieces: b.pieces,
                pages: b.pages,
                sheets: b.sheets,
                amount_due: b.amount_due,
            })
            .collect(),
        classes,
        total,
    }
}

/// One CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
pub fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
