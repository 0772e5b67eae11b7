//! Referrals and Treasury actions.

use std::collections::HashMap;

use super::{Backend, date, start};
use crate::decide::{Referral, TreasuryUpdate, UpdateAction, UpdateReason};
use crate::ledger::*;
use crate::letter::LetterKey;
use crate::money::Money;
use crate::runner::records::{treasury_add, treasury_update};

fn referral(account: &str, amount: &str) -> NewReferral {
    NewReferral {
        account_id: account.to_owned(),
        liability_ids: vec!["L1".to_owned(), "L2".to_owned()],
        amount: crate::money::Money::parse(amount).expect("amount"),
        notice_key: LetterKey::intent_to_offset(account, &["L1", "L2"]),
        deadline_passed: date("2026-11-02"),
    }
}

pub(super) fn referrals_are_recorded_once_per_notice<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let a = referral("CT-1", "1234.50");
    let b = referral("CT-2", "25.00");
    assert_eq!(
        ledger
            .record_referrals(run.id, std::slice::from_ref(&a))
            .expect("first"),
        std::slice::from_ref(&a)
    );
    let later = start(&mut ledger);
    assert_eq!(
        ledger
            .record_referrals(later.id, &[a.clone(), b.clone()])
            .expect("second"),
        std::slice::from_ref(&b)
    );
    assert_eq!(
        ledger
            .record_referrals(later.id, &[a.clone(), b])
            .expect("third"),
        []
    );
    let recorded = ledger.referrals_of_account("CT-1").expect("read");
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert_eq!(
        (
            &r.notice_key,
            r.amount.plain(),
            r.run_id,
            &r.liability_ids,
            r.deadline_passed
        ),
        (
            &a.notice_key,
            "1234.50".to_owned(),
            run.id,
            &a.liability_ids,
            a.deadline_passed
        )
    );
    let all: Vec<i64> = ledger
        .referrals()
        .expect("all")
        .iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(all, [run.id, later.id]);
}

fn top_referral(amount: &str) -> Referral {
    Referral {
        account_id: "CT-1".to_owned(),
        liability_ids: vec!["L1".to_owned(), "L2".to_owned()],
        amount: Money::parse(amount).expect("amount"),
        notice_key: LetterKey::intent_to_offset("CT-1", &["L1", "L2"]),
        deadline_passed: date("2026-07-31"),
    }
}

fn decrease(before: &str, after: &str) -> TreasuryUpdate {
    TreasuryUpdate {
        account_id: "CT-1".to_owned(),
        notice_key: LetterKey::intent_to_offset("CT-1", &["L1", "L2"]),
        action: UpdateAction::Decrease,
        reason: UpdateReason::Reduced,
        amount_before: Money::parse(before).expect("amount"),
        amount_after: Money::parse(after).expect("amount"),
        liability_ids: vec!["L1".to_owned(), "L2".to_owned()],
        why: "payments".to_owned(),
    }
}

pub(super) fn what_top_holds_is_the_latest_action_and_a_run_records_each_action_once<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    let r = top_referral("1040.00");
    let deadlines = HashMap::from([(r.notice_key.clone(), r.deadline_passed)]);
    let add = treasury_add(&r, "Ann Lee", "1234");
    assert_eq!(
        ledger
            .record_treasury(run.id, std::slice::from_ref(&add), &deadlines)
            .expect("add"),
        1
    );
    // The same run again (a resume): nothing new.
    assert_eq!(
        ledger
            .record_treasury(run.id, &[add], &deadlines)
            .expect("again"),
        0
    );
    let held = ledger.top_holdings().expect("holdings");
    assert_eq!(held["CT-1"][0].amount, Money::parse("1040.00").expect("m"));
    assert_eq!(ledger.referrals().expect("referrals").len(), 1);

    let later = start(&mut ledger);
    let down = treasury_update(&decrease("1040.00", "960.00"), "Ann Lee", "1234");
    assert_eq!(down.dollars(), Money::parse("80.00").expect("m"));
    ledger
        .record_treasury(later.id, &[down], &HashMap::new())
        .expect("decrease");
    let held = ledger.top_holdings().expect("holdings");
    assert_eq!(held["CT-1"].len(), 1);
    assert_eq!(held["CT-1"][0].amount, Money::parse("960.00").expect("m"));
    assert!(held["CT-1"][0].updated_on.is_some());
    assert_eq!(ledger.treasury_runs().expect("runs"), [run.id, later.id]);
    assert_eq!(
        ledger
            .treasury_actions(Some(later.id), None)
            .expect("actions")
            .len(),
        1
    );
}
