//! Presentation facts: what a letter must say so that one account's letters of a day tell
//! one story, computed once the account's letters are decided. They never change which
//! letters are due or what the plan JSON says; templates and the facts check read them.

use chrono::NaiveDate;

use crate::account::{Account, Notice, NoticeSubject, OffsetSource};
use crate::letter::{LetterKey, LetterKind, Variant};

use super::{AccountDecision, DecideContext};

/// Facts a letter states for the story to hold together, beyond its amounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Presentation {
    /// Intent to offset reissued after an undeliverable notice: the dates the notices it
    /// replaces were mailed (undeliverable notices whose liabilities it covers), sorted.
    pub replaces_mailed_on: Vec<NaiveDate>,
    /// Federal offset notice with an excess: the date the payment posted, when it is on or
    /// before the letter date (the excess is then refunded, not "to be refunded").
    pub excess_posted_on: Option<NaiveDate>,
    /// Federal offset notice with a posted excess: the key of the refund letter of the
    /// same day that gives the amount, when the plan has one.
    pub refund_letter: Option<LetterKey>,
    /// Review outcome (upheld, reduced): the response deadline of the intent-to-offset
    /// notices covering the reviewed liabilities, when it has not passed on the as-of date
    /// (the letter then says what is referred "if not paid by" it); the latest if several.
    pub pay_by: Option<NaiveDate>,
}

/// Fills [`Presentation`] on every letter of `out`.
pub(super) fn present(
    account: &Account,
    notices: &[&Notice],
    ctx: &DecideContext<'_>,
    out: &mut AccountDecision,
) {
    let refund_keys: Vec<LetterKey> = out
        .letters
        .iter()
        .filter(|l| l.variant == Some(Variant::ExcessOffset))
        .map(|l| l.key.clone())
        .collect();
    // Today's intents to offset: a review of liabilities they cover refers after their
    // deadline, like one of an earlier notice.
    let new_intents: Vec<(Vec<String>, NaiveDate)> = out
        .letters
        .iter()
        .filter(|l| l.kind == LetterKind::IntentToOffset)
        .filter_map(|l| Some((l.liability_ids.clone(), l.deadline?)))
        .collect();
    for letter in &mut out.letters {
        let subject = letter.subject.clone();
        match (letter.kind, letter.variant) {
            (LetterKind::IntentToOffset, _) => {
                let mut dates: Vec<NaiveDate> = notices
                    .iter()
                    .filter(|n| n.kind == LetterKind::IntentToOffset && n.undeliverable)
                    .filter(|n| match &n.subject {
                        NoticeSubject::Liabilities(ids) => {
                            !ids.is_empty()
                                && ids.iter().all(|id| letter.liability_ids.contains(id))
                        }
                        _ => false,
                    })
                    .map(|n| n.mailed_on)
                    .collect();
                dates.sort_unstable();
                dates.dedup();
                letter.shown.replaces_mailed_on = dates;
            }
            (LetterKind::OffsetNotice, Some(Variant::Federal)) => {
                let Some(offset) = account.offsets.iter().find(|o| o.id == subject) else {
                    continue;
                };
                let OffsetSource::Federal { balance_before } = offset.source else {
                    continue;
                };
                if offset.offset_amount <= balance_before {
                    continue;
                }
                letter.shown.excess_posted_on = offset
                    .posted_on
                    .filter(|posted| *posted <= letter.letter_date);
                let refund_key = LetterKey::new(&account.account_id, LetterKind::Refund, &subject);
                letter.shown.refund_letter =
                    refund_keys.iter().find(|k| **k == refund_key).cloned();
            }
            (LetterKind::ReviewOutcome, Some(Variant::Upheld | Variant::Reduced)) => {
                let Some(review) = account.reviews.iter().find(|r| r.id == subject) else {
                    continue;
                };
                let earlier = notices
                    .iter()
                    .filter(|n| n.kind == LetterKind::IntentToOffset && !n.undeliverable)
                    .filter_map(|n| match &n.subject {
                        NoticeSubject::Liabilities(ids) => {
                            Some((ids, ctx.deadline_for(n.mailed_on)))
                        }
                        _ => None,
                    });
                let today = new_intents.iter().map(|(ids, deadline)| (ids, *deadline));
                letter.shown.pay_by = earlier
                    .chain(today)
                    .filter(|(ids, _)| ids.iter().any(|id| review.covers(id)))
                    .map(|(_, deadline)| deadline)
                    .filter(|deadline| ctx.as_of <= *deadline)
                    .max();
            }
            _ => {}
        }
    }
}
