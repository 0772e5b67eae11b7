//! The work queue: claims are disjoint, limited, in key order, expire with their lease,
//! and a payload recorded again (a re-plan) replaces it and clears its claim.

use std::time::Duration;

use super::{Backend, file_of, intent, start};
use crate::ledger::*;

const LONG: Duration = Duration::from_secs(600);

/// A payload for each of `letters`, reading `"{text} {key}"`.
fn payloads(letters: &[PlannedLetter], text: &str) -> Vec<LetterPayload> {
    letters
        .iter()
        .map(|l| LetterPayload {
            key: l.key.clone(),
            payload: format!("{text} {}", l.key),
            data_sha256: l.data_sha256.clone(),
        })
        .collect()
}

/// Plans `n` intents (`CT-0`, `CT-1`, …) in `run_id` with a payload each.
fn planned_with_payloads(ledger: &mut impl Ledger, run_id: i64, n: usize) -> Vec<PlannedLetter> {
    let letters: Vec<PlannedLetter> = (0..n).map(|i| intent(&format!("CT-{i}"))).collect();
    ledger.record_planned(run_id, &letters).expect("plan");
    ledger
        .record_payloads(run_id, &payloads(&letters, "payload of"))
        .expect("payloads");
    letters
}

fn keys(claimed: &[ClaimedLetter]) -> Vec<String> {
    claimed.iter().map(|c| c.key.to_string()).collect()
}

pub(super) fn claims_are_disjoint_limited_and_in_key_order<L: Backend>() {
    let (home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    assert_eq!(
        ledger.work_left(run.id).expect("work left"),
        WorkLeft::default(),
        "nothing recorded yet"
    );
    let letters = planned_with_payloads(&mut ledger, run.id, 5);
    let mut ledger = L::reopen(&home, ledger);
    let first = ledger.claim_letters(run.id, "a", 2, LONG).expect("claim a");
    let second = ledger.claim_letters(run.id, "b", 2, LONG).expect("claim b");
    let third = ledger.claim_letters(run.id, "c", 2, LONG).expect("claim c");
    let mut all: Vec<String> = letters.iter().map(|l| l.key.to_string()).collect();
    all.sort();
    assert_eq!(keys(&first), all[0..2]);
    assert_eq!(keys(&second), all[2..4]);
    assert_eq!(keys(&third), all[4..5]);
    assert_eq!(first[0].payload, format!("payload of {}", first[0].key));
    assert!(
        ledger
            .claim_letters(run.id, "d", 10, LONG)
            .expect("claim d")
            .is_empty(),
        "every letter is claimed"
    );
    assert_eq!(
        ledger.work_left(run.id).expect("work left"),
        WorkLeft {
            planned: 5,
            claimed: 5,
            recorded: 5
        }
    );

    // A rendered letter is no longer planned: no claim to clean up, nothing left of it.
    let done: Vec<RenderedFile> = letters.iter().take(3).map(file_of).collect();
    ledger.record_rendered(run.id, &done).expect("render");
    assert_eq!(
        ledger.work_left(run.id).expect("work left"),
        WorkLeft {
            planned: 2,
            claimed: 2,
            recorded: 5
        }
    );
    assert!(matches!(
        ledger.record_payloads(
            run.id,
            &[LetterPayload {
                key: intent("CT-99").key,
                payload: String::new(),
                data_sha256: "d1".to_owned(),
            }]
        ),
        Err(LedgerError::UnknownLetter { .. })
    ));
    assert!(matches!(
        ledger.record_payloads(99, &[]),
        Err(LedgerError::UnknownRun { run_id: 99 })
    ));
}

pub(super) fn an_expired_claim_is_claimable_again<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    planned_with_payloads(&mut ledger, run.id, 3);
    let short = ledger
        .claim_letters(run.id, "dies", 2, Duration::from_millis(50))
        .expect("claim");
    assert_eq!(short.len(), 2);
    std::thread::sleep(Duration::from_millis(120));
    let left = ledger.work_left(run.id).expect("work left");
    assert_eq!((left.planned, left.claimed), (3, 0), "the lease ran out");
    let again = ledger
        .claim_letters(run.id, "takes over", 10, LONG)
        .expect("claim again");
    assert_eq!(keys(&again).len(), 3, "the expired two and the free one");
    assert_eq!(keys(&again)[..2], keys(&short)[..]);
    assert_eq!(ledger.work_left(run.id).expect("left").claimed, 3);
}

pub(super) fn a_replan_replaces_the_payload_and_clears_the_claim<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let first_run = start(&mut ledger);
    let letters = planned_with_payloads(&mut ledger, first_run.id, 2);
    let claimed = ledger
        .claim_letters(first_run.id, "old", 10, LONG)
        .expect("claim");
    assert_eq!(claimed.len(), 2);

    // The coordinator died; the next run plans the same letters and records new payloads.
    let second_run = start(&mut ledger);
    ledger
        .record_planned(second_run.id, &letters)
        .expect("plan again");
    assert!(
        ledger
            .claim_letters(second_run.id, "new", 10, LONG)
            .expect("claim before payloads")
            .is_empty(),
        "no payload of the new run yet"
    );
    assert_eq!(
        ledger.work_left(first_run.id).expect("left").planned,
        0,
        "the letters belong to the new run"
    );
    let replaced = LetterPayload {
        key: letters[0].key.clone(),
        payload: "new payload".to_owned(),
        data_sha256: letters[0].data_sha256.clone(),
    };
    ledger
        .record_payloads(second_run.id, std::slice::from_ref(&replaced))
        .expect("payload again");
    let now = ledger
        .claim_letters(second_run.id, "new", 10, LONG)
        .expect("claim in the new run");
    assert_eq!(
        now,
        [ClaimedLetter {
            key: replaced.key.clone(),
            payload: "new payload".to_owned(),
            payload_sha256: payload_sha256("new payload"),
            data_sha256: letters[0].data_sha256.clone(),
        }]
    );
    assert_eq!(
        ledger.work_left(second_run.id).expect("left"),
        // The other letter has no payload of this run: nobody's work, not waited for.
        WorkLeft {
            planned: 1,
            claimed: 1,
            recorded: 1
        }
    );
}

/// Claims and recordings follow the run's current plan: a payload made from data the
/// letter is no longer planned with is not claimable; withdrawing a run's payloads except
/// those it plans now leaves the others nobody's work (not claimable, not waited for); a
/// file made from
/// a payload that is no longer the letter's is refused, and so is a file recorded by a run
/// the letter is not planned in; a run that is no longer running hands out no claims.
pub(super) fn claims_and_recordings_follow_the_current_plan<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let letters = planned_with_payloads(&mut ledger, run.id, 3);

    // CT-0 is planned again with new figures before its payload is replaced: its old
    // payload is not claimable.
    let mut changed = letters[0].clone();
    changed.data_sha256 = "d2".to_owned();
    ledger
        .record_planned(run.id, std::slice::from_ref(&changed))
        .expect("plan again");
    let claimed = ledger.claim_letters(run.id, "w", 10, LONG).expect("claim");
    assert_eq!(
        keys(&claimed),
        ["CT-1/intent_to_offset/L1", "CT-2/intent_to_offset/L1"]
    );

    // The run records its payloads again, without CT-2 (no longer in its plan): CT-2's
    // is withdrawn; CT-1's claim is cleared and its old payload no longer current.
    let again = payloads(&[changed.clone(), letters[1].clone()], "second payload of");
    let keep: Vec<LetterKey> = again.iter().map(|p| p.key.clone()).collect();
    assert_eq!(
        ledger.withdraw_payloads(run.id, &keep).expect("withdraw"),
        1,
        "CT-2's"
    );
    ledger
        .record_payloads(run.id, &again)
        .expect("payloads again");
    assert_eq!(
        ledger.work_left(run.id).expect("left"),
        WorkLeft {
            planned: 2,
            claimed: 0,
            recorded: 2
        },
        "CT-2 is nobody's work"
    );
    let stale = RenderedFile {
        payload_sha256: Some(claimed[0].payload_sha256.clone()),
        ..file_of(&letters[1])
    };
    assert!(matches!(
        ledger.record_rendered(run.id, &[stale]),
        Err(LedgerError::StaleData { .. })
    ));
    let fresh = ledger.claim_letters(run.id, "w", 10, LONG).expect("claim");
    assert_eq!(
        keys(&fresh),
        ["CT-0/intent_to_offset/L1", "CT-1/intent_to_offset/L1"]
    );
    let current = RenderedFile {
        payload_sha256: Some(fresh[1].payload_sha256.clone()),
        ..file_of(&letters[1])
    };
    ledger
        .record_rendered(run.id, &[current])
        .expect("the current payload's file");

    // A later run takes CT-0 over; the first run's workers can neither claim in it nor
    // record its letter.
    let second = start(&mut ledger);
    ledger
        .record_planned(second.id, std::slice::from_ref(&changed))
        .expect("plan in the second run");
    assert!(
        ledger
            .claim_letters(run.id, "old", 10, LONG)
            .expect("claim")
            .is_empty(),
        "an interrupted run hands out nothing"
    );
    let late = RenderedFile {
        payload_sha256: Some(fresh[0].payload_sha256.clone()),
        ..file_of(&changed)
    };
    assert!(matches!(
        ledger.record_rendered(run.id, &[late]),
        Err(LedgerError::NotThisRun {
            planned_in,
            ..
        }) if planned_in == second.id
    ));
}

/// Payloads recorded in several calls all belong to the run and read back by key for the
/// run that stored them; withdrawing keeps the letters named and every rendered letter's.
pub(super) fn payloads_in_several_calls_read_back_and_withdraw_only_what_is_no_longer_planned<
    L: Backend,
>() {
    let (home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let letters = planned_with_payloads(&mut ledger, run.id, 2);
    let later: Vec<PlannedLetter> = (2..4).map(|i| intent(&format!("CT-{i}"))).collect();
    ledger.record_planned(run.id, &later).expect("plan more");
    ledger
        .record_payloads(run.id, &payloads(&later, "added"))
        .expect("add");
    let mut ledger = L::reopen(&home, ledger);
    // The second call withdrew nothing: the first two and the two added are the run's.
    assert_eq!(ledger.work_left(run.id).expect("left").recorded, 4);

    let mut asked: Vec<LetterKey> = letters
        .iter()
        .chain(&later)
        .map(|l| l.key.clone())
        .collect();
    asked.push(LetterKey::from_text("no-such-letter"));
    let read = ledger.payloads_of(run.id, &asked).expect("read");
    assert_eq!(read.len(), 4, "a key without a payload is left out");
    assert_eq!(
        read[&letters[0].key].payload,
        format!("payload of {}", letters[0].key)
    );
    assert_eq!(
        read[&later[1].key].payload,
        format!("added {}", later[1].key)
    );
    assert_eq!(read[&later[1].key].data_sha256, later[1].data_sha256);
    assert!(
        ledger
            .payloads_of(run.id + 1, &asked)
            .expect("other run")
            .is_empty(),
        "another run's payloads are not this run's"
    );

    // The run now plans only CT-2: the payloads of the letters still planned are withdrawn,
    // but a rendered letter keeps the one its file was made from.
    ledger
        .record_rendered(run.id, &[file_of(&letters[0])])
        .expect("render");
    let withdrawn = ledger
        .withdraw_payloads(run.id, std::slice::from_ref(&later[0].key))
        .expect("withdraw");
    assert_eq!(withdrawn, 2, "CT-1 and CT-3");
    assert_eq!(ledger.work_left(run.id).expect("left").recorded, 2);
    let kept = ledger.payloads_of(run.id, &asked).expect("read");
    let mut kept: Vec<&str> = kept.keys().map(LetterKey::as_str).collect();
    kept.sort_unstable();
    assert_eq!(kept, [letters[0].key.as_str(), later[0].key.as_str()]);
    assert_eq!(
        ledger
            .withdraw_payloads(run.id, std::slice::from_ref(&later[0].key))
            .expect("withdraw again"),
        0,
        "withdrawing again changes nothing"
    );
    assert!(matches!(
        ledger.withdraw_payloads(99, &[]),
        Err(LedgerError::UnknownRun { run_id: 99 })
    ));
}
