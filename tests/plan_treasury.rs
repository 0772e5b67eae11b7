//! Referrals held, Treasury updates, once-per-liability referrals, `not_income_tax`, the
//! `referrals[]` input and review letters' `to_refer`, each from its fixture folder through
//! `missive plan` (letters.md: Referral, Treasury updates, Review outcome).
//!
//! Unless a file says otherwise, an account has L1 (600.00 + 60.00 + 80.00 = 740.00) and
//! L2 (300.00), both individual income tax due 2024-04-15, balances as of 2026-11-01, and an
//! intent to offset for L1+L2 mailed 2026-06-01: day 60 is Fri 2026-07-31, its deadline.
//! Plans are made on 2026-12-01 (a Tuesday, also the mail date).

mod common;

use common::{array, fixture, letter, plan, plan_ok, referrals, strings, sup, suppressions};
use serde_json::{Value, json};

fn plan_of(rule: &str) -> Value {
    plan_ok(&fixture(rule), &["--as-of", "2026-12-01"])
}

/// One account's held referrals as `(reason, liability_ids, notice_key)`.
fn held(plan: &Value, account: &str) -> Vec<(String, Vec<String>, String)> {
    array(&plan["referrals_held"])
        .iter()
        .filter(|h| h["account_id"] == account)
        .map(|h| {
            assert!(
                h["why"].as_str().is_some_and(|w| !w.is_empty()),
                "held referral without a why: {h}"
            );
            (
                h["reason"].as_str().expect("reason").to_owned(),
                strings(&h["liability_ids"]),
                h["notice_key"].as_str().expect("notice_key").to_owned(),
            )
        })
        .collect()
}

fn hold(reason: &str, ids: &[&str], account: &str) -> (String, Vec<String>, String) {
    (
        reason.to_owned(),
        ids.iter().map(|s| (*s).to_owned()).collect(),
        format!("{account}/intent_to_offset/L1+L2"),
    )
}

/// One account's Treasury updates.
fn updates<'a>(plan: &'a Value, account: &str) -> Vec<&'a Value> {
    array(&plan["treasury_updates"])
        .iter()
        .filter(|u| u["account_id"] == account)
        .collect()
}

/// The single update of an account, checked against `expected` (every key of the contract
/// present; `why` non-empty); returns it.
#[track_caller]
fn only_update<'a>(plan: &'a Value, account: &str, expected: Value) -> &'a Value {
    let found = updates(plan, account);
    assert_eq!(found.len(), 1, "updates of {account}: {found:#?}");
    let update = found[0];
    let keys: Vec<&str> = update
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for &key in common::TREASURY_UPDATE_KEYS {
        assert!(keys.contains(&key), "`{key}` missing from {update}");
    }
    assert!(update["why"].as_str().is_some_and(|w| !w.is_empty()));
    common::assert_fields(update, expected);
    update
}

fn referral(account: &str, ids: &[&str], amount: &str) -> Value {
    json!({
        "account_id": account,
        "liability_ids": ids,
        "amount": amount,
        "notice_key": format!("{account}/intent_to_offset/L1+L2"),
        "deadline_passed": "2026-07-31",
    })
}

// ---------------------------------------------------------------------------------------
// Held referrals, in letters.md's order.

#[test]
fn held_bankruptcy_stay_comes_first() {
    // Also an unposted offset and a pending review: the stay is named.
    let plan = plan_of("held_bankruptcy_stay");
    assert_eq!(
        held(&plan, "HS-STAY"),
        [hold("bankruptcy_stay", &["L1", "L2"], "HS-STAY")]
    );
    assert_eq!(referrals(&plan, "HS-STAY"), Vec::<&Value>::new());
    // A stay that ended the day before the as-of date holds nothing.
    assert_eq!(held(&plan, "HS-ENDED"), []);
    assert_eq!(
        referrals(&plan, "HS-ENDED"),
        [&referral("HS-ENDED", &["L1", "L2"], "1040.00")]
    );
}

#[test]
fn held_nothing_referable_only_while_a_bar_may_lift() {
    let plan = plan_of("held_nothing_referable");
    // L1 paid, L2 under a pending review.
    assert_eq!(
        held(&plan, "HN-PENDING"),
        [hold("nothing_referable", &["L2"], "HN-PENDING")]
    );
    // Every bar final (not enforceable + paid; not income tax + too old): not listed.
    for account in ["HN-FINAL", "HN-FINAL2"] {
        assert_eq!(held(&plan, account), [], "{account}");
        assert_eq!(referrals(&plan, account), Vec::<&Value>::new(), "{account}");
    }
}

#[test]
fn held_below_minimum_and_exactly_the_minimum_referred() {
    let plan = plan_of("held_below_minimum");
    assert_eq!(
        held(&plan, "HB-SMALL"),
        [hold("below_minimum", &["L2"], "HB-SMALL")]
    );
    assert_eq!(
        referrals(&plan, "HB-EXACT"),
        [&referral("HB-EXACT", &["L2"], "25.00")]
    );
}

#[test]
fn held_offset_not_posted_until_the_balances_show_it() {
    let plan = plan_of("held_offset_not_posted");
    for account in ["HO-NULL", "HO-LATE"] {
        assert_eq!(
            held(&plan, account),
            [hold("offset_not_posted", &["L1", "L2"], account)]
        );
        assert_eq!(referrals(&plan, account), Vec::<&Value>::new());
    }
    // Posted on the balance date, or a state offset (another agency's money): referred.
    for account in ["HO-ONDATE", "HO-STATE"] {
        assert_eq!(held(&plan, account), [], "{account}");
        assert_eq!(
            referrals(&plan, account),
            [&referral(account, &["L1", "L2"], "1040.00")]
        );
    }
    // Below the minimum is named before the unposted offset.
    assert_eq!(
        held(&plan, "HO-SMALL"),
        [hold("below_minimum", &["L2"], "HO-SMALL")]
    );
}

// ---------------------------------------------------------------------------------------
// Income tax only.

#[test]
fn not_income_tax_is_named_before_not_enforceable_and_never_referred() {
    let plan = plan_of("not_income_tax");
    // L2 withholding (also not enforceable), L3 sales and use; L4 has no balance.
    assert_eq!(
        suppressions(&plan, "NI-MIX"),
        [sup("intent_to_offset", "not_income_tax", &["L2", "L3"])]
    );
    let ni = array(&plan["suppressed"])
        .iter()
        .find(|s| s["account_id"] == "NI-MIX" && s["reason"] == "not_income_tax")
        .expect("entry");
    assert!(ni["why"].as_str().is_some_and(|w| w.contains("sales_use")));
    assert_eq!(
        referrals(&plan, "NI-MIX"),
        [&json!({
            "account_id": "NI-MIX", "liability_ids": ["L1"], "amount": "740.00",
            "notice_key": "NI-MIX/intent_to_offset/L1", "deadline_passed": "2026-07-31",
        })]
    );
    assert_eq!(
        suppressions(&plan, "NI-ALL"),
        [sup("intent_to_offset", "not_income_tax", &["L1", "L2"])]
    );
    assert_eq!(
        common::account_letter_keys(&plan, "NI-ALL"),
        Vec::<String>::new()
    );
}

#[test]
fn a_tax_type_without_a_label_is_an_input_error_naming_account_and_liability() {
    let (code, plan) = plan(
        &fixture("tax_type_label_missing"),
        &["--as-of", "2026-12-01"],
    );
    assert_eq!(code, 1);
    let errors = array(&plan["errors"]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["account_id"], "TT-BAD");
    assert!(
        errors[0]["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("estate.json"))
    );
    let message = errors[0]["message"].as_str().expect("message");
    assert!(message.contains("liabilities[1].tax_type"), "{message}");
    assert!(
        message.contains("`L2`") && message.contains("`estate`"),
        "{message}"
    );
    assert_eq!(plan["accounts_planned"], 1);
    assert_eq!(
        referrals(&plan, "TT-OK"),
        [&referral("TT-OK", &["L1", "L2"], "1040.00")]
    );
}

// ---------------------------------------------------------------------------------------
// Once per liability.

#[test]
fn a_liability_top_holds_is_not_referred_again() {
    let plan = plan_of("referral_once");
    assert_eq!(referrals(&plan, "OP-HELD"), Vec::<&Value>::new());
    assert_eq!(held(&plan, "OP-HELD"), []);
    assert_eq!(updates(&plan, "OP-HELD"), Vec::<&Value>::new());
}

#[test]
fn a_left_out_liability_is_referred_later_under_the_same_notice() {
    // L1 referred alone while L2's review was pending; R1 upheld L2 since.
    let plan = plan_of("referral_once");
    assert_eq!(
        referrals(&plan, "OP-LATER"),
        [&referral("OP-LATER", &["L2"], "300.00")]
    );
    assert_eq!(updates(&plan, "OP-LATER"), Vec::<&Value>::new());
}

#[test]
fn a_deleted_referral_is_referred_again_once_referable() {
    // TOP deleted it for a stay (amount 0.00); the stay ended 2026-11-15.
    let plan = plan_of("referral_once");
    assert_eq!(
        referrals(&plan, "OP-AGAIN"),
        [&referral("OP-AGAIN", &["L1", "L2"], "1040.00")]
    );
}

// ---------------------------------------------------------------------------------------
// Treasury updates.

fn delete(account: &str, reason: &str) -> Value {
    json!({
        "account_id": account, "notice_key": format!("{account}/intent_to_offset/L1+L2"),
        "action": "delete", "reason": reason, "amount_before": "1040.00",
        "amount_after": "0.00", "liability_ids": ["L1", "L2"],
    })
}

#[test]
fn a_stay_deletes_at_once_even_with_an_unposted_offset() {
    let plan = plan_of("update_delete_bankruptcy_stay");
    let u = only_update(&plan, "UD-STAY", delete("UD-STAY", "bankruptcy_stay"));
    assert!(u["why"].as_str().is_some_and(|w| w.contains("26-20001")));
}

#[test]
fn every_liability_reversed_by_its_latest_review_deletes_at_once() {
    let plan = plan_of("update_delete_reversed");
    only_update(&plan, "UD-REV", delete("UD-REV", "reversed"));
    // L2 was upheld first, then reversed by a later review.
    only_update(&plan, "UD-REVLAST", delete("UD-REVLAST", "reversed"));
}

#[test]
fn delete_below_minimum() {
    let plan = plan_of("update_delete_below_minimum");
    only_update(&plan, "UD-SMALL", delete("UD-SMALL", "below_minimum"));
}

#[test]
fn delete_paid() {
    let plan = plan_of("update_delete_paid");
    only_update(&plan, "UD-PAID", delete("UD-PAID", "paid"));
}

#[test]
fn delete_not_income_tax_before_not_enforceable() {
    let plan = plan_of("update_delete_not_income_tax");
    only_update(&plan, "UD-NIT", delete("UD-NIT", "not_income_tax"));
}

#[test]
fn delete_too_old_before_not_enforceable() {
    // Due 2016-11-30: more than ten years before 2026-12-01.
    let plan = plan_of("update_delete_too_old");
    only_update(&plan, "UD-OLD", delete("UD-OLD", "too_old"));
}

#[test]
fn delete_not_enforceable() {
    let plan = plan_of("update_delete_not_enforceable");
    only_update(&plan, "UD-NE", delete("UD-NE", "not_enforceable"));
}

#[test]
fn nothing_changes_while_an_offset_is_unposted_or_a_review_pending() {
    // Both would otherwise be a decrease to 960.00 (L1's interest is now 0.00).
    let plan = plan_of("update_freeze");
    for account in ["UF-OFFSET", "UF-REVIEW"] {
        assert_eq!(updates(&plan, account), Vec::<&Value>::new(), "{account}");
        assert_eq!(held(&plan, account), [], "{account}");
        assert_eq!(referrals(&plan, account), Vec::<&Value>::new(), "{account}");
    }
}

#[test]
fn a_payment_decreases_what_top_holds() {
    // L1's tax fell from 600.00 to 400.00 (an offset posted 2026-10-20): 540.00 + 300.00.
    let plan = plan_of("update_decrease_payment");
    only_update(
        &plan,
        "UP-PAY",
        json!({"action": "decrease", "reason": "reduced", "amount_before": "1040.00",
               "amount_after": "840.00", "liability_ids": ["L1", "L2"]}),
    );
}

#[test]
fn a_reduced_review_decreases_what_top_holds() {
    // R1 reduced L1 to 500.00: the lesser of 500.00 and 740.00, plus L2's 300.00.
    let plan = plan_of("update_decrease_reduced_review");
    let u = only_update(
        &plan,
        "UR-RED",
        json!({"action": "decrease", "reason": "reduced", "amount_after": "800.00"}),
    );
    assert!(u["why"].as_str().is_some_and(|w| w.contains("R1")));
}

#[test]
fn part_of_a_referral_lost_is_a_decrease_and_a_record_of_its_own_is_deleted() {
    let plan = plan_of("update_partial_delete");
    // One referral of L1+L2, L2 reversed: TOP keeps L1's 740.00.
    let u = only_update(
        &plan,
        "UX-ONE",
        json!({"action": "decrease", "reason": "reduced", "amount_before": "1040.00",
               "amount_after": "740.00", "liability_ids": ["L1", "L2"]}),
    );
    assert!(u["why"].as_str().is_some_and(|w| w.contains("L2")));
    // Two records under one notice: L2's is deleted, L1's stays as it is.
    only_update(
        &plan,
        "UX-TWO",
        json!({"action": "delete", "reason": "reversed", "amount_before": "300.00",
               "amount_after": "0.00", "liability_ids": ["L2"],
               "notice_key": "UX-TWO/intent_to_offset/L1+L2"}),
    );
}

#[test]
fn interest_growth_or_an_equal_amount_changes_nothing() {
    let plan = plan_of("update_interest_increase");
    for account in ["UI-UP", "UI-EQ"] {
        assert_eq!(updates(&plan, account), Vec::<&Value>::new(), "{account}");
        assert_eq!(referrals(&plan, account), Vec::<&Value>::new(), "{account}");
    }
}

// ---------------------------------------------------------------------------------------
// `to_refer` on review letters.

fn to_refer(plan: &Value, account: &str) -> Value {
    letter(plan, &format!("{account}/review_outcome/R1"))["amounts"]["to_refer"].clone()
}

#[test]
fn to_refer_says_what_the_same_data_refers() {
    let plan = plan_of("to_refer");
    // Deadline passed, nothing referred yet: this plan's referral.
    assert_eq!(to_refer(&plan, "TR-NEW"), json!("1040.00"));
    assert_eq!(
        referrals(&plan, "TR-NEW"),
        [&referral("TR-NEW", &["L1", "L2"], "1040.00")]
    );
    // Before the deadline (2027-01-04): the rule ignoring the deadline.
    assert_eq!(to_refer(&plan, "TR-EARLY"), json!("1040.00"));
    // Referred already, decreased by this plan for the reduced review.
    assert_eq!(to_refer(&plan, "TR-TOP"), json!("800.00"));
    only_update(
        &plan,
        "TR-TOP",
        json!({"action": "decrease", "amount_after": "800.00"}),
    );
    // Held (unposted offset): nothing.
    assert_eq!(to_refer(&plan, "TR-HELD"), Value::Null);
    // Reversed letters carry the key, always null.
    let reversed = letter(&plan, "TR-REV/review_outcome/R1");
    assert_eq!(
        reversed["amounts"],
        json!({"balance": "0.00", "to_refer": null})
    );
}

// ---------------------------------------------------------------------------------------
// Bad `referrals[]` records.

#[test]
fn bad_referral_records_make_the_account_an_input_error() {
    let (code, plan) = plan(&fixture("referrals_input_bad"), &["--as-of", "2026-12-01"]);
    assert_eq!(code, 1);
    let mut found: Vec<(String, String)> = array(&plan["errors"])
        .iter()
        .map(|e| {
            let fields: Vec<String> = array(&e["problems"])
                .iter()
                .map(|p| p["field"].as_str().expect("field").to_owned())
                .collect();
            (
                e["account_id"].as_str().expect("account id").to_owned(),
                fields.join(","),
            )
        })
        .collect();
    found.sort();
    let expected = [
        ("RB-AMT", "referrals[0].amount"),
        ("RB-COVER", "referrals[0].liability_ids[1]"),
        ("RB-DATE", "referrals[0].updated_on"),
        ("RB-EMPTY", "referrals[0].liability_ids"),
        ("RB-FIELD", "referrals[0].amout"),
        ("RB-KEY", "referrals[0].notice_key"),
        ("RB-NEG", "referrals[0].amount"),
        ("RB-NUM", "referrals[0].amount"),
        ("RB-TWICE", "referrals[1].liability_ids[0]"),
        ("RB-UNDEL", "referrals[1].notice_key"),
    ];
    assert_eq!(
        found,
        expected
            .iter()
            .map(|(a, f)| ((*a).to_owned(), (*f).to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(plan["accounts_planned"], 1, "RB-GOOD is planned");
    for e in array(&plan["errors"]) {
        assert!(
            e["source"].as_str().is_some_and(|s| s.ends_with(".json")),
            "{e}"
        );
    }
}

#[test]
fn the_table_lists_held_referrals_and_updates_with_totals() {
    let run = common::missive(&[
        "plan",
        "--accounts",
        &fixture("update_partial_delete"),
        "--as-of",
        "2026-12-01",
    ]);
    run.expect_code(0);
    let out = &run.stdout;
    assert!(out.contains("REFERRALS HELD (0)"), "{out}");
    assert!(out.contains("TREASURY UPDATES (2)"), "{out}");
    assert!(
        out.contains("updates total: decrease 1 ($300.00), delete 1 ($300.00)"),
        "{out}"
    );
    let held = common::missive(&[
        "plan",
        "--accounts",
        &fixture("held_offset_not_posted"),
        "--as-of",
        "2026-12-01",
    ]);
    assert!(
        held.stdout
            .contains("held total: 3 (below_minimum 1, offset_not_posted 2)"),
        "{}",
        held.stdout
    );
}
