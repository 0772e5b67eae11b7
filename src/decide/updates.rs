//! Treasury updates: what a referral the Treasury Offset Program holds needs now
//! (letters.md, "Treasury updates": delete at once for a stay or a full reversal; nothing
//! while an offset is unposted or a review pending; then delete, decrease or nothing).

use crate::account::{Account, Liability, ReviewDecision, TopReferral};
use crate::money::Money;

use super::intent::{Standing, sorted_ids, standing, too_old};
use super::referral::{Support, active_stay, unposted_offset};
use super::shares::{latest_decided_review, reversed_by_review};
use super::{DecideContext, TreasuryUpdate, UpdateAction, UpdateReason};

/// The Treasury update a referral TOP holds needs now, if any (letters.md, Treasury
/// updates, steps 1 to 3); `support` is what the referral rule gives now for its
/// liabilities (with its share of any `reduced` review).
pub(super) fn update(
    account: &Account,
    holding: &TopReferral,
    support: &Support,
    ctx: &DecideContext<'_>,
) -> Option<TreasuryUpdate> {
    let ids = &holding.liability_ids;
    let make =
        |action: UpdateAction, reason: UpdateReason, after: Money, why: String| TreasuryUpdate {
            account_id: account.account_id.clone(),
            notice_key: holding.notice_key.clone(),
            action,
            reason,
            amount_before: holding.amount,
            amount_after: after,
            liability_ids: ids.clone(),
            why,
        };
    let delete =
        |reason: UpdateReason, why: String| make(UpdateAction::Delete, reason, Money::ZERO, why);
    // 1. At once: a stay, or every liability reversed by its latest decided review.
    if let Some(b) = active_stay(account, ctx) {
        return Some(delete(
            UpdateReason::BankruptcyStay,
            format!(
                "automatic stay since {} (case {}, chapter {}): TOP may not offset while it lasts",
                b.filed_on, b.case_number, b.chapter
            ),
        ));
    }
    let reversals: Vec<String> = ids
        .iter()
        .filter_map(|id| {
            let review = latest_decided_review(account, id)?;
            matches!(review.decision, ReviewDecision::Reversed { .. })
                .then(|| format!("review {} reversed {id}", review.id))
        })
        .collect();
    if reversals.len() == ids.len() {
        return Some(delete(
            UpdateReason::Reversed,
            format!("{}: the debt is not owed", reversals.join("; ")),
        ));
    }
    // 2. Frozen while a federal offset is unposted or a review is pending.
    let pending = ids.iter().any(|id| {
        account
            .reviews
            .iter()
            .any(|r| r.is_pending() && r.covers(id))
    });
    if pending || unposted_offset(account).is_some() {
        return None;
    }
    // 3. What the referral rule gives now for the referral's liabilities.
    let liabilities: Vec<&Liability> = ids.iter().filter_map(|id| account.liability(id)).collect();
    let referable: Vec<&Liability> = liabilities
        .iter()
        .copied()
        .filter(|l| support.referable.contains(&l.id))
        .collect();
    let amount = support.worth.amount;
    if referable.is_empty() || amount < ctx.policy.minimum_amount {
        let (reason, mut why) = delete_reason(account, &liabilities, &referable, amount, ctx);
        if !referable.is_empty() {
            for note in &support.worth.notes {
                why.push_str(&format!("; {note}"));
            }
        }
        return Some(delete(reason, why));
    }
    if amount < holding.amount {
        let mut causes: Vec<String> = support.worth.notes.clone();
        for id in ids {
            if !referable.iter().any(|l| &l.id == id) {
                causes.push(format!("{id} {}", no_longer(account, id, ctx)));
            }
        }
        if causes.is_empty() {
            causes.push("payments lowered the recorded balance".to_owned());
        }
        return Some(make(
            UpdateAction::Decrease,
            UpdateReason::Reduced,
            amount,
            format!(
                "{}: TOP holds {}, the account now supports {}",
                causes.join("; "),
                holding.amount.dollars(),
                amount.dollars()
            ),
        ));
    }
    // Higher (interest) or equal: nothing; an increase would need a new notice.
    None
}

/// Why a referable-no-more liability dropped out, in a few words.
fn no_longer(account: &Account, id: &str, ctx: &DecideContext<'_>) -> String {
    match account.liability(id) {
        None => "is no longer on the account".to_owned(),
        Some(l) => match standing(account, l, ctx.as_of, ctx) {
            Standing::Paid => "is paid".to_owned(),
            Standing::Out(reason) => format!("is no longer referable ({})", reason.as_str()),
            Standing::Referable => "is referable".to_owned(),
        },
    }
}

/// The reason (and words) for deleting a referral the rule no longer supports: below the
/// minimum while something is referable; else paid when every balance is zero; else the
/// first of not_income_tax, reversed, too_old, not_enforceable that applies to a liability
/// with a balance.
fn delete_reason(
    account: &Account,
    liabilities: &[&Liability],
    referable: &[&Liability],
    amount: Money,
    ctx: &DecideContext<'_>,
) -> (UpdateReason, String) {
    if !referable.is_empty() {
        return (
            UpdateReason::BelowMinimum,
            format!(
                "only {} still referable ({}), below the {} minimum",
                amount.dollars(),
                sorted_ids(referable).join(", "),
                ctx.policy.minimum_amount.dollars()
            ),
        );
    }
    let owing: Vec<&Liability> = liabilities
        .iter()
        .copied()
        .filter(|l| l.balance().is_positive())
        .collect();
    if owing.is_empty() {
        return (
            UpdateReason::Paid,
            format!(
                "{} paid in full: nothing is owed",
                sorted_ids(liabilities).join(", ")
            ),
        );
    }
    let named = |pick: &dyn Fn(&Liability) -> bool| -> Vec<&Liability> {
        owing.iter().copied().filter(|l| pick(l)).collect()
    };
    let not_income = named(&|l| !ctx.policy.is_offsetable(&l.tax_type));
    if !not_income.is_empty() {
        let what: Vec<String> = not_income
            .iter()
            .map(|l| format!("{} is {}", l.id, l.tax_type))
            .collect();
        return (
            UpdateReason::NotIncomeTax,
            format!(
                "{}, not state income tax: a federal refund may not pay it (26 U.S.C. 6402(e))",
                what.join(", ")
            ),
        );
    }
    let reversed = named(&|l| reversed_by_review(account, &l.id));
    if !reversed.is_empty() {
        return (
            UpdateReason::Reversed,
            format!(
                "{} reversed on review: the debt is not owed",
                sorted_ids(&reversed).join(", ")
            ),
        );
    }
    let old = named(&|l| !l.judgment && too_old(l.due_date, ctx.as_of, ctx));
    if !old.is_empty() {
        return (
            UpdateReason::TooOld,
            format!(
                "{} due more than {} years before {}: past the collection limit",
                sorted_ids(&old).join(", "),
                ctx.policy.collection_limit_years,
                ctx.as_of
            ),
        );
    }
    (
        UpdateReason::NotEnforceable,
        format!(
            "{} no longer legally enforceable",
            sorted_ids(&owing).join(", ")
        ),
    )
}
