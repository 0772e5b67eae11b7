//! The `plan` pipeline: records → load → decide → one [`Plan`] for the whole batch.
//!
//! Records are streamed in chunks; each chunk is parsed and decided in parallel (rayon),
//! then merged in input order, so memory grows with the plan, not with the input. A bad
//! account becomes an entry in [`Plan::errors`] and the batch goes on. The finished plan is
//! sorted as interface.md requires (letters by account, kind, key).

use std::collections::HashMap;

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::Serialize;

use crate::account::{Account, Notice, TopReferral};
use crate::decide::{
    self, AccountDecision, DecideContext, DueLetter, HeldReferral, Referral, Suppression,
    TreasuryUpdate,
};
use crate::load::{self, AccountError, Problem, RawRecord};

/// Records handled per parallel chunk: big enough to keep both cores busy, small enough to
/// keep memory flat.
const CHUNK: usize = 2048;

/// The plan for a batch: what `plan --format json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The as-of date used.
    pub as_of: NaiveDate,
    /// The mail date used.
    pub mail_date: NaiveDate,
    /// Letters due, by account id, kind, key.
    pub letters: Vec<DueLetter>,
    /// Letters or liabilities left out, with reasons.
    pub suppressed: Vec<Suppression>,
    /// Referrals due to the federal offset programme.
    pub referrals: Vec<Referral>,
    /// Referrals that would be made but are held back, with the first reason that applies.
    pub referrals_held: Vec<HeldReferral>,
    /// Decreases and deletes of referrals the Treasury Offset Program holds.
    pub treasury_updates: Vec<TreasuryUpdate>,
    /// Accounts or letters that could not be planned.
    pub errors: Vec<PlanError>,
    /// Addition to interface.md: how many accounts were planned without error.
    pub accounts_planned: usize,
}

/// An account or letter that could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanError {
    /// The file (or `file:LINE`).
    pub source: String,
    /// The account id, when known.
    pub account_id: Option<String>,
    /// What went wrong, in one line (names the letter key for a letter error).
    pub message: String,
    /// Addition to interface.md: each problem with its field path.
    pub problems: Vec<Problem>,
}

impl PlanError {
    fn from_account_error(err: AccountError) -> PlanError {
        let message = err
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        PlanError {
            source: err.source,
            account_id: err.account_id,
            message,
            problems: err.problems,
        }
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", self.source)?;
        if let Some(id) = &self.account_id {
            write!(f, " (account {id})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One account after loading and deciding.
pub struct Planned {
    /// The record's source (file or `file:LINE`).
    pub source: String,
    /// The validated account.
    pub account: Account,
    /// What was decided for it.
    pub decision: AccountDecision,
}

/// Notices known from outside the accounts (the ledger), by account id.
pub type PriorNotices = HashMap<String, Vec<Notice>>;

/// What the ledger knows the Treasury Offset Program holds, by account id.
pub type PriorHoldings = HashMap<String, Vec<TopReferral>>;

/// Plans a batch. `each` sees every planned account (in input order) before its decision
/// is merged into the plan, so callers can keep what they need (e.g. accounts with letters
/// to render) without a second pass over the input.
pub fn plan_batch(
    records: impl Iterator<Item = Result<RawRecord, AccountError>>,
    prior: &PriorNotices,
    ctx: &DecideContext<'_>,
    each: impl FnMut(&Planned),
) -> Plan {
    plan_batch_with(records, prior, &PriorHoldings::new(), ctx, each)
}

/// [`plan_batch`], also given what the ledger knows TOP holds (merged with each account's
/// `referrals[]`, the ledger's amount winning).
pub fn plan_batch_with(
    records: impl Iterator<Item = Result<RawRecord, AccountError>>,
    prior: &PriorNotices,
    holdings: &PriorHoldings,
    ctx: &DecideContext<'_>,
    mut each: impl FnMut(&Planned),
) -> Plan {
    let mut plan = Plan {
        as_of: ctx.as_of,
        mail_date: ctx.mail_date,
        letters: Vec::new(),
        suppressed: Vec::new(),
        referrals: Vec::new(),
        referrals_held: Vec::new(),
        treasury_updates: Vec::new(),
        errors: Vec::new(),
        accounts_planned: 0,
    };
    let mut seen_ids: HashMap<String, String> = HashMap::new();
    let mut records = records.peekable();
    while records.peek().is_some() {
        let chunk: Vec<Result<RawRecord, AccountError>> = records.by_ref().take(CHUNK).collect();
        let results: Vec<Result<Planned, AccountError>> = chunk
            .into_par_iter()
            .map(|record| {
                let record = record?;
                let account = load::parse_account(&record)?;
                load::check_tax_types(&account, &ctx.policy.tax_type_labels).map_err(
                    |problems| AccountError {
                        source: record.source.clone(),
                        account_id: Some(account.account_id.clone()),
                        problems,
                    },
                )?;
                let prior = prior
                    .get(&account.account_id)
                    .map_or(&[][..], Vec::as_slice);
                let held = holdings
                    .get(&account.account_id)
                    .map_or(&[][..], Vec::as_slice);
                let decision = decide::decide_with(&account, prior, held, ctx);
                Ok(Planned {
                    source: record.source,
                    account,
                    decision,
                })
            })
            .collect();
        for result in results {
            match result {
                Ok(planned) => {
                    let id = &planned.account.account_id;
                    if let Some(first) = seen_ids.get(id) {
                        plan.errors.push(PlanError {
                            source: planned.source.clone(),
                            account_id: Some(id.clone()),
                            message: format!(
                                "account_id: `{id}` was already loaded from `{first}`; each account may appear once"
                            ),
                            problems: vec![Problem {
                                field: "account_id".to_owned(),
                                message: format!("duplicate of the account in `{first}`"),
                            }],
                        });
                        continue;
                    }
                    seen_ids.insert(id.clone(), planned.source.clone());
                    each(&planned);
                    merge(&mut plan, planned);
                }
                Err(err) => plan.errors.push(PlanError::from_account_error(err)),
            }
        }
    }
    sort(&mut plan);
    plan
}

fn merge(plan: &mut Plan, planned: Planned) {
    let Planned {
        source,
        account,
        decision,
    } = planned;
    plan.accounts_planned += 1;
    plan.letters.extend(decision.letters);
    plan.suppressed.extend(decision.suppressed);
    plan.referrals.extend(decision.referrals);
    plan.referrals_held.extend(decision.held_referrals);
    plan.treasury_updates.extend(decision.treasury_updates);
    for err in decision.errors {
        plan.errors.push(PlanError {
            source: source.clone(),
            account_id: Some(account.account_id.clone()),
            message: format!("letter `{}` cannot be produced: {}", err.key, err.message),
            problems: Vec::new(),
        });
    }
}

/// Orders everything deterministically: letters by account id, kind, key (interface.md);
/// the other lists by account and then their own identity.
fn sort(plan: &mut Plan) {
    plan.letters
        .sort_by(|a, b| (&a.account_id, a.kind, &a.key).cmp(&(&b.account_id, b.kind, &b.key)));
    plan.suppressed.sort_by(|a, b| {
        (&a.account_id, a.kind, a.reason, &a.liability_ids, &a.why).cmp(&(
            &b.account_id,
            b.kind,
            b.reason,
            &b.liability_ids,
            &b.why,
        ))
    });
    plan.referrals
        .sort_by(|a, b| (&a.account_id, &a.notice_key).cmp(&(&b.account_id, &b.notice_key)));
    plan.referrals_held
        .sort_by(|a, b| (&a.account_id, &a.notice_key).cmp(&(&b.account_id, &b.notice_key)));
    plan.treasury_updates.sort_by(|a, b| {
        (&a.account_id, &a.notice_key, &a.liability_ids).cmp(&(
            &b.account_id,
            &b.notice_key,
            &b.liability_ids,
        ))
    });
}
