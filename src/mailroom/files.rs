//! The mailroom's plain files: a batch's `manifest.csv`, a certified batch's mailing book
//! as CSV, and the run's `control.json` with totals per batch and per mail class.
//!
//! CSV goes through the `csv` crate's writer: `\n` line ends, a field quoted only when it
//! holds a comma, a quote or a line break (RFC 4180). Nothing here reads the ledger: the
//! caller hands in the batches as [`ControlBatch`] values.

use std::collections::BTreeMap;

use serde::Serialize;

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

/// The columns of `manifest.csv`.
const MANIFEST_HEADER: &str = "sequence,key,account,kind,mail_class,zip,pages,sheets,imb_serial,imb,article_number,amount_due,file_sha256";

/// `manifest.csv` of a batch.
pub fn manifest_csv(rows: &[ManifestRow]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(MANIFEST_HEADER.split(','))?;
    for r in rows {
        writer.write_record([
            r.sequence.to_string().as_str(),
            &r.key,
            &r.account,
            &r.kind,
            r.mail_class.as_str(),
            &r.zip,
            &r.pages.to_string(),
            &r.sheets.to_string(),
            &r.imb_serial.to_string(),
            &r.imb,
            &r.article_number,
            &r.amount_due.map(Money::plain).unwrap_or_default(),
            &r.file_sha256,
        ])?;
    }
    finish(writer)
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

/// The columns of `mailing-book.csv`.
const BOOK_HEADER: &str =
    "sequence,article_number,name,street,city,state,zip,postage_class,services";

/// `mailing-book.csv` of a certified batch.
pub fn mailing_book_csv(rows: &[BookCsvRow]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(BOOK_HEADER.split(','))?;
    for r in rows {
        writer.write_record([
            r.sequence.to_string().as_str(),
            &r.article_number,
            &r.name,
            &r.street,
            &r.city,
            &r.state,
            &r.zip,
            "First-Class Mail",
            "Certified Mail;Return Receipt",
        ])?;
    }
    finish(writer)
}

/// The bytes a CSV writer holds, once flushed.
fn finish(writer: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, csv::Error> {
    writer
        .into_inner()
        .map_err(|err| csv::Error::from(err.into_error()))
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
    fn add(&mut self, batch: &ControlBatch) {
        self.batches += 1;
        self.pieces += batch.pieces;
        self.pages += batch.pages;
        self.sheets += batch.sheets;
        self.amount_due = self.amount_due + batch.amount_due;
    }
}

/// One batch in `control.json`, and what [`control`] takes: a batch as the ledger
/// recorded it.
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
pub fn control(run_id: i64, mail_date: String, batches: Vec<ControlBatch>) -> Control {
    let mut classes: BTreeMap<String, Totals> = BTreeMap::new();
    let mut total = Totals::default();
    for batch in &batches {
        classes
            .entry(batch.mail_class.as_str().to_owned())
            .or_default()
            .add(batch);
        total.add(batch);
    }
    Control {
        run_id,
        mail_date,
        batches,
        classes,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: Result<Vec<u8>, csv::Error>) -> String {
        String::from_utf8(bytes.expect("CSV")).expect("UTF-8")
    }

    #[test]
    fn a_manifest_quotes_only_fields_that_need_it() {
        let row = |sequence, key: &str, amount_due| ManifestRow {
            sequence,
            key: key.to_owned(),
            account: "A-1".to_owned(),
            kind: "intent_to_offset".to_owned(),
            mail_class: MailClass::Certified,
            zip: "06103-1234".to_owned(),
            pages: 2,
            sheets: 1,
            imb_serial: 7,
            imb: "ADFT".to_owned(),
            article_number: "92071902351234500001".to_owned(),
            amount_due,
            file_sha256: "ab12".to_owned(),
        };
        let rows = [
            row(1, "A-1/ito", Some(Money::parse("1234.5").expect("money"))),
            row(2, "odd, \"quoted\"\nkey", None),
        ];
        assert_eq!(
            text(manifest_csv(&rows)),
            "sequence,key,account,kind,mail_class,zip,pages,sheets,imb_serial,imb,article_number,amount_due,file_sha256\n\
             1,A-1/ito,A-1,intent_to_offset,certified,06103-1234,2,1,7,ADFT,92071902351234500001,1234.50,ab12\n\
             2,\"odd, \"\"quoted\"\"\nkey\",A-1,intent_to_offset,certified,06103-1234,2,1,7,ADFT,92071902351234500001,,ab12\n"
        );
    }

    #[test]
    fn an_empty_manifest_is_its_header() {
        assert_eq!(
            text(manifest_csv(&[])),
            "sequence,key,account,kind,mail_class,zip,pages,sheets,imb_serial,imb,article_number,amount_due,file_sha256\n"
        );
    }

    #[test]
    fn a_mailing_book_names_the_service_on_every_row() {
        let rows = [BookCsvRow {
            sequence: 1,
            article_number: "92071902351234500001".to_owned(),
            name: "Ann Lee and Bo Lee".to_owned(),
            street: "1 Main St, Apt 2".to_owned(),
            city: "Hartford".to_owned(),
            state: "CT".to_owned(),
            zip: "06103".to_owned(),
        }];
        assert_eq!(
            text(mailing_book_csv(&rows)),
            "sequence,article_number,name,street,city,state,zip,postage_class,services\n\
             1,92071902351234500001,Ann Lee and Bo Lee,\"1 Main St, Apt 2\",Hartford,CT,06103,First-Class Mail,Certified Mail;Return Receipt\n"
        );
    }

    #[test]
    fn control_totals_batches_per_class_and_overall() {
        let batch = |name: &str, mail_class, pieces, amount: &str| ControlBatch {
            name: name.to_owned(),
            mail_class,
            file: format!("{name}.pdf"),
            sha256: "ab".to_owned(),
            state: "written".to_owned(),
            pieces,
            pages: pieces * 2,
            sheets: pieces,
            amount_due: Money::parse(amount).expect("money"),
        };
        let control = control(
            7,
            "2026-03-02".to_owned(),
            vec![
                batch("7-certified-1", MailClass::Certified, 3, "10.00"),
                batch("7-certified-2", MailClass::Certified, 1, "2.50"),
                batch("7-first_class-1", MailClass::FirstClass, 4, "0.00"),
            ],
        );
        assert_eq!(control.batches.len(), 3);
        assert_eq!(control.classes["certified"].batches, 2);
        assert_eq!(control.classes["certified"].pieces, 4);
        assert_eq!(
            control.classes["certified"].amount_due,
            Money::parse("12.50").expect("money")
        );
        assert_eq!(control.classes["first_class"].pages, 8);
        assert_eq!(control.total.batches, 3);
        assert_eq!(control.total.sheets, 8);
    }
}
