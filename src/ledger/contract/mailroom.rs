//! Mail pieces, batches and release.

use std::collections::HashSet;

use super::{Backend, file_of, intent, start};
use crate::ledger::*;
use crate::letter::MailClass;

/// A print request for `letter` (routing code 06103).
pub(in crate::ledger) fn request(letter: &PlannedLetter) -> PieceRequest {
    PieceRequest {
        key: letter.key.clone(),
        mail_class: letter.mail_class.unwrap_or(MailClass::FirstClass),
        routing_code: "06103".to_owned(),
    }
}

/// Test codes made from the numbers handed out.
pub(in crate::ledger) fn make(
    request: &PieceRequest,
    serial: u64,
    article: Option<u64>,
) -> Result<PieceCodes, String> {
    Ok(PieceCodes {
        tracking_code: format!("00300123456{serial:09}"),
        imb: format!("IMB-{}-{serial}", request.key),
        article_number: article.map(|a| format!("7196{a:016}")),
    })
}

const RANGES: PieceRanges = PieceRanges {
    serial: (10, 14),
    article: (1, 3),
};

/// Plans and renders `letters` in a new run; returns the run id.
fn rendered(ledger: &mut impl Ledger, letters: &[PlannedLetter]) -> i64 {
    let run = start(ledger);
    ledger.record_planned(run.id, letters).expect("plan");
    let files: Vec<RenderedFile> = letters.iter().map(file_of).collect();
    ledger.record_rendered(run.id, &files).expect("render");
    run.id
}

pub(super) fn serials_are_allocated_once_and_kept_until_batched<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let letters = [intent("A1"), intent("A2")];
    let run = rendered(&mut ledger, &letters);
    let requests: Vec<PieceRequest> = letters.iter().map(request).collect();
    let pieces = ledger
        .allocate_pieces(run, &requests, RANGES, &make)
        .expect("allocate");
    assert_eq!(
        pieces.iter().map(|p| p.imb_serial).collect::<Vec<_>>(),
        [10, 11]
    );
    assert_eq!(
        pieces[1].article_number.as_deref(),
        Some("71960000000000000002")
    );
    // A crash before the batch was recorded: the same pieces come back.
    let again = ledger
        .allocate_pieces(run, &requests, RANGES, &make)
        .expect("allocate again");
    assert_eq!(again, pieces);
    assert_eq!(ledger.unbatched_letters().expect("open").len(), 2);
    assert!(all_open(&ledger, &pieces));
    let batch = ledger
        .record_batch(&NewBatch {
            name: format!("{run}-certified-1"),
            run_id: run,
            mail_class: MailClass::Certified,
            seq: 1,
            file: "b.pdf".to_owned(),
            file_sha256: "s".to_owned(),
            pieces: pieces.iter().map(|p| (p.id, 2)).collect(),
            pages: 4,
            sheets: 2,
            amount_due: crate::money::Money::parse("12.50").expect("money"),
        })
        .expect("record batch");
    assert_eq!((batch.pieces, batch.pages, batch.sheets), (2, 4, 2));
    assert!(ledger.unbatched_letters().expect("open").is_empty());
    // Batched pieces are no longer open: no second batch file may claim them.
    assert!(
        ledger
            .open_pieces(&keys_of(&pieces))
            .expect("open")
            .is_empty()
    );
    assert!(!all_open(&ledger, &pieces[..1]));
    let stored = ledger.pieces_of_batch(batch.id).expect("pieces");
    assert_eq!(
        stored.iter().map(|p| p.sequence).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );

    // Released: the batch and its letters; releasing again changes nothing.
    let released = ledger
        .release_batch(&batch.name, "printed")
        .expect("release");
    assert_eq!(released.state.as_str(), "released");
    for letter in &letters {
        let record = ledger.letter(&letter.key).expect("read").expect("letter");
        assert_eq!(record.state, LetterState::Released);
        let events = ledger.events_of(&letter.key).expect("events");
        assert!(
            events
                .last()
                .expect("event")
                .detail
                .contains("released in batch")
        );
    }
    assert_eq!(
        ledger
            .release_batch(&batch.name, "again")
            .expect("again")
            .state
            .as_str(),
        "released"
    );
    assert!(matches!(
        ledger.release_batch("9-certified-9", ""),
        Err(LedgerError::UnknownBatch { .. })
    ));

    // A reissue is a new piece with a new serial; serials never go back.
    ledger
        .set_state(&letters[0].key, LetterState::Returned, None, "moved")
        .expect("returned");
    let run2 = start(&mut ledger);
    ledger
        .record_planned(run2.id, &letters[..1])
        .expect("replan");
    ledger
        .record_rendered(run2.id, &[file_of(&letters[0])])
        .expect("render");
    let reissue = ledger
        .allocate_pieces(run2.id, &requests[..1], RANGES, &make)
        .expect("allocate reissue");
    assert_eq!(reissue[0].imb_serial, 12);
    assert_eq!(
        reissue[0].article_number.as_deref(),
        Some("71960000000000000003")
    );
}

pub(super) fn an_exhausted_range_allocates_nothing<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let letters = [intent("B1"), intent("B2"), intent("B3"), intent("B4")];
    let run = rendered(&mut ledger, &letters);
    let requests: Vec<PieceRequest> = letters.iter().map(request).collect();
    // Five serials but only three article numbers for four certified letters.
    let err = ledger
        .allocate_pieces(run, &requests, RANGES, &make)
        .expect_err("exhausted");
    assert!(
        matches!(
            err,
            LedgerError::RangeExhausted {
                needed: 4,
                left: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("certified article number"),
        "{err}"
    );
    // Nothing was taken: three letters still get the first numbers.
    let pieces = ledger
        .allocate_pieces(run, &requests[..3], RANGES, &make)
        .expect("allocate");
    assert_eq!(pieces[0].imb_serial, 10);
    // The three keep their pieces; the fourth needs a serial and none is left.
    let tight = PieceRanges {
        serial: (10, 12),
        article: (1, 10),
    };
    let err = ledger
        .allocate_pieces(run, &requests, tight, &make)
        .expect_err("serials exhausted");
    assert!(err.to_string().contains("IMb serial"), "{err}");
}

pub(super) fn a_piece_goes_into_one_batch_once<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let letters = [intent("C1"), intent("C2")];
    let run = rendered(&mut ledger, &letters);
    let requests: Vec<PieceRequest> = letters.iter().map(request).collect();
    let pieces = ledger
        .allocate_pieces(run, &requests, RANGES, &make)
        .expect("allocate");
    let batch = |name: &str, seq: u32, ids: &[i64]| NewBatch {
        name: name.to_owned(),
        run_id: run,
        mail_class: MailClass::Certified,
        seq,
        file: format!("{name}.pdf"),
        file_sha256: "s".to_owned(),
        pieces: ids.iter().map(|id| (*id, 2)).collect(),
        pages: 2 * ids.len() as u32,
        sheets: ids.len() as u32,
        amount_due: crate::money::Money::ZERO,
    };
    let first = ledger
        .record_batch(&batch("b-1", 1, &[pieces[0].id]))
        .expect("first batch");
    assert_eq!(first.state, BatchState::Written);
    // A second batch claiming a batched piece is refused as a whole.
    let both = [pieces[1].id, pieces[0].id];
    ledger
        .record_batch(&batch("b-2", 2, &both))
        .expect_err("piece already batched");
    assert_eq!(ledger.batch("b-2").expect("read"), None);
    assert!(all_open(&ledger, &pieces[1..2]));
    // The same name again is refused too.
    ledger
        .record_batch(&batch("b-1", 3, &[pieces[1].id]))
        .expect_err("name taken");
    let second = ledger
        .record_batch(&batch("b-2", 2, &[pieces[1].id]))
        .expect("second batch");
    assert_eq!(
        ledger
            .batches_of_run(run)
            .expect("batches")
            .iter()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>(),
        ["b-1", "b-2"]
    );
    assert_eq!(ledger.batch("b-2").expect("read"), Some(second.clone()));
    let in_second = ledger.pieces_of_batch(second.id).expect("pieces");
    assert_eq!(
        in_second
            .iter()
            .map(|p| (p.id, p.sequence, p.pages))
            .collect::<Vec<_>>(),
        [(pieces[1].id, Some(1), Some(2))]
    );
}

pub(super) fn a_letter_planned_again_before_rendering_keeps_its_piece_and_marks<L: Backend>() {
    const WIDE: PieceRanges = PieceRanges {
        serial: (10, 99),
        article: (1, 99),
    };
    let (_home, mut ledger) = L::fresh();
    let letters = [intent("M1"), intent("M2")];
    let run = start(&mut ledger);
    ledger.record_planned(run.id, &letters).expect("plan");
    let requests: Vec<PieceRequest> = letters.iter().map(request).collect();
    let pieces = ledger
        .allocate_pieces(run.id, &requests, WIDE, &make)
        .expect("allocate");
    // The run dies before rendering; the next run plans the letters again: same pieces,
    // except for a letter whose routing code changed.
    let run2 = start(&mut ledger);
    ledger.record_planned(run2.id, &letters).expect("replan");
    let mut moved = requests.clone();
    moved[1].routing_code = "10001".to_owned();
    let again = ledger
        .allocate_pieces(run2.id, &moved, WIDE, &make)
        .expect("allocate again");
    assert_eq!(again[0], pieces[0]);
    assert_ne!(again[1].imb_serial, pieces[1].imb_serial);
    assert_eq!(again[1].routing_code, "10001");
    assert!(!all_open(&ledger, &pieces[1..2]), "the old piece");
    // A file rendered with its piece's marks is marked; one rendered without is not.
    let marked = RenderedFile {
        marks: Some(again[0].id),
        ..file_of(&letters[0])
    };
    ledger
        .record_rendered(run2.id, &[marked, file_of(&letters[1])])
        .expect("render");
    let both = [letters[0].key.clone(), letters[1].key.clone()];
    let marked = ledger.files_marked(&both).expect("marked");
    assert_eq!(marked, HashSet::from([letters[0].key.clone()]));
    // A reissue is a new piece: the old file no longer carries the current marks.
    ledger
        .set_state(&letters[0].key, LetterState::Returned, None, "moved")
        .expect("returned");
    let run3 = start(&mut ledger);
    ledger
        .record_planned(run3.id, &letters[..1])
        .expect("reissue");
    let reissued = ledger
        .allocate_pieces(run3.id, &requests[..1], WIDE, &make)
        .expect("allocate reissue");
    assert_ne!(reissued[0].id, again[0].id);
    assert!(ledger.files_marked(&both).expect("reissued").is_empty());
}

/// The keys of `pieces`.
fn keys_of(pieces: &[MailPiece]) -> Vec<LetterKey> {
    pieces.iter().map(|p| p.key.clone()).collect()
}

/// Whether every one of `pieces` is still its letter's open piece.
fn all_open(ledger: &impl Ledger, pieces: &[MailPiece]) -> bool {
    let open = ledger.open_pieces(&keys_of(pieces)).expect("open pieces");
    pieces
        .iter()
        .all(|p| open.get(&p.key).is_some_and(|o| o.id == p.id))
}
