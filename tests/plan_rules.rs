//! One rule of letters.md at a time: each test runs `missive plan` on a small fixture folder
//! (`tests/fixtures/<rule>/accounts/*.json`) and checks only the part of the plan the rule
//! decides, including the boundaries (exactly the minimum, exactly ten years, a stay ending
//! on the mail date, the as-of date equal to a deadline, …).

mod common;

use common::{
    account_letter_keys, all_suppressions, assert_fields, fixture, letter, plan, plan_ok,
    referrals, sup, suppressions,
};
use serde_json::{Value, json};

const ITO: &str = "intent_to_offset";

/// The plan of fixture folder `rule` at as-of 2026-12-01 (a Tuesday, so also the mail date),
/// which must exit 0.
fn plan_of(rule: &str) -> Value {
    plan_ok(&fixture(rule), &["--as-of", "2026-12-01"])
}

fn plan_at(rule: &str, as_of: &str, mail_date: Option<&str>) -> Value {
    let mut args = vec!["--as-of", as_of];
    if let Some(mail_date) = mail_date {
        args.extend(["--mail-date", mail_date]);
    }
    plan_ok(&fixture(rule), &args)
}

// ---------------------------------------------------------------------------------------
// Suppression reasons.

#[test]
fn below_minimum_exactly_25_is_due() {
    let plan = plan_of("below_minimum");
    assert_fields(
        letter(&plan, "BM-EXACT/intent_to_offset/L1"),
        json!({"amounts": {"balance": "25.00", "payoff": "25.60"}, "liability_ids": ["L1"]}),
    );
    assert_eq!(suppressions(&plan, "BM-EXACT"), vec![]);
}

#[test]
fn below_minimum_one_cent_short_is_suppressed() {
    let plan = plan_of("below_minimum");
    assert_eq!(account_letter_keys(&plan, "BM-SHORT"), Vec::<String>::new());
    assert_eq!(
        suppressions(&plan, "BM-SHORT"),
        vec![sup(ITO, "below_minimum", &["L1"])]
    );
}

#[test]
fn below_minimum_counts_the_total_of_all_referable_liabilities() {
    // 12.50 + 12.50 = 25.00: together they reach the minimum.
    let plan = plan_of("below_minimum");
    assert_fields(
        letter(&plan, "BM-SUM/intent_to_offset/L1+L2"),
        json!({"amounts": {"balance": "25.00", "payoff": "25.60"}, "liability_ids": ["L1", "L2"]}),
    );
}

#[test]
fn below_minimum_and_another_reason_are_both_reported() {
    // L1 is not enforceable (1000.00 does not count); L2 alone is 24.00.
    let plan = plan_of("below_minimum");
    let mut found = suppressions(&plan, "BM-MIX");
    found.sort();
    assert_eq!(
        found,
        vec![
            sup(ITO, "below_minimum", &["L2"]),
            sup(ITO, "not_enforceable", &["L1"]),
        ]
    );
    assert_eq!(account_letter_keys(&plan, "BM-MIX"), Vec::<String>::new());
}

#[test]
fn not_enforceable_flag_both_ways() {
    let plan = plan_of("not_enforceable");
    assert_eq!(
        account_letter_keys(&plan, "NE-FLAG"),
        vec!["NE-FLAG/intent_to_offset/L2"]
    );
    assert_fields(
        letter(&plan, "NE-FLAG/intent_to_offset/L2"),
        json!({"liability_ids": ["L2"], "amounts": {"balance": "600.00", "payoff": "618.00"}}),
    );
    assert_eq!(
        suppressions(&plan, "NE-FLAG"),
        vec![sup(ITO, "not_enforceable", &["L1"])]
    );
}

#[test]
fn not_enforceable_when_a_review_reversed_it() {
    let plan = plan_of("not_enforceable");
    assert_eq!(
        account_letter_keys(&plan, "NE-REV"),
        vec!["NE-REV/intent_to_offset/L2", "NE-REV/review_outcome/R1"]
    );
    assert_eq!(
        suppressions(&plan, "NE-REV"),
        vec![sup(ITO, "not_enforceable", &["L1"])]
    );
    assert_fields(
        letter(&plan, "NE-REV/review_outcome/R1"),
        json!({"variant": "reversed", "liability_ids": ["L1"], "amounts": {"balance": "0.00", "to_refer": null}}),
    );
}

#[test]
fn nothing_enforceable_gives_no_letter_and_no_below_minimum() {
    let plan = plan_of("not_enforceable");
    assert_eq!(account_letter_keys(&plan, "NE-NONE"), Vec::<String>::new());
    assert_eq!(
        suppressions(&plan, "NE-NONE"),
        vec![sup(ITO, "not_enforceable", &["L1"])]
    );
}

#[test]
fn too_old_exactly_ten_years_before_the_mail_date_is_not_too_old() {
    // Mail date 2026-12-01: due 2016-12-01 is exactly ten years before.
    let plan = plan_of("too_old");
    assert_fields(
        letter(&plan, "TO-EXACT/intent_to_offset/L1"),
        json!({"liability_ids": ["L1"], "amounts": {"balance": "100.00", "payoff": "103.00"}}),
    );
    assert_eq!(suppressions(&plan, "TO-EXACT"), vec![]);
}

#[test]
fn too_old_one_day_more_is_too_old() {
    let plan = plan_of("too_old");
    assert_eq!(account_letter_keys(&plan, "TO-OLD"), Vec::<String>::new());
    assert_eq!(
        suppressions(&plan, "TO-OLD"),
        vec![sup(ITO, "too_old", &["L1"])]
    );
}

#[test]
fn too_old_does_not_apply_to_judgments() {
    let plan = plan_of("too_old");
    assert_fields(
        letter(&plan, "TO-JUDG/intent_to_offset/L1+L2"),
        json!({"liability_ids": ["L1", "L2"], "amounts": {"balance": "200.00", "payoff": "206.00"}}),
    );
    // `"judgment": false` is no exemption.
    assert_eq!(
        suppressions(&plan, "TO-JUDG"),
        vec![sup(ITO, "too_old", &["L3"])]
    );
}

#[test]
fn too_old_is_measured_from_the_mail_date_not_the_as_of_date() {
    // Mail date one day later: 2016-12-01 is now more than ten years back.
    let plan = plan_at("too_old", "2026-12-01", Some("2026-12-02"));
    assert_eq!(
        suppressions(&plan, "TO-EXACT"),
        vec![sup(ITO, "too_old", &["L1"])]
    );
    // As-of one day later but mail date 2026-12-01: still within ten years.
    let plan = plan_at("too_old", "2026-12-02", Some("2026-12-01"));
    assert_eq!(
        account_letter_keys(&plan, "TO-EXACT"),
        vec!["TO-EXACT/intent_to_offset/L1"]
    );
}

#[test]
fn review_pending_leaves_the_liability_out_and_gives_no_outcome_letter() {
    let plan = plan_of("review_pending");
    assert_eq!(
        account_letter_keys(&plan, "RP-1"),
        vec!["RP-1/intent_to_offset/L2"]
    );
    assert_eq!(
        suppressions(&plan, "RP-1"),
        vec![sup(ITO, "review_pending", &["L1"])]
    );
    assert_eq!(account_letter_keys(&plan, "RP-2"), Vec::<String>::new());
    assert_eq!(
        suppressions(&plan, "RP-2"),
        vec![sup(ITO, "review_pending", &["L1"])]
    );
}

#[test]
fn bankruptcy_stay_ending_on_the_mail_date_is_still_active() {
    let plan = plan_of("bankruptcy_stay");
    assert_eq!(
        account_letter_keys(&plan, "BK-ENDS-TODAY"),
        Vec::<String>::new()
    );
    assert_eq!(
        suppressions(&plan, "BK-ENDS-TODAY"),
        vec![sup(ITO, "bankruptcy_stay", &["L1", "L2"])]
    );
}

#[test]
fn bankruptcy_stay_filed_on_the_mail_date_is_active() {
    let plan = plan_of("bankruptcy_stay");
    assert_eq!(
        suppressions(&plan, "BK-FILED-TODAY"),
        vec![sup(ITO, "bankruptcy_stay", &["L1", "L2"])]
    );
}

#[test]
fn bankruptcy_stay_ended_the_day_before_the_mail_date_lets_the_letter_go() {
    let plan = plan_of("bankruptcy_stay");
    assert_fields(
        letter(&plan, "BK-ENDED/intent_to_offset/L1+L2"),
        json!({"liability_ids": ["L1", "L2"], "amounts": {"balance": "1100.00", "payoff": "1133.00"}}),
    );
    assert_eq!(suppressions(&plan, "BK-ENDED"), vec![]);
}

#[test]
fn bankruptcy_stay_holds_a_referral_whose_deadline_passed() {
    // The 2026-06-01 notice's deadline (2026-07-31) passed, but a stay is active since
    // 2026-11-01.
    let plan = plan_of("bankruptcy_stay");
    assert_eq!(referrals(&plan, "BK-REFERRAL"), Vec::<&Value>::new());
    assert_eq!(
        suppressions(&plan, "BK-REFERRAL"),
        vec![sup(ITO, "bankruptcy_stay", &["L1", "L2"])]
    );
}

#[test]
fn already_sent_liabilities_are_left_out_of_a_new_letter() {
    // L1+L2 were covered by a delivered notice of 2026-11-02 (deadline 2027-01-04).
    let plan = plan_of("already_sent");
    assert_eq!(
        account_letter_keys(&plan, "AS-1"),
        vec!["AS-1/intent_to_offset/L3"]
    );
    assert_fields(
        letter(&plan, "AS-1/intent_to_offset/L3"),
        json!({"liability_ids": ["L3"], "amounts": {"balance": "700.00", "payoff": "721.00"}}),
    );
    // already_sent entries are optional, but when present they name L1 and L2.
    for (kind, reason, ids) in all_suppressions(&plan, "AS-1") {
        assert_eq!((kind.as_str(), reason.as_str()), (ITO, "already_sent"));
        assert!(ids.iter().all(|id| id == "L1" || id == "L2"), "{ids:?}");
    }
    assert_eq!(referrals(&plan, "AS-1"), Vec::<&Value>::new());
}

#[test]
fn undeliverable_without_address_or_consent() {
    let plan = plan_of("undeliverable");
    assert_eq!(
        account_letter_keys(&plan, "UD-NOWHERE"),
        Vec::<String>::new()
    );
    let found = suppressions(&plan, "UD-NOWHERE");
    assert!(
        found.contains(&sup(ITO, "undeliverable", &["L1"])),
        "{found:?}"
    );
    // The offset notice has no channel either.
    assert!(
        found
            .iter()
            .any(|(kind, reason, _)| kind == "offset_notice" && reason == "undeliverable"),
        "{found:?}"
    );
}

#[test]
fn undeliverable_intent_to_offset_but_email_for_the_rest() {
    let plan = plan_of("undeliverable");
    assert_eq!(
        suppressions(&plan, "UD-EMAILONLY"),
        vec![sup(ITO, "undeliverable", &["L1"])]
    );
    assert_eq!(
        account_letter_keys(&plan, "UD-EMAILONLY"),
        vec!["UD-EMAILONLY/offset_notice/F1"]
    );
    assert_fields(
        letter(&plan, "UD-EMAILONLY/offset_notice/F1"),
        json!({"channel": "email", "mail_class": null}),
    );
}

// ---------------------------------------------------------------------------------------
// Payoff and deadlines.

#[test]
fn payoff_months_clamp_at_month_end_on_the_balance_side() {
    // Due 2025-01-31, balance_as_of 2026-03-30, deadline 2027-02-01:
    // months(due, 2026-03-30) = 14 (2026-02-28 < 03-30 ≤ 2026-03-31; adding a month at a
    // time would give 15), months(due, 2027-02-01) = 25, so 11 × 1% × 1000.00 = 110.00.
    let plan = plan_of("payoff");
    assert_fields(
        letter(&plan, "PO-MONTH-END/intent_to_offset/L1"),
        json!({"deadline": "2027-02-01", "amounts": {"balance": "1100.00", "payoff": "1210.00"}}),
    );
}

#[test]
fn payoff_months_clamp_at_month_end_on_the_deadline_side() {
    // Mail date 2027-03-01 → deadline Fri 2027-04-30. Due 2026-01-31:
    // months(due, 2027-04-30) = 15 (2027-04-30 itself; a month at a time gives 16),
    // months(due, 2026-11-01) = 10, so 5 × 1% × 1000.00 = 50.00.
    let plan = plan_at("payoff", "2027-03-01", None);
    assert_eq!(plan["mail_date"], "2027-03-01");
    assert_fields(
        letter(&plan, "PO-MONTH-END-DEADLINE/intent_to_offset/L1"),
        json!({"deadline": "2027-04-30", "amounts": {"balance": "1100.00", "payoff": "1150.00"}}),
    );
    // At the samples' mail date (deadline 2027-02-01) the same liability projects 3 months.
    let plan = plan_of("payoff");
    assert_fields(
        letter(&plan, "PO-MONTH-END-DEADLINE/intent_to_offset/L1"),
        json!({"amounts": {"balance": "1100.00", "payoff": "1130.00"}}),
    );
}

#[test]
fn payoff_rounds_each_liability_half_away_from_zero() {
    // Two liabilities with tax 3.50 over 3 months: 0.105 each → 0.11 each (half away from
    // zero, per liability) → 0.22. Summing first would give 0.21; binary floats give 0.10.
    let plan = plan_of("payoff");
    assert_fields(
        letter(&plan, "PO-HALF/intent_to_offset/L1+L2"),
        json!({"amounts": {"balance": "37.00", "payoff": "37.22"}}),
    );
    // 1001.50 × 0.03 = 30.045 → 30.05 (banker's rounding would give 30.04).
    assert_fields(
        letter(&plan, "PO-HALF-EVEN/intent_to_offset/L1"),
        json!({"amounts": {"balance": "1001.50", "payoff": "1031.55"}}),
    );
}

/// The intent-to-offset deadline and payoff for fixture `deadline` mailed on `mail_date`.
fn deadline_for(mail_date: &str) -> Value {
    let plan = plan_at("deadline", mail_date, Some(mail_date));
    let l = letter(&plan, "DL-1/intent_to_offset/L1");
    assert_eq!(l["letter_date"], mail_date);
    l.clone()
}

#[test]
fn deadline_rolls_over_lincolns_birthday_weekend_and_washingtons_birthday() {
    // Day 60 from 2026-12-14 is Fri 2027-02-12 (Lincoln's Birthday), then Sat, Sun, and
    // Mon 2027-02-15 (Washington's Birthday): the deadline is Tue 2027-02-16. The payoff
    // counts to that deadline: months(2025-04-15, 2027-02-16) = 23, minus 19 = 4 months.
    let l = deadline_for("2026-12-14");
    assert_fields(
        &l,
        json!({"deadline": "2027-02-16", "amounts": {"balance": "1000.00", "payoff": "1040.00"}}),
    );
    // The same letter with --as-of 2026-12-01 and --mail-date 2026-12-14.
    let plan = plan_at("deadline", "2026-12-01", Some("2026-12-14"));
    assert_eq!(plan["as_of"], "2026-12-01");
    assert_eq!(plan["mail_date"], "2026-12-14");
    assert_fields(
        letter(&plan, "DL-1/intent_to_offset/L1"),
        json!({"letter_date": "2026-12-14", "deadline": "2027-02-16"}),
    );
}

#[test]
fn deadline_rolls_forward_past_weekends_and_holidays() {
    let cases = [
        // (mail date, deadline): day 60 and why it moves.
        ("2026-12-01", "2027-02-01"), // Sat 01-30, Sun
        ("2026-07-07", "2026-09-08"), // Sat 09-05, Sun, Labor Day
        ("2026-02-02", "2026-04-06"), // Good Friday 04-03, Sat, Sun
        ("2025-12-14", "2026-02-13"), // Lincoln's Birthday, Thu 02-12
        ("2026-09-12", "2026-11-12"), // Veterans Day, Wed 11-11
        ("2026-11-02", "2027-01-04"), // New Year's Day, Fri 01-01, Sat, Sun
        ("2027-10-25", "2027-12-27"), // Fri 12-24: Christmas (Sat) observed, Sat, Sun
        ("2027-11-01", "2028-01-03"), // Fri 12-31: New Year 2028 (Sat) observed, Sat, Sun
        ("2027-04-20", "2027-06-21"), // Sat 06-19 Juneteenth (observed Fri 18th), Sun: forward
        ("2027-01-25", "2027-03-29"), // Good Friday 2027-03-26, Sat, Sun
        ("2026-08-13", "2026-10-13"), // Columbus Day, Mon 10-12
        ("2026-11-19", "2027-01-19"), // Martin Luther King Jr. Day, Mon 01-18
        ("2027-04-01", "2027-06-01"), // Memorial Day, Mon 05-31
        ("2027-05-06", "2027-07-06"), // Mon 07-05: Independence Day (Sun) observed
        ("2027-09-26", "2027-11-26"), // Thanksgiving, Thu 11-25
        ("2026-09-14", "2026-11-13"), // Fri, a business day: no roll
        ("2027-03-01", "2027-04-30"), // Fri, a business day: no roll
    ];
    for (mail_date, want) in cases {
        assert_eq!(
            deadline_for(mail_date)["deadline"],
            want,
            "mailed {mail_date}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Referrals (notices in the fixture were mailed 2026-09-14: deadline Fri 2026-11-13).

#[test]
fn no_referral_on_the_deadline_itself() {
    let plan = plan_at("referral", "2026-11-13", None);
    assert_eq!(plan["referrals"], json!([]));
}

#[test]
fn referral_the_day_after_the_deadline() {
    let plan = plan_at("referral", "2026-11-14", None);
    assert_eq!(
        referrals(&plan, "RF-BASIC"),
        vec![&json!({
            "account_id": "RF-BASIC",
            "liability_ids": ["L10", "L9"],
            "amount": "800.00",
            "notice_key": "RF-BASIC/intent_to_offset/L10+L9",
            "deadline_passed": "2026-11-13",
        })]
    );
}

#[test]
fn referral_counts_a_reduced_review_once() {
    // R1 reduced L1 (1000.00) + L2 (500.00) to 700.00 together; L3 is 250.00.
    let plan = plan_at("referral", "2026-11-14", None);
    assert_eq!(
        referrals(&plan, "RF-REDUCED"),
        vec![&json!({
            "account_id": "RF-REDUCED",
            "liability_ids": ["L1", "L2", "L3"],
            "amount": "950.00",
            "notice_key": "RF-REDUCED/intent_to_offset/L1+L2+L3",
            "deadline_passed": "2026-11-13",
        })]
    );
}

#[test]
fn referral_excludes_a_reversed_liability() {
    let plan = plan_at("referral", "2026-11-14", None);
    assert_eq!(
        referrals(&plan, "RF-REVERSED"),
        vec![&json!({
            "account_id": "RF-REVERSED",
            "liability_ids": ["L2"],
            "amount": "500.00",
            "notice_key": "RF-REVERSED/intent_to_offset/L1+L2",
            "deadline_passed": "2026-11-13",
        })]
    );
}

#[test]
fn referral_excludes_a_liability_under_pending_review() {
    let plan = plan_at("referral", "2026-11-14", None);
    assert_eq!(
        referrals(&plan, "RF-PENDING"),
        vec![&json!({
            "account_id": "RF-PENDING",
            "liability_ids": ["L1"],
            "amount": "1000.00",
            "notice_key": "RF-PENDING/intent_to_offset/L1+L2",
            "deadline_passed": "2026-11-13",
        })]
    );
}

#[test]
fn referral_below_the_minimum_is_not_made() {
    let plan = plan_at("referral", "2026-11-14", None);
    assert_eq!(referrals(&plan, "RF-SMALL"), Vec::<&Value>::new());
}

#[test]
fn referral_applies_the_ten_year_limit_on_the_as_of_date() {
    // As-of 2026-11-14: L1 (due 2016-11-14) is exactly ten years old, L2 (2016-11-13) more.
    let plan = plan_at("referral", "2026-11-14", None);
    assert_eq!(
        referrals(&plan, "RF-AGED"),
        vec![&json!({
            "account_id": "RF-AGED",
            "liability_ids": ["L1"],
            "amount": "400.00",
            "notice_key": "RF-AGED/intent_to_offset/L1+L2",
            "deadline_passed": "2026-11-13",
        })]
    );
}

#[test]
fn an_undeliverable_notice_gives_no_referral_and_is_reissued() {
    let plan = plan_at("referral", "2026-11-14", None);
    assert_eq!(referrals(&plan, "RF-UNDELIVERED"), Vec::<&Value>::new());
    assert_eq!(
        account_letter_keys(&plan, "RF-UNDELIVERED"),
        vec!["RF-UNDELIVERED/intent_to_offset/L1"]
    );
}

#[test]
fn referral_fixture_has_exactly_the_expected_referrals() {
    let plan = plan_at("referral", "2026-11-14", None);
    let mut accounts: Vec<&str> = plan["referrals"]
        .as_array()
        .expect("referrals")
        .iter()
        .map(|r| r["account_id"].as_str().expect("account_id"))
        .collect();
    accounts.sort_unstable();
    assert_eq!(
        accounts,
        [
            "RF-AGED",
            "RF-BASIC",
            "RF-PENDING",
            "RF-REDUCED",
            "RF-REVERSED"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Offsets, refunds and recipients.

#[test]
fn joint_federal_offset_is_addressed_to_both_spouses() {
    let plan = plan_of("joint");
    let both = json!(["Ana Silva", "Rui Silva"]);
    assert_fields(
        letter(&plan, "JT-OK/offset_notice/F1"),
        json!({
            "variant": "federal",
            "recipients": both,
            "amounts": {"refund": "3000.00", "offset": "2000.00", "remaining_balance": "0.00"},
        }),
    );
    assert_fields(
        letter(&plan, "JT-OK/refund/F1"),
        json!({"variant": "excess_offset", "recipients": both, "amounts": {"refund": "500.00"}}),
    );
}

#[test]
fn a_spouse_name_alone_does_not_make_a_return_joint() {
    let plan = plan_of("joint");
    for key in ["JT-SINGLE/offset_notice/F1", "JT-SINGLE/refund/F1"] {
        assert_fields(letter(&plan, key), json!({"recipients": ["Bo Lind"]}));
    }
}

#[test]
fn joint_return_without_spouse_name_is_a_letter_error() {
    let (code, plan) = plan(&fixture("joint_missing_spouse"), &["--as-of", "2026-12-01"]);
    assert_eq!(code, 1, "some letters could not be produced");
    let errors = plan["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    for (error, key) in errors
        .iter()
        .zip(["JT-NOSPOUSE/offset_notice/F1", "JT-NOSPOUSE/refund/F1"])
    {
        assert_eq!(error["account_id"], "JT-NOSPOUSE");
        let message = error["message"].as_str().expect("message");
        assert!(message.contains(key), "{message}");
        assert!(message.contains("spouse_name"), "{message}");
        let source = error["source"].as_str().expect("source");
        assert!(source.ends_with("missing-spouse.json"), "{source}");
    }
    // The account's other letter, and the other account, still go out.
    assert_eq!(
        account_letter_keys(&plan, "JT-NOSPOUSE"),
        vec!["JT-NOSPOUSE/intent_to_offset/L1"]
    );
    assert_eq!(
        account_letter_keys(&plan, "JT-OTHER"),
        vec!["JT-OTHER/intent_to_offset/L1"]
    );
}

#[test]
fn state_offset_shows_the_refund_paid() {
    let plan = plan_of("state_offset");
    assert_fields(
        letter(&plan, "SO-1/offset_notice/S1"),
        json!({
            "variant": "state",
            "recipients": ["Test Payer"],
            "liability_ids": [],
            "amounts": {"refund": "500.00", "offset": "120.55", "refund_paid": "379.45"},
        }),
    );
    assert_fields(
        letter(&plan, "SO-ALL/offset_notice/S1"),
        json!({"amounts": {"refund": "500.00", "offset": "500.00", "refund_paid": "0.00"}}),
    );
    // A state offset never gives an excess refund.
    assert_eq!(
        account_letter_keys(&plan, "SO-1"),
        vec!["SO-1/offset_notice/S1"]
    );
}

#[test]
fn excess_refund_is_due_once_posted_on_or_before_the_as_of_date() {
    let plan = plan_of("excess_refund");
    // posted_on == as-of counts.
    assert_eq!(
        account_letter_keys(&plan, "EX-TODAY"),
        vec!["EX-TODAY/offset_notice/F1", "EX-TODAY/refund/F1"]
    );
    assert_fields(
        letter(&plan, "EX-TODAY/refund/F1"),
        json!({
            "variant": "excess_offset",
            "channel": "print",
            "mail_class": "first_class",
            "deadline": null,
            "amounts": {"refund": "149.75"},
        }),
    );
    assert_fields(
        letter(&plan, "EX-TODAY/offset_notice/F1"),
        json!({"amounts": {"refund": "1000.00", "offset": "800.00", "remaining_balance": "0.00"}}),
    );
    // Posting the day after the as-of date, or not at all: offset notice only.
    for account in ["EX-TOMORROW", "EX-PENDING"] {
        assert_eq!(
            account_letter_keys(&plan, account),
            vec![format!("{account}/offset_notice/F1")]
        );
    }
}

#[test]
fn no_excess_refund_without_excess() {
    let plan = plan_of("excess_refund");
    assert_eq!(
        account_letter_keys(&plan, "EX-EQUAL"),
        vec!["EX-EQUAL/offset_notice/F1"]
    );
    assert_fields(
        letter(&plan, "EX-EQUAL/offset_notice/F1"),
        json!({"amounts": {"refund": "1000.00", "offset": "800.00", "remaining_balance": "0.00"}}),
    );
    assert_fields(
        letter(&plan, "EX-PARTIAL/offset_notice/F1"),
        json!({"amounts": {"refund": "1000.00", "offset": "800.00", "remaining_balance": "434.56"}}),
    );
    assert_eq!(
        account_letter_keys(&plan, "EX-PARTIAL"),
        vec!["EX-PARTIAL/offset_notice/F1"]
    );
}

#[test]
fn late_return_three_year_bar_boundaries() {
    let plan = plan_of("late_return");
    let refunded =
        json!({"refund": "500.00", "offsets_returned": "400.00", "excess_refunded": "100.00"});
    let barred =
        json!({"refund": "400.00", "offsets_returned": "400.00", "excess_refunded": "0.00"});
    // Extended due date 2022-10-17: the limit is 2025-10-17.
    assert_fields(
        letter(&plan, "LR-EXT-EDGE/refund/LR1"),
        json!({"variant": "late_return", "amounts": refunded}),
    );
    assert_fields(
        letter(&plan, "LR-EXT-LATE/refund/LR1"),
        json!({"variant": "late_return", "amounts": barred}),
    );
    // No extension, due 2023-04-18: the limit is 2026-04-18.
    assert_fields(
        letter(&plan, "LR-PLAIN-EDGE/refund/LR1"),
        json!({"amounts": refunded}),
    );
    assert_fields(
        letter(&plan, "LR-PLAIN-LATE/refund/LR1"),
        json!({"amounts": barred}),
    );
    let why = letter(&plan, "LR-PLAIN-LATE/refund/LR1")["why"]
        .as_str()
        .expect("why");
    assert!(why.contains("barred"), "{why}");
}

#[test]
fn late_return_with_tax_due_gives_no_refund() {
    let plan = plan_of("late_return");
    assert_eq!(
        account_letter_keys(&plan, "LR-TAX-DUE"),
        Vec::<String>::new()
    );
}

// ---------------------------------------------------------------------------------------
// Channels.

#[test]
fn email_with_valid_consent() {
    let plan = plan_of("email");
    assert_fields(
        letter(&plan, "EM-OK/offset_notice/S1"),
        json!({"channel": "email", "mail_class": null, "email_copy": false}),
    );
}

#[test]
fn malformed_email_falls_back_to_print_and_says_why() {
    let plan = plan_of("email");
    let l = letter(&plan, "EM-BAD/offset_notice/S1");
    assert_fields(l, json!({"channel": "print", "mail_class": "first_class"}));
    let why = l["why"].as_str().expect("why");
    assert!(why.contains("malformed"), "{why}");
}

#[test]
fn consent_without_an_email_address_falls_back_to_print_and_says_why() {
    let plan = plan_of("email");
    let l = letter(&plan, "EM-NONE/offset_notice/S1");
    assert_fields(l, json!({"channel": "print", "mail_class": "first_class"}));
    let why = l["why"].as_str().expect("why");
    assert!(why.contains("no email address"), "{why}");
}

#[test]
fn a_valid_email_without_consent_is_not_used() {
    let plan = plan_of("email");
    assert_fields(
        letter(&plan, "EM-NOCONSENT/offset_notice/S1"),
        json!({"channel": "print", "mail_class": "first_class"}),
    );
}

#[test]
fn intent_to_offset_with_consent_is_certified_print_plus_email_copy() {
    let plan = plan_of("email");
    assert_fields(
        letter(&plan, "EM-ITO/intent_to_offset/L1"),
        json!({"channel": "print", "mail_class": "certified", "email_copy": true}),
    );
    assert_fields(
        letter(&plan, "EM-ITO-BAD/intent_to_offset/L1"),
        json!({"channel": "print", "mail_class": "certified", "email_copy": false}),
    );
}

// ---------------------------------------------------------------------------------------
// Earlier notices.

#[test]
fn notices_cover_offsets_reviews_late_returns_and_liabilities() {
    let plan = plan_of("notices_cover");
    assert_eq!(
        account_letter_keys(&plan, "NC-COVERED"),
        Vec::<String>::new()
    );
    assert_eq!(suppressions(&plan, "NC-COVERED"), vec![]);
}

#[test]
fn undeliverable_notices_cover_nothing() {
    let plan = plan_of("notices_cover");
    assert_eq!(
        account_letter_keys(&plan, "NC-RETURNED"),
        vec![
            "NC-RETURNED/intent_to_offset/L1",
            "NC-RETURNED/offset_notice/F1",
            "NC-RETURNED/refund/F1",
            "NC-RETURNED/refund/LR1",
            "NC-RETURNED/review_outcome/R1",
        ]
    );
}

#[test]
fn undeliverable_intent_to_offset_is_reissued_with_the_same_key() {
    // The returned notice listed ["L2", "L1"]; the key sorts them.
    let plan = plan_of("reissue");
    assert_eq!(
        account_letter_keys(&plan, "RI-1"),
        vec!["RI-1/intent_to_offset/L1+L2"]
    );
    assert_fields(
        letter(&plan, "RI-1/intent_to_offset/L1+L2"),
        json!({
            "liability_ids": ["L1", "L2"],
            "deadline": "2027-02-01",
            "amounts": {"balance": "1100.00", "payoff": "1133.00"},
        }),
    );
    assert_eq!(referrals(&plan, "RI-1"), Vec::<&Value>::new());
}

// ---------------------------------------------------------------------------------------
// Input format: optional fields and arrays may be absent or null.

#[test]
fn optional_fields_and_arrays_may_be_null_or_absent() {
    let plan = plan_of("optional_nulls");
    assert_eq!(plan["errors"], json!([]));
    assert_eq!(
        account_letter_keys(&plan, "NULLS-1"),
        vec![
            "NULLS-1/offset_notice/F1",
            "NULLS-1/offset_notice/S1",
            "NULLS-1/refund/LR1",
        ]
    );
    assert_eq!(
        suppressions(&plan, "NULLS-1"),
        vec![sup(ITO, "review_pending", &["L1"])]
    );
    for account in ["ABSENT-1", "ARRAYS-NULL"] {
        assert_eq!(account_letter_keys(&plan, account), Vec::<String>::new());
        assert_eq!(all_suppressions(&plan, account), vec![]);
    }
}
