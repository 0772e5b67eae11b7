//! The work queue: claims are disjoint, limited, in key order, expire with their lease,
//! and a payload recorded again (a re-plan) replaces it and clears its claim.

use std::time::Duration;

use super::{Backend, file_of, intent, start};
use crate::ledger::*;

const LONG: Duration = Duration::from_secs(600);

/// Plans `n` intents (`CT-0`, `CT-1`, …) in `run_id` with a payload each.
fn planned_with_payloads(ledger: &mut impl Ledger, run_id: i64, n: usize) -> Vec<PlannedLetter> {
    let letters: Vec<PlannedLetter> = (0..n).map(|i| intent(&format!("CT-{i}"))).collect();
    ledger.record_planned(run_id, &letters).expect("plan");
    let payloads: Vec<LetterPayload> = letters
        .iter()
        .map(|l| LetterPayload {
            key: l.key.clone(),
            payload: format!("payload of {}", l.key),
        })
        .collect();
    ledger.record_payloads(run_id, &payloads).expect("payloads");
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
            payload: "new payload".to_owned()
        }]
    );
    assert_eq!(
        ledger.work_left(second_run.id).expect("left"),
        WorkLeft {
            planned: 2,
            claimed: 1,
            recorded: 1
        }
    );
}
