//! Notice of Intent to Offset, and the referability rules it shares with referrals.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::account::{Account, Liability, Notice, NoticeSubject};
use crate::calendar::{months_between, sub_months};
use crate::letter::{Channel, LetterKind, MailClass};
use crate::money::Money;

use super::shares::reversed_by_review;
use super::{
    AccountDecision, Amounts, DecideContext, Facts, PayoffLine, Route, SuppressReason, Suppression,
    consent_words, new_letter,
};

/// Whether a liability could be referred on a given date, or the first reason it can't.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    /// Nothing owed: quietly left out (there is no debt to notice or refer).
    Paid,
    /// Left out for this reason.
    Out(SuppressReason),
    /// Referable (apart from whether a notice already covered it).
    Referable,
}

/// The referability rules of letters.md, in their listed order, on `date`.
pub(super) fn standing(
    account: &Account,
    liability: &Liability,
    date: NaiveDate,
    ctx: &DecideContext<'_>,
) -> Standing {
    if !liability.balance().is_positive() {
        return Standing::Paid;
    }
    if !ctx.policy.is_offsetable(&liability.tax_type) {
        return Standing::Out(SuppressReason::NotIncomeTax);
    }
    if !liability.enforceable || reversed_by_review(account, &liability.id) {
        return Standing::Out(SuppressReason::NotEnforceable);
    }
    if !liability.judgment && too_old(liability.due_date, date, ctx) {
        return Standing::Out(SuppressReason::TooOld);
    }
    if account
        .reviews
        .iter()
        .any(|r| r.covers(&liability.id) && r.is_pending())
    {
        return Standing::Out(SuppressReason::ReviewPending);
    }
    if account
        .bankruptcy
        .as_ref()
        .is_some_and(|b| b.stay_active_on(date))
    {
        return Standing::Out(SuppressReason::BankruptcyStay);
    }
    Standing::Referable
}

/// Due more than the collection limit (10 years) before `date`. Exactly ten years is not
/// too old; Feb 29 minus ten years clamps to Feb 28.
pub(super) fn too_old(due_date: NaiveDate, date: NaiveDate, ctx: &DecideContext<'_>) -> bool {
    match sub_months(date, ctx.policy.collection_limit_years.saturating_mul(12)) {
        Some(earliest) => due_date < earliest,
        None => false, // before the start of the calendar: nothing can be older
    }
}

/// Interest projected from `balance_as_of` to `deadline` on one liability's unpaid tax:
/// `round_cents(tax × rate × (months(due, deadline) − months(due, balance_as_of)))`, never
/// negative (a balance computed after the deadline projects nothing).
fn projected_interest(
    liability: &Liability,
    balance_as_of: NaiveDate,
    deadline: NaiveDate,
    ctx: &DecideContext<'_>,
) -> Money {
    let to_deadline = months_between(liability.due_date, deadline);
    let already = months_between(liability.due_date, balance_as_of);
    let months = to_deadline.saturating_sub(already);
    Money::from_decimal(
        liability.tax.decimal() * ctx.policy.interest_rate_per_month * Decimal::from(months),
    )
}

/// Liability ids covered by delivered intent-to-offset notices.
fn covered_by_notices<'a>(notices: &[&'a Notice]) -> HashSet<&'a str> {
    notices
        .iter()
        .filter(|n| n.kind == LetterKind::IntentToOffset && !n.undeliverable)
        .filter_map(|n| match &n.subject {
            NoticeSubject::Liabilities(ids) => Some(ids.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Decides the account's intent to offset (at most one), and the liabilities left out.
pub(super) fn intent_to_offset(
    account: &Account,
    notices: &[&Notice],
    ctx: &DecideContext<'_>,
    out: &mut AccountDecision,
) {
    let covered = covered_by_notices(notices);
    let mut left_out: BTreeMap<SuppressReason, Vec<&Liability>> = BTreeMap::new();
    let mut referable: Vec<&Liability> = Vec::new();
    for liability in &account.liabilities {
        match standing(account, liability, ctx.mail_date, ctx) {
            Standing::Paid => {}
            Standing::Out(reason) => left_out.entry(reason).or_default().push(liability),
            Standing::Referable if covered.contains(liability.id.as_str()) => left_out
                .entry(SuppressReason::AlreadySent)
                .or_default()
                .push(liability),
            Standing::Referable => referable.push(liability),
        }
    }
    for (reason, liabilities) in &left_out {
        out.suppressed.push(Suppression {
            account_id: account.account_id.clone(),
            kind: LetterKind::IntentToOffset,
            reason: *reason,
            liability_ids: sorted_ids(liabilities),
            why: left_out_why(account, *reason, liabilities, ctx),
        });
    }
    if referable.is_empty() {
        return;
    }

    let ids = sorted_ids(&referable);
    // The intent to offset states the recorded balances (letters.md: tax + penalty +
    // interest); only a referral counts a reduced review at its reduced balance.
    let balance: Money = referable.iter().map(|l| l.balance()).sum();
    let minimum = ctx.policy.minimum_amount;
    let count = plural(
        referable.len(),
        "referable liability",
        "referable liabilities",
    );
    if balance < minimum {
        out.suppressed.push(Suppression {
            account_id: account.account_id.clone(),
            kind: LetterKind::IntentToOffset,
            reason: SuppressReason::BelowMinimum,
            liability_ids: ids,
            why: format!(
                "{count}, balance {} < {} minimum",
                balance.dollars(),
                minimum.dollars()
            ),
        });
        return;
    }
    if account.address.is_none() {
        out.suppressed.push(Suppression {
            account_id: account.account_id.clone(),
            kind: LetterKind::IntentToOffset,
            reason: SuppressReason::Undeliverable,
            liability_ids: ids,
            why: "no postal address; a notice of intent to offset must go by certified mail"
                .to_owned(),
        });
        return;
    }

    let deadline = ctx.deadline_for(ctx.mail_date);
    // Validation guarantees `balance_as_of` whenever there are liabilities.
    let balance_as_of = account.balance_as_of.unwrap_or(ctx.mail_date);
    let mut sorted = referable.clone();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let lines: Vec<PayoffLine> = sorted
        .iter()
        .map(|l| PayoffLine {
            liability_id: l.id.clone(),
            balance: l.balance(),
            projected_interest: projected_interest(l, balance_as_of, deadline, ctx),
        })
        .collect();
    let payoff = balance + lines.iter().map(|l| l.projected_interest).sum::<Money>();
    let route = Route {
        channel: Channel::Print,
        mail_class: Some(MailClass::Certified),
    };
    let mut why = format!(
        "{count}, balance {} ≥ {} minimum",
        balance.dollars(),
        minimum.dollars()
    );
    if account.email_consented() {
        why.push_str("; email copy (consented)");
    } else if account.electronic_delivery {
        why.push_str(&format!("; no email copy: {}", consent_words(account)));
    }
    let mut letter = new_letter(
        account,
        ctx,
        ids.join("+"),
        LetterKind::IntentToOffset,
        route,
        Amounts::IntentToOffset { balance, payoff },
        why,
    );
    letter.email_copy = account.email_consented();
    letter.deadline = Some(deadline);
    letter.liability_ids = ids;
    letter.facts = Facts::IntentToOffset { lines };
    out.letters.push(letter);
}

/// Why these liabilities were left out, in a sentence.
fn left_out_why(
    account: &Account,
    reason: SuppressReason,
    liabilities: &[&Liability],
    ctx: &DecideContext<'_>,
) -> String {
    let ids = sorted_ids(liabilities).join(", ");
    match reason {
        SuppressReason::NotIncomeTax => {
            let types: BTreeSet<&str> = liabilities.iter().map(|l| l.tax_type.as_str()).collect();
            format!(
                "{ids}: tax type {}, not state income tax; only income tax may be collected from a federal refund (26 U.S.C. 6402(e))",
                types.into_iter().collect::<Vec<_>>().join(", ")
            )
        }
        SuppressReason::NotEnforceable => {
            format!(
                "{ids}: not legally enforceable (not final, under appeal, or reversed on review)"
            )
        }
        SuppressReason::TooOld => format!(
            "{ids}: due more than {} years before the mail date {} and not a judgment",
            ctx.policy.collection_limit_years, ctx.mail_date
        ),
        SuppressReason::ReviewPending => format!("{ids}: a review is pending"),
        SuppressReason::BankruptcyStay => match &account.bankruptcy {
            Some(b) => format!(
                "automatic stay since {} (case {})",
                b.filed_on, b.case_number
            ),
            None => "automatic stay".to_owned(),
        },
        SuppressReason::AlreadySent => {
            format!("{ids}: already covered by a delivered notice of intent to offset")
        }
        SuppressReason::BelowMinimum
        | SuppressReason::Undeliverable
        | SuppressReason::Superseded => ids,
    }
}

/// The liabilities' ids, sorted in plain string order.
pub(super) fn sorted_ids(liabilities: &[&Liability]) -> Vec<String> {
    let mut ids: Vec<String> = liabilities.iter().map(|l| l.id.clone()).collect();
    ids.sort_unstable();
    ids
}

/// "1 referable liability", "2 referable liabilities".
pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
