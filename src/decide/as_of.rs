//! The account as it stood on the as-of date: a dated event after that date has not
//! happened yet on it (docs/decisions.md, "Referrals, held referrals and Treasury updates").
//!
//! - a review decided after the as-of date is still pending (no outcome letter yet, it
//!   freezes its referral and holds its liabilities as `review_pending`);
//! - an offset made after the as-of date has not happened (no notice, no refund, no hold);
//!   a payment posted after it has not posted yet;
//! - a late return filed after it has not been filed (no refund yet).
//!
//! Kept as they are: notices (a letter mailed after the as-of date was mailed; counting it
//! keeps a letter from being sent twice, and its deadline cannot have passed), the
//! `referrals[]` TOP holds (referring one again would double it), the bankruptcy
//! (`stay_active_on` already reads the date) and `balance_as_of` (interface.md: not checked
//! against the as-of date).

use std::borrow::Cow;

use chrono::NaiveDate;

use crate::account::{Account, ReviewDecision};

use super::shares::decided_on;

/// The account as known on `as_of`; borrowed unchanged when nothing in it is later.
pub(super) fn known_on(account: &Account, as_of: NaiveDate) -> Cow<'_, Account> {
    let decided_later = |d: &ReviewDecision| decided_on(d).is_some_and(|on| on > as_of);
    let later = account.reviews.iter().any(|r| decided_later(&r.decision))
        || account
            .offsets
            .iter()
            .any(|o| o.offset_on > as_of || o.posted_on.is_some_and(|p| p > as_of))
        || account.late_returns.iter().any(|l| l.filed_on > as_of);
    if !later {
        return Cow::Borrowed(account);
    }
    let mut seen = account.clone();
    for review in &mut seen.reviews {
        if decided_later(&review.decision) {
            review.decision = ReviewDecision::Pending;
        }
    }
    seen.offsets.retain(|o| o.offset_on <= as_of);
    for offset in &mut seen.offsets {
        offset.posted_on = offset.posted_on.filter(|p| *p <= as_of);
    }
    seen.late_returns.retain(|l| l.filed_on <= as_of);
    Cow::Owned(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::TopReferral;
    use crate::decide::tests::{
        account, d, decide_on, federal, ito_notice, late_return, liability, review,
    };
    use crate::decide::{SuppressReason, UpdateAction};
    use crate::letter::{LetterKey, LetterKind};
    use crate::money::Money;

    fn reversed_on(date: &str) -> Account {
        let mut a = account();
        a.liabilities = vec![liability("L1", "2022-04-18", "1000.00", "0.00", "0.00")];
        a.notices = vec![ito_notice("2026-06-01", &["L1"], false)];
        a.reviews = vec![review(
            "R1",
            &["L1"],
            ReviewDecision::Reversed {
                decided_on: d(date),
            },
        )];
        a.referrals = vec![TopReferral {
            notice_key: LetterKey::from_text("CT-1/intent_to_offset/L1"),
            liability_ids: vec!["L1".into()],
            referred_on: d("2026-08-03"),
            amount: Money::parse("1000.00").expect("amount"),
            updated_on: None,
        }];
        a
    }

    #[test]
    fn a_review_decided_after_the_as_of_date_is_still_pending() {
        let later = decide_on(&reversed_on("2026-12-10"), "2026-12-01", "2026-12-01");
        assert!(later.treasury_updates.is_empty(), "{later:?}");
        assert!(
            later
                .letters
                .iter()
                .all(|l| l.kind != LetterKind::ReviewOutcome)
        );
        // Decided on the as-of date itself: it has happened.
        let on = decide_on(&reversed_on("2026-12-01"), "2026-12-01", "2026-12-01");
        assert_eq!(on.treasury_updates.len(), 1);
        assert_eq!(on.treasury_updates[0].action, UpdateAction::Delete);
    }

    #[test]
    fn a_pending_review_holds_an_intent_to_offset_until_decided() {
        let mut a = reversed_on("2026-12-10");
        a.notices.clear();
        a.referrals.clear();
        let out = decide_on(&a, "2026-12-01", "2026-12-01");
        assert!(out.letters.is_empty(), "{out:?}");
        assert!(
            out.suppressed
                .iter()
                .any(|s| s.reason == SuppressReason::ReviewPending)
        );
    }

    #[test]
    fn later_offsets_payments_and_returns_have_not_happened() {
        let mut a = account();
        let mut offset = federal("F1", "900.00", "900.00", "500.00", false);
        offset.offset_on = d("2026-12-03");
        a.offsets = vec![offset.clone()];
        let seen = known_on(&a, d("2026-12-01"));
        assert!(seen.offsets.is_empty());
        offset.offset_on = d("2026-11-03");
        offset.posted_on = Some(d("2026-12-02"));
        a.offsets = vec![offset];
        let seen = known_on(&a, d("2026-12-01"));
        assert_eq!(seen.offsets[0].posted_on, None);
        assert!(matches!(known_on(&a, d("2026-12-02")), Cow::Borrowed(_)));
        // A late return filed after the as-of date: no refund letter until it is filed.
        let mut b = account();
        b.late_returns = vec![late_return("2026-12-05", "2025-04-15", None)];
        assert!(decide_on(&b, "2026-12-01", "2026-12-01").letters.is_empty());
        assert_eq!(decide_on(&b, "2026-12-05", "2026-12-07").letters.len(), 1);
    }
}
