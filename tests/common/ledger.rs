//! The ledger a run wrote, read back: through the library (`SqliteLedger`) once the runs are
//! over, or through a read-only SQLite connection while a run may still be writing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use missive::ledger::prelude::*;
use missive::ledger::{LetterRecord, SqliteLedger};
use missive::letter::LetterKey;
use rusqlite::{Connection, OpenFlags};

/// Opens the ledger at `path` (migrating it if needed); panics naming the file on failure.
pub fn open_ledger(path: &Path) -> SqliteLedger {
    SqliteLedger::open(path).unwrap_or_else(|e| panic!("open ledger {}: {e}", path.display()))
}

/// The letter with this key; panics when the ledger has none.
pub fn letter_of(ledger: &SqliteLedger, key: &str) -> LetterRecord {
    ledger
        .letter(&LetterKey::from_text(key))
        .expect("read letter")
        .unwrap_or_else(|| panic!("no letter `{key}` in the ledger"))
}

/// A read-only connection to the ledger, or `None` while there is no file: for polling and
/// logging while a run may be writing (it never migrates or writes, so it cannot change what
/// the run, or the next one, sees).
pub fn peek(ledger: &Path) -> Option<Connection> {
    if !ledger.exists() {
        return None;
    }
    Connection::open_with_flags(ledger, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()
}

/// A run's mail pieces by letter key: (IMb serial, article number, batch name, place in the
/// batch).
pub type Pieces = BTreeMap<String, (i64, Option<String>, Option<String>, Option<i64>)>;

/// Asserts that no two pieces share an IMb serial or an article number.
pub fn no_duplicate_serials(pieces: &Pieces) {
    let serials: BTreeSet<i64> = pieces.values().map(|p| p.0).collect();
    assert_eq!(serials.len(), pieces.len(), "a serial handed out twice");
    let articles: Vec<&String> = pieces.values().filter_map(|p| p.1.as_ref()).collect();
    let unique: BTreeSet<&String> = articles.iter().copied().collect();
    assert_eq!(
        unique.len(),
        articles.len(),
        "an article number handed out twice"
    );
}
