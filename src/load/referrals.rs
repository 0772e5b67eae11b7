//! `referrals[]`: what the Treasury Offset Program holds for an account, checked against the
//! account's own notices (interface.md), and the tax-type check that needs configuration.

use std::collections::{BTreeMap, HashMap};

use crate::account::{Account, Notice, NoticeSubject, TopReferral};
use crate::letter::{LetterKey, LetterKind};

use super::Problem;
use super::input::ReferralInput;
use super::validate::Checker;

/// Checks the account's `referrals[]`: each names a delivered intent to offset of the
/// account's `notices[]` by its key, lists liabilities that notice covered (each in at most
/// one record), and gives an `amount` of zero or more (parsed like every other amount).
pub(super) fn referrals(
    check: &mut Checker,
    account_id: &str,
    inputs: Vec<ReferralInput>,
    notices: &[Notice],
) -> Vec<TopReferral> {
    // Intent-to-offset keys of the account's notices: covered ids, and whether any copy
    // of the notice was delivered (a reissue shares the key of the returned notice).
    let mut intents: HashMap<String, (&[String], bool)> = HashMap::new();
    for notice in notices {
        if let (LetterKind::IntentToOffset, NoticeSubject::Liabilities(ids)) =
            (notice.kind, &notice.subject)
        {
            let key = LetterKey::intent_to_offset(account_id, ids);
            let entry = intents
                .entry(key.as_str().to_owned())
                .or_insert((ids.as_slice(), false));
            entry.1 |= !notice.undeliverable;
        }
    }
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (i, r) in inputs.into_iter().enumerate() {
        let at = |field: &str| format!("referrals[{i}].{field}");
        let before = check.problems.len();
        let covered: &[String] = match intents.get(r.notice_key.as_str()) {
            Some((ids, true)) => ids,
            Some((_, false)) => {
                check.fail(
                    at("notice_key"),
                    format!(
                        "`{}` came back undeliverable (`notices[]`); nothing can be referred under it",
                        r.notice_key
                    ),
                );
                &[]
            }
            None => {
                check.fail(
                    at("notice_key"),
                    format!(
                        "`{}` is not the key of an intent to offset in this account's `notices[]` (expected `{account_id}/intent_to_offset/<liability ids joined by +>`)",
                        r.notice_key
                    ),
                );
                &[]
            }
        };
        if r.liability_ids.is_empty() {
            check.fail(at("liability_ids"), "must name at least one liability");
        }
        for (j, id) in r.liability_ids.iter().enumerate() {
            let field = format!("{}[{j}]", at("liability_ids"));
            if !covered.is_empty() && !covered.contains(id) {
                check.fail(
                    &field,
                    format!(
                        "`{id}` is not one of the liabilities notice `{}` covered ({})",
                        r.notice_key,
                        covered.join(", ")
                    ),
                );
            }
            match owner.get(id) {
                Some(first) if *first == i => {
                    check.fail(&field, format!("`{id}` is listed twice"));
                }
                Some(first) => check.fail(
                    &field,
                    format!("`{id}` is already in `referrals[{first}]`; a liability is in at most one referral"),
                ),
                None => {
                    owner.insert(id.clone(), i);
                }
            }
        }
        // Parsed like every other amount (at most two decimals); zero means TOP deleted it.
        if r.amount.is_negative() {
            check.fail(
                at("amount"),
                format!(
                    "is negative ({}); TOP holds zero or more (\"0.00\" when deleted)",
                    r.amount
                ),
            );
        }
        if let Some(updated_on) = r.updated_on
            && updated_on.0 < r.referred_on.0
        {
            check.fail(at("updated_on"), "is before `referred_on`");
        }
        if check.problems.len() == before {
            let mut liability_ids = r.liability_ids;
            liability_ids.sort_unstable();
            out.push(TopReferral {
                notice_key: LetterKey::from_text(&r.notice_key),
                liability_ids,
                referred_on: r.referred_on.0,
                amount: r.amount,
                updated_on: r.updated_on.map(|d| d.0),
            });
        }
    }
    out
}

/// Checks that every liability's tax type has a label in the configuration's table: a letter
/// must never print a blank or invented tax type. One problem per liability at fault.
pub fn check_tax_types(
    account: &Account,
    labels: &BTreeMap<String, String>,
) -> Result<(), Vec<Problem>> {
    let problems: Vec<Problem> = account
        .liabilities
        .iter()
        .enumerate()
        .filter(|(_, l)| !labels.contains_key(&l.tax_type))
        .map(|(i, l)| Problem {
            field: format!("liabilities[{i}].tax_type"),
            message: format!(
                "liability `{}` has tax type `{}`, which has no label in the configuration's `[policy.tax_type_labels]` table (known: {})",
                l.id,
                l.tax_type,
                labels.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
