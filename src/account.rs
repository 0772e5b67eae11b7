//! The validated account: what `load` produces and `decide` reads.
//!
//! These types hold only data that passed validation (see `load::validate`): amounts are
//! [`Money`] within range and non-negative, references resolve, ids are unique and safe to
//! put in a letter key, and a record's shape matches its kind (a state offset has an
//! agency, a decided review has a decision date). `decide` can rely on that and never
//! re-checks.
//!
//! They serialize (serde's derived form, not the input format `load` reads) so a run can
//! hand a letter's account to a worker process through the ledger (`runner/work.rs`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::letter::{LetterKey, LetterKind};
use crate::money::Money;

/// One taxpayer account, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The agency's account id; the first part of every letter key.
    pub account_id: String,
    /// Who the letters are addressed to.
    pub taxpayer: Taxpayer,
    /// Postal address; `None` means only email delivery is possible.
    pub address: Option<PostalAddress>,
    /// Email address as given; may be malformed (then the taxpayer has not consented).
    pub email: Option<String>,
    /// Whether the taxpayer asked for electronic delivery.
    pub electronic_delivery: bool,
    /// Preferred language tag (`en` when absent).
    pub language: String,
    /// The date the recorded balances were computed (required when there are liabilities).
    pub balance_as_of: Option<NaiveDate>,
    /// Tax debts, each with its recorded balance.
    pub liabilities: Vec<Liability>,
    /// An installment agreement; it never stops an offset.
    pub payment_plan: Option<PaymentPlan>,
    /// A bankruptcy case and its automatic stay.
    pub bankruptcy: Option<Bankruptcy>,
    /// Letters already mailed for this account outside missive's ledger.
    pub notices: Vec<Notice>,
    /// Requests for review and their decisions.
    pub reviews: Vec<Review>,
    /// Refund offsets that happened.
    pub offsets: Vec<Offset>,
    /// Returns filed late for periods the agency had assessed.
    pub late_returns: Vec<LateReturn>,
    /// What the Treasury Offset Program holds for this account, from the agency's records.
    pub referrals: Vec<TopReferral>,
}

impl Account {
    /// The liability with this id.
    pub fn liability(&self, id: &str) -> Option<&Liability> {
        self.liabilities.iter().find(|l| l.id == id)
    }

    /// The email address, if it is usable (present and well formed).
    pub fn valid_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|e| is_valid_email(e))
    }

    /// True when letters may go by email: the taxpayer opted in and the address is valid.
    pub fn email_consented(&self) -> bool {
        self.electronic_delivery && self.valid_email().is_some()
    }
}

/// The taxpayer's name(s) and the only part of the taxpayer id that ever appears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxpayer {
    /// Full name, printed as given.
    pub name: String,
    /// Spouse on a joint return, if any.
    pub spouse_name: Option<String>,
    /// Last four digits of the taxpayer id (exactly four ASCII digits).
    pub tin_last4: String,
}

/// A US postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// Street line.
    pub line1: String,
    /// Second street line (apartment, suite).
    pub line2: Option<String>,
    /// City or town.
    pub city: String,
    /// Two-letter state code.
    pub state: String,
    /// ZIP or ZIP+4.
    pub zip: Zip,
    /// Country code (`US` when absent).
    pub country: String,
}

impl PostalAddress {
    /// The street lines: line 1, then line 2 if there is one.
    pub fn street_lines(&self) -> Vec<String> {
        let mut lines = vec![self.line1.clone()];
        lines.extend(self.line2.clone());
        lines
    }

    /// `CITY ST ZIP`, the last line of an address block.
    pub fn city_line(&self) -> String {
        format!("{} {} {}", self.city, self.state, self.zip)
    }

    /// The address block as printed: the street lines, then the city line.
    pub fn block(&self) -> Vec<String> {
        let mut lines = self.street_lines();
        lines.push(self.city_line());
        lines
    }
}

/// A ZIP code: five digits, optionally four more.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Zip {
    /// The five-digit ZIP.
    pub five: String,
    /// The four-digit add-on, if known.
    pub plus4: Option<String>,
}

impl Zip {
    /// Parses `06103`, `06103-1234` or `061031234`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Zip> {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let (five, plus4) = match (text.len(), text.split_once('-')) {
            (5, None) => (text, None),
            (9, None) => (&text[..5], Some(&text[5..])),
            (10, Some((five, plus4))) if five.len() == 5 => (five, Some(plus4)),
            _ => return None,
        };
        if !digits(five) || !plus4.is_none_or(digits) {
            return None;
        }
        Some(Zip {
            five: five.to_owned(),
            plus4: plus4.map(str::to_owned),
        })
    }
}

impl std::fmt::Display for Zip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.plus4 {
            Some(plus4) => write!(f, "{}-{}", self.five, plus4),
            None => f.write_str(&self.five),
        }
    }
}

/// One assessed tax debt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Liability {
    /// Id, unique within the account.
    pub id: String,
    /// Tax type, e.g. `individual_income`.
    pub tax_type: String,
    /// Tax period, e.g. `2021`.
    pub period: String,
    /// When the tax was due; drives interest and the 10-year limit.
    pub due_date: NaiveDate,
    /// Unpaid tax.
    pub tax: Money,
    /// Unpaid penalty.
    pub penalty: Money,
    /// Interest accrued to `balance_as_of`.
    pub interest: Money,
    /// Assessed, final and not under appeal.
    pub enforceable: bool,
    /// A court judgment: no 10-year collection limit.
    pub judgment: bool,
}

impl Liability {
    /// Tax + penalty + interest as recorded.
    pub fn balance(&self) -> Money {
        self.tax + self.penalty + self.interest
    }
}

/// An installment agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPlan {
    /// Agreed monthly payment.
    pub monthly_amount: Money,
    /// First payment date.
    pub started_on: NaiveDate,
}

/// A bankruptcy case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bankruptcy {
    /// Court case number.
    pub case_number: String,
    /// Court name.
    pub court: String,
    /// Bankruptcy code chapter (7, 9, 11, 12, 13 or 15).
    pub chapter: u8,
    /// Filing date: the automatic stay starts here.
    pub filed_on: NaiveDate,
    /// Last day of the stay, if it has ended.
    pub stay_ended_on: Option<NaiveDate>,
}

impl Bankruptcy {
    /// True when the automatic stay covers `date` (`filed_on` to `stay_ended_on`, inclusive).
    pub fn stay_active_on(&self, date: NaiveDate) -> bool {
        self.filed_on <= date && self.stay_ended_on.is_none_or(|end| date <= end)
    }
}

/// A letter already mailed, as recorded in the account (or, later, in the ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Which kind of letter it was.
    pub kind: LetterKind,
    /// When it was mailed; an intent to offset's deadline is computed from it.
    pub mailed_on: NaiveDate,
    /// What it covered.
    pub subject: NoticeSubject,
    /// It came back undeliverable: it covers nothing and may be reissued.
    pub undeliverable: bool,
}

/// What an earlier notice covered; which variant is required follows from its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoticeSubject {
    /// An intent to offset: these liabilities (sorted, plain string order).
    Liabilities(Vec<String>),
    /// An offset notice or an excess-offset refund: this offset.
    Offset(String),
    /// A late-return refund: this late return.
    LateReturn(String),
    /// A review outcome: this review.
    Review(String),
}

impl NoticeSubject {
    /// The SUBJECT part of the letter key.
    pub fn key_part(&self) -> String {
        match self {
            NoticeSubject::Liabilities(ids) => ids.join("+"),
            NoticeSubject::Offset(id)
            | NoticeSubject::LateReturn(id)
            | NoticeSubject::Review(id) => id.clone(),
        }
    }
}

/// A request for review and, once decided, its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Id, unique within the account.
    pub id: String,
    /// The liabilities under review (sorted).
    pub liability_ids: Vec<String>,
    /// When the taxpayer asked.
    pub requested_on: NaiveDate,
    /// The decision, or pending.
    pub decision: ReviewDecision,
}

/// Where a review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewDecision {
    /// Not decided yet: its liabilities may not be referred.
    Pending,
    /// The debt stands.
    Upheld {
        /// Decision date.
        decided_on: NaiveDate,
    },
    /// The debt stands at `reduced_balance`, the new total for all the review's liabilities.
    Reduced {
        /// Decision date.
        decided_on: NaiveDate,
        /// New total for all the reviewed liabilities together.
        reduced_balance: Money,
    },
    /// The debt is not enforceable and will not be referred.
    Reversed {
        /// Decision date.
        decided_on: NaiveDate,
    },
}

impl Review {
    /// True when the review is still pending.
    pub fn is_pending(&self) -> bool {
        matches!(self.decision, ReviewDecision::Pending)
    }

    /// True when this review covers liability `id`.
    pub fn covers(&self, id: &str) -> bool {
        self.liability_ids.iter().any(|l| l == id)
    }
}

/// A referral the Treasury Offset Program holds (or held: `amount` zero means TOP deleted
/// it), as the agency's records or the ledger know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopReferral {
    /// Key of the intent to offset it was referred under.
    pub notice_key: LetterKey,
    /// The liabilities referred (sorted).
    pub liability_ids: Vec<String>,
    /// When it was first referred.
    pub referred_on: NaiveDate,
    /// What TOP holds after the last update; zero when TOP deleted it.
    pub amount: Money,
    /// When it was last updated, if ever.
    pub updated_on: Option<NaiveDate>,
}

impl TopReferral {
    /// True when TOP still holds it (an amount above zero).
    pub fn is_held(&self) -> bool {
        self.amount.is_positive()
    }
}

/// A refund offset that took place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    /// Id, unique within the account's offsets and late returns.
    pub id: String,
    /// Tax year of the refund.
    pub tax_year: String,
    /// When the refund was offset.
    pub offset_on: NaiveDate,
    /// The refund before the offset.
    pub refund_amount: Money,
    /// The part taken (never more than `refund_amount`).
    pub offset_amount: Money,
    /// When the payment posted to the account, if it has.
    pub posted_on: Option<NaiveDate>,
    /// The refund came from a joint return.
    pub joint_return: bool,
    /// Federal (applied to our debt) or state (withheld for another agency).
    pub source: OffsetSource,
}

/// Where an offset came from, with the data only that source has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetSource {
    /// A federal refund applied to this agency's debt.
    Federal {
        /// The state debt just before the offset.
        balance_before: Money,
    },
    /// This state's refund withheld for another agency's debt.
    State {
        /// The agency that received the money.
        agency: ReceivingAgency,
    },
}

/// Another agency that received a state refund offset; disputes go to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivingAgency {
    /// Agency name.
    pub name: String,
    /// Agency mailing address.
    pub address: PostalAddress,
    /// Agency telephone.
    pub phone: String,
}

/// A return filed late for a period the agency had assessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateReturn {
    /// Id, unique within the account's offsets and late returns.
    pub id: String,
    /// Tax period.
    pub period: String,
    /// When the return was filed.
    pub filed_on: NaiveDate,
    /// Original due date of the return.
    pub due_date: NaiveDate,
    /// Extended due date, if an extension was granted.
    pub extended_due_date: Option<NaiveDate>,
    /// Tax the return shows due.
    pub tax_due: Money,
    /// Offsets already applied to this period.
    pub offsets_applied: Money,
    /// Withholding and estimated payments beyond the tax.
    pub excess_payments: Money,
}

/// A permissive but useful email shape check: one `@`, a non-empty local part, a dotted
/// domain of letters, digits, `-` and `.`, no whitespace, at most 254 characters.
pub fn is_valid_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    text.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && local.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'@' | b'<'
                        | b'>'
                        | b'('
                        | b')'
                        | b','
                        | b';'
                        | b':'
                        | b'"'
                        | b'['
                        | b']'
                        | b'\\'
                )
        })
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.contains('.')
        && domain.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_are_five_or_five_plus_four_digits() {
        assert_eq!(
            Zip::parse("06103").map(|z| z.to_string()),
            Some("06103".into())
        );
        assert_eq!(
            Zip::parse("06103-1234").map(|z| z.to_string()),
            Some("06103-1234".into())
        );
        assert_eq!(
            Zip::parse("061031234").map(|z| z.to_string()),
            Some("06103-1234".into())
        );
        for bad in [
            "0610",
            "061034",
            "06103-123",
            "06103 1234",
            "0610a",
            "06103-12345",
            "",
            "-1234",
            "0é103",
        ] {
            assert_eq!(Zip::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn email_shapes() {
        for ok in [
            "jordan@example.org",
            "a.b+tag@mail.example.co.uk",
            "x@a-b.io",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "jordan",
            "jordan@",
            "@example.org",
            "jordan@example",
            "jo rdan@example.org",
            "jordan@@example.org",
            "jordan@exa_mple.org",
            ".j@example.org",
            "j..k@example.org",
            "jordan@-example.org",
            "jordan@example..org",
            "<j>@example.org",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn stay_is_inclusive_and_may_be_open_ended() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let mut stay = Bankruptcy {
            case_number: "24-1".into(),
            court: "D. Conn.".into(),
            chapter: 7,
            filed_on: d("2024-03-01"),
            stay_ended_on: Some(d("2024-09-15")),
        };
        assert!(!stay.stay_active_on(d("2024-02-29")));
        assert!(stay.stay_active_on(d("2024-03-01")));
        assert!(stay.stay_active_on(d("2024-09-15")));
        assert!(!stay.stay_active_on(d("2024-09-16")));
        stay.stay_ended_on = None;
        assert!(stay.stay_active_on(d("2030-01-01")));
    }
}
