//! A `reduced` review's amount counted once across referrals, the latest decided review
//! governing, events after the as-of date not yet happened, and `referrals[].amount`
//! parsed like every other amount: each from its fixture folder through `missive plan`
//! (letters.md: Referral, Treasury updates, Review outcome; docs/decisions.md).
//!
//! The accounts come from an independent review's probes. Unless a file says otherwise an
//! account has individual income tax liabilities of 1000.00 (no penalty or interest) due
//! 2022-04-18, balances as of 2026-11-01, and an intent to offset mailed 2026-06-01
//! (deadline 2026-07-31); TOP records were referred 2026-08-03. Plans are made on
//! 2026-12-01.

mod common;

use common::{array, fixture, letter, plan, plan_ok, referrals, strings};
use serde_json::{Value, json};

fn plan_of(rule: &str) -> Value {
    plan_ok(&fixture(rule), &["--as-of", "2026-12-01"])
}

/// One account's updates as `(liability_ids, action, reason, amount_before, amount_after)`.
fn updates(plan: &Value, account: &str) -> Vec<(Vec<String>, String, String, String, String)> {
    array(&plan["treasury_updates"])
        .iter()
        .filter(|u| u["account_id"] == account)
        .map(|u| {
            let s = |k: &str| u[k].as_str().expect(k).to_owned();
            (
                strings(&u["liability_ids"]),
                s("action"),
                s("reason"),
                s("amount_before"),
                s("amount_after"),
            )
        })
        .collect()
}

fn upd(ids: &[&str], action: &str, reason: &str, before: &str, after: &str) -> UpdateRow {
    (
        ids.iter().map(|s| (*s).to_owned()).collect(),
        action.to_owned(),
        reason.to_owned(),
        before.to_owned(),
        after.to_owned(),
    )
}

type UpdateRow = (Vec<String>, String, String, String, String);

/// One account's new referrals as `(liability_ids, amount, notice_key)`.
fn refs(plan: &Value, account: &str) -> Vec<(Vec<String>, String, String)> {
    referrals(plan, account)
        .iter()
        .map(|r| {
            (
                strings(&r["liability_ids"]),
                r["amount"].as_str().expect("amount").to_owned(),
                r["notice_key"].as_str().expect("notice_key").to_owned(),
            )
        })
        .collect()
}

fn to_refer(plan: &Value, key: &str) -> Value {
    letter(plan, key)["amounts"]["to_refer"].clone()
}

/// What TOP holds for the account after the plan: its `referrals[]` after the updates,
/// plus the new referrals.
fn top_after(plan: &Value, account: &str, held: &[(&[&str], &str)]) -> f64 {
    let mut total = 0.0;
    for (ids, amount) in held {
        let after = updates(plan, account)
            .into_iter()
            .find(|u| u.0 == ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .map_or((*amount).to_owned(), |u| u.4);
        total += after.parse::<f64>().expect("amount");
    }
    for r in refs(plan, account) {
        total += r.1.parse::<f64>().expect("amount");
    }
    total
}

// ---------------------------------------------------------------------------------------
// F1: a reduced review counts once per review, not once per TOP record.

#[test]
fn a_reduced_review_counts_once_across_split_records() {
    let plan = plan_of("reduced_review_shared");
    // Q04: L1 and L2 held 1000.00 each, R1 reduced both to 500.00: the first record
    // (referred order) takes the 500.00, the other is left nothing and deleted.
    assert_eq!(
        updates(&plan, "CT-Q04"),
        vec![
            upd(&["L1"], "decrease", "reduced", "1000.00", "500.00"),
            upd(&["L2"], "delete", "below_minimum", "1000.00", "0.00"),
        ]
    );
    let held = [(&["L1"][..], "1000.00"), (&["L2"][..], "1000.00")];
    assert_eq!(top_after(&plan, "CT-Q04", &held), 500.0);
    assert_eq!(to_refer(&plan, "CT-Q04/review_outcome/R1"), json!("500.00"));

    // Q09: reduced to 1500.00: L1 keeps 1000.00, L2 takes the other 500.00.
    assert_eq!(
        updates(&plan, "CT-Q09"),
        vec![upd(&["L2"], "decrease", "reduced", "1000.00", "500.00")]
    );
    assert_eq!(top_after(&plan, "CT-Q09", &held), 1500.0);
    assert_eq!(
        to_refer(&plan, "CT-Q09/review_outcome/R1"),
        json!("1500.00")
    );
}

#[test]
fn a_held_record_takes_the_reduced_amount_before_a_new_referral() {
    // Q06: TOP holds L1 only; R1 reduced L1+L2 to 500.00: L1 decreased to 500.00 and L2
    // not referred (nothing of the review's amount is left for it): 500.00 in all.
    let plan = plan_of("reduced_review_shared");
    assert_eq!(
        updates(&plan, "CT-Q06"),
        vec![upd(&["L1"], "decrease", "reduced", "1000.00", "500.00")]
    );
    assert!(refs(&plan, "CT-Q06").is_empty());
    let held: Vec<&Value> = array(&plan["referrals_held"])
        .iter()
        .filter(|h| h["account_id"] == "CT-Q06")
        .collect();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["reason"], "below_minimum");
    assert!(
        held[0]["why"]
            .as_str()
            .is_some_and(|w| w.contains("review R1")),
        "{}",
        held[0]
    );
    assert_eq!(top_after(&plan, "CT-Q06", &[(&["L1"], "1000.00")]), 500.0);
    assert_eq!(to_refer(&plan, "CT-Q06/review_outcome/R1"), json!("500.00"));
}

#[test]
fn a_record_top_holds_comes_before_referring_a_deleted_one_again() {
    // Q17: TOP deleted L1's record (0.00) and holds L2's (1000.00); R1 reduced L1+L2 to
    // 500.00: L2's record is decreased to 500.00 (the smaller change) and L1, referable
    // again, has nothing left of the review's amount.
    let plan = plan_of("reduced_review_shared");
    assert_eq!(
        updates(&plan, "CT-Q17"),
        vec![upd(&["L2"], "decrease", "reduced", "1000.00", "500.00")]
    );
    assert!(refs(&plan, "CT-Q17").is_empty());
    assert_eq!(to_refer(&plan, "CT-Q17/review_outcome/R1"), json!("500.00"));
}

// ---------------------------------------------------------------------------------------
// F2: the amount counts among the review's referable liabilities.

#[test]
fn a_reduced_amount_is_not_lost_to_a_notice_of_unreferable_liabilities() {
    let plan = plan_of("reduced_review_referable");
    // Q12 (L1 paid) and Q13 (L1 sales and use tax): the earliest notice covers only L1,
    // which cannot be referred; L2 is referred for the review's 500.00 under its notice.
    for account in ["CT-Q12", "CT-Q13"] {
        assert_eq!(
            refs(&plan, account),
            vec![(
                vec!["L2".to_owned()],
                "500.00".to_owned(),
                format!("{account}/intent_to_offset/L2")
            )],
            "{account}"
        );
        assert!(updates(&plan, account).is_empty());
        assert_eq!(
            to_refer(&plan, &format!("{account}/review_outcome/R1")),
            json!("500.00")
        );
    }
    let held: Vec<(String, String)> = array(&plan["referrals_held"])
        .iter()
        .map(|h| {
            (
                h["account_id"].as_str().expect("account").to_owned(),
                h["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        held,
        [("CT-Q14".to_owned(), "nothing_referable".to_owned())]
    );
    // Q14: L1 awaits a second review (held nothing_referable); the reduced amount counts
    // on L2, the referable one, under its own notice.
    assert_eq!(
        refs(&plan, "CT-Q14"),
        vec![(
            vec!["L2".to_owned()],
            "500.00".to_owned(),
            "CT-Q14/intent_to_offset/L2".to_owned()
        )]
    );
    // Q16: TOP already holds L2 for 1000.00: decreased to 500.00, never deleted.
    assert_eq!(
        updates(&plan, "CT-Q16"),
        vec![upd(&["L2"], "decrease", "reduced", "1000.00", "500.00")]
    );
    assert_eq!(to_refer(&plan, "CT-Q16/review_outcome/R1"), json!("500.00"));
}

// ---------------------------------------------------------------------------------------
// F3: the latest decided review governs everywhere.

#[test]
fn a_later_upheld_review_outweighs_an_earlier_reversal() {
    let plan = plan_of("latest_review_governs");
    // T03: R1 reversed 2026-09-15, R2 upheld 2026-10-15 (listed first): TOP keeps L1.
    assert!(updates(&plan, "CT-T03").is_empty());
    assert_eq!(
        to_refer(&plan, "CT-T03/review_outcome/R2"),
        json!("1000.00")
    );
    // Q05: the same reviews, nothing referred yet: L1 is referred.
    assert_eq!(
        refs(&plan, "CT-Q05"),
        vec![(
            vec!["L1".to_owned()],
            "1000.00".to_owned(),
            "CT-Q05/intent_to_offset/L1".to_owned()
        )]
    );
    assert_eq!(
        to_refer(&plan, "CT-Q05/review_outcome/R2"),
        json!("1000.00")
    );
    // T04: the reversal is the later: deleted, and only the reversal's letter goes out.
    assert_eq!(
        updates(&plan, "CT-T04"),
        vec![upd(&["L1"], "delete", "reversed", "1000.00", "0.00")]
    );
    assert_eq!(
        common::account_letter_keys(&plan, "CT-T04"),
        ["CT-T04/review_outcome/R1"]
    );
    // The earlier decision's letter would contradict the later one's: it is left out as
    // superseded, in T03 and Q05 (R1 reversed, then R2 upheld) and T04 (the other way).
    for (account, earlier) in [("CT-T03", "R1"), ("CT-Q05", "R1"), ("CT-T04", "R2")] {
        let keys = common::account_letter_keys(&plan, account);
        assert!(
            !keys.contains(&format!("{account}/review_outcome/{earlier}")),
            "{account}: {keys:?}"
        );
        assert_eq!(
            common::suppressions(&plan, account)
                .into_iter()
                .filter(|(kind, _, _)| kind == "review_outcome")
                .collect::<Vec<_>>(),
            [common::sup("review_outcome", "superseded", &["L1"])],
            "{account}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// F4a: an event dated after the as-of date has not happened on it.

#[test]
fn events_after_the_as_of_date_have_not_happened_yet() {
    let plan = plan_of("decided_after_as_of");
    // Q02: R1 reversed L1 on 2026-12-10: pending on 2026-12-01, so no letter, no delete
    // (a pending review freezes the referral) and L1 left out as review_pending.
    assert!(updates(&plan, "CT-Q02").is_empty());
    assert!(
        common::account_letter_keys(&plan, "CT-Q02").is_empty(),
        "{:?}",
        common::account_letter_keys(&plan, "CT-Q02")
    );
    assert!(common::suppressions(&plan, "CT-Q02").contains(&common::sup(
        "intent_to_offset",
        "review_pending",
        &["L1"]
    )));
    // AF1: a federal offset of 2026-12-03: no notice yet, and it holds nothing.
    assert!(common::account_letter_keys(&plan, "CT-AF1").is_empty());
    assert_eq!(refs(&plan, "CT-AF1").len(), 1);
    // AL1: a late return filed 2026-12-05: no refund yet.
    assert!(common::account_letter_keys(&plan, "CT-AL1").is_empty());
    // A week later every one of them has happened.
    let later = plan_ok(&fixture("decided_after_as_of"), &["--as-of", "2026-12-11"]);
    assert_eq!(
        updates(&later, "CT-Q02"),
        vec![upd(&["L1"], "delete", "reversed", "1000.00", "0.00")]
    );
    assert!(
        common::account_letter_keys(&later, "CT-Q02")
            .contains(&"CT-Q02/review_outcome/R1".to_owned())
    );
    assert!(
        common::account_letter_keys(&later, "CT-AF1")
            .contains(&"CT-AF1/offset_notice/F1".to_owned())
    );
    assert!(
        common::account_letter_keys(&later, "CT-AL1").contains(&"CT-AL1/refund/LR1".to_owned())
    );
}

// ---------------------------------------------------------------------------------------
// F4b: `referrals[].amount` is parsed like every other amount.

#[test]
fn referral_amounts_are_parsed_like_other_amounts() {
    let (code, plan) = plan(&fixture("amounts_parsed_alike"), &["--as-of", "2026-12-01"]);
    assert_eq!(code, 0, "{}", plan["errors"]);
    assert_eq!(plan["accounts_planned"], 4);
    // W23: "740" held, L1 owes 1000.00: nothing changes.
    assert!(updates(&plan, "CT-W23").is_empty());
    // W24 ("740") and W25 ("740.5"): L1 owes 500.00: decreased from what TOP holds.
    assert_eq!(
        updates(&plan, "CT-W24"),
        vec![upd(&["L1"], "decrease", "reduced", "740.00", "500.00")]
    );
    assert_eq!(
        updates(&plan, "CT-W25"),
        vec![upd(&["L1"], "decrease", "reduced", "740.50", "500.00")]
    );
    // M04: a tax of "1000.5", accepted as before.
    assert_eq!(
        letter(&plan, "CT-M04/intent_to_offset/L1")["amounts"]["balance"],
        "1000.50"
    );
}
