//! Referrals to the Treasury Offset Program, referrals held back, and the `to_refer` of
//! review letters (letters.md: "Referral", "Review outcome"); `updates` decides the
//! Treasury updates of what TOP already holds with the same amount rule.
//!
//! One computation serves all four ([`TopState`]): for a notice and the liabilities of it
//! that TOP does not hold, [`rule`] says whether they would be referred now (and for how
//! much), held (and why), or not at all (every bar is final); for each referral TOP holds,
//! what its liabilities are worth now. A `reduced` review's amount is shared out once
//! across all of them (`shares`). Referrals take the outcomes of notices whose deadline
//! passed; `to_refer` takes them all; updates compare each holding's worth with its amount.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;

use crate::account::{Account, Liability, Notice, NoticeSubject, TopReferral};
use crate::letter::{LetterKey, LetterKind, Variant};
use crate::money::Money;

use super::intent::{Standing, sorted_ids, standing};
use super::shares::{Shares, Worth};
use super::{
    AccountDecision, Amounts, DecideContext, DueLetter, HeldReferral, HoldReason, Referral,
    SuppressReason,
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

/// A delivered intent to offset (or the one this plan mails): its key, liabilities and
/// first mailing.
#[derive(Debug, Clone)]
struct Intent {
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

/// What the referral rule gives now for a referral TOP holds.
#[derive(Debug, Clone)]
pub(super) struct Support {
    /// Its liabilities that could be referred on the as-of date (the stay aside), sorted.
    pub referable: Vec<String>,
    /// What they are worth together in this referral.
    pub worth: Worth,
}

/// Everything decided about TOP for one account, computed once: what each referral TOP
/// holds is worth now, and what the rule gives for each notice (deadline aside). Referrals,
/// updates and `to_refer` all read these same numbers.
pub(super) struct TopState {
    /// Delivered intents to offset in mailing order, then the one this plan mails.
    intents: Vec<Intent>,
    /// Referrals TOP holds (amount above zero), in notice-key order.
    holdings: Vec<TopReferral>,
    /// What each holding is worth now, aligned with `holdings`.
    supports: Vec<Support>,
    /// The rule's outcome per notice (index into `intents`), in mailing order.
    outcomes: Vec<(usize, Outcome)>,
}

/// True when the liability could be referred on the as-of date; the account's stay is left
/// aside (it holds or deletes everything at once, whatever the amounts).
fn countable(account: &Account, liability: &Liability, ctx: &DecideContext<'_>) -> bool {
    matches!(
        standing(account, liability, ctx.as_of, ctx),
        Standing::Referable | Standing::Out(SuppressReason::BankruptcyStay)
    )
}

impl TopState {
    /// Computes the state: each `reduced` review's amount is shared out first among the
    /// referrals TOP holds, in the order they were referred (referral date, notice key,
    /// liabilities), then among the notices' new referrals in mailing order; each takes at
    /// most the recorded balances of the review's liabilities it lists.
    fn new(
        account: &Account,
        notices: &[&Notice],
        planned: &[&DueLetter],
        holdings: &[TopReferral],
        ctx: &DecideContext<'_>,
    ) -> TopState {
        let mut intents = delivered_intents(account, notices);
        for letter in planned {
            if letter.kind == LetterKind::IntentToOffset
                && !intents.iter().any(|i| i.key == letter.key)
            {
                intents.push(Intent {
                    key: letter.key.clone(),
                    ids: letter.liability_ids.clone(),
                    mailed_on: ctx.mail_date,
                });
            }
        }
        let all: Vec<&Liability> = account
            .liabilities
            .iter()
            .filter(|l| countable(account, l, ctx))
            .collect();
        let mut shares = Shares::new(account, &all);

        let holdings: Vec<TopReferral> = holdings.iter().filter(|h| h.is_held()).cloned().collect();
        let mut order: Vec<usize> = (0..holdings.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&holdings[a], &holdings[b]);
            (a.referred_on, &a.notice_key, &a.liability_ids).cmp(&(
                b.referred_on,
                &b.notice_key,
                &b.liability_ids,
            ))
        });
        let mut supports: Vec<Option<Support>> = vec![None; holdings.len()];
        for i in order {
            let referable: Vec<&Liability> = holdings[i]
                .liability_ids
                .iter()
                .filter_map(|id| account.liability(id))
                .filter(|l| countable(account, l, ctx))
                .collect();
            supports[i] = Some(Support {
                referable: sorted_ids(&referable),
                worth: shares.take(account, &referable),
            });
        }
        let supports: Vec<Support> = supports.into_iter().flatten().collect();

        let mut taken: HashSet<String> = holdings
            .iter()
            .flat_map(|h| h.liability_ids.iter().cloned())
            .collect();
        let mut outcomes = Vec::new();
        for (i, intent) in intents.iter().enumerate() {
            let candidates: Vec<&String> = intent
                .ids
                .iter()
                .filter(|id| !taken.contains(*id))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let outcome = rule(account, &candidates, &mut shares, ctx);
            if let Outcome::Refer { ids, .. } = &outcome {
                taken.extend(ids.iter().cloned());
            }
            outcomes.push((i, outcome));
        }
        TopState {
            intents,
            holdings,
            supports,
            outcomes,
        }
    }

    /// Sets `amounts.to_refer` on upheld and reduced review letters: summed over the
    /// notices that covered a reviewed liability, what TOP holds for the notice after this
    /// plan's updates plus what the rule refers under it now, ignoring the deadline (a held
    /// notice adds nothing); `None` when nothing is added at all. The plan's own new intent
    /// to offset counts as a notice mailed on the mail date.
    pub(super) fn fill_to_refer(self, out: &mut AccountDecision) {
        for letter in &mut out.letters {
            let (LetterKind::ReviewOutcome, Some(Variant::Upheld | Variant::Reduced)) =
                (letter.kind, letter.variant)
            else {
                continue;
            };
            let reviewed = &letter.liability_ids;
            let mut total: Option<Money> = None;
            for (i, intent) in self.intents.iter().enumerate() {
                if !intent.ids.iter().any(|id| reviewed.contains(id)) {
                    continue;
                }
                let after_update: Money = self
                    .holdings
                    .iter()
                    .filter(|h| h.notice_key == intent.key)
                    .map(|h| {
                        out.treasury_updates
                            .iter()
                            .find(|u| {
                                u.notice_key == h.notice_key && u.liability_ids == h.liability_ids
                            })
                            .map_or(h.amount, |u| u.amount_after)
                    })
                    .sum();
                let referred: Money = self
                    .outcomes
                    .iter()
                    .filter(|(at, _)| *at == i)
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

/// Decides the account's referrals, held referrals and Treasury updates (after its intent
/// to offset, which counts as a notice for `to_refer`); returns what `to_refer` needs.
pub(super) fn referrals_and_updates(
    account: &Account,
    notices: &[&Notice],
    holdings: &[TopReferral],
    ctx: &DecideContext<'_>,
    out: &mut AccountDecision,
) -> TopState {
    let planned: Vec<&DueLetter> = out.letters.iter().collect();
    let state = TopState::new(account, notices, &planned, holdings, ctx);
    for (holding, support) in state.holdings.iter().zip(&state.supports) {
        if let Some(update) = super::updates::update(account, holding, support, ctx) {
            out.treasury_updates.push(update);
        }
    }
    for (i, outcome) in &state.outcomes {
        let intent = &state.intents[*i];
        // Referred (or held) only once the notice's deadline has passed.
        if ctx.as_of <= ctx.deadline_for(intent.mailed_on) {
            continue;
        }
        match outcome.clone() {
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

/// The referral rule for `candidates` of one notice on the as-of date, deadline aside:
/// held for the first of bankruptcy_stay, nothing_referable, below_minimum,
/// offset_not_posted that applies; nothing when every bar is final. The amount takes the
/// notice's share of any `reduced` review from `shares`.
fn rule(
    account: &Account,
    candidates: &[&String],
    shares: &mut Shares,
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
    let Worth { amount, notes } = shares.take(account, &referable);
    let ids = sorted_ids(&referable);
    if amount < ctx.policy.minimum_amount {
        let mut why = format!(
            "only {} referable ({}), below the {} minimum",
            amount.dollars(),
            ids.join(", "),
            ctx.policy.minimum_amount.dollars()
        );
        for note in notes {
            why.push_str(&format!("; {note}"));
        }
        return held(HoldReason::BelowMinimum, ids, why);
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
