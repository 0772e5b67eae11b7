//! Offset notices, refunds and review outcomes: one letter per record not yet covered.

use crate::account::{Account, Notice, NoticeSubject, OffsetSource, Review, ReviewDecision};
use crate::calendar::add_months;
use crate::letter::{LetterKey, LetterKind, Variant};
use crate::money::Money;

use super::shares;
use super::{
    AccountDecision, Amounts, DecideContext, DueLetter, Facts, LetterError, SuppressReason,
    Suppression, consent_words, email_or_first_class, new_letter,
};

/// True when a delivered notice of `kind` already covered `subject`.
fn covered(notices: &[&Notice], kind: LetterKind, subject: &NoticeSubject) -> bool {
    notices
        .iter()
        .any(|n| n.kind == kind && !n.undeliverable && &n.subject == subject)
}

/// What a letter says before it is routed.
struct Draft {
    /// The key's SUBJECT (the letter's key is made from it).
    subject: String,
    kind: LetterKind,
    amounts: Amounts,
    why: String,
}

/// Routes a letter by email or first-class print and records it, or records why it can't go.
fn push_routed(
    account: &Account,
    ctx: &DecideContext<'_>,
    out: &mut AccountDecision,
    draft: Draft,
    fill: impl FnOnce(&mut DueLetter),
) {
    let Draft {
        subject,
        kind,
        amounts,
        why,
    } = draft;
    match email_or_first_class(account) {
        Ok(route) => {
            let mut letter = new_letter(
                account,
                ctx,
                subject,
                kind,
                route,
                amounts,
                format!("{why}; {}", consent_words(account)),
            );
            fill(&mut letter);
            out.letters.push(letter);
        }
        Err(undeliverable) => out.suppressed.push(Suppression {
            account_id: account.account_id.clone(),
            kind,
            reason: SuppressReason::Undeliverable,
            liability_ids: Vec::new(),
            why: format!(
                "{}: {undeliverable}",
                LetterKey::new(&account.account_id, kind, &subject)
            ),
        }),
    }
}

/// The taxpayer, and the spouse when the return was joint. A joint return without a spouse
/// name cannot be addressed correctly: that is an error for this letter, not a guess.
fn payees(account: &Account, joint: bool, key: &LetterKey) -> Result<Vec<String>, LetterError> {
    let mut names = vec![account.taxpayer.name.clone()];
    if joint {
        match &account.taxpayer.spouse_name {
            Some(spouse) => names.push(spouse.clone()),
            None => {
                return Err(LetterError {
                    key: key.clone(),
                    message: "the return was joint but `taxpayer.spouse_name` is missing; the letter must name both spouses".to_owned(),
                });
            }
        }
    }
    Ok(names)
}

/// One offset notice per offset not yet noticed.
pub(super) fn offset_notices(
    account: &Account,
    notices: &[&Notice],
    ctx: &DecideContext<'_>,
    out: &mut AccountDecision,
) {
    for offset in &account.offsets {
        let subject = NoticeSubject::Offset(offset.id.clone());
        if covered(notices, LetterKind::OffsetNotice, &subject) {
            continue;
        }
        let key = LetterKey::new(&account.account_id, LetterKind::OffsetNotice, &offset.id);
        match &offset.source {
            OffsetSource::Federal { balance_before } => {
                let recipients = match payees(account, offset.joint_return, &key) {
                    Ok(names) => names,
                    Err(err) => {
                        out.errors.push(err);
                        continue;
                    }
                };
                let excess = offset.offset_amount - *balance_before;
                let remaining = (*balance_before - offset.offset_amount).at_least_zero();
                let mut why = format!(
                    "federal refund of {} for tax year {} offset by {} on {}",
                    offset.refund_amount.dollars(),
                    offset.tax_year,
                    offset.offset_amount.dollars(),
                    offset.offset_on
                );
                if excess.is_positive() {
                    why.push_str(&format!(", {} more than the balance", excess.dollars()));
                }
                push_routed(
                    account,
                    ctx,
                    out,
                    Draft {
                        subject: offset.id.clone(),
                        kind: LetterKind::OffsetNotice,
                        amounts: Amounts::FederalOffset {
                            refund: offset.refund_amount,
                            offset: offset.offset_amount,
                            remaining_balance: remaining,
                        },
                        why,
                    },
                    |letter| {
                        letter.variant = Some(Variant::Federal);
                        letter.recipients = recipients;
                        letter.facts = Facts::FederalOffset {
                            excess: Some(excess).filter(|e| e.is_positive()),
                        };
                    },
                );
            }
            OffsetSource::State { agency } => {
                let why = format!(
                    "state refund of {} for tax year {} offset by {} for {}",
                    offset.refund_amount.dollars(),
                    offset.tax_year,
                    offset.offset_amount.dollars(),
                    agency.name
                );
                push_routed(
                    account,
                    ctx,
                    out,
                    Draft {
                        subject: offset.id.clone(),
                        kind: LetterKind::OffsetNotice,
                        amounts: Amounts::StateOffset {
                            refund: offset.refund_amount,
                            offset: offset.offset_amount,
                            refund_paid: offset.refund_amount - offset.offset_amount,
                        },
                        why,
                    },
                    |letter| letter.variant = Some(Variant::State),
                );
            }
        }
    }
}

/// Refunds: posted excess offsets, and late returns that proved no tax due.
pub(super) fn refunds(
    account: &Account,
    notices: &[&Notice],
    ctx: &DecideContext<'_>,
    out: &mut AccountDecision,
) {
    for offset in &account.offsets {
        let OffsetSource::Federal { balance_before } = offset.source else {
            continue;
        };
        let excess = offset.offset_amount - balance_before;
        let posted = offset.posted_on.filter(|posted| *posted <= ctx.as_of);
        let (true, Some(posted)) = (excess.is_positive(), posted) else {
            continue;
        };
        if covered(
            notices,
            LetterKind::Refund,
            &NoticeSubject::Offset(offset.id.clone()),
        ) {
            continue;
        }
        let key = LetterKey::new(&account.account_id, LetterKind::Refund, &offset.id);
        let recipients = match payees(account, offset.joint_return, &key) {
            Ok(names) => names,
            Err(err) => {
                out.errors.push(err);
                continue;
            }
        };
        let why = format!(
            "federal offset {} exceeded the balance {} by {}, posted {posted}",
            offset.offset_amount.dollars(),
            balance_before.dollars(),
            excess.dollars()
        );
        push_routed(
            account,
            ctx,
            out,
            Draft {
                subject: offset.id.clone(),
                kind: LetterKind::Refund,
                amounts: Amounts::ExcessRefund { refund: excess },
                why,
            },
            |letter| {
                letter.variant = Some(Variant::ExcessOffset);
                letter.recipients = recipients;
            },
        );
    }

    for late in &account.late_returns {
        if !late.tax_due.decimal().is_zero() {
            continue;
        }
        if covered(
            notices,
            LetterKind::Refund,
            &NoticeSubject::LateReturn(late.id.clone()),
        ) {
            continue;
        }
        let limit_from = late.extended_due_date.unwrap_or(late.due_date);
        let years = ctx.policy.excess_refund_limit_years;
        // Past the end of the calendar there is no limit date to miss.
        let excess_limit =
            add_months(limit_from, years.saturating_mul(12)).unwrap_or(chrono::NaiveDate::MAX);
        let excess_barred = late.filed_on > excess_limit;
        let excess_refunded = if excess_barred {
            Money::ZERO
        } else {
            late.excess_payments
        };
        // Due whenever the return shows no tax, even if nothing can be refunded: the letter
        // then says why the excess is barred (letters.md).
        let refund = late.offsets_applied + excess_refunded;
        let mut why = format!(
            "late return for {} shows no tax due: {} of offsets returned",
            late.period,
            late.offsets_applied.dollars()
        );
        if excess_barred && late.excess_payments.is_positive() {
            why.push_str(&format!(
                "; excess payments of {} barred (filed {}, after {excess_limit})",
                late.excess_payments.dollars(),
                late.filed_on
            ));
        } else if excess_refunded.is_positive() {
            why.push_str(&format!(
                " plus {} of excess payments",
                excess_refunded.dollars()
            ));
        }
        push_routed(
            account,
            ctx,
            out,
            Draft {
                subject: late.id.clone(),
                kind: LetterKind::Refund,
                amounts: Amounts::LateReturnRefund {
                    refund,
                    offsets_returned: late.offsets_applied,
                    excess_refunded,
                },
                why,
            },
            |letter| {
                letter.variant = Some(Variant::LateReturn);
                letter.facts = Facts::LateReturn {
                    excess_limit,
                    excess_barred,
                };
            },
        );
    }
}

/// One letter per decided review not yet covered.
pub(super) fn review_outcomes(
    account: &Account,
    notices: &[&Notice],
    ctx: &DecideContext<'_>,
    out: &mut AccountDecision,
) {
    for review in &account.reviews {
        let (variant, balance, decided_on) = match review.decision {
            ReviewDecision::Pending => continue,
            ReviewDecision::Upheld { decided_on } => {
                let recorded = review
                    .liability_ids
                    .iter()
                    .filter_map(|id| account.liability(id))
                    .map(|l| l.balance())
                    .sum();
                (Variant::Upheld, recorded, decided_on)
            }
            ReviewDecision::Reduced {
                decided_on,
                reduced_balance,
            } => (Variant::Reduced, reduced_balance, decided_on),
            ReviewDecision::Reversed { decided_on } => (Variant::Reversed, Money::ZERO, decided_on),
        };
        if covered(
            notices,
            LetterKind::ReviewOutcome,
            &NoticeSubject::Review(review.id.clone()),
        ) {
            continue;
        }
        if let Some(later) = superseded_by(account, review) {
            out.suppressed.push(Suppression {
                account_id: account.account_id.clone(),
                kind: LetterKind::ReviewOutcome,
                reason: SuppressReason::Superseded,
                liability_ids: sorted(&review.liability_ids),
                why: format!(
                    "review {} ({variant}, decided {decided_on}) is superseded by review {} \
                     decided {}: only the latest decision is sent",
                    review.id,
                    later.id,
                    shares::decided_on(&later.decision)
                        .map_or_else(String::new, |on| on.to_string()),
                ),
            });
            continue;
        }
        let why = format!(
            "review {} of {} decided {decided_on}: {variant}, balance {}",
            review.id,
            review.liability_ids.join(", "),
            balance.dollars()
        );
        let liability_ids = review.liability_ids.clone();
        push_routed(
            account,
            ctx,
            out,
            Draft {
                subject: review.id.clone(),
                kind: LetterKind::ReviewOutcome,
                amounts: Amounts::Review {
                    balance,
                    to_refer: None,
                },
                why,
            },
            |letter| {
                letter.variant = Some(variant);
                letter.liability_ids = liability_ids;
            },
        );
    }
}

/// The later decided review that governs every liability of `review`, if one does: then
/// `review`'s outcome no longer stands for any of them and its letter would contradict
/// the later one's. `None` while `review` is the latest decision for some liability.
fn superseded_by<'a>(account: &'a Account, review: &Review) -> Option<&'a Review> {
    let mut later = None;
    for id in &review.liability_ids {
        let latest = shares::latest_decided_review(account, id)?;
        if latest.id == review.id {
            return None;
        }
        later = Some(latest);
    }
    later
}

/// The ids, sorted in plain string order (as every printed list is).
fn sorted(ids: &[String]) -> Vec<String> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}
