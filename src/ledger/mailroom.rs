//! The mailroom's records: mail pieces (IMb serial, certified article number), print
//! batches and their release. Serials and article numbers come from counters that only
//! move forward, in the same transaction that records the pieces, so a number is never
//! given out twice, even after a crash.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{BatchState, stamp};
use crate::letter::{LetterKey, MailClass};
use crate::money::Money;

/// A letter that needs a mail piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceRequest {
    /// The letter.
    pub key: LetterKey,
    /// Its mail class.
    pub mail_class: MailClass,
    /// The IMb routing code: ZIP (5 digits) or ZIP+4 (9).
    pub routing_code: String,
}

/// The codes of a mail piece, made by the caller from the numbers the ledger hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceCodes {
    /// The 20-digit IMb tracking code.
    pub tracking_code: String,
    /// The 65 bar letters (`F`, `A`, `D`, `T`).
    pub imb: String,
    /// The 20-digit certified article number (certified pieces only).
    pub article_number: Option<String>,
}

/// Turns the numbers the ledger hands out (IMb serial, certified article serial) into a
/// piece's codes; an `Err` names what is wrong.
pub type MakePiece<'a> = dyn Fn(&PieceRequest, u64, Option<u64>) -> Result<PieceCodes, String> + 'a;

/// The number ranges pieces are allocated from (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceRanges {
    /// IMb serials.
    pub serial: (u64, u64),
    /// Certified article serials.
    pub article: (u64, u64),
}

/// A mail piece as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailPiece {
    /// Piece id.
    pub id: i64,
    /// The letter.
    pub key: LetterKey,
    /// The run that allocated it.
    pub run_id: i64,
    /// Mail class.
    pub mail_class: MailClass,
    /// IMb serial (unique forever).
    pub imb_serial: u64,
    /// IMb tracking code.
    pub tracking_code: String,
    /// IMb routing code.
    pub routing_code: String,
    /// The 65 bar letters.
    pub imb: String,
    /// Certified article number.
    pub article_number: Option<String>,
    /// The batch it was printed in, once recorded.
    pub batch_id: Option<i64>,
    /// Its position in that batch (1-based).
    pub sequence: Option<u32>,
    /// Its page count in that batch (even).
    pub pages: Option<u32>,
}

/// A batch to record: its file is complete on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    /// Name (`7-certified-1`).
    pub name: String,
    /// The run.
    pub run_id: i64,
    /// Mail class.
    pub mail_class: MailClass,
    /// Number within run and class (1, 2, …).
    pub seq: u32,
    /// File name inside the batches directory.
    pub file: String,
    /// SHA-256 of the file.
    pub file_sha256: String,
    /// The pieces in print order with their page counts.
    pub pieces: Vec<(i64, u32)>,
    /// Pages of the file.
    pub pages: u32,
    /// Sheets (duplex: pages / 2).
    pub sheets: u32,
    /// Total amount due on its intent-to-offset letters.
    pub amount_due: Money,
}

/// A batch as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchRecord {
    /// Batch id.
    pub id: i64,
    /// Name (`7-certified-1`).
    pub name: String,
    /// The run.
    pub run_id: i64,
    /// Mail class.
    pub mail_class: MailClass,
    /// Number within run and class.
    pub seq: u32,
    /// File name inside the batches directory.
    pub file: String,
    /// SHA-256 of the file.
    pub file_sha256: String,
    /// Letters in it.
    pub pieces: u32,
    /// Pages.
    pub pages: u32,
    /// Sheets.
    pub sheets: u32,
    /// Total amount due on its intent-to-offset letters.
    pub amount_due: Money,
    /// Written, or released by the operator.
    pub state: BatchState,
    /// When it was recorded.
    #[serde(serialize_with = "stamp::serialize")]
    pub created_at: DateTime<Utc>,
    /// When the operator released it.
    #[serde(serialize_with = "stamp::serialize_opt")]
    pub released_at: Option<DateTime<Utc>>,
}
