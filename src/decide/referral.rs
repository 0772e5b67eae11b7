//! Referrals to the Treasury Offset Program, referrals held back, and the `to_refer` of
//! review letters (letters.md: "Referral", "Review outcome"); `updates` decides the
//! Treasury updates of what TOP already holds with the same amount rule.
//!
//! One rule serves all four: for a notice and the liabilities of it that TOP does not hold,
//! [`rule`] says whether they would be referred now (and for how much), held (and why), or
//! not at all (every bar is final). Referrals apply it to notices whose deadline passed;
//! `to_refer` applies it ignoring the deadline; updates apply its amount to what TOP holds.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;

use crate::account::{
    Account, Liability, Notice, NoticeSubject, Review, ReviewDecision, TopReferral,
};
use crate::letter::{LetterKey, LetterKind, Variant};
use crate::money::Money;

use super::intent::{Standing, sorted_ids, standing};
use super::{
    AccountDecision, Amounts, DecideContext, HeldReferral, HoldReason, Referral, SuppressReason,
};

/// Merges what the account says TOP holds with what the ledger says: where both name the
/// same notice and liabilities, the ledger's record wins (it is the later).
pub(super) fn merge_holdings(account: &[TopReferral], ledger: &[TopReferral]) -> Vec<TopReferral> {
    let same = |a: &TopReferral, b: &TopReferral| {
        a.notice_key == b.notice_key && a.liability_ids == b.liability_ids
    };
    let mut out: Vec<TopReferral> = account
        .iter()
        .filter(|a| !ledger.iter().any(|l| same(a, l)))
        .chain(ledger)
        .cloned()
        .collect();
    out.sort_by(|a, b| (&a.notice_key, &a.liability_ids).cmp(&(&b.notice_key, &b.liability_ids)));
    out
}

/// A delivered intent to offset: its key, liabilities and first mailing.
#[derive(Debug, Clone)]
pub(super) struct Intent {
    key: LetterKey,
    ids: Vec<String>,
    mailed_on: NaiveDate,
}

/// Delivered intents to offset, one per key (earliest mailing), by mailing date then key.
fn delivered_intents(account: &Account, notices: &[&Notice]) -> Vec<Intent> {
    let mut by_key: BTreeMap<LetterKey, Intent> = BTreeMap::new();
    for notice in notices {
        let (LetterKind::IntentToOffset, NoticeSubject::Liabilities(ids), false) =
            (notice.kind, &notice.subject, notice.undeliverable)
        else {
            continue;
        };
        let key = LetterKey::intent_to_offset(&account.account_id, ids);
        let mut ids = ids.clone();
        ids.sort_unstable();
        let entry = by_key.entry(key.clone()).or_insert(Intent {
            key,
            ids,
            mailed_on: notice.mailed_on,
        });
        entry.mailed_on = entry.mailed_on.min(notice.mailed_on);
    }
    let mut intents: Vec<Intent> = by_key.into_values().collect();
    intents.sort_by(|a, b| (a.mailed_on, &a.key).cmp(&(b.mailed_on, &b.key)));
    intents
}

/// What the rule gives for some liabilities of one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Nothing to refer or hold: every liability is paid or barred for good.
    Nothing,
    /// Would be referred but is held back.
    Held {
        reason: HoldReason,
        ids: Vec<String>,
        why: String,
    },
    /// Referred for this amount.
    Refer { ids: Vec<String>, amount: Money },
}

/// The account, its delivered notices and what TOP holds: what every rule here reads.
pub(super) struct TopState {
    intents: Vec<Intent>,
    holdings: Vec<TopReferral>,
}

impl TopState {
    /// Liabilities TOP holds now (a record with an amount above zero).
    fn held_ids(&self) -> HashSet<&str> {
        self.holdings
            .iter()
            .filter(|h| h.is_held())
            .flat_map(|h| h.liability_ids.iter().map(String::as_str))
            .collect()
    }

    /// The rule for each notice, in mailing order, on liabilities TOP does not hold; a
    /// liability is counted under the first notice that takes it. With `deadline_passed`
    /// only notices whose deadline passed before the as-of date count (referrals);
    /// without, all do (`to_refer`).
    fn outcomes(
        &self,
        account: &Account,
        ctx: &DecideContext<'_>,
        deadline_passed: bool,
    ) -> Vec<(&Intent, Outcome)> {
        let mut taken: HashSet<String> = self.held_ids().into_iter().map(str::to_owned).collect();
        let mut out = Vec::new();
        for intent in &self.intents {
            if deadline_passed && ctx.as_of <= ctx.deadline_for(intent.mailed_on) {
                continue;
            }
            let candidates: Vec<&String> = intent
                .ids
                .iter()
                .filter(|id| !taken.contains(*id))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let outcome = rule(account, &intent.key, &candidates, &self.intents, ctx);
            if let Outcome::Refer { ids, .. } = &outcome {
                taken.extend(ids.iter().cloned());
            }
            out.push((intent, outcome));
        }
        out
    }

    /// Sets `amounts.to_refer` on upheld and reduced review letters: summed over the
    /// notices that covered a reviewed liability, what TOP holds for the notice after this
    /// plan's updates plus what the rule refers under it now, ignoring the deadline (a held
    /// notice adds nothing); `None` when nothing is added at all. The plan's own new intent
    /// to offset counts as a notice mailed on the mail date.
    pub(super) fn fill_to_refer(
        mut self,
        account: &Account,
        ctx: &DecideContext<'_>,
        out: &mut AccountDecision,
    ) {
        for letter in &out.letters {
            if letter.kind == LetterKind::IntentToOffset
                && !self.intents.iter().any(|i| i.key == letter.key)
            {
                self.intents.push(Intent {
                    key: letter.key.clone(),
                    ids: letter.liability_ids.clone(),
                    mailed_on: ctx.mail_date,
                });
            }
        }
        let outcomes = self.outcomes(account, ctx, false);
        for letter in &mut out.letters {
            let (LetterKind::ReviewOutcome, Some(Variant::Upheld | Variant::Reduced)) =
                (letter.kind, letter.variant)
            else {
                continue;
            };
            let reviewed = &letter.liability_ids;
            let mut total: Option<Money> = None;
            for intent in self
                .intents
                .iter()
                .filter(|i| i.ids.iter().any(|id| reviewed.contains(id)))
            {
                let after_update: Money = self
                    .holdings
                    .iter()
                    .filter(|h| h.is_held() && h.notice_key == intent.key)
                    .map(|h| {
                        out.treasury_updates
                            .iter()
                            .find(|u| {
                                u.notice_key == h.notice_key && u.liability_ids == h.liability_ids
                            })
                            .map_or(h.amount, |u| u.amount_after)
                    })
                    .sum();
                let referred: Money = outcomes
                    .iter()
                    .filter(|(i, _)| i.key == intent.key)
                    .map(|(_, outcome)| match outcome {
                        Outcome::Refer { amount, .. } => *amount,
                        Outcome::Held { .. } | Outcome::Nothing => Money::ZERO,
                    })
                    .sum();
                let added = after_update + referred;
                if added.is_positive() {
                    total = Some(total.unwrap_or(Money::ZERO) + added);
                }
            }
            if let Amounts::Review { to_refer, .. } = &mut letter.amounts {
                *to_refer = total;
            }
        }
    }
}

/// Decides the account's referrals, held referrals and Treasury updates; returns what
/// `to_refer` needs afterwards.
pub(super) fn referrals_and_updates(
    account: &Account,
    notices: &[&Notice],
    holdings: &[TopReferral],
    ctx: &DecideContext<'_>,
    out: &mut AccountDecision,
) -> TopState {
    let state = TopState {
        intents: delivered_intents(account, notices),
        holdings: holdings.to_vec(),
    };
    for holding in state.holdings.iter().filter(|h| h.is_held()) {
        if let Some(update) = super::updates::update(account, holding, &state.intents, ctx) {
            out.treasury_updates.push(update);
        }
    }
    for (intent, outcome) in state.outcomes(account, ctx, true) {
        match outcome {
            Outcome::Nothing => {}
            Outcome::Held { reason, ids, why } => out.held_referrals.push(HeldReferral {
                account_id: account.account_id.clone(),
                notice_key: intent.key.clone(),
                liability_ids: ids,
                reason,
                why,
            }),
            Outcome::Refer { ids, amount } => out.referrals.push(Referral {
                account_id: account.account_id.clone(),
                liability_ids: ids,
                amount,
                notice_key: intent.key.clone(),
                deadline_passed: ctx.deadline_for(intent.mailed_on),
            }),
        }
    }
    state
}

/// The referral rule for `candidates` of notice `key` on the as-of date, deadline aside:
/// held for the first of bankruptcy_stay, nothing_referable, below_minimum,
/// offset_not_posted that applies; nothing when every bar is final.
fn rule(
    account: &Account,
    key: &LetterKey,
    candidates: &[&String],
    intents: &[Intent],
    ctx: &DecideContext<'_>,
) -> Outcome {
    let mut referable: Vec<&Liability> = Vec::new();
    let mut pending: Vec<&Liability> = Vec::new();
    for id in candidates {
        // A notice from the ledger may name a liability the account no longer lists:
        // nothing is owed on it here.
        let Some(liability) = account.liability(id) else {
            continue;
        };
        match standing(account, liability, ctx.as_of, ctx) {
            // The stay is checked last, so a stayed liability passed every other rule.
            Standing::Referable | Standing::Out(SuppressReason::BankruptcyStay) => {
                referable.push(liability);
            }
            Standing::Out(SuppressReason::ReviewPending) => pending.push(liability),
            Standing::Paid | Standing::Out(_) => {}
        }
    }
    if referable.is_empty() && pending.is_empty() {
        return Outcome::Nothing;
    }
    let held =
        |reason: HoldReason, ids: Vec<String>, why: String| Outcome::Held { reason, ids, why };
    if let Some(b) = active_stay(account, ctx) {
        let mut all = referable.clone();
        all.extend(&pending);
        return held(
            HoldReason::BankruptcyStay,
            sorted_ids(&all),
            format!(
                "automatic stay since {} (case {}, chapter {}): nothing may be referred while it lasts",
                b.filed_on, b.case_number, b.chapter
            ),
        );
    }
    if referable.is_empty() {
        let waits: Vec<String> = pending
            .iter()
            .map(|l| {
                let reviews: Vec<&str> = account
                    .reviews
                    .iter()
                    .filter(|r| r.is_pending() && r.covers(&l.id))
                    .map(|r| r.id.as_str())
                    .collect();
                format!("{} awaits review {}", l.id, reviews.join(", "))
            })
            .collect();
        return held(
            HoldReason::NothingReferable,
            sorted_ids(&pending),
            format!(
                "nothing referable now: {}; referred once decided if the debt stands",
                waits.join("; ")
            ),
        );
    }
    let amount = referral_amount(account, key, &referable, intents);
    let ids = sorted_ids(&referable);
    if amount < ctx.policy.minimum_amount {
        return held(
            HoldReason::BelowMinimum,
            ids.clone(),
            format!(
                "only {} referable ({}), below the {} minimum",
                amount.dollars(),
                ids.join(", "),
                ctx.policy.minimum_amount.dollars()
            ),
        );
    }
    if let Some(why) = unposted_offset(account) {
        return held(HoldReason::OffsetNotPosted, ids, why);
    }
    Outcome::Refer { ids, amount }
}

/// The bankruptcy case whose automatic stay covers the as-of date.
pub(super) fn active_stay<'a>(
    account: &'a Account,
    ctx: &DecideContext<'_>,
) -> Option<&'a crate::account::Bankruptcy> {
    account
        .bankruptcy
        .as_ref()
        .filter(|b| b.stay_active_on(ctx.as_of))
}

/// A federal offset whose payment is not in the recorded balances (`posted_on` absent or
/// after `balance_as_of`), described for a collections officer; `None` when there is none.
pub(super) fn unposted_offset(account: &Account) -> Option<String> {
    account.offsets.iter().find_map(|o| {
        let crate::account::OffsetSource::Federal { .. } = o.source else {
            return None;
        };
        let head = format!(
            "federal offset {} of {} ({})",
            o.id,
            o.offset_on,
            o.offset_amount.dollars()
        );
        match (o.posted_on, account.balance_as_of) {
            (None, _) => Some(format!(
                "{head} not posted yet: the recorded balances may already be paid"
            )),
            (Some(posted), Some(as_of)) if posted > as_of => Some(format!(
                "{head} posted {posted}, after the balances of {as_of}: they may already be paid"
            )),
            _ => None,
        }
    })
}

/// The latest decided review covering a liability (latest decision date; a tie goes to
/// the one listed last).
pub(super) fn latest_decided_review<'a>(
    account: &'a Account,
    liability_id: &str,
) -> Option<&'a Review> {
    let decided = |r: &Review| match r.decision {
        ReviewDecision::Pending => None,
        ReviewDecision::Upheld { decided_on }
        | ReviewDecision::Reduced { decided_on, .. }
        | ReviewDecision::Reversed { decided_on } => Some(decided_on),
    };
    account
        .reviews
        .iter()
        .filter(|r| r.covers(liability_id))
        .filter_map(|r| decided(r).map(|on| (on, r)))
        .fold(
            None,
            |best: Option<(NaiveDate, &Review)>, (on, r)| match best {
                Some((b, _)) if b > on => best,
                _ => Some((on, r)),
            },
        )
        .map(|(_, r)| r)
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

/// What referring these liabilities under notice `key` is worth: their recorded balances,
/// except that the liabilities of a `reduced` review count together as the lesser of its
/// `reduced_balance` and their recorded balances, once, under the earliest-mailed delivered
/// notice covering any of them (under any later notice they add nothing).
pub(super) fn referral_amount(
    account: &Account,
    key: &LetterKey,
    liabilities: &[&Liability],
    intents: &[Intent],
) -> Money {
    let mut total = Money::ZERO;
    let mut groups: BTreeMap<&str, (Money, Money)> = BTreeMap::new(); // review → (reduced, sum)
    for liability in liabilities {
        match reduced_by(account, &liability.id) {
            Some((review, reduced_balance)) => {
                let first = intents
                    .iter()
                    .find(|i| i.ids.iter().any(|id| review.covers(id)));
                if first.is_none_or(|i| &i.key == key) {
                    let entry = groups
                        .entry(review.id.as_str())
                        .or_insert((reduced_balance, Money::ZERO));
                    entry.1 = entry.1 + liability.balance();
                }
            }
            None => total = total + liability.balance(),
        }
    }
    total
        + groups
            .values()
            .map(|(reduced, sum)| (*reduced).min(*sum))
            .sum::<Money>()
}
