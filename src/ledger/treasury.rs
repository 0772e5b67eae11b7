//! What was sent to the Treasury Offset Program: referrals and Treasury actions.
//!
//! Each run records its referrals (`add`) and updates (`decrease`, `delete`) in one
//! transaction, together with the referral record of an add. What TOP holds for
//! a referral (notice key + liabilities) is the latest action's `amount_after`: the run
//! passes that to `decide`, so a rerun on the same data sends nothing twice.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::stamp;
use crate::letter::LetterKey;
use crate::money::Money;

/// One line of the Treasury file: what is sent to TOP about one referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreasuryAction {
    /// `add`, `decrease` or `delete`.
    pub action: String,
    /// The account.
    pub account_id: String,
    /// The intent to offset the referral is made under.
    pub notice_key: LetterKey,
    /// The referral's liabilities, sorted.
    pub liability_ids: Vec<String>,
    /// What TOP held before (`0.00` for an add).
    pub amount_before: Money,
    /// What TOP holds afterwards (`0.00` for a delete).
    pub amount_after: Money,
    /// Why: `deadline_passed` for an add, else the update's reason.
    pub reason: String,
    /// The debtor's name as on the account.
    pub debtor_name: String,
    /// The last four digits of the debtor's TIN (the agency's TOP interface joins the rest).
    pub tin_last4: String,
    /// Why, in words.
    pub why: String,
}

impl TreasuryAction {
    /// The referral an `add` makes, with the deadline of its notice that passed.
    pub fn referral(&self, deadline_passed: NaiveDate) -> NewReferral {
        NewReferral {
            account_id: self.account_id.clone(),
            liability_ids: self.liability_ids.clone(),
            amount: self.amount_after,
            notice_key: self.notice_key.clone(),
            deadline_passed,
        }
    }

    /// The dollars the control totals count for it: the amount of an add, what a decrease
    /// takes off, what a delete withdraws (letters.md, Treasury updates).
    pub fn dollars(&self) -> Money {
        match self.action.as_str() {
            "add" => self.amount_after,
            "delete" => self.amount_before,
            _ => self.amount_before - self.amount_after,
        }
    }
}

/// A referral to record: the liabilities of an intent to offset whose deadline passed,
/// referred to the Treasury Offset Program (one per notice, ever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReferral {
    /// The account.
    pub account_id: String,
    /// The liabilities referred, sorted.
    pub liability_ids: Vec<String>,
    /// Their referable amount.
    pub amount: Money,
    /// The intent to offset the referral is made under.
    pub notice_key: LetterKey,
    /// The notice's deadline that passed.
    pub deadline_passed: NaiveDate,
}

/// A Treasury action as recorded, with its run and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreasuryRecord {
    /// Increasing id: the order actions were recorded in.
    pub id: i64,
    /// The run that sent it.
    pub run_id: i64,
    /// When (UTC; stored and printed as RFC 3339 with milliseconds).
    #[serde(serialize_with = "stamp::serialize")]
    pub at: DateTime<Utc>,
    /// The action.
    #[serde(flatten)]
    pub action: TreasuryAction,
}
