//! The `plan` pipeline: records → load → decide → one [`Plan`] for the whole batch.
//!
//! Records are streamed in chunks; each chunk is parsed and decided in parallel (rayon),
//! then merged in input order, so memory grows with the plan, not with the input. A bad
//! account becomes an entry in [`Plan::errors`] and the batch goes on. The finished plan is
//! sorted as interface.md requires (letters by account, kind, key). [`plan_chunks`] hands
//! out each chunk's accounts instead of merging them, for a caller (`render`) that holds
//! one chunk at a time; either way an account id is planned once, its duplicates are
//! errors, and the errors are in input order.

mod seen;

use std::collections::HashMap;

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::Serialize;

use crate::account::{Account, Notice, TopReferral};
use crate::decide::{
    self, AccountDecision, Amounts, DecideContext, DueLetter, HeldReferral, LetterError, Referral,
    Suppression, TreasuryUpdate,
};
use crate::letter::LetterKey;
use crate::load::{self, AccountError, Problem, RawRecord};
use crate::money::Money;

/// Records handled per parallel chunk: big enough to keep both cores busy, small enough to
/// keep memory flat.
pub const CHUNK: usize = 2048;

/// Records per chunk when each chunk's letters are rendered before the next is planned
/// (`render`): the chunk's accounts and letters are held while they render, and deciding
/// is so much faster than rendering that a smaller chunk costs nothing measurable.
pub const STREAM_CHUNK: usize = 256;

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

/// One line for people, with the input it quotes escaped ([`crate::report::escape`]).
impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::report::escape;
        write!(f, "`{}`", escape(&self.source))?;
        if let Some(id) = &self.account_id {
            write!(f, " (account {})", escape(id))?;
        }
        write!(f, ": {}", escape(&self.message))
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
    let merged = plan_chunks(records, prior, holdings, ctx, CHUNK, |chunk| {
        for planned in chunk {
            each(&planned);
            merge(&mut plan, planned);
        }
        Ok::<(), std::convert::Infallible>(())
    });
    let tally = match merged {
        Ok(tally) => tally,
        Err(never) => match never {},
    };
    plan.errors = tally.errors;
    plan.accounts_planned = tally.accounts_planned;
    sort(&mut plan);
    plan
}

/// What planning leaves besides the accounts themselves: the errors, and how many
/// accounts were planned.
#[derive(Debug, Default)]
pub struct PlanTally {
    /// Accounts or letters that could not be planned, in input order (what
    /// [`Plan::errors`] holds).
    pub errors: Vec<PlanError>,
    /// How many accounts were planned without error.
    pub accounts_planned: usize,
}

/// Plans a batch `chunk` records at a time and hands each chunk's planned accounts
/// (input order, a duplicate account left out) to `each_chunk`, keeping none of them: a
/// caller that renders as it goes (`render`) holds one chunk, not the plan. The chunk's
/// letters are in decide's order, not the plan's (see [`sort_letters`]). Each planned
/// account's letter errors are in the tally's errors as well as in its decision. An error
/// from `each_chunk` stops planning.
pub fn plan_chunks<E>(
    records: impl Iterator<Item = Result<RawRecord, AccountError>>,
    prior: &PriorNotices,
    holdings: &PriorHoldings,
    ctx: &DecideContext<'_>,
    chunk: usize,
    mut each_chunk: impl FnMut(Vec<Planned>) -> Result<(), E>,
) -> Result<PlanTally, E> {
    let mut tally = PlanTally::default();
    let mut seen_ids: seen::SeenIds = seen::SeenIds::default();
    let mut records = records.peekable();
    while records.peek().is_some() {
        let batch: Vec<Result<RawRecord, AccountError>> =
            records.by_ref().take(chunk.max(1)).collect();
        let results: Vec<Result<Planned, AccountError>> = batch
            .into_par_iter()
            .map(|record| plan_one(record, prior, holdings, ctx))
            .collect();
        let mut planned_chunk = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(planned) => {
                    let id = &planned.account.account_id;
                    if let Some(first) = seen_ids.source_of(id) {
                        tally.errors.push(duplicate_error(&planned, first));
                        continue;
                    }
                    seen_ids.insert(id, &planned.source);
                    tally.accounts_planned += 1;
                    tally
                        .errors
                        .extend(planned.decision.errors.iter().map(|err| PlanError {
                            source: planned.source.clone(),
                            account_id: Some(id.clone()),
                            message: format!(
                                "letter `{}` cannot be produced: {}",
                                err.key, err.message
                            ),
                            problems: Vec::new(),
                        }));
                    planned_chunk.push(planned);
                }
                Err(err) => tally.errors.push(PlanError::from_account_error(err)),
            }
        }
        each_chunk(planned_chunk)?;
    }
    Ok(tally)
}

/// Loads and decides one record.
fn plan_one(
    record: Result<RawRecord, AccountError>,
    prior: &PriorNotices,
    holdings: &PriorHoldings,
    ctx: &DecideContext<'_>,
) -> Result<Planned, AccountError> {
    let record = record?;
    let account = load::parse_account(&record)?;
    load::check_tax_types(&account, &ctx.policy.tax_type_labels).map_err(|problems| {
        AccountError {
            source: record.source.clone(),
            account_id: Some(account.account_id.clone()),
            problems,
        }
    })?;
    let prior = prior
        .get(&account.account_id)
        .map_or(&[][..], Vec::as_slice);
    let held = holdings
        .get(&account.account_id)
        .map_or(&[][..], Vec::as_slice);
    let mut decision = decide::decide_with(&account, prior, held, ctx);
    refuse_out_of_range(&mut decision);
    Ok(Planned {
        source: record.source,
        account,
        decision,
    })
}

/// The error of an account whose id was already loaded from `first`.
fn duplicate_error(planned: &Planned, first: &str) -> PlanError {
    let id = &planned.account.account_id;
    PlanError {
        source: planned.source.clone(),
        account_id: Some(id.clone()),
        message: format!(
            "account_id: `{id}` was already loaded from `{first}`; each account may appear once"
        ),
        problems: vec![Problem {
            field: "account_id".to_owned(),
            message: format!("duplicate of the account in `{first}`"),
        }],
    }
}

/// Amounts each within [`Money::MAX`] can sum past it (a balance of several liabilities, a
/// payoff with interest): such a letter could not be printed, so it becomes an error of
/// its account naming the amount, and the account's other letters go on.
fn refuse_out_of_range(decision: &mut AccountDecision) {
    let (letters, over): (Vec<DueLetter>, Vec<DueLetter>) = std::mem::take(&mut decision.letters)
        .into_iter()
        .partition(|l| largest_amount(&l.amounts) <= Money::MAX);
    decision.letters = letters;
    for letter in over {
        decision.errors.push(LetterError {
            message: format!(
                "its amounts add up to {}, more than the largest amount a letter may state ({})",
                largest_amount(&letter.amounts),
                Money::MAX
            ),
            key: letter.key,
        });
    }
}

/// The largest amount a letter states (amounts are never negative here).
fn largest_amount(amounts: &Amounts) -> Money {
    let all: &[Money] = match amounts {
        Amounts::IntentToOffset { balance, payoff } => &[*balance, *payoff],
        Amounts::FederalOffset {
            refund,
            offset,
            remaining_balance,
        } => &[*refund, *offset, *remaining_balance],
        Amounts::StateOffset {
            refund,
            offset,
            refund_paid,
        } => &[*refund, *offset, *refund_paid],
        Amounts::ExcessRefund { refund } => &[*refund],
        Amounts::LateReturnRefund {
            refund,
            offsets_returned,
            excess_refunded,
        } => &[*refund, *offsets_returned, *excess_refunded],
        Amounts::Review { balance, to_refer } => &[*balance, to_refer.unwrap_or(Money::ZERO)],
    };
    all.iter().map(|m| m.abs()).max().unwrap_or(Money::ZERO)
}

/// Adds an account's decision to the plan (its letter errors are in the tally already).
fn merge(plan: &mut Plan, planned: Planned) {
    let decision = planned.decision;
    plan.letters.extend(decision.letters);
    plan.suppressed.extend(decision.suppressed);
    plan.referrals.extend(decision.referrals);
    plan.referrals_held.extend(decision.held_referrals);
    plan.treasury_updates.extend(decision.treasury_updates);
}

/// Orders everything deterministically: letters by account id, kind, key (interface.md);
/// the other lists by account and then their own identity.
fn sort(plan: &mut Plan) {
    sort_letters(&mut plan.letters);
    plan.suppressed.sort_by(|a, b| {
        (&a.account_id, a.kind, a.reason, &a.liability_ids, &a.why).cmp(&(
            &b.account_id,
            b.kind,
            b.reason,
            &b.liability_ids,
            &b.why,
        ))
    });
    plan.referrals_held
        .sort_by(|a, b| (&a.account_id, &a.notice_key).cmp(&(&b.account_id, &b.notice_key)));
    sort_treasury(&mut plan.referrals, &mut plan.treasury_updates);
}

/// Orders referrals as the plan lists them (by account, notice) and Treasury updates (by
/// account, notice, liabilities): a run that plans chunk by chunk sorts its own this way.
pub fn sort_treasury(referrals: &mut [Referral], updates: &mut [TreasuryUpdate]) {
    referrals.sort_by(|a, b| (&a.account_id, &a.notice_key).cmp(&(&b.account_id, &b.notice_key)));
    updates.sort_by(|a, b| {
        (&a.account_id, &a.notice_key, &a.liability_ids).cmp(&(
            &b.account_id,
            &b.notice_key,
            &b.liability_ids,
        ))
    });
}

/// Orders letters as the plan lists them: by account id, kind, key (interface.md).
pub fn sort_letters(letters: &mut [DueLetter]) {
    letters.sort_by(|a, b| plan_order(a).cmp(&plan_order(b)));
}

/// A letter's place in the plan's order.
fn plan_order(letter: &DueLetter) -> (&str, crate::letter::LetterKind, &LetterKey) {
    (&letter.account_id, letter.kind, &letter.key)
}
