//! The account file format exactly as `interface.md` gives it, for serde.
//!
//! Every struct refuses unknown fields (a typo must not pass silently), amounts are
//! strings parsed by [`Money`], dates are strict `YYYY-MM-DD`, and optional fields and
//! arrays may be absent or `null`. Nothing here checks meaning; `validate` does that and
//! turns these into [`crate::account::Account`].

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use crate::letter::LetterKind;
use crate::money::Money;

/// A calendar date written strictly as `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoDate(pub NaiveDate);

impl IsoDate {
    /// Parses exactly `YYYY-MM-DD` ([`crate::calendar::parse_iso_date`]).
    pub fn parse(text: &str) -> Option<NaiveDate> {
        crate::calendar::parse_iso_date(text)
    }
}

impl<'de> Deserialize<'de> for IsoDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<IsoDate, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = IsoDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date as a string, like \"2026-12-01\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<IsoDate, E> {
                IsoDate::parse(text).map(IsoDate).ok_or_else(|| {
                    E::custom(format_args!(
                        "`{text}` is not a valid date: write it as YYYY-MM-DD"
                    ))
                })
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// One account file (or JSONL line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    pub account_id: String,
    pub taxpayer: TaxpayerInput,
    pub address: Option<AddressInput>,
    pub email: Option<String>,
    pub electronic_delivery: Option<bool>,
    pub language: Option<String>,
    pub balance_as_of: Option<IsoDate>,
    pub liabilities: Option<Vec<LiabilityInput>>,
    pub payment_plan: Option<PaymentPlanInput>,
    pub bankruptcy: Option<BankruptcyInput>,
    pub notices: Option<Vec<NoticeInput>>,
    pub reviews: Option<Vec<ReviewInput>>,
    pub offsets: Option<Vec<OffsetInput>>,
    pub late_returns: Option<Vec<LateReturnInput>>,
    pub referrals: Option<Vec<ReferralInput>>,
}

/// `taxpayer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxpayerInput {
    pub name: String,
    pub spouse_name: Option<String>,
    pub tin_last4: String,
}

/// `address`, and a receiving agency's `address`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    pub zip: String,
    pub country: Option<String>,
}

/// `liabilities[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiabilityInput {
    pub id: String,
    pub tax_type: String,
    pub period: String,
    pub due_date: IsoDate,
    pub tax: Money,
    pub penalty: Money,
    pub interest: Money,
    pub enforceable: bool,
    pub judgment: Option<bool>,
}

/// `payment_plan`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentPlanInput {
    pub monthly_amount: Money,
    pub started_on: IsoDate,
}

/// `bankruptcy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankruptcyInput {
    pub case_number: String,
    pub court: String,
    pub chapter: u8,
    pub filed_on: IsoDate,
    pub stay_ended_on: Option<IsoDate>,
}

/// `notices[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeInput {
    pub kind: LetterKind,
    pub mailed_on: IsoDate,
    pub liability_ids: Option<Vec<String>>,
    pub offset_id: Option<String>,
    pub review_id: Option<String>,
    pub late_return_id: Option<String>,
    pub undeliverable: Option<bool>,
}

/// `reviews[].outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeInput {
    Pending,
    Upheld,
    Reduced,
    Reversed,
}

/// `reviews[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    pub id: String,
    pub liability_ids: Vec<String>,
    pub requested_on: IsoDate,
    pub decided_on: Option<IsoDate>,
    pub outcome: OutcomeInput,
    pub reduced_balance: Option<Money>,
}

/// `offsets[].source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceInput {
    Federal,
    State,
}

/// `offsets[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetInput {
    pub id: String,
    pub source: SourceInput,
    pub tax_year: String,
    pub offset_on: IsoDate,
    pub refund_amount: Money,
    pub offset_amount: Money,
    pub balance_before: Option<Money>,
    pub joint_return: Option<bool>,
    pub posted_on: Option<IsoDate>,
    pub agency: Option<AgencyInput>,
}

/// `offsets[].agency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyInput {
    pub name: String,
    pub address: AddressInput,
    pub phone: String,
}

/// `late_returns[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateReturnInput {
    pub id: String,
    pub period: String,
    pub filed_on: IsoDate,
    pub due_date: IsoDate,
    pub extended_due_date: Option<IsoDate>,
    pub tax_due: Money,
    pub offsets_applied: Money,
    pub excess_payments: Money,
}

/// `referrals[]`: what the Treasury Offset Program holds. `amount` is parsed like every
/// other amount (a string, at most two decimals).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralInput {
    pub notice_key: String,
    pub liability_ids: Vec<String>,
    pub referred_on: IsoDate,
    pub amount: Money,
    pub updated_on: Option<IsoDate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict() {
        assert!(IsoDate::parse("2026-12-01").is_some());
        assert!(IsoDate::parse("2024-02-29").is_some());
        for bad in [
            "2023-02-29",
            "2026-1-01",
            "2026-12-1",
            "26-12-01",
            "+2026-12-01",
            "2026/12/01",
            "2026-12-01T00:00",
            " 2026-12-01",
            "2026-13-01",
            "2026-00-10",
            "",
            "２０２６-12-01",
        ] {
            assert!(IsoDate::parse(bad).is_none(), "{bad:?}");
        }
    }
}
