//! Which decided review governs a liability, and how a `reduced` review's amount is shared
//! out among the referrals (held or new) that list its liabilities.
//!
//! A `reduced` review sets one amount for all its liabilities together. When TOP holds them
//! in several records, or some are held and some still to be referred, that amount must
//! still count once in all: [`Shares`] hands it out in one fixed order (see
//! `docs/decisions.md`, "Referrals, held referrals and Treasury updates"), and every
//! referral, update and `to_refer` reads the amounts from that one pass.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::account::{Account, Liability, Review, ReviewDecision};
use crate::money::Money;

/// The decision date, `None` while pending.
pub(super) fn decided_on(decision: &ReviewDecision) -> Option<NaiveDate> {
    match *decision {
        ReviewDecision::Pending => None,
        ReviewDecision::Upheld { decided_on }
        | ReviewDecision::Reduced { decided_on, .. }
        | ReviewDecision::Reversed { decided_on } => Some(decided_on),
    }
}

/// The latest decided review covering a liability (latest decision date; a tie goes to
/// the one listed last). A review decided after the as-of date is pending on it (the
/// account `decide` reads was already seen as of that date).
pub(super) fn latest_decided_review<'a>(
    account: &'a Account,
    liability_id: &str,
) -> Option<&'a Review> {
    account
        .reviews
        .iter()
        .filter(|r| r.covers(liability_id))
        .filter_map(|r| decided_on(&r.decision).map(|on| (on, r)))
        .fold(
            None,
            |best: Option<(NaiveDate, &Review)>, (on, r)| match best {
                Some((b, _)) if b > on => best,
                _ => Some((on, r)),
            },
        )
        .map(|(_, r)| r)
}

/// True when the latest decided review of the liability reversed it (an earlier reversal
/// that a later review upheld or reduced no longer counts).
pub(super) fn reversed_by_review(account: &Account, liability_id: &str) -> bool {
    latest_decided_review(account, liability_id)
        .is_some_and(|r| matches!(r.decision, ReviewDecision::Reversed { .. }))
}

/// The `reduced` review that sets a liability's debt, with its reduced balance: its latest
/// decided review, when that one reduced it.
pub(super) fn reduced_by<'a>(
    account: &'a Account,
    liability_id: &str,
) -> Option<(&'a Review, Money)> {
    let review = latest_decided_review(account, liability_id)?;
    match review.decision {
        ReviewDecision::Reduced {
            reduced_balance, ..
        } => Some((review, reduced_balance)),
        _ => None,
    }
}

/// What a set of liabilities is worth in one referral, and how reviews shaped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Worth {
    /// The referral amount: recorded balances, with each `reduced` review's liabilities
    /// counting as the share of its amount this referral took.
    pub amount: Money,
    /// One phrase per `reduced` review involved, for a `why`.
    pub notes: Vec<String>,
}

/// What is left of each `reduced` review's amount while referrals take their shares.
#[derive(Debug, Clone)]
pub(super) struct Shares {
    /// Review id → the amount not yet counted by any referral.
    left: BTreeMap<String, Money>,
}

impl Shares {
    /// The amount of each `reduced` review among `countable` liabilities (those that could
    /// be referred on the as-of date): the lesser of its `reduced_balance` and their
    /// recorded balances. A review none of whose liabilities is countable has nothing.
    pub(super) fn new(account: &Account, countable: &[&Liability]) -> Shares {
        let mut groups: BTreeMap<String, (Money, Money)> = BTreeMap::new();
        for liability in countable {
            if let Some((review, reduced)) = reduced_by(account, &liability.id) {
                let entry = groups
                    .entry(review.id.clone())
                    .or_insert((reduced, Money::ZERO));
                entry.1 = entry.1 + liability.balance();
            }
        }
        Shares {
            left: groups
                .into_iter()
                .map(|(id, (reduced, sum))| (id, reduced.min(sum)))
                .collect(),
        }
    }

    /// Takes what one referral of these (countable) liabilities is worth: the recorded
    /// balance of each liability no `reduced` review governs, plus, for each review that
    /// does, as much of what is left of its amount as the recorded balances of its
    /// liabilities here allow.
    pub(super) fn take(&mut self, account: &Account, liabilities: &[&Liability]) -> Worth {
        let mut amount = Money::ZERO;
        let mut groups: BTreeMap<&str, (&Review, Money, Money)> = BTreeMap::new();
        for liability in liabilities {
            match reduced_by(account, &liability.id) {
                Some((review, reduced)) => {
                    let entry =
                        groups
                            .entry(review.id.as_str())
                            .or_insert((review, reduced, Money::ZERO));
                    entry.2 = entry.2 + liability.balance();
                }
                None => amount = amount + liability.balance(),
            }
        }
        let mut notes = Vec::new();
        for (id, (review, reduced, recorded)) in groups {
            let left = self.left.get(id).copied().unwrap_or(Money::ZERO);
            let share = left.min(recorded);
            self.left.insert(id.to_owned(), left - share);
            amount = amount + share;
            let mut note = format!(
                "review {id} reduced {} to {}",
                review.liability_ids.join(", "),
                reduced.dollars()
            );
            if share < reduced.min(recorded) {
                note.push_str(&format!(
                    " ({} of it counts here, the rest under another referral)",
                    share.dollars()
                ));
            }
            notes.push(note);
        }
        Worth { amount, notes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::TopReferral;
    use crate::decide::tests::{account, d, decide_on, ito_notice, liability, m, review};
    use crate::decide::{Amounts, UpdateAction};
    use crate::letter::LetterKey;

    fn two_reduced_to(reduced: &str) -> Account {
        let mut a = account();
        a.liabilities = vec![
            liability("L1", "2022-04-18", "1000.00", "0.00", "0.00"),
            liability("L2", "2022-04-18", "1000.00", "0.00", "0.00"),
        ];
        a.reviews = vec![review(
            "R1",
            &["L1", "L2"],
            ReviewDecision::Reduced {
                decided_on: d("2026-11-20"),
                reduced_balance: m(reduced),
            },
        )];
        a
    }

    fn refs(a: &Account) -> Vec<&Liability> {
        a.liabilities.iter().collect()
    }

    #[test]
    fn a_reduced_amount_counts_once_across_referrals_first_come_first_served() {
        let a = two_reduced_to("500.00");
        let mut shares = Shares::new(&a, &refs(&a));
        assert_eq!(shares.take(&a, &[&a.liabilities[0]]).amount, m("500.00"));
        let rest = shares.take(&a, &[&a.liabilities[1]]);
        assert_eq!(rest.amount, Money::ZERO);
        assert!(rest.notes[0].contains("0.00 of it counts here"), "{rest:?}");
    }

    #[test]
    fn each_referral_takes_at_most_its_recorded_balances() {
        let a = two_reduced_to("1500.00");
        let mut shares = Shares::new(&a, &refs(&a));
        assert_eq!(shares.take(&a, &[&a.liabilities[0]]).amount, m("1000.00"));
        assert_eq!(shares.take(&a, &[&a.liabilities[1]]).amount, m("500.00"));
    }

    #[test]
    fn the_amount_counts_among_countable_liabilities_only() {
        // L1 paid: the review's 500.00 all counts on L2, capped by L2's balance.
        let mut a = two_reduced_to("500.00");
        a.liabilities[0].tax = Money::ZERO;
        let countable = [&a.liabilities[1]];
        let mut shares = Shares::new(&a, &countable);
        assert_eq!(shares.take(&a, &countable).amount, m("500.00"));
        // Reduced above what is left: the recorded balance caps it.
        let mut b = two_reduced_to("1800.00");
        b.liabilities[0].tax = Money::ZERO;
        let countable = [&b.liabilities[1]];
        let mut shares = Shares::new(&b, &countable);
        assert_eq!(shares.take(&b, &countable).amount, m("1000.00"));
    }

    #[test]
    fn the_latest_decided_review_governs() {
        let mut a = two_reduced_to("500.00");
        a.reviews = vec![
            review(
                "R2",
                &["L1"],
                ReviewDecision::Upheld {
                    decided_on: d("2026-10-15"),
                },
            ),
            review(
                "R1",
                &["L1"],
                ReviewDecision::Reversed {
                    decided_on: d("2026-09-15"),
                },
            ),
        ];
        assert!(!reversed_by_review(&a, "L1"));
        a.reviews.reverse();
        assert!(!reversed_by_review(&a, "L1"), "array order does not matter");
        a.reviews[0].decision = ReviewDecision::Reversed {
            decided_on: d("2026-11-15"),
        };
        assert!(reversed_by_review(&a, "L1"));
    }

    fn held(key: &str, ids: &[&str]) -> TopReferral {
        TopReferral {
            notice_key: LetterKey::from_text(key),
            liability_ids: ids.iter().map(|s| s.to_string()).collect(),
            referred_on: d("2026-08-03"),
            amount: m("1000.00"),
            updated_on: None,
        }
    }

    fn to_refer(out: &crate::decide::AccountDecision) -> Option<Money> {
        out.letters.iter().find_map(|l| match l.amounts {
            Amounts::Review { to_refer, .. } => to_refer,
            _ => None,
        })
    }

    #[test]
    fn updates_and_to_refer_share_one_reduced_amount() {
        let mut a = two_reduced_to("500.00");
        a.notices = vec![ito_notice("2026-06-01", &["L1", "L2"], false)];
        let key = "CT-1/intent_to_offset/L1+L2";
        a.referrals = vec![held(key, &["L1"]), held(key, &["L2"])];
        let out = decide_on(&a, "2026-12-01", "2026-12-01");
        let after: Vec<(UpdateAction, String)> = out
            .treasury_updates
            .iter()
            .map(|u| (u.action, u.amount_after.plain()))
            .collect();
        assert_eq!(
            after,
            [
                (UpdateAction::Decrease, "500.00".to_owned()),
                (UpdateAction::Delete, "0.00".to_owned())
            ]
        );
        assert_eq!(to_refer(&out), Some(m("500.00")));
        // TOP holds only L1: decreased, and L2 is not referred on top of it.
        a.referrals.pop();
        let out = decide_on(&a, "2026-12-01", "2026-12-01");
        assert!(out.referrals.is_empty(), "{:?}", out.referrals);
        assert_eq!(out.treasury_updates[0].amount_after, m("500.00"));
        assert_eq!(to_refer(&out), Some(m("500.00")));
    }

    #[test]
    fn a_notice_of_unreferable_liabilities_does_not_swallow_the_amount() {
        let mut a = two_reduced_to("500.00");
        a.liabilities[0].tax = Money::ZERO;
        a.notices = vec![
            ito_notice("2026-03-02", &["L1"], false),
            ito_notice("2026-04-01", &["L2"], false),
        ];
        let out = decide_on(&a, "2026-12-01", "2026-12-01");
        assert_eq!(out.referrals.len(), 1);
        assert_eq!(out.referrals[0].liability_ids, ["L2"]);
        assert_eq!(out.referrals[0].amount, m("500.00"));
        assert!(out.held_referrals.is_empty());
        assert_eq!(to_refer(&out), Some(m("500.00")));
    }
}
