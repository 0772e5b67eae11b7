//! Unit tests for referrals, held referrals, Treasury updates and `to_refer`.

use super::tests::{account, d, decide_on, federal, ito_notice, liability, m, review};
use super::*;
use crate::account::{Bankruptcy, OffsetSource, ReceivingAgency, ReviewDecision, TopReferral};
use crate::calendar::HolidayCalendar;
use crate::config::{BUILT_IN, Config};

const KEY: &str = "CT-1/intent_to_offset/L1+L2";

/// An account with L1 (740.00) and L2 (300.00) covered by an intent to offset mailed
/// 2026-06-01 (deadline 2026-07-31), planned on 2026-12-01.
fn referred_account() -> Account {
    let mut a = account();
    a.liabilities = vec![
        liability("L1", "2024-04-15", "600.00", "60.00", "80.00"),
        liability("L2", "2024-04-15", "300.00", "0.00", "0.00"),
    ];
    a.notices = vec![ito_notice("2026-06-01", &["L1", "L2"], false)];
    a
}

fn top(ids: &[&str], amount: &str) -> TopReferral {
    TopReferral {
        notice_key: LetterKey::from_text(KEY),
        liability_ids: ids.iter().map(|s| s.to_string()).collect(),
        referred_on: d("2026-08-03"),
        amount: m(amount),
        updated_on: None,
    }
}

fn stay() -> Bankruptcy {
    Bankruptcy {
        case_number: "26-1".into(),
        court: "D. Conn.".into(),
        chapter: 13,
        filed_on: d("2026-10-01"),
        stay_ended_on: None,
    }
}

fn held(decision: &AccountDecision) -> Vec<(HoldReason, Vec<String>)> {
    decision
        .held_referrals
        .iter()
        .map(|h| (h.reason, h.liability_ids.clone()))
        .collect()
}

fn updates(decision: &AccountDecision) -> Vec<(UpdateAction, UpdateReason, String, String)> {
    decision
        .treasury_updates
        .iter()
        .map(|u| {
            (
                u.action,
                u.reason,
                u.amount_before.plain(),
                u.amount_after.plain(),
            )
        })
        .collect()
}

/// Decides on 2026-12-01 with this configuration and what the ledger says TOP holds.
fn decide_on_2026_12_01(a: &Account, config: &Config, ledger: &[TopReferral]) -> AccountDecision {
    let calendar = HolidayCalendar::connecticut();
    let ctx = DecideContext {
        as_of: d("2026-12-01"),
        mail_date: d("2026-12-01"),
        policy: &config.policy,
        calendar: &calendar,
    };
    decide_with(a, &[], ledger, &ctx)
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn not_income_tax_comes_right_after_a_zero_balance() {
    let mut a = account();
    let mut sales = liability("L1", "2024-04-15", "100.00", "0.00", "0.00");
    sales.tax_type = "sales_use".into();
    sales.enforceable = false; // not_income_tax is checked first
    let mut paid = liability("L2", "2024-04-15", "0.00", "0.00", "0.00");
    paid.tax_type = "withholding".into();
    a.liabilities = vec![
        sales,
        paid,
        liability("L3", "2024-04-15", "50.00", "0.00", "0.00"),
    ];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let suppressed: Vec<(SuppressReason, Vec<String>)> = decision
        .suppressed
        .iter()
        .map(|s| (s.reason, s.liability_ids.clone()))
        .collect();
    assert_eq!(suppressed, [(SuppressReason::NotIncomeTax, ids(&["L1"]))]);
    assert!(decision.suppressed[0].why.contains("sales_use"));
    assert_eq!(decision.letters[0].liability_ids, ["L3"]);
}

#[test]
fn offsetable_tax_types_are_configuration() {
    let mut a = account();
    let mut sales = liability("L1", "2024-04-15", "100.00", "0.00", "0.00");
    sales.tax_type = "sales_use".into();
    a.liabilities = vec![sales];
    let mut config = Config::parse(BUILT_IN).expect("config");
    config.policy.offsetable_tax_types.push("sales_use".into());
    let decision = decide_on_2026_12_01(&a, &config, &[]);
    assert_eq!(decision.letters.len(), 1);
}

#[test]
fn a_referral_never_includes_a_liability_that_is_not_income_tax() {
    let mut a = referred_account();
    a.liabilities[1].tax_type = "withholding".into();
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(decision.referrals[0].liability_ids, ["L1"]);
    assert_eq!(decision.referrals[0].amount, m("740.00"));
    assert!(
        decision.held_referrals.is_empty(),
        "a final bar is not held"
    );
}

#[test]
fn held_for_a_stay_first_then_nothing_referable_then_minimum_then_unposted_offset() {
    // Stay: first, even with an unposted offset and a pending review.
    let mut a = referred_account();
    a.bankruptcy = Some(stay());
    a.offsets = vec![federal("F1", "900.00", "500.00", "1040.00", false)];
    a.offsets[0].posted_on = None;
    a.reviews = vec![review("R1", &["L2"], ReviewDecision::Pending)];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.referrals.is_empty());
    assert_eq!(
        held(&decision),
        [(HoldReason::BankruptcyStay, ids(&["L1", "L2"]))]
    );

    // Nothing referable but a pending review.
    let mut a = referred_account();
    a.liabilities[0].tax = m("0.00");
    a.liabilities[0].penalty = m("0.00");
    a.liabilities[0].interest = m("0.00");
    a.reviews = vec![review("R1", &["L2"], ReviewDecision::Pending)];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(
        held(&decision),
        [(HoldReason::NothingReferable, ids(&["L2"]))]
    );
    assert!(decision.held_referrals[0].why.contains("R1"));

    // Below the minimum.
    let mut a = referred_account();
    a.liabilities[0].tax = m("0.00");
    a.liabilities[0].penalty = m("0.00");
    a.liabilities[0].interest = m("0.00");
    a.liabilities[1].tax = m("24.99");
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(held(&decision), [(HoldReason::BelowMinimum, ids(&["L2"]))]);

    // A federal offset not posted yet.
    let mut a = referred_account();
    a.offsets = vec![federal("F1", "900.00", "500.00", "1040.00", false)];
    a.offsets[0].posted_on = None;
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(
        held(&decision),
        [(HoldReason::OffsetNotPosted, ids(&["L1", "L2"]))]
    );
    assert!(decision.held_referrals[0].why.contains("F1"));
}

#[test]
fn an_offset_posted_after_the_balance_date_holds_and_one_posted_on_it_does_not() {
    let mut a = referred_account();
    a.offsets = vec![federal("F1", "900.00", "500.00", "1040.00", false)];
    a.offsets[0].posted_on = Some(d("2026-11-02")); // balance_as_of is 2026-11-01
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(held(&decision)[0].0, HoldReason::OffsetNotPosted);
    a.offsets[0].posted_on = Some(d("2026-11-01"));
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.held_referrals.is_empty());
    assert_eq!(decision.referrals[0].amount, m("1040.00"));
}

#[test]
fn a_state_offset_holds_nothing() {
    let mut a = referred_account();
    let mut state = federal("S1", "900.00", "500.00", "0.00", false);
    state.posted_on = None;
    state.source = OffsetSource::State {
        agency: ReceivingAgency {
            name: "DSS".into(),
            address: a.address.clone().expect("address"),
            phone: "800-228-5437".into(),
        },
    };
    a.offsets = vec![state];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(decision.referrals.len(), 1);
}

#[test]
fn nothing_is_held_when_every_bar_is_final() {
    let mut a = referred_account();
    a.liabilities[0].enforceable = false;
    a.liabilities[1].tax = m("0.00");
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.referrals.is_empty());
    assert!(decision.held_referrals.is_empty());
}

#[test]
fn a_liability_top_holds_is_never_referred_again() {
    let mut a = referred_account();
    a.referrals = vec![top(&["L1", "L2"], "1040.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.referrals.is_empty());
    assert!(decision.held_referrals.is_empty());
    assert!(decision.treasury_updates.is_empty());
}

#[test]
fn a_left_out_liability_is_referred_later_on_its_own_under_the_same_notice() {
    let mut a = referred_account();
    // L2's review was pending when L1 was referred; it was upheld since.
    a.reviews = vec![review(
        "R1",
        &["L2"],
        ReviewDecision::Upheld {
            decided_on: d("2026-11-10"),
        },
    )];
    a.notices.push(Notice {
        kind: LetterKind::ReviewOutcome,
        mailed_on: d("2026-11-12"),
        subject: crate::account::NoticeSubject::Review("R1".into()),
        undeliverable: false,
    });
    a.referrals = vec![top(&["L1"], "740.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(decision.referrals.len(), 1);
    assert_eq!(decision.referrals[0].liability_ids, ["L2"]);
    assert_eq!(decision.referrals[0].amount, m("300.00"));
    assert_eq!(decision.referrals[0].notice_key.as_str(), KEY);
}

#[test]
fn a_deleted_referral_makes_its_liabilities_referable_again() {
    let mut a = referred_account();
    a.bankruptcy = Some(Bankruptcy {
        stay_ended_on: Some(d("2026-11-15")),
        ..stay()
    });
    a.referrals = vec![top(&["L1", "L2"], "0.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(decision.referrals.len(), 1);
    assert_eq!(decision.referrals[0].amount, m("1040.00"));
    assert!(
        decision.treasury_updates.is_empty(),
        "nothing held to update"
    );
}

#[test]
fn a_stay_or_a_full_reversal_deletes_at_once() {
    let mut a = referred_account();
    a.referrals = vec![top(&["L1", "L2"], "1040.00")];
    a.bankruptcy = Some(stay());
    a.offsets = vec![federal("F1", "900.00", "500.00", "1040.00", false)];
    a.offsets[0].posted_on = None; // no freeze for a stay
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(
        updates(&decision),
        [(
            UpdateAction::Delete,
            UpdateReason::BankruptcyStay,
            "1040.00".into(),
            "0.00".into()
        )]
    );
    assert!(decision.treasury_updates[0].why.contains("26-1"));

    let mut a = referred_account();
    a.referrals = vec![top(&["L1", "L2"], "1040.00")];
    a.offsets = vec![federal("F1", "900.00", "500.00", "1040.00", false)];
    a.offsets[0].posted_on = None;
    let reversed = ReviewDecision::Reversed {
        decided_on: d("2026-11-10"),
    };
    a.reviews = vec![review("R1", &["L1", "L2"], reversed)];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(updates(&decision)[0].1, UpdateReason::Reversed);
    assert_eq!(decision.treasury_updates[0].liability_ids, ["L1", "L2"]);
}

#[test]
fn nothing_changes_while_an_offset_is_unposted_or_a_review_pending() {
    let mut a = referred_account();
    a.referrals = vec![top(&["L1", "L2"], "1040.00")];
    a.liabilities[0].interest = m("0.00"); // would be a decrease
    a.offsets = vec![federal("F1", "900.00", "500.00", "1040.00", false)];
    a.offsets[0].posted_on = None;
    assert!(
        decide_on(&a, "2026-12-01", "2026-12-01")
            .treasury_updates
            .is_empty()
    );
    a.offsets.clear();
    a.reviews = vec![review("R1", &["L2"], ReviewDecision::Pending)];
    assert!(
        decide_on(&a, "2026-12-01", "2026-12-01")
            .treasury_updates
            .is_empty()
    );
    a.reviews.clear();
    assert_eq!(
        updates(&decide_on(&a, "2026-12-01", "2026-12-01")),
        [(
            UpdateAction::Decrease,
            UpdateReason::Reduced,
            "1040.00".into(),
            "960.00".into()
        )]
    );
}

#[test]
fn delete_reasons_in_their_order() {
    let zero = |a: &mut Account, i: usize| {
        a.liabilities[i].tax = m("0.00");
        a.liabilities[i].penalty = m("0.00");
        a.liabilities[i].interest = m("0.00");
    };
    let reason = |a: &Account| {
        let decision = decide_on(a, "2026-12-01", "2026-12-01");
        let u = updates(&decision);
        assert_eq!(u.len(), 1, "{u:?}");
        assert_eq!(u[0].0, UpdateAction::Delete);
        assert_eq!(u[0].3, "0.00");
        u[0].1
    };
    let base = || {
        let mut a = referred_account();
        a.referrals = vec![top(&["L1", "L2"], "1040.00")];
        a
    };
    // Something referable, under the minimum.
    let mut a = base();
    zero(&mut a, 0);
    a.liabilities[1].tax = m("10.00");
    assert_eq!(reason(&a), UpdateReason::BelowMinimum);
    // Every balance zero.
    let mut a = base();
    zero(&mut a, 0);
    zero(&mut a, 1);
    assert_eq!(reason(&a), UpdateReason::Paid);
    // Barred for good: not income tax before reversed before too old before not enforceable.
    let mut a = base();
    a.liabilities[0].enforceable = false;
    a.liabilities[1].tax_type = "sales_use".into();
    assert_eq!(reason(&a), UpdateReason::NotIncomeTax);
    let mut a = base();
    a.liabilities[0].enforceable = false;
    a.liabilities[1].due_date = d("2015-04-15");
    assert_eq!(reason(&a), UpdateReason::TooOld);
    let mut a = base();
    a.liabilities[0].due_date = d("2015-04-15");
    a.reviews = vec![review(
        "R1",
        &["L2"],
        ReviewDecision::Reversed {
            decided_on: d("2026-11-10"),
        },
    )];
    assert_eq!(reason(&a), UpdateReason::Reversed);
    let mut a = base();
    a.liabilities[0].enforceable = false;
    a.liabilities[1].enforceable = false;
    assert_eq!(reason(&a), UpdateReason::NotEnforceable);
}

#[test]
fn decrease_after_a_reduced_review_and_after_a_partial_loss() {
    let mut a = referred_account();
    a.referrals = vec![top(&["L1", "L2"], "1040.00")];
    a.reviews = vec![review(
        "R1",
        &["L1"],
        ReviewDecision::Reduced {
            decided_on: d("2026-11-10"),
            reduced_balance: m("500.00"),
        },
    )];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(
        updates(&decision),
        [(
            UpdateAction::Decrease,
            UpdateReason::Reduced,
            "1040.00".into(),
            "800.00".into()
        )]
    );
    assert!(decision.treasury_updates[0].why.contains("review R1"));

    // One liability no longer referable: a decrease to the rest, not a delete.
    let mut a = referred_account();
    a.referrals = vec![top(&["L1", "L2"], "1040.00")];
    a.liabilities[1].enforceable = false;
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(updates(&decision)[0].3, "740.00");
    assert!(decision.treasury_updates[0].why.contains("L2"));
}

#[test]
fn interest_growth_never_increases_what_top_holds() {
    let mut a = referred_account();
    a.referrals = vec![top(&["L1", "L2"], "1000.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.treasury_updates.is_empty());
    a.referrals = vec![top(&["L1", "L2"], "1040.00")];
    assert!(
        decide_on(&a, "2026-12-01", "2026-12-01")
            .treasury_updates
            .is_empty()
    );
}

#[test]
fn the_ledgers_amount_wins_for_the_same_referral() {
    let mut a = referred_account();
    a.referrals = vec![top(&["L1", "L2"], "2000.00")];
    let config = Config::parse(BUILT_IN).expect("config");
    let ledger = [top(&["L1", "L2"], "1040.00")];
    let with_ledger = decide_on_2026_12_01(&a, &config, &ledger);
    assert!(with_ledger.treasury_updates.is_empty());
    let without = decide_on_2026_12_01(&a, &config, &[]);
    assert_eq!(without.treasury_updates.len(), 1);
}

#[test]
fn to_refer_follows_what_top_will_hold() {
    let upheld = ReviewDecision::Upheld {
        decided_on: d("2026-11-10"),
    };
    let to_refer = |a: &Account| {
        let decision = decide_on(a, "2026-12-01", "2026-12-01");
        let letter = decision
            .letters
            .iter()
            .find(|l| l.kind == LetterKind::ReviewOutcome)
            .expect("a review letter");
        match letter.amounts {
            Amounts::Review { to_refer, .. } => to_refer,
            _ => panic!("review amounts"),
        }
    };
    // Not referred yet: the whole notice, as the referral made today.
    let mut a = referred_account();
    a.reviews = vec![review("R1", &["L2"], upheld)];
    assert_eq!(to_refer(&a), Some(m("1040.00")));
    // Before the deadline: the rule ignoring the deadline.
    a.notices = vec![ito_notice("2026-11-02", &["L1", "L2"], false)];
    assert_eq!(to_refer(&a), Some(m("1040.00")));
    // Referred already: what TOP holds after this plan's decrease.
    let mut a = referred_account();
    a.reviews = vec![review(
        "R1",
        &["L1"],
        ReviewDecision::Reduced {
            decided_on: d("2026-11-10"),
            reduced_balance: m("500.00"),
        },
    )];
    a.referrals = vec![top(&["L1", "L2"], "1040.00")];
    assert_eq!(to_refer(&a), Some(m("800.00")));
    // Part referred, the rest referred now: both count.
    let mut a = referred_account();
    a.reviews = vec![review("R1", &["L2"], upheld)];
    a.referrals = vec![top(&["L1"], "740.00")];
    assert_eq!(to_refer(&a), Some(m("1040.00")));
    // Held: nothing added.
    let mut a = referred_account();
    a.reviews = vec![review("R1", &["L2"], upheld)];
    a.offsets = vec![federal("F1", "900.00", "500.00", "1040.00", false)];
    a.offsets[0].posted_on = None;
    assert_eq!(to_refer(&a), None);
    // No notice covers the reviewed liability yet: today's intent to offset counts.
    let mut a = referred_account();
    a.notices.clear();
    a.reviews = vec![review("R1", &["L2"], upheld)];
    assert_eq!(to_refer(&a), Some(m("1040.00")));
}
