//! Reissue after `mark`: a letter marked `returned` or `cancelled` is reissued by the next
//! run under the same key, and the copy that was mailed is kept under its hash; `mark`
//! refuses unknown keys, a missing ledger and changes the state machine does not allow.

use missive::ledger::LetterState;
use missive::ledger::prelude::*;
use missive::letter::LetterKey;

use crate::common::files::{json_file, pdfs, utf8};
use crate::common::ledger::{letter_of, open_ledger};
use crate::common::{Fixture, array};
use crate::{AS_OF, ITO_1001, ITO_1001_FILE, date, missive, pdf_text, samples_run, str_of};

#[test]
fn a_returned_intent_to_offset_is_reissued_the_next_day_and_the_mailed_copy_kept() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    let ledger_path = out.join("missive.db");
    samples_run(&out, AS_OF).expect_code(0);
    let day1 = pdfs(&out);
    let mailed_sha = day1[ITO_1001_FILE].clone();

    let note = "returned by USPS: no such number";
    let mark = missive(&[
        "mark",
        ITO_1001,
        "returned",
        "--ledger",
        utf8(&ledger_path),
        "--note",
        note,
    ]);
    mark.expect_code(0);
    assert!(mark.stderr.contains("is now returned"), "{}", mark.stderr);

    let day2 = samples_run(&out, "2026-12-02");
    day2.expect_code(0);
    assert!(
        day2.stderr.contains("run 2: 1 letters planned, 1 rendered"),
        "{}",
        day2.stderr
    );
    let summary = json_file(&out.join("run-2.json"));
    let reissued: Vec<&str> = array(&summary["letters"])
        .iter()
        .map(|l| str_of(l, "key"))
        .collect();
    assert_eq!(
        reissued,
        vec![ITO_1001],
        "only the returned letter is reissued"
    );

    let ledger = open_ledger(&ledger_path);
    let letter = letter_of(&ledger, ITO_1001);
    assert_eq!(letter.state, LetterState::Rendered);
    assert_eq!(letter.run_id, 2);
    assert_eq!(letter.letter_date, date("2026-12-02"));
    // 2026-12-02 + 60 days = 2027-01-31, a Sunday → Monday 2027-02-01.
    assert_eq!(letter.deadline, Some(date("2027-02-01")));
    assert_eq!(letter.file.as_deref(), Some(ITO_1001_FILE));
    assert_eq!(
        ledger
            .letters_of_run(2, None)
            .expect("letters")
            .iter()
            .map(|l| l.key.as_str().to_owned())
            .collect::<Vec<_>>(),
        vec![ITO_1001.to_owned()]
    );
    let events = ledger
        .events_of(&LetterKey::from_text(ITO_1001))
        .expect("events");
    let moves: Vec<_> = events
        .iter()
        .map(|e| (e.from_state, e.to_state, e.run_id))
        .collect();
    use LetterState::{Planned, Rendered, Returned};
    assert_eq!(
        moves,
        vec![
            (None, Planned, Some(1)),
            (Some(Planned), Rendered, Some(1)),
            (Some(Rendered), Returned, None),
            (Some(Returned), Planned, Some(2)),
            (Some(Planned), Rendered, Some(2)),
        ]
    );
    assert_eq!(events[2].detail, note);
    assert!(
        events[1].detail.contains(&mailed_sha),
        "{}",
        events[1].detail
    );

    // The mailed copy is kept under its hash; the new file is the ledger's; nothing else
    // changed.
    let day2_pdfs = pdfs(&out);
    let kept = format!("CT-0001001_intent_to_offset_L1.{}.pdf", &mailed_sha[..12]);
    assert_eq!(
        day2_pdfs.get(&kept),
        Some(&mailed_sha),
        "kept copy {kept}: {day2_pdfs:?}"
    );
    let new_sha = &day2_pdfs[ITO_1001_FILE];
    assert_ne!(new_sha, &mailed_sha);
    assert_eq!(letter.file_sha256.as_ref(), Some(new_sha));
    let mut expected = day1.clone();
    expected.insert(ITO_1001_FILE.to_owned(), new_sha.clone());
    expected.insert(kept, mailed_sha.clone());
    assert_eq!(day2_pdfs, expected);
    if let Some(text) = pdf_text(&out.join(ITO_1001_FILE)) {
        assert!(text.contains("December 2, 2026"), "letter date:\n{text}");
        assert!(text.contains("February 1, 2027"), "deadline:\n{text}");
    }
    drop(ledger);

    // `mark cancelled` on a rendered letter: the next run reissues that one only.
    let other = "CT-0001003/intent_to_offset/L1";
    missive(&["mark", other, "cancelled", "--ledger", utf8(&ledger_path)]).expect_code(0);
    let day2b = samples_run(&out, "2026-12-02");
    day2b.expect_code(0);
    let summary = json_file(&out.join("run-3.json"));
    let reissued: Vec<&str> = array(&summary["letters"])
        .iter()
        .map(|l| str_of(l, "key"))
        .collect();
    assert_eq!(reissued, vec![other]);
    let ledger = open_ledger(&ledger_path);
    let letter = letter_of(&ledger, other);
    assert_eq!((letter.state, letter.run_id), (LetterState::Rendered, 3));
    let moves: Vec<_> = ledger
        .events_of(&LetterKey::from_text(other))
        .expect("events")
        .iter()
        .map(|e| e.to_state)
        .collect();
    use LetterState::Cancelled;
    assert_eq!(moves, vec![Planned, Rendered, Cancelled, Planned, Rendered]);
}

#[test]
fn mark_refuses_unknown_keys_missing_ledgers_and_impossible_changes() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    let ledger_path = out.join("missive.db");
    samples_run(&out, AS_OF).expect_code(0);

    let unknown = "CT-0009999/intent_to_offset/L1";
    let run = missive(&["mark", unknown, "returned", "--ledger", utf8(&ledger_path)]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!("no letter `{unknown}`"))
            && run.stderr.contains(utf8(&ledger_path)),
        "{}",
        run.stderr
    );

    let missing = dir.join("nowhere/missive.db");
    let run = missive(&["mark", ITO_1001, "returned", "--ledger", utf8(&missing)]);
    run.expect_code(2);
    assert!(run.stderr.contains("no ledger"), "{}", run.stderr);
    assert!(!missing.exists(), "mark created a ledger");

    // returned → cancelled is not an allowed change.
    missive(&["mark", ITO_1001, "returned", "--ledger", utf8(&ledger_path)]).expect_code(0);
    let run = missive(&[
        "mark",
        ITO_1001,
        "cancelled",
        "--ledger",
        utf8(&ledger_path),
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("Cannot move") && run.stderr.contains("returned"),
        "{}",
        run.stderr
    );
    let ledger = open_ledger(&ledger_path);
    assert_eq!(letter_of(&ledger, ITO_1001).state, LetterState::Returned);
    // Marking returned again is a no-op: no new event.
    let events = ledger
        .events_of(&LetterKey::from_text(ITO_1001))
        .expect("events")
        .len();
    drop(ledger);
    missive(&["mark", ITO_1001, "returned", "--ledger", utf8(&ledger_path)]).expect_code(0);
    let ledger = open_ledger(&ledger_path);
    assert_eq!(
        ledger
            .events_of(&LetterKey::from_text(ITO_1001))
            .expect("events")
            .len(),
        events
    );
}
