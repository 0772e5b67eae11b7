//! Letters: planning, rendering, state changes, events and the notices decide sees.

use super::{Backend, file_of, intent, letter, start};
use crate::account::{Notice, NoticeSubject};
use crate::ledger::*;
use crate::letter::{LetterKey, LetterKind, Variant};

fn events(ledger: &impl Ledger, key: &LetterKey) -> Vec<(Option<LetterState>, LetterState)> {
    ledger
        .events_of(key)
        .expect("events")
        .iter()
        .map(|e| (e.from_state, e.to_state))
        .collect()
}

fn state(ledger: &impl Ledger, key: &LetterKey) -> LetterState {
    ledger
        .letter(key)
        .expect("read")
        .map(|l| l.state)
        .expect("recorded")
}

pub(super) fn record_planned_inserts_and_is_idempotent<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let letters = [intent("CT-1"), intent("CT-2"), intent("CT-3")];
    let keys: Vec<LetterKey> = letters.iter().map(|l| l.key.clone()).collect();
    assert_eq!(ledger.record_planned(run.id, &letters).expect("plan"), keys);
    assert_eq!(
        ledger.record_planned(run.id, &letters).expect("again"),
        keys
    );
    for key in &keys {
        assert_eq!(events(&ledger, key), [(None, LetterState::Planned)]);
    }
    let record = ledger.letter(&keys[0]).expect("read").expect("recorded");
    assert_eq!(
        (record.run_id, record.state, record.file.as_deref()),
        (run.id, LetterState::Planned, None)
    );
    assert_eq!(record.liability_ids, ["L1"]);
    assert_eq!(record.deadline, letters[0].deadline);

    // A later run (the first one died) takes the planned letters over, with one event each.
    let next = start(&mut ledger);
    assert_eq!(
        ledger.record_planned(next.id, &letters).expect("take over"),
        keys
    );
    assert_eq!(
        events(&ledger, &keys[0]),
        [
            (None, LetterState::Planned),
            (Some(LetterState::Planned), LetterState::Planned)
        ]
    );
    assert_eq!(ledger.letters_of_run(next.id, None).expect("read").len(), 3);
    assert!(
        ledger
            .letters_of_run(run.id, None)
            .expect("read")
            .is_empty()
    );
}

pub(super) fn record_planned_reissues_a_returned_key_and_skips_a_rendered_one<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let returned = intent("CT-1");
    let rendered = intent("CT-2");
    let both = [returned.clone(), rendered.clone()];
    ledger.record_planned(run.id, &both).expect("plan");
    ledger
        .record_rendered(run.id, &[file_of(&returned), file_of(&rendered)])
        .expect("render");
    for to in [LetterState::Released, LetterState::Returned] {
        ledger
            .set_state(&returned.key, to, None, "mailroom")
            .expect("mark");
    }

    let next = start(&mut ledger);
    let mut changed = returned.clone();
    changed.data_sha256 = "d2".to_owned();
    let keys = ledger
        .record_planned(next.id, &[changed, rendered.clone()])
        .expect("plan again");
    assert_eq!(keys, std::slice::from_ref(&returned.key));

    let reissued = ledger.letter(&returned.key).expect("read").expect("row");
    assert_eq!(
        (
            reissued.state,
            reissued.run_id,
            reissued.file,
            reissued.data_sha256.as_str()
        ),
        (LetterState::Planned, next.id, None, "d2")
    );
    let history = ledger.events_of(&returned.key).expect("events");
    assert_eq!(
        history.len(),
        5,
        "planned, rendered, released, returned, planned"
    );
    let last = history.last().expect("event");
    assert_eq!(
        (last.from_state, last.to_state, last.run_id),
        (
            Some(LetterState::Returned),
            LetterState::Planned,
            Some(next.id)
        )
    );
    assert!(
        last.detail.contains("reissued") && last.detail.contains("d2"),
        "{}",
        last.detail
    );
    assert!(
        history[1].detail.contains("sha-CT-1"),
        "{}",
        history[1].detail
    );

    let untouched = ledger.letter(&rendered.key).expect("read").expect("row");
    assert_eq!(
        (untouched.state, untouched.run_id),
        (LetterState::Rendered, run.id)
    );
    assert_eq!(events(&ledger, &rendered.key).len(), 2);
}

pub(super) fn record_rendered_only_moves_planned_letters<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let [a, b] = [intent("CT-1"), intent("CT-2")];
    ledger
        .record_planned(run.id, &[a.clone(), b.clone()])
        .expect("plan");
    ledger
        .record_rendered(run.id, &[file_of(&a)])
        .expect("render");
    let record = ledger.letter(&a.key).expect("read").expect("row");
    assert_eq!(
        record.file_sha256.as_deref(),
        Some("sha-CT-1/intent_to_offset/L1")
    );
    assert_eq!(
        (record.pages, record.template_sha256.as_deref()),
        (Some(2), Some("t1"))
    );
    // The same file again (a retried chunk) is a no-op.
    ledger
        .record_rendered(run.id, &[file_of(&a)])
        .expect("retry");
    assert_eq!(events(&ledger, &a.key).len(), 2);
    // A different file for a rendered letter is refused.
    let mut other = file_of(&a);
    other.file_sha256 = "different".to_owned();
    let err = ledger
        .record_rendered(run.id, &[other])
        .expect_err("re-render");
    assert!(matches!(
        err,
        LedgerError::NotPlanned {
            state: LetterState::Rendered,
            ..
        }
    ));

    // A cancelled letter in a chunk fails the whole chunk, naming it.
    ledger
        .set_state(&b.key, LetterState::Cancelled, None, "pulled")
        .expect("cancel");
    let c = intent("CT-3");
    ledger
        .record_planned(run.id, std::slice::from_ref(&c))
        .expect("plan");
    let err = ledger
        .record_rendered(run.id, &[file_of(&c), file_of(&b)])
        .expect_err("cancelled");
    assert_eq!(
        err.to_string(),
        "Failed to record `CT-2/intent_to_offset/L1` as rendered: it is cancelled, not planned"
    );
    assert_eq!(state(&ledger, &c.key), LetterState::Planned, "rolled back");

    let unknown = intent("CT-9");
    assert!(matches!(
        ledger.record_rendered(run.id, &[file_of(&unknown)]),
        Err(LedgerError::UnknownLetter { .. })
    ));
}

pub(super) fn set_state_refuses_impossible_changes_and_records_one_event_per_change<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let mut email = intent("CT-1");
    email.channel = crate::letter::Channel::Email;
    email.mail_class = None;
    let key = email.key.clone();
    ledger
        .record_planned(run.id, &[email.clone()])
        .expect("plan");
    ledger
        .record_rendered(run.id, &[file_of(&email)])
        .expect("render");
    let path = [
        LetterState::Sending,
        LetterState::Uncertain,
        LetterState::Sending,
        LetterState::Sent,
    ];
    for to in path {
        let record = ledger
            .set_state(&key, to, Some(run.id), "smtp")
            .expect("allowed change");
        assert_eq!(record.state, to);
    }
    assert_eq!(events(&ledger, &key).len(), 2 + path.len());
    // The same state again changes nothing.
    ledger
        .set_state(&key, LetterState::Sent, None, "again")
        .expect("no-op");
    assert_eq!(events(&ledger, &key).len(), 2 + path.len());

    let err = ledger
        .set_state(&key, LetterState::Planned, None, "resend")
        .expect_err("sent → planned");
    assert!(matches!(err, LedgerError::Transition { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Cannot move `CT-1/intent_to_offset/L1` from sent to planned: a sent letter can only become returned"
    );
    assert_eq!(state(&ledger, &key), LetterState::Sent);
    assert_eq!(events(&ledger, &key).len(), 2 + path.len());

    let returned = ledger
        .set_state(&key, LetterState::Returned, None, "bounced")
        .expect("returned");
    assert_eq!(returned.run_id, run.id, "no run: the last run stays");
    let replanned = ledger
        .set_state(&key, LetterState::Planned, Some(run.id), "reissue")
        .expect("reissue");
    assert_eq!((replanned.file, replanned.file_sha256), (None, None));
    let history = ledger.events_of(&key).expect("events");
    assert_eq!(history.len(), 4 + path.len());
    assert!(history.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(history[history.len() - 2].run_id, None);
    assert_eq!(history[history.len() - 2].detail, "bounced");

    let rendered = intent("CT-2");
    ledger
        .record_planned(run.id, std::slice::from_ref(&rendered))
        .expect("plan");
    ledger
        .record_rendered(run.id, &[file_of(&rendered)])
        .expect("render");
    assert!(matches!(
        ledger.set_state(&rendered.key, LetterState::Planned, None, "re-render"),
        Err(LedgerError::Transition { .. })
    ));
    assert!(matches!(
        ledger.set_state(&intent("CT-9").key, LetterState::Cancelled, None, "x"),
        Err(LedgerError::UnknownLetter { .. })
    ));
}

pub(super) fn prior_notices_map_every_kind_and_variant<L: Backend>() {
    use LetterKind::*;
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let letters = [
        letter("A", IntentToOffset, None, "L1+L10+L2"),
        letter("A", OffsetNotice, Some(Variant::Federal), "OF1"),
        letter("A", OffsetNotice, Some(Variant::State), "OF2"),
        letter("B", Refund, Some(Variant::ExcessOffset), "OF3"),
        letter("B", Refund, Some(Variant::LateReturn), "LR1"),
        letter("B", ReviewOutcome, Some(Variant::Reversed), "RV1"),
        letter("C", IntentToOffset, None, "L5"),
    ];
    let not_notices = [
        letter("C", IntentToOffset, None, "L6"), // stays planned
        letter("C", IntentToOffset, None, "L7"), // cancelled
        letter("D", IntentToOffset, None, "L8"), // failed
    ];
    let all: Vec<PlannedLetter> = letters.iter().chain(&not_notices).cloned().collect();
    ledger.record_planned(run.id, &all).expect("plan");
    let files: Vec<RenderedFile> = letters.iter().map(file_of).collect();
    ledger.record_rendered(run.id, &files).expect("render");
    let mark = |ledger: &mut L, l: &PlannedLetter, to: &[LetterState]| {
        for s in to {
            ledger.set_state(&l.key, *s, None, "test").expect("mark");
        }
    };
    use LetterState::*;
    mark(&mut ledger, &letters[1], &[Released]);
    mark(&mut ledger, &letters[2], &[Sending, Sent]);
    mark(&mut ledger, &letters[3], &[Sending, Uncertain]);
    mark(&mut ledger, &letters[6], &[Released, Returned]);
    mark(&mut ledger, &not_notices[1], &[Cancelled]);
    mark(&mut ledger, &not_notices[2], &[Failed]);

    let notices = ledger.prior_notices().expect("notices");
    let mailed = letters[0].letter_date;
    let notice = |kind, subject, undeliverable| Notice {
        kind,
        mailed_on: mailed,
        subject,
        undeliverable,
    };
    let ids = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut a = notices.get("A").cloned().expect("A");
    let mut b = notices.get("B").cloned().expect("B");
    let key = |n: &Notice| (n.kind, n.subject.key_part());
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(
        a,
        [
            notice(
                IntentToOffset,
                NoticeSubject::Liabilities(ids(&["L1", "L10", "L2"])),
                false
            ),
            notice(OffsetNotice, NoticeSubject::Offset("OF1".into()), false),
            notice(OffsetNotice, NoticeSubject::Offset("OF2".into()), false),
        ]
    );
    assert_eq!(
        b,
        [
            notice(Refund, NoticeSubject::LateReturn("LR1".into()), false),
            notice(Refund, NoticeSubject::Offset("OF3".into()), false),
            notice(ReviewOutcome, NoticeSubject::Review("RV1".into()), false),
        ]
    );
    assert_eq!(
        notices.get("C").map(Vec::as_slice),
        Some(
            &[notice(
                IntentToOffset,
                NoticeSubject::Liabilities(ids(&["L5"])),
                true
            )][..]
        )
    );
    assert!(!notices.contains_key("D"));
    for l in &letters {
        let record = ledger.letter(&l.key).expect("read").expect("row");
        let n = notice_of(&record).expect("notice").expect("is a notice");
        assert_eq!(
            LetterKey::new(&l.account_id, n.kind, &n.subject.key_part()),
            l.key
        );
    }
}

pub(super) fn ten_thousand_letters_plan_and_render_in_chunks<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let letters: Vec<PlannedLetter> = (0..10_000).map(|i| intent(&format!("CT-{i:05}"))).collect();
    let keys = ledger.record_planned(run.id, &letters).expect("plan");
    assert_eq!(keys.len(), letters.len());
    for chunk in letters.chunks(64) {
        let files: Vec<RenderedFile> = chunk.iter().map(file_of).collect();
        ledger.record_rendered(run.id, &files).expect("render");
    }
    let rendered = ledger
        .letters_of_run(run.id, Some(LetterState::Rendered))
        .expect("read");
    assert_eq!(rendered.len(), letters.len());
    assert!(rendered.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(
        ledger.prior_notices().expect("notices").len(),
        letters.len()
    );
    // Read a page at a time, the same letters in the same order.
    let (mut paged, mut after) = (Vec::new(), None);
    loop {
        let page = ledger
            .letters_of_run_after(run.id, Some(LetterState::Rendered), after.as_ref(), 4_096)
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        paged.extend(page);
    }
    assert_eq!(paged, rendered);
    assert!(
        ledger
            .letters_of_run_after(run.id, Some(LetterState::Planned), None, 10)
            .expect("none planned")
            .is_empty()
    );
}

/// A file composed from other data than the letter is planned with now (a worker that read
/// the payload before the letter was planned again with new figures) is refused with both
/// hashes, and its chunk records nothing; the file of the current data is recorded.
pub(super) fn record_rendered_refuses_a_file_of_other_data<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let [a, b] = [intent("CT-1"), intent("CT-2")];
    ledger
        .record_planned(run.id, &[a.clone(), b.clone()])
        .expect("plan");
    let stale = RenderedFile {
        data_sha256: "old-figures".to_owned(),
        ..file_of(&a)
    };
    let err = ledger
        .record_rendered(run.id, &[file_of(&b), stale])
        .expect_err("stale data");
    match &err {
        LedgerError::StaleData {
            key,
            rendered,
            planned,
        } => {
            assert_eq!(key, &a.key);
            assert_eq!((rendered.as_str(), planned.as_str()), ("old-figures", "d1"));
        }
        other => panic!("expected StaleData, got {other:?}"),
    }
    assert!(err.to_string().contains("old-figures"), "{err}");
    assert_eq!(state(&ledger, &a.key), LetterState::Planned);
    assert_eq!(
        state(&ledger, &b.key),
        LetterState::Planned,
        "whole chunk refused"
    );
    ledger
        .record_rendered(run.id, &[file_of(&a), file_of(&b)])
        .expect("current data");
    assert_eq!(state(&ledger, &a.key), LetterState::Rendered);
}

/// A key given twice in one call is recorded as if the call took its letters one by one
/// (the backends that write a call's letters in one statement must agree): planned twice
/// with other data, two events and the second data; the same file twice, one `rendered`
/// event; two different files, the second refused (the letter is rendered by then) and
/// the chunk with it; a payload twice, the second kept. [`LetterStore::letters`] reads the
/// recorded ones among several keys.
pub(super) fn a_key_given_twice_in_one_call_counts_as_two_calls<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let a = intent("CT-1");
    let a2 = PlannedLetter {
        data_sha256: "d2".to_owned(),
        ..a.clone()
    };
    let b = intent("CT-2");
    assert_eq!(
        ledger
            .record_planned(run.id, &[a.clone(), b.clone(), a2.clone()])
            .expect("plan"),
        [a.key.clone(), b.key.clone()]
    );
    assert_eq!(
        events(&ledger, &a.key),
        [
            (None, LetterState::Planned),
            (Some(LetterState::Planned), LetterState::Planned)
        ]
    );
    let unknown = intent("CT-404").key;
    let found = ledger
        .letters(&[a.key.clone(), unknown.clone(), b.key.clone()])
        .expect("letters");
    assert_eq!(found.len(), 2);
    assert_eq!(
        found.get(&a.key).map(|l| l.data_sha256.as_str()),
        Some("d2")
    );
    assert_eq!(
        found.get(&b.key),
        ledger.letter(&b.key).expect("read").as_ref()
    );

    let payload = |text: &str| LetterPayload {
        key: b.key.clone(),
        payload: text.to_owned(),
        data_sha256: b.data_sha256.clone(),
    };
    ledger
        .record_payloads(run.id, &[payload("first"), payload("second")])
        .expect("payloads");
    let claimed = ledger
        .claim_letters(run.id, "w", 10, std::time::Duration::from_secs(60))
        .expect("claim");
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.payload.as_str())
            .collect::<Vec<_>>(),
        ["second"]
    );

    ledger
        .record_rendered(run.id, &[file_of(&a2), file_of(&a2)])
        .expect("same file twice");
    assert_eq!(events(&ledger, &a.key).len(), 3);
    let other = RenderedFile {
        file: "other.pdf".to_owned(),
        ..file_of(&b)
    };
    let err = ledger
        .record_rendered(run.id, &[file_of(&b), other])
        .expect_err("a second file");
    assert!(
        matches!(err, LedgerError::NotPlanned { ref key, state: LetterState::Rendered } if key == &b.key),
        "{err:?}"
    );
    assert_eq!(state(&ledger, &b.key), LetterState::Planned);
}
