//! Stage 2, `decide`: one account + the as-of and mail dates → the letters due, the letters
//! and liabilities left out (with their reason), and the referrals due.
//!
//! Pure: no I/O and no clock. The dates, the policy and the holiday calendar come in through
//! [`DecideContext`], and earlier letters come in as [`Notice`]s (the account's own
//! `notices[]` plus whatever the caller knows from elsewhere, such as the ledger). The same
//! inputs always give the same [`AccountDecision`], and every decision carries a short
//! human `why`.

mod as_of;
mod intent;
mod letters;
mod presentation;
mod referral;
mod shares;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_referral;
mod updates;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::account::{Account, Notice, TopReferral};
use crate::calendar::HolidayCalendar;
use crate::config::Policy;
use crate::letter::{Channel, LetterKey, LetterKind, MailClass, Variant};
use crate::money::Money;

pub use presentation::Presentation;

/// Everything a decision depends on besides the account.
#[derive(Debug, Clone, Copy)]
pub struct DecideContext<'a> {
    /// The date the data is taken to be true; referral deadlines and refund posting are
    /// judged against it.
    pub as_of: NaiveDate,
    /// The date letters are mailed: the letter date, and the start of the 60-day window.
    pub mail_date: NaiveDate,
    /// Policy numbers (window, minimum, interest, limits).
    pub policy: &'a Policy,
    /// Business days for deadline rolls.
    pub calendar: &'a HolidayCalendar,
}

impl DecideContext<'_> {
    /// The response deadline of a notice mailed on `mailed_on`: the window's last day,
    /// moved forward to a business day.
    pub fn deadline_for(&self, mailed_on: NaiveDate) -> NaiveDate {
        self.calendar
            .deadline(mailed_on, self.policy.review_window_days)
    }
}

/// A letter that is due, with everything the plan prints about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DueLetter {
    /// `ACCOUNT/KIND/SUBJECT`: names the letter forever.
    pub key: LetterKey,
    /// The key's SUBJECT: the liability ids joined by `+` (intent to offset), or the
    /// offset, late-return or review id. Not in the plan JSON (the key holds it).
    #[serde(skip)]
    pub subject: String,
    /// The account it is about.
    pub account_id: String,
    /// The kind of letter.
    pub kind: LetterKind,
    /// The variant; `None` for intent to offset.
    pub variant: Option<Variant>,
    /// Print or email.
    pub channel: Channel,
    /// Certified or first class for print; `None` for email.
    pub mail_class: Option<MailClass>,
    /// An intent to offset also emailed because the taxpayer consented.
    pub email_copy: bool,
    /// Names the letter (or refund) is addressed to, taxpayer first.
    pub recipients: Vec<String>,
    /// The letter date: the mail date.
    pub letter_date: NaiveDate,
    /// The response deadline (intent to offset only).
    pub deadline: Option<NaiveDate>,
    /// Liabilities the letter is about, sorted in plain string order.
    pub liability_ids: Vec<String>,
    /// The amounts the letter states, by kind.
    pub amounts: Amounts,
    /// Why the letter is due, in a sentence.
    pub why: String,
    /// Details for composing the letter that the plan JSON does not show.
    #[serde(skip)]
    pub facts: Facts,
    /// What the letter must say for the account's letters of the day to agree (filled
    /// once all of them are decided); not in the plan JSON.
    #[serde(skip)]
    pub shown: Presentation,
}

/// The amounts a letter states; the keys depend on the kind (interface.md).
///
/// Read back (a worker's payload) by trying the variants in order, so a variant comes
/// before any whose fields are a subset of its own: `LateReturnRefund` before
/// `ExcessRefund`, `IntentToOffset` before `Review` (whose `to_refer` may be missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Amounts {
    /// Intent to offset: the debt and the payoff by the deadline.
    IntentToOffset {
        /// Total balance of the liabilities listed.
        balance: Money,
        /// Balance plus projected interest to the deadline.
        payoff: Money,
    },
    /// Federal offset notice.
    FederalOffset {
        /// The federal refund before the offset.
        refund: Money,
        /// The amount applied to the state debt.
        offset: Money,
        /// What is still owed afterwards (never below zero).
        remaining_balance: Money,
    },
    /// State offset notice.
    StateOffset {
        /// The state refund before the offset.
        refund: Money,
        /// The amount sent to the other agency.
        offset: Money,
        /// What was still refunded to the taxpayer.
        refund_paid: Money,
    },
    /// Late-return refund.
    LateReturnRefund {
        /// Total refunded.
        refund: Money,
        /// Offsets returned.
        offsets_returned: Money,
        /// Excess payments refunded (zero when barred).
        excess_refunded: Money,
    },
    /// Excess-offset refund.
    ExcessRefund {
        /// The amount refunded.
        refund: Money,
    },
    /// Review outcome: the debt after the decision.
    Review {
        /// The balance that stands.
        balance: Money,
        /// What the Treasury Offset Program will hold for the notices that covered a
        /// reviewed liability (upheld and reduced only; `None` when nothing, letters.md).
        to_refer: Option<Money>,
    },
}

/// Kind-specific facts for composing a letter, beyond the plan's amounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Facts {
    /// Nothing beyond the account record named by the key's subject.
    #[default]
    None,
    /// Intent to offset: one line per liability, with the interest projected to the deadline.
    IntentToOffset {
        /// One per liability, in id order.
        lines: Vec<PayoffLine>,
    },
    /// Federal offset notice: the part of the offset above the balance, refunded later.
    FederalOffset {
        /// `offset_amount − balance_before` when positive.
        excess: Option<Money>,
    },
    /// Late-return refund: the three-year limit on refunding excess payments.
    LateReturn {
        /// Last filing date on which excess payments are still refunded.
        excess_limit: NaiveDate,
        /// The return was filed after that date.
        excess_barred: bool,
    },
}

/// One liability on an intent to offset, with its projected interest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoffLine {
    /// Liability id.
    pub liability_id: String,
    /// Recorded balance (tax + penalty + interest).
    pub balance: Money,
    /// Interest from `balance_as_of` to the deadline.
    pub projected_interest: Money,
}

/// Why a letter (or part of one) is not produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressReason {
    /// The total is under the policy minimum.
    BelowMinimum,
    /// A tax type the federal refund offset may not collect (only state income tax).
    NotIncomeTax,
    /// Not assessed/final, under appeal, or reversed by a review.
    NotEnforceable,
    /// Due more than the collection limit before the mail date (and not a judgment).
    TooOld,
    /// A review of it has not been decided.
    ReviewPending,
    /// An automatic stay is in effect.
    BankruptcyStay,
    /// An earlier letter already covered it.
    AlreadySent,
    /// No usable channel (no postal address where print is needed).
    Undeliverable,
    /// A review outcome whose every liability a later decided review governs: only the
    /// latest decision is sent, so that two letters never tell different outcomes.
    Superseded,
}

impl SuppressReason {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressReason::BelowMinimum => "below_minimum",
            SuppressReason::NotIncomeTax => "not_income_tax",
            SuppressReason::NotEnforceable => "not_enforceable",
            SuppressReason::TooOld => "too_old",
            SuppressReason::ReviewPending => "review_pending",
            SuppressReason::BankruptcyStay => "bankruptcy_stay",
            SuppressReason::AlreadySent => "already_sent",
            SuppressReason::Undeliverable => "undeliverable",
            SuppressReason::Superseded => "superseded",
        }
    }
}

/// A letter, or some of its liabilities, left out for a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    /// The account.
    pub account_id: String,
    /// The kind of letter left out.
    pub kind: LetterKind,
    /// Why.
    pub reason: SuppressReason,
    /// Liabilities concerned, sorted (empty when the letter is not about liabilities).
    pub liability_ids: Vec<String>,
    /// Why, in a sentence.
    pub why: String,
}

/// Liabilities due for referral to the federal offset programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Referral {
    /// The account.
    pub account_id: String,
    /// The liabilities referred, sorted.
    pub liability_ids: Vec<String>,
    /// Sum of their recorded balances (reduced reviews counted at their reduced balance).
    pub amount: Money,
    /// Key of the intent to offset whose deadline passed.
    pub notice_key: LetterKey,
    /// That notice's deadline.
    pub deadline_passed: NaiveDate,
}

/// Why a referral that would be made is held, in letters.md's order (the first that
/// applies wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// An automatic stay is in effect on the as-of date.
    BankruptcyStay,
    /// Nothing is referable now, but a pending review may make it so.
    NothingReferable,
    /// What is referable is under the minimum.
    BelowMinimum,
    /// A federal offset has not posted by `balance_as_of`: the balances may be paid already.
    OffsetNotPosted,
}

impl HoldReason {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::BankruptcyStay => "bankruptcy_stay",
            HoldReason::NothingReferable => "nothing_referable",
            HoldReason::BelowMinimum => "below_minimum",
            HoldReason::OffsetNotPosted => "offset_not_posted",
        }
    }
}

/// An intent to offset whose deadline passed but whose liabilities are not referred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldReferral {
    /// The account.
    pub account_id: String,
    /// Key of the intent to offset.
    pub notice_key: LetterKey,
    /// The liabilities that would be referred (or, for `nothing_referable`, those whose
    /// pending review holds them), sorted.
    pub liability_ids: Vec<String>,
    /// Why it is held.
    pub reason: HoldReason,
    /// Why, in a sentence.
    pub why: String,
}

/// What a Treasury update does to a referral TOP holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateAction {
    /// Lower the amount TOP holds.
    Decrease,
    /// Withdraw the referral: TOP holds nothing for it afterwards.
    Delete,
}

impl UpdateAction {
    /// The snake_case name used in JSON and the Treasury file.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateAction::Decrease => "decrease",
            UpdateAction::Delete => "delete",
        }
    }
}

/// Why a referral TOP holds is updated (letters.md, Treasury updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateReason {
    /// An automatic stay is in effect: delete at once.
    BankruptcyStay,
    /// Every liability was reversed by its latest decided review: delete at once.
    Reversed,
    /// Something is still referable but under the minimum: delete.
    BelowMinimum,
    /// Every balance is zero: delete.
    Paid,
    /// The liabilities with a balance are not income tax: delete.
    NotIncomeTax,
    /// The liabilities with a balance are too old: delete.
    TooOld,
    /// The liabilities with a balance are not enforceable: delete.
    NotEnforceable,
    /// The referable amount fell (a payment, a reduced review, a liability no longer
    /// referable): decrease.
    Reduced,
}

impl UpdateReason {
    /// The snake_case name used in JSON and the Treasury file.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateReason::BankruptcyStay => "bankruptcy_stay",
            UpdateReason::Reversed => "reversed",
            UpdateReason::BelowMinimum => "below_minimum",
            UpdateReason::Paid => "paid",
            UpdateReason::NotIncomeTax => "not_income_tax",
            UpdateReason::TooOld => "too_old",
            UpdateReason::NotEnforceable => "not_enforceable",
            UpdateReason::Reduced => "reduced",
        }
    }
}

/// A change to a referral the Treasury Offset Program holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreasuryUpdate {
    /// The account.
    pub account_id: String,
    /// Key of the intent to offset the referral was made under.
    pub notice_key: LetterKey,
    /// Decrease or delete.
    pub action: UpdateAction,
    /// Why.
    pub reason: UpdateReason,
    /// What TOP holds now.
    pub amount_before: Money,
    /// What TOP holds afterwards (`0.00` for a delete).
    pub amount_after: Money,
    /// The referral's liabilities, sorted.
    pub liability_ids: Vec<String>,
    /// Why, in words a collections officer understands.
    pub why: String,
}

/// A letter that is due but cannot be produced from the data (e.g. a joint return with no
/// spouse name): reported with its key, and the rest of the account goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterError {
    /// The letter's key.
    pub key: LetterKey,
    /// What is missing or wrong.
    pub message: String,
}

/// Everything decided for one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountDecision {
    /// Letters due.
    pub letters: Vec<DueLetter>,
    /// Letters or liabilities left out.
    pub suppressed: Vec<Suppression>,
    /// Referrals due.
    pub referrals: Vec<Referral>,
    /// Passed deadlines not referred, and why.
    pub held_referrals: Vec<HeldReferral>,
    /// Changes to referrals the Treasury Offset Program holds.
    pub treasury_updates: Vec<TreasuryUpdate>,
    /// Due letters that cannot be produced.
    pub errors: Vec<LetterError>,
}

/// Decides everything for one account. `prior` adds notices known from outside the account
/// (the ledger); they count exactly like the account's own `notices[]`.
pub fn decide(account: &Account, prior: &[Notice], ctx: &DecideContext<'_>) -> AccountDecision {
    decide_with(account, prior, &[], ctx)
}

/// [`decide`], also given what the ledger knows TOP holds for the account (`run`). It is
/// merged with the account's `referrals[]`: where both hold the same notice and
/// liabilities, the ledger's amount wins, being the later.
pub fn decide_with(
    account: &Account,
    prior: &[Notice],
    ledger_holdings: &[TopReferral],
    ctx: &DecideContext<'_>,
) -> AccountDecision {
    // Events dated after the as-of date have not happened yet on it.
    let account = &as_of::known_on(account, ctx.as_of);
    let notices: Vec<&Notice> = account.notices.iter().chain(prior).collect();
    let holdings = referral::merge_holdings(&account.referrals, ledger_holdings);
    let mut out = AccountDecision::default();
    intent::intent_to_offset(account, &notices, ctx, &mut out);
    let top = referral::referrals_and_updates(account, &notices, &holdings, ctx, &mut out);
    letters::offset_notices(account, &notices, ctx, &mut out);
    letters::refunds(account, &notices, ctx, &mut out);
    letters::review_outcomes(account, &notices, ctx, &mut out);
    top.fill_to_refer(&mut out);
    presentation::present(account, &notices, ctx, &mut out);
    if let Some(note) = crate::language::fallback_note(account) {
        for letter in &mut out.letters {
            letter.why = format!("{}; {note}", letter.why);
        }
    }
    out.letters
        .sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    out
}

/// How a letter reaches the taxpayer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    channel: Channel,
    mail_class: Option<MailClass>,
}

/// Email if consented, else first-class print; `Err(why)` when neither is possible.
fn email_or_first_class(account: &Account) -> Result<Route, String> {
    if account.email_consented() {
        Ok(Route {
            channel: Channel::Email,
            mail_class: None,
        })
    } else if account.address.is_some() {
        Ok(Route {
            channel: Channel::Print,
            mail_class: Some(MailClass::FirstClass),
        })
    } else {
        Err(format!("no postal address and {}", consent_words(account)))
    }
}

/// Why the taxpayer does (not) get email, in words for `why`.
fn consent_words(account: &Account) -> &'static str {
    match (
        account.electronic_delivery,
        &account.email,
        account.valid_email(),
    ) {
        (true, _, Some(_)) => "consented to email",
        (true, None, _) => "electronic delivery requested but no email address on file",
        (true, Some(_), None) => "electronic delivery requested but the email address is malformed",
        (false, _, _) => "no consent to email",
    }
}

/// A due letter of `kind` about `subject` (its key is made from them), addressed to the
/// taxpayer alone, dated the mail date, with no variant, deadline, liabilities or facts
/// yet: callers fill in what their kind needs.
#[allow(clippy::too_many_arguments)]
fn new_letter(
    account: &Account,
    ctx: &DecideContext<'_>,
    subject: String,
    kind: LetterKind,
    route: Route,
    amounts: Amounts,
    why: String,
) -> DueLetter {
    DueLetter {
        key: LetterKey::new(&account.account_id, kind, &subject),
        subject,
        account_id: account.account_id.clone(),
        kind,
        variant: None,
        channel: route.channel,
        mail_class: route.mail_class,
        email_copy: false,
        recipients: vec![account.taxpayer.name.clone()],
        letter_date: ctx.mail_date,
        deadline: None,
        liability_ids: Vec::new(),
        amounts,
        why,
        facts: Facts::None,
        shown: Presentation::default(),
    }
}
