//! Unit tests for every decision rule, on accounts built in code.

use chrono::NaiveDate;

use super::*;
use crate::account::{
    Bankruptcy, LateReturn, Liability, NoticeSubject, Offset, OffsetSource, PostalAddress,
    ReceivingAgency, Review, ReviewDecision, Taxpayer, Zip,
};
use crate::calendar::HolidayCalendar;
use crate::config::{BUILT_IN, Config};

pub(super) fn d(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

pub(super) fn m(text: &str) -> Money {
    Money::parse(text).expect("test amount")
}

fn address() -> PostalAddress {
    PostalAddress {
        line1: "12 Elm St".into(),
        line2: None,
        city: "Hartford".into(),
        state: "CT".into(),
        zip: Zip::parse("06103-1234").expect("zip"),
        country: "US".into(),
    }
}

pub(super) fn account() -> Account {
    Account {
        account_id: "CT-1".into(),
        taxpayer: Taxpayer {
            name: "Jordan A. Rivera".into(),
            spouse_name: Some("Casey Rivera".into()),
            tin_last4: "6789".into(),
        },
        address: Some(address()),
        email: Some("jordan@example.org".into()),
        electronic_delivery: false,
        language: "en".into(),
        balance_as_of: Some(d("2026-11-01")),
        liabilities: Vec::new(),
        payment_plan: None,
        bankruptcy: None,
        notices: Vec::new(),
        reviews: Vec::new(),
        offsets: Vec::new(),
        late_returns: Vec::new(),
        referrals: Vec::new(),
    }
}

pub(super) fn liability(
    id: &str,
    due: &str,
    tax: &str,
    penalty: &str,
    interest: &str,
) -> Liability {
    Liability {
        id: id.into(),
        tax_type: "individual_income".into(),
        period: "2021".into(),
        due_date: d(due),
        tax: m(tax),
        penalty: m(penalty),
        interest: m(interest),
        enforceable: true,
        judgment: false,
    }
}

pub(super) fn ito_notice(mailed: &str, ids: &[&str], undeliverable: bool) -> Notice {
    Notice {
        kind: LetterKind::IntentToOffset,
        mailed_on: d(mailed),
        subject: NoticeSubject::Liabilities(ids.iter().map(|s| s.to_string()).collect()),
        undeliverable,
    }
}

pub(super) fn federal(id: &str, refund: &str, offset: &str, before: &str, joint: bool) -> Offset {
    Offset {
        id: id.into(),
        tax_year: "2025".into(),
        offset_on: d("2026-03-10"),
        refund_amount: m(refund),
        offset_amount: m(offset),
        posted_on: Some(d("2026-04-20")),
        joint_return: joint,
        source: OffsetSource::Federal {
            balance_before: m(before),
        },
    }
}

pub(super) fn review(id: &str, ids: &[&str], decision: ReviewDecision) -> Review {
    Review {
        id: id.into(),
        liability_ids: ids.iter().map(|s| s.to_string()).collect(),
        requested_on: d("2026-07-01"),
        decision,
    }
}

/// Decides with the shipped policy and Connecticut calendar on these dates.
pub(super) fn decide_on(account: &Account, as_of: &str, mail: &str) -> AccountDecision {
    let config = Config::parse(BUILT_IN).expect("built-in config");
    let calendar = HolidayCalendar::connecticut();
    let ctx = DecideContext {
        as_of: d(as_of),
        mail_date: d(mail),
        policy: &config.policy,
        calendar: &calendar,
    };
    decide(account, &[], &ctx)
}

fn reasons(decision: &AccountDecision) -> Vec<(SuppressReason, Vec<String>)> {
    decision
        .suppressed
        .iter()
        .map(|s| (s.reason, s.liability_ids.clone()))
        .collect()
}

fn only_letter(decision: &AccountDecision) -> &DueLetter {
    assert_eq!(decision.letters.len(), 1, "{:#?}", decision.letters);
    &decision.letters[0]
}

#[test]
fn intent_to_offset_lists_referable_liabilities_with_deadline_and_payoff() {
    let mut a = account();
    a.liabilities = vec![
        liability("L2", "2023-04-18", "500.00", "50.00", "100.00"),
        liability("L10", "2022-04-18", "1200.00", "120.00", "540.00"),
    ];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let letter = only_letter(&decision);
    assert_eq!(letter.key.as_str(), "CT-1/intent_to_offset/L10+L2");
    assert_eq!(letter.liability_ids, ["L10", "L2"]);
    assert_eq!(letter.channel, Channel::Print);
    assert_eq!(letter.mail_class, Some(MailClass::Certified));
    assert!(!letter.email_copy);
    // Dec 1 + 60 days = Sat Jan 30 2027 → Mon Feb 1 2027.
    assert_eq!(letter.deadline, Some(d("2027-02-01")));
    assert_eq!(letter.letter_date, d("2026-12-01"));
    // L10: months(2022-04-18, 2027-02-01) = 58, months(2022-04-18, 2026-11-01) = 55 → 3
    // months × 1% × 1200 = 36.00. L2: 46 − 43 = 3 → 15.00.
    assert_eq!(
        letter.amounts,
        Amounts::IntentToOffset {
            balance: m("2510.00"),
            payoff: m("2561.00")
        }
    );
    assert_eq!(
        letter.why,
        "2 referable liabilities, balance $2,510.00 ≥ $25.00 minimum"
    );
    assert!(decision.suppressed.is_empty());
}

#[test]
fn payoff_interest_rounds_half_away_from_zero_per_liability() {
    let mut a = account();
    // 1 month × 1% × 12.50 = 0.125 → 0.13.
    a.balance_as_of = Some(d("2027-01-01"));
    a.liabilities = vec![liability("L1", "2026-12-15", "12.50", "20.00", "0.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    // months(12-15, 2027-02-01) = 2; months(12-15, 2027-01-01) = 1.
    assert_eq!(
        only_letter(&decision).amounts,
        Amounts::IntentToOffset {
            balance: m("32.50"),
            payoff: m("32.63")
        }
    );
}

#[test]
fn payoff_never_projects_negative_interest() {
    let mut a = account();
    a.balance_as_of = Some(d("2027-06-01")); // computed after the deadline
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(
        only_letter(&decision).amounts,
        Amounts::IntentToOffset {
            balance: m("100.00"),
            payoff: m("100.00")
        }
    );
}

#[test]
fn minimum_is_inclusive() {
    let mut a = account();
    a.liabilities = vec![liability("L1", "2024-04-15", "25.00", "0.00", "0.00")];
    assert_eq!(decide_on(&a, "2026-12-01", "2026-12-01").letters.len(), 1);
    a.liabilities = vec![liability("L1", "2024-04-15", "24.99", "0.00", "0.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.letters.is_empty());
    assert_eq!(
        reasons(&decision),
        [(SuppressReason::BelowMinimum, vec!["L1".to_owned()])]
    );
}

#[test]
fn zero_balance_liabilities_are_left_out_quietly() {
    let mut a = account();
    a.liabilities = vec![liability("L1", "2024-04-15", "0.00", "0.00", "0.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.letters.is_empty());
    assert!(decision.suppressed.is_empty());
}

#[test]
fn not_enforceable_when_flagged_or_reversed() {
    let mut a = account();
    let mut l1 = liability("L1", "2024-04-15", "100.00", "0.00", "0.00");
    l1.enforceable = false;
    a.liabilities = vec![
        l1,
        liability("L2", "2024-04-15", "100.00", "0.00", "0.00"),
        liability("L3", "2024-04-15", "100.00", "0.00", "0.00"),
    ];
    a.reviews = vec![review(
        "R1",
        &["L2"],
        ReviewDecision::Reversed {
            decided_on: d("2026-08-01"),
        },
    )];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let kinds: Vec<LetterKind> = decision.letters.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        [LetterKind::IntentToOffset, LetterKind::ReviewOutcome]
    );
    assert_eq!(decision.letters[0].liability_ids, ["L3"]);
    assert!(reasons(&decision).contains(&(
        SuppressReason::NotEnforceable,
        vec!["L1".to_owned(), "L2".to_owned()]
    )));
}

#[test]
fn ten_year_limit_counts_from_the_mail_date_except_for_judgments() {
    let mut a = account();
    a.liabilities = vec![
        liability("EXACT", "2016-12-01", "100.00", "0.00", "0.00"),
        liability("OLD", "2016-11-30", "100.00", "0.00", "0.00"),
    ];
    let mut judgment = liability("JUDG", "2001-04-15", "100.00", "0.00", "0.00");
    judgment.judgment = true;
    a.liabilities.push(judgment);
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(only_letter(&decision).liability_ids, ["EXACT", "JUDG"]);
    assert_eq!(
        reasons(&decision),
        [(SuppressReason::TooOld, vec!["OLD".to_owned()])]
    );
}

#[test]
fn ten_year_limit_from_a_leap_day_clamps_to_february_28() {
    let mut a = account();
    a.liabilities = vec![
        liability("A", "2018-02-28", "100.00", "0.00", "0.00"),
        liability("B", "2018-02-27", "100.00", "0.00", "0.00"),
    ];
    let decision = decide_on(&a, "2028-02-29", "2028-02-29");
    assert_eq!(only_letter(&decision).liability_ids, ["A"]);
}

#[test]
fn pending_review_holds_its_liabilities_only() {
    let mut a = account();
    a.liabilities = vec![
        liability("L1", "2024-04-15", "100.00", "0.00", "0.00"),
        liability("L2", "2024-04-15", "100.00", "0.00", "0.00"),
    ];
    a.reviews = vec![review("R1", &["L1"], ReviewDecision::Pending)];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(only_letter(&decision).liability_ids, ["L2"]);
    assert_eq!(
        reasons(&decision),
        [(SuppressReason::ReviewPending, vec!["L1".to_owned()])]
    );
}

#[test]
fn bankruptcy_stay_is_inclusive_of_its_last_day() {
    let mut a = account();
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    a.bankruptcy = Some(Bankruptcy {
        case_number: "26-20001".into(),
        court: "D. Conn.".into(),
        chapter: 13,
        filed_on: d("2026-09-01"),
        stay_ended_on: Some(d("2026-12-01")),
    });
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.letters.is_empty());
    assert_eq!(
        reasons(&decision),
        [(SuppressReason::BankruptcyStay, vec!["L1".to_owned()])]
    );
    assert_eq!(
        decision.suppressed[0].why,
        "automatic stay since 2026-09-01 (case 26-20001)"
    );
    // Ended the day before the mail date: the letter is due.
    let decision = decide_on(&a, "2026-12-02", "2026-12-02");
    assert_eq!(decision.letters.len(), 1);
}

#[test]
fn a_payment_plan_changes_nothing() {
    let mut a = account();
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    let without = decide_on(&a, "2026-12-01", "2026-12-01");
    a.payment_plan = Some(crate::account::PaymentPlan {
        monthly_amount: m("100.00"),
        started_on: d("2025-02-01"),
    });
    assert_eq!(decide_on(&a, "2026-12-01", "2026-12-01"), without);
}

#[test]
fn delivered_notices_cover_their_liabilities_and_undeliverable_ones_do_not() {
    let mut a = account();
    a.liabilities = vec![
        liability("L1", "2024-04-15", "100.00", "0.00", "0.00"),
        liability("L2", "2024-04-15", "100.00", "0.00", "0.00"),
    ];
    a.notices = vec![ito_notice("2026-11-20", &["L1"], false)];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(only_letter(&decision).liability_ids, ["L2"]);
    assert_eq!(
        reasons(&decision),
        [(SuppressReason::AlreadySent, vec!["L1".to_owned()])]
    );

    a.notices = vec![ito_notice("2026-06-01", &["L1", "L2"], true)];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(
        only_letter(&decision).key.as_str(),
        "CT-1/intent_to_offset/L1+L2",
        "a reissue keeps the key"
    );
    assert!(
        decision.referrals.is_empty(),
        "an undeliverable notice starts no clock"
    );
}

#[test]
fn prior_notices_from_the_ledger_count_like_the_accounts_own() {
    let mut a = account();
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    let config = Config::parse(BUILT_IN).expect("config");
    let calendar = HolidayCalendar::connecticut();
    let ctx = DecideContext {
        as_of: d("2026-12-01"),
        mail_date: d("2026-12-01"),
        policy: &config.policy,
        calendar: &calendar,
    };
    let decision = decide(&a, &[ito_notice("2026-11-30", &["L1"], false)], &ctx);
    assert!(decision.letters.is_empty());
}

#[test]
fn no_address_means_undeliverable_even_with_email_consent() {
    let mut a = account();
    a.address = None;
    a.electronic_delivery = true;
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.letters.is_empty());
    assert_eq!(
        reasons(&decision),
        [(SuppressReason::Undeliverable, vec!["L1".to_owned()])]
    );
}

#[test]
fn consent_adds_an_email_copy_to_the_certified_letter() {
    let mut a = account();
    a.electronic_delivery = true;
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let letter = only_letter(&decision);
    assert_eq!(
        (letter.channel, letter.mail_class, letter.email_copy),
        (Channel::Print, Some(MailClass::Certified), true)
    );
}

#[test]
fn an_unusable_email_is_named_in_the_intent_to_offsets_why() {
    let mut a = account();
    a.electronic_delivery = true;
    a.email = Some("bad@@x".into());
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let letter = only_letter(&decision);
    assert!(!letter.email_copy);
    assert!(letter.why.contains("malformed"), "{}", letter.why);
}

#[test]
fn deadline_rolls_over_lincolns_birthday_weekend_and_washingtons_birthday() {
    let mut a = account();
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    // Dec 14 2026 + 60 = Fri Feb 12 2027 (Lincoln's Birthday), weekend, Mon Feb 15
    // (Washington's Birthday) → Tue Feb 16 2027.
    let decision = decide_on(&a, "2026-12-14", "2026-12-14");
    assert_eq!(only_letter(&decision).deadline, Some(d("2027-02-16")));
}

#[test]
fn referral_comes_the_day_after_the_deadline() {
    let mut a = account();
    a.liabilities = vec![
        liability("L1", "2024-04-15", "600.00", "60.00", "80.00"),
        liability("L2", "2024-04-15", "0.00", "0.00", "0.00"),
    ];
    // Mailed Jul 7 2026: +60 = Sat Sep 5, Labor Day Mon Sep 7 → deadline Tue Sep 8.
    a.notices = vec![ito_notice("2026-07-07", &["L1", "L2"], false)];
    let on_deadline = decide_on(&a, "2026-09-08", "2026-09-08");
    assert!(on_deadline.referrals.is_empty());
    let after = decide_on(&a, "2026-09-09", "2026-09-09");
    assert_eq!(
        after.referrals,
        [Referral {
            account_id: "CT-1".into(),
            liability_ids: vec!["L1".into()],
            amount: m("740.00"),
            notice_key: LetterKey::intent_to_offset("CT-1", &["L1", "L2"]),
            deadline_passed: d("2026-09-08"),
        }]
    );
}

#[test]
fn referral_counts_a_reduced_review_once_and_leaves_out_reversed_and_pending() {
    let mut a = account();
    a.liabilities = vec![
        liability("L1", "2024-04-15", "500.00", "0.00", "0.00"),
        liability("L2", "2024-04-15", "500.00", "0.00", "0.00"),
        liability("L3", "2024-04-15", "300.00", "0.00", "0.00"),
        liability("L4", "2024-04-15", "300.00", "0.00", "0.00"),
        liability("L5", "2024-04-15", "300.00", "0.00", "0.00"),
    ];
    a.notices = vec![ito_notice(
        "2026-06-01",
        &["L1", "L2", "L3", "L4", "L5"],
        false,
    )];
    a.reviews = vec![
        review(
            "R1",
            &["L1", "L2"],
            ReviewDecision::Reduced {
                decided_on: d("2026-08-15"),
                reduced_balance: m("600.00"),
            },
        ),
        review(
            "R2",
            &["L4"],
            ReviewDecision::Reversed {
                decided_on: d("2026-08-15"),
            },
        ),
        review("R3", &["L5"], ReviewDecision::Pending),
    ];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(decision.referrals.len(), 1);
    let referral = &decision.referrals[0];
    assert_eq!(referral.liability_ids, ["L1", "L2", "L3"]);
    assert_eq!(referral.amount, m("900.00"));
}

#[test]
fn stay_holds_referrals() {
    let mut a = account();
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    a.notices = vec![ito_notice("2026-06-01", &["L1"], false)];
    a.bankruptcy = Some(Bankruptcy {
        case_number: "26-1".into(),
        court: "D. Conn.".into(),
        chapter: 7,
        filed_on: d("2026-10-01"),
        stay_ended_on: None,
    });
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.referrals.is_empty());
    assert_eq!(
        decision.held_referrals[0].reason,
        HoldReason::BankruptcyStay
    );
}

#[test]
fn federal_offset_notice_names_both_spouses_on_a_joint_return() {
    let mut a = account();
    a.offsets = vec![federal("F1", "2400.00", "1860.00", "1500.00", true)];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let notice = &decision.letters[0];
    assert_eq!(notice.key.as_str(), "CT-1/offset_notice/F1");
    assert_eq!(notice.variant, Some(Variant::Federal));
    assert_eq!(notice.recipients, ["Jordan A. Rivera", "Casey Rivera"]);
    assert_eq!(
        notice.amounts,
        Amounts::FederalOffset {
            refund: m("2400.00"),
            offset: m("1860.00"),
            remaining_balance: m("0.00")
        }
    );
    assert_eq!(
        notice.facts,
        Facts::FederalOffset {
            excess: Some(m("360.00"))
        }
    );
    // Posted 2026-04-20, before as-of: the excess is refunded, to both names.
    let refund = &decision.letters[1];
    assert_eq!(refund.key.as_str(), "CT-1/refund/F1");
    assert_eq!(refund.variant, Some(Variant::ExcessOffset));
    assert_eq!(
        refund.amounts,
        Amounts::ExcessRefund {
            refund: m("360.00")
        }
    );
    assert_eq!(refund.recipients.len(), 2);
}

#[test]
fn excess_refund_waits_for_posting() {
    let mut a = account();
    let mut offset = federal("F1", "2400.00", "1860.00", "1500.00", false);
    offset.posted_on = Some(d("2026-12-02"));
    a.offsets = vec![offset];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(decision.letters.len(), 1, "offset notice only");
    let decision = decide_on(&a, "2026-12-02", "2026-12-02");
    assert_eq!(decision.letters.len(), 2, "posted on the as-of date counts");
}

#[test]
fn joint_return_without_spouse_name_is_a_letter_error_not_a_guess() {
    let mut a = account();
    a.taxpayer.spouse_name = None;
    a.offsets = vec![federal("F1", "2400.00", "1000.00", "1500.00", true)];
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(decision.errors.len(), 1);
    assert_eq!(decision.errors[0].key.as_str(), "CT-1/offset_notice/F1");
    assert_eq!(
        decision.letters.len(),
        1,
        "the account's other letters go on"
    );
}

#[test]
fn state_offset_notice_shows_what_was_still_refunded() {
    let mut a = account();
    a.electronic_delivery = true;
    a.offsets = vec![Offset {
        id: "S1".into(),
        tax_year: "2025".into(),
        offset_on: d("2026-05-01"),
        refund_amount: m("864.00"),
        offset_amount: m("612.50"),
        posted_on: None,
        joint_return: true,
        source: OffsetSource::State {
            agency: ReceivingAgency {
                name: "Department of Social Services".into(),
                address: address(),
                phone: "1-800-228-5437".into(),
            },
        },
    }];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let letter = only_letter(&decision);
    assert_eq!(letter.variant, Some(Variant::State));
    assert_eq!(letter.channel, Channel::Email);
    assert_eq!(letter.mail_class, None);
    assert_eq!(letter.recipients, ["Jordan A. Rivera"]);
    assert_eq!(
        letter.amounts,
        Amounts::StateOffset {
            refund: m("864.00"),
            offset: m("612.50"),
            refund_paid: m("251.50")
        }
    );
}

pub(super) fn late_return(filed: &str, due: &str, extended: Option<&str>) -> LateReturn {
    LateReturn {
        id: "LR1".into(),
        period: "2019".into(),
        filed_on: d(filed),
        due_date: d(due),
        extended_due_date: extended.map(d),
        tax_due: m("0.00"),
        offsets_applied: m("980.00"),
        excess_payments: m("150.00"),
    }
}

#[test]
fn late_return_refunds_excess_only_within_three_years_of_the_extended_due_date() {
    let mut a = account();
    a.late_returns = vec![late_return("2023-10-15", "2020-07-15", Some("2020-10-15"))];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(
        only_letter(&decision).amounts,
        Amounts::LateReturnRefund {
            refund: m("1130.00"),
            offsets_returned: m("980.00"),
            excess_refunded: m("150.00")
        }
    );
    a.late_returns = vec![late_return("2023-10-16", "2020-07-15", Some("2020-10-15"))];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let letter = only_letter(&decision);
    assert_eq!(
        letter.amounts,
        Amounts::LateReturnRefund {
            refund: m("980.00"),
            offsets_returned: m("980.00"),
            excess_refunded: m("0.00")
        }
    );
    assert_eq!(
        letter.facts,
        Facts::LateReturn {
            excess_limit: d("2023-10-15"),
            excess_barred: true
        }
    );
}

#[test]
fn late_return_with_tax_due_gets_no_letter_but_a_zero_refund_still_explains_the_bar() {
    let mut a = account();
    let mut owed = late_return("2026-10-01", "2020-07-15", None);
    owed.tax_due = m("10.00");
    a.late_returns = vec![owed];
    assert!(decide_on(&a, "2026-12-01", "2026-12-01").letters.is_empty());
    let mut nothing = late_return("2026-10-01", "2020-07-15", None);
    nothing.offsets_applied = Money::ZERO;
    a.late_returns = vec![nothing];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let letter = only_letter(&decision);
    assert_eq!(
        letter.amounts,
        Amounts::LateReturnRefund {
            refund: m("0.00"),
            offsets_returned: m("0.00"),
            excess_refunded: m("0.00")
        }
    );
    assert!(matches!(
        letter.facts,
        Facts::LateReturn {
            excess_barred: true,
            ..
        }
    ));
}

#[test]
fn an_intent_to_offset_states_recorded_balances_even_after_a_reduced_review() {
    let mut a = account();
    a.liabilities = vec![
        liability("L1", "2024-04-15", "500.00", "0.00", "0.00"),
        liability("L2", "2024-04-15", "300.00", "0.00", "0.00"),
    ];
    a.reviews = vec![review(
        "R1",
        &["L1", "L2"],
        ReviewDecision::Reduced {
            decided_on: d("2026-08-15"),
            reduced_balance: m("200.00"),
        },
    )];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let ito = decision
        .letters
        .iter()
        .find(|l| l.kind == LetterKind::IntentToOffset)
        .expect("an intent to offset");
    assert!(
        matches!(ito.amounts, Amounts::IntentToOffset { balance, .. } if balance == m("800.00"))
    );
}

#[test]
fn a_partly_referred_reduced_review_counts_the_lesser_of_reduced_and_recorded() {
    let mut a = account();
    a.liabilities = vec![
        liability("L1", "2024-04-15", "500.00", "0.00", "0.00"),
        liability("L2", "2024-04-15", "300.00", "0.00", "0.00"),
    ];
    a.notices = vec![ito_notice("2026-06-01", &["L1"], false)];
    a.reviews = vec![review(
        "R1",
        &["L1", "L2"],
        ReviewDecision::Reduced {
            decided_on: d("2026-08-15"),
            reduced_balance: m("600.00"),
        },
    )];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    // Only L1 (500.00 recorded) is referred: the lesser of 600.00 and 500.00, never the
    // whole reduced balance for part of the debt.
    assert_eq!(decision.referrals.len(), 1);
    assert_eq!(decision.referrals[0].amount, m("500.00"));
}

#[test]
fn review_outcomes_state_the_balance_that_stands() {
    let mut a = account();
    a.liabilities = vec![
        liability("L1", "2024-04-15", "600.00", "60.00", "80.00"),
        liability("L2", "2024-04-15", "100.00", "0.00", "0.00"),
    ];
    a.notices = vec![ito_notice("2026-11-20", &["L1", "L2"], false)];
    let decided_on = d("2026-11-15");
    a.reviews = vec![
        review("R1", &["L1", "L2"], ReviewDecision::Upheld { decided_on }),
        review(
            "R2",
            &["L1"],
            ReviewDecision::Reduced {
                decided_on,
                reduced_balance: m("500.00"),
            },
        ),
        review("R3", &["L2"], ReviewDecision::Reversed { decided_on }),
        review("R4", &["L2"], ReviewDecision::Pending),
    ];
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    let outcomes: Vec<(String, Option<Variant>, Amounts)> = decision
        .letters
        .iter()
        .map(|l| (l.key.to_string(), l.variant, l.amounts.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            // R1 (upheld L1, L2) is superseded: R2 is L1's latest decision (a tie goes to
            // the one listed last), R3 is L2's. Its letter would contradict theirs.
            (
                "CT-1/review_outcome/R2".to_owned(),
                Some(Variant::Reduced),
                Amounts::Review {
                    balance: m("500.00"),
                    to_refer: Some(m("500.00")),
                }
            ),
            (
                "CT-1/review_outcome/R3".to_owned(),
                Some(Variant::Reversed),
                Amounts::Review {
                    balance: m("0.00"),
                    to_refer: None,
                }
            ),
        ]
    );
    assert_eq!(decision.letters[0].liability_ids, ["L1"]);
    let superseded: Vec<_> = decision
        .suppressed
        .iter()
        .filter(|s| s.reason == SuppressReason::Superseded)
        .collect();
    assert_eq!(superseded.len(), 1);
    assert_eq!(superseded[0].kind, LetterKind::ReviewOutcome);
    assert_eq!(superseded[0].liability_ids, ["L1", "L2"]);
    assert!(
        superseded[0].why.contains("review R1"),
        "{}",
        superseded[0].why
    );
}

#[test]
fn notices_in_the_account_cover_offsets_reviews_and_late_returns() {
    let mut a = account();
    a.offsets = vec![federal("F1", "2400.00", "1860.00", "1500.00", false)];
    a.late_returns = vec![late_return("2021-10-01", "2020-07-15", None)];
    a.liabilities = vec![liability("L1", "2024-04-15", "100.00", "0.00", "0.00")];
    a.notices = vec![ito_notice("2026-11-20", &["L1"], false)];
    a.reviews = vec![review(
        "R1",
        &["L1"],
        ReviewDecision::Upheld {
            decided_on: d("2026-11-25"),
        },
    )];
    let notice = |kind, subject| Notice {
        kind,
        mailed_on: d("2026-11-25"),
        subject,
        undeliverable: false,
    };
    a.notices.extend([
        notice(LetterKind::OffsetNotice, NoticeSubject::Offset("F1".into())),
        notice(LetterKind::Refund, NoticeSubject::Offset("F1".into())),
        notice(LetterKind::Refund, NoticeSubject::LateReturn("LR1".into())),
        notice(
            LetterKind::ReviewOutcome,
            NoticeSubject::Review("R1".into()),
        ),
    ]);
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(decision.letters.is_empty(), "{:#?}", decision.letters);
}

#[test]
fn email_needs_consent_and_a_valid_address() {
    let mut a = account();
    a.offsets = vec![federal("F1", "2400.00", "100.00", "1500.00", false)];
    let channel = |a: &Account| only_letter(&decide_on(a, "2026-12-01", "2026-12-01")).channel;
    assert_eq!(channel(&a), Channel::Print);
    a.electronic_delivery = true;
    assert_eq!(channel(&a), Channel::Email);
    a.email = Some("jordan at example.org".into());
    assert_eq!(channel(&a), Channel::Print);
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert!(
        only_letter(&decision).why.contains("malformed"),
        "{}",
        only_letter(&decision).why
    );
    a.address = None;
    let decision = decide_on(&a, "2026-12-01", "2026-12-01");
    assert_eq!(
        reasons(&decision),
        [(SuppressReason::Undeliverable, vec![])]
    );
}

#[test]
fn decide_is_deterministic_and_ignores_record_order() {
    let mut a = account();
    a.liabilities = vec![
        liability("L1", "2024-04-15", "100.00", "0.00", "0.00"),
        liability("L2", "2012-04-15", "100.00", "0.00", "0.00"),
        liability("L3", "2024-04-15", "100.00", "0.00", "0.00"),
    ];
    a.offsets = vec![
        federal("F1", "2400.00", "100.00", "1500.00", false),
        federal("F2", "2400.00", "100.00", "1500.00", false),
    ];
    let first = decide_on(&a, "2026-12-01", "2026-12-01");
    a.liabilities.reverse();
    a.offsets.reverse();
    let second = decide_on(&a, "2026-12-01", "2026-12-01");
    let keys = |x: &AccountDecision| x.letters.iter().map(|l| l.key.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&first), keys(&second));
    assert_eq!(reasons(&first), reasons(&second));
}
