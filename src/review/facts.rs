//! The letter-facts check: every rendered letter is read back as text and held against the
//! plan that made it, so a letter that misstates an amount, a date or a name, or that
//! contradicts the account's other letters of the day or its referral, fails.
//!
//! The text is what poppler's `pdftotext` extracts from the PDF ([`pdf_text`]), with every
//! run of white space taken as one space: the words a taxpayer (or a screen reader) gets,
//! not the Typst source. What is checked, per letter ([`check_account`]):
//! - **stated**: every amount of the plan entry (`$1,234.56`), its letter date and
//!   deadline, the dates its story rests on ([`Presentation`]), every recipient, the
//!   account id and the masked taxpayer id appear;
//! - **nothing else**: every `$` amount in the text is one the plan holds for this letter,
//!   one of the records the letter is about (a liability's tax, penalty, interest and
//!   balance; an offset's balance before it and its excess; a late return's excess
//!   payments; a reviewed liability's recorded balance, but not on a reversed review), or
//!   an amount the agency configures (the minimum);
//! - **one story** across the account's letters of the day and its referrals: a review
//!   letter's `to_refer` equals what the same plan refers under the notices it concerns
//!   (when their deadline has passed), and every amount it says is referred is `to_refer`;
//!   an offset notice whose excess has posted names the refund letter of the same day and
//!   never promises a refund "once the payment has posted", and one whose excess has not
//!   posted has no refund letter beside it; an offset notice stating a remaining balance of
//!   $0.00 has no referral beside it; "all of" / "part of" the refund as the amounts say;
//!   a coupon is mentioned only where one is printed; liabilities are listed in period
//!   order.
//!
//! [`check_email`] holds a letter's email to the same plan: its subject is the letter's
//! title, it greets every recipient, and it states no amount the letter may not.
//!
//! Each failure names the letter key, the fact and what the PDF (or email) says instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;

use crate::account::{Account, NoticeSubject, OffsetSource};
use crate::config::Config;
use crate::decide::{AccountDecision, DueLetter, Facts};
use crate::language::Language;
use crate::letter::{LetterKey, LetterKind, Variant};
use crate::money::Money;

pub use super::text::{TextError, dollar_amounts, flatten, long_dates, pdf_text};

/// A letter that says something its plan does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactFailure {
    /// The letter.
    pub key: LetterKey,
    /// The fact at fault ("amount `to_refer` $3,390.95").
    pub fact: String,
    /// What the PDF (or email) says instead.
    pub found: String,
    /// Where it was read: `PDF` or `email`.
    pub source: &'static str,
}

impl fmt::Display for FactFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: {}; the {} {}",
            self.key, self.fact, self.source, self.found
        )
    }
}

/// Words that promise an excess refund still to come; an offset notice whose excess has
/// posted must not use them (English; [`Wording::future_refund`] per language).
pub const FUTURE_REFUND: [&str; 2] = ["once the payment has posted", "will refund"];

/// The words the check looks for, in the letter's language: the templates of each
/// language must keep using them (tests/spanish.rs checks the Spanish letters with them).
#[derive(Debug, Clone, Copy)]
pub struct Wording {
    /// The printed coupon's label (the layout's).
    pub coupon_label: &'static str,
    /// The word "coupon", lower case.
    pub coupon_word: &'static str,
    /// "All of" the refund, lower case.
    pub all_of: &'static str,
    /// "Part of" the refund, lower case.
    pub part_of: &'static str,
    /// Words promising an excess refund still to come, lower case.
    pub future_refund: [&'static str; 2],
    /// The verb right before an amount to be referred ("refer ").
    pub refer: [&'static str; 2],
    /// What may stand between that verb and the amount ("only ").
    pub refer_only: &'static str,
    /// The liability table's first header.
    pub period_header: &'static str,
    /// An email's greeting: (opening, between names, closing): "Dear A and B,".
    pub greeting: (&'static str, &'static str, &'static str),
}

impl Wording {
    /// The wording of letters in `lang`.
    pub fn of(lang: Language) -> Wording {
        match lang {
            Language::En => Wording {
                coupon_label: "Payment coupon",
                coupon_word: "coupon",
                all_of: "all of your",
                part_of: "part of your",
                future_refund: FUTURE_REFUND,
                refer: ["refer ", "refer "],
                refer_only: "only ",
                period_header: "Period",
                greeting: ("Dear ", " and ", ","),
            },
            Language::Es => Wording {
                coupon_label: "Cupón de pago",
                coupon_word: "cupón",
                all_of: "todo su",
                part_of: "parte de su",
                future_refund: ["cuando el pago quede registrado", "se lo devolveremos"],
                refer: ["enviaremos ", "Enviaremos "],
                refer_only: "solo ",
                period_header: "Período",
                greeting: ("Estimado(a) ", " y ", ":"),
            },
        }
    }

    /// The greeting naming every recipient.
    pub fn greeting_of(&self, recipients: &[String]) -> String {
        let (open, and, close) = self.greeting;
        format!("{open}{}{close}", recipients.join(and))
    }
}

/// What the PDF shows of a kind of value: "shows $1.00, $2.00" or "shows none".
fn shows(what: &[String]) -> String {
    if what.is_empty() {
        "shows none".to_owned()
    } else {
        let unique: BTreeSet<&String> = what.iter().collect();
        format!(
            "shows {}",
            unique.into_iter().cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

/// One letter's checks, collecting failures.
struct LetterCheck<'a> {
    letter: &'a DueLetter,
    /// The letter's language.
    lang: Language,
    /// `PDF` or `email`.
    source: &'static str,
    text: String,
    failures: Vec<FactFailure>,
}

impl LetterCheck<'_> {
    fn fail(&mut self, fact: String, found: String) {
        self.failures.push(FactFailure {
            key: self.letter.key.clone(),
            fact,
            found,
            source: self.source,
        });
    }

    fn has(&self, needle: &str) -> bool {
        self.text.contains(&flatten(needle))
    }

    fn want_amount(&mut self, name: &str, amount: Money) {
        let dollars = amount.dollars();
        if !self.has(&dollars) {
            let found = shows(&dollar_amounts(&self.text));
            self.fail(format!("amount `{name}` {dollars} is not stated"), found);
        }
    }

    fn want_date(&mut self, name: &str, date: NaiveDate) {
        let words = self.lang.long_date(date);
        if !self.has(&words) {
            let found = shows(&self.lang.dates_in(&self.text));
            self.fail(format!("{name} {words} is not stated"), found);
        }
    }

    fn want_text(&mut self, name: &str, value: &str) {
        if !self.has(value) {
            let start: String = self.text.chars().take(160).collect();
            self.fail(
                format!("{name} “{value}” is not stated"),
                format!("begins “{start}…”"),
            );
        }
    }
}

/// The plan's amounts of a letter, by name (`null` ones left out).
fn plan_amounts(letter: &DueLetter) -> Vec<(String, Money)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&letter.amounts) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(name, value)| {
            let text = value.as_str()?;
            Money::parse(text).ok().map(|m| (name, m))
        })
        .collect()
}

/// Amounts of the records a letter is about, which it may state besides the plan's.
fn record_amounts(account: &Account, letter: &DueLetter) -> Vec<Money> {
    let subject = letter.subject.as_str();
    let mut out = Vec::new();
    match (letter.kind, &letter.facts) {
        (LetterKind::IntentToOffset, Facts::IntentToOffset { lines }) => {
            for line in lines {
                if let Some(l) = account.liability(&line.liability_id) {
                    out.extend([l.tax, l.penalty, l.interest, l.balance()]);
                }
            }
        }
        (LetterKind::OffsetNotice | LetterKind::Refund, _) => {
            if let Some(o) = account.offsets.iter().find(|o| o.id == subject) {
                out.extend([o.refund_amount, o.offset_amount]);
                if let OffsetSource::Federal { balance_before } = o.source {
                    out.push(balance_before);
                    out.push((o.offset_amount - balance_before).at_least_zero());
                }
            }
            if let Some(l) = account.late_returns.iter().find(|l| l.id == subject) {
                out.push(l.excess_payments);
            }
        }
        (LetterKind::ReviewOutcome, _) if letter.variant != Some(Variant::Reversed) => {
            if let Some(r) = account.reviews.iter().find(|r| r.id == subject) {
                out.extend(
                    r.liability_ids
                        .iter()
                        .filter_map(|id| account.liability(id))
                        .map(|l| l.balance()),
                );
            }
        }
        _ => {}
    }
    out
}

/// Checks one account's letters of one day (`texts`: each letter's extracted text, by
/// key) against its decision; letters without a text are not checked.
pub fn check_account(
    account: &Account,
    decision: &AccountDecision,
    config: &Config,
    texts: &BTreeMap<LetterKey, String>,
) -> Vec<FactFailure> {
    let mut failures = Vec::new();
    let lang = Language::of(account);
    let config = &config.localized(lang);
    for letter in &decision.letters {
        let Some(text) = texts.get(&letter.key) else {
            continue;
        };
        let mut check = LetterCheck {
            letter,
            lang,
            source: "PDF",
            text: flatten(text),
            failures: Vec::new(),
        };
        stated(&mut check, account, config);
        nothing_else(&mut check, account, config);
        one_story(&mut check, account, decision, config);
        failures.append(&mut check.failures);
    }
    failures
}

/// Checks the email of a letter (its subject and plain-text body) against the plan: the
/// subject is the letter's own title, the greeting names every recipient, and every amount
/// it states is one the letter may state.
pub fn check_email(
    account: &Account,
    letter: &DueLetter,
    config: &Config,
    subject: &str,
    text: &str,
) -> Vec<FactFailure> {
    let lang = Language::of(account);
    let config = &config.localized(lang);
    let mut check = LetterCheck {
        letter,
        lang,
        source: "email",
        text: flatten(text),
        failures: Vec::new(),
    };
    let title = config.titles.of(letter.kind, letter.variant);
    if subject != title {
        check.fail(
            format!("the email's subject is the letter's title “{title}”"),
            format!("subject is “{subject}”"),
        );
    }
    let greeting = Wording::of(lang).greeting_of(&letter.recipients);
    if !check.text.starts_with(&flatten(&greeting)) {
        let start: String = check.text.chars().take(80).collect();
        check.fail(
            format!("the email greets every recipient: “{greeting}”"),
            format!("begins “{start}”"),
        );
    }
    let allowed = allowed_amounts(account, letter, config);
    let stray: Vec<String> = dollar_amounts(&check.text)
        .into_iter()
        .filter(|a| !allowed.contains(a))
        .collect();
    if !stray.is_empty() {
        check.fail(
            "the email states only the letter's amounts".to_owned(),
            format!("also {}", shows(&stray)),
        );
    }
    check.failures
}

/// Every amount, date and name of the plan entry appears.
fn stated(check: &mut LetterCheck<'_>, account: &Account, config: &Config) {
    let letter = check.letter;
    for (name, amount) in plan_amounts(letter) {
        check.want_amount(&name, amount);
    }
    check.want_date("letter date", letter.letter_date);
    if let Some(deadline) = letter.deadline {
        check.want_date("deadline", deadline);
    }
    for date in &letter.shown.replaces_mailed_on {
        check.want_date("date of the notice this one replaces", *date);
    }
    if let Some(posted) = letter.shown.excess_posted_on {
        check.want_date("date the excess posted", posted);
    }
    if let Some(pay_by) = letter.shown.pay_by {
        check.want_date("pay-by date before referral", pay_by);
    }
    for name in &letter.recipients {
        check.want_text("recipient", name);
    }
    check.want_text("account id", &account.account_id);
    check.want_text(
        "masked taxpayer id",
        &format!("XXX-XX-{}", account.taxpayer.tin_last4),
    );
    check.want_text("title", config.titles.of(letter.kind, letter.variant));
}

/// No amount appears that the plan (or the records the letter is about, or the agency's
/// configured amounts) does not hold for this letter.
fn nothing_else(check: &mut LetterCheck<'_>, account: &Account, config: &Config) {
    let allowed = allowed_amounts(account, check.letter, config);
    let stray: Vec<String> = dollar_amounts(&check.text)
        .into_iter()
        .filter(|a| !allowed.contains(a))
        .collect();
    if !stray.is_empty() {
        let holds = allowed.into_iter().collect::<Vec<_>>().join(", ");
        check.fail(
            format!("only the plan's amounts for this letter ({holds})"),
            format!("also {}", shows(&stray)),
        );
    }
}

/// The amounts a letter may state, as printed: the plan's, its records', the minimum.
fn allowed_amounts(account: &Account, letter: &DueLetter, config: &Config) -> BTreeSet<String> {
    let mut allowed: BTreeSet<String> = plan_amounts(letter)
        .into_iter()
        .map(|(_, m)| m.dollars())
        .collect();
    allowed.extend(
        record_amounts(account, letter)
            .into_iter()
            .map(Money::dollars),
    );
    allowed.insert(config.policy.minimum_amount.dollars());
    allowed
}

/// The account's letters of the day and its referrals agree.
fn one_story(
    check: &mut LetterCheck<'_>,
    account: &Account,
    decision: &AccountDecision,
    config: &Config,
) {
    let letter = check.letter;
    let subject = letter.subject.as_str();
    let words = Wording::of(check.lang);
    // A coupon is mentioned only where one is printed (the layout's "Payment coupon").
    let printed = check.text.contains(words.coupon_label);
    if letter.kind == LetterKind::IntentToOffset && !printed {
        check.fail(
            "the payment coupon is printed".to_owned(),
            format!("has no “{}”", words.coupon_label),
        );
    }
    let lower = check.text.to_lowercase();
    if !printed && lower.contains(words.coupon_word) {
        check.fail(
            "no coupon mentioned without a coupon printed".to_owned(),
            "mentions a coupon but prints none".to_owned(),
        );
    }
    match (letter.kind, letter.variant) {
        (LetterKind::IntentToOffset, _) => periods_in_order(check, account),
        (LetterKind::OffsetNotice, variant) => {
            let Some(offset) = account.offsets.iter().find(|o| o.id == subject) else {
                return;
            };
            let (right, wrong) = if offset.offset_amount == offset.refund_amount {
                (words.all_of, words.part_of)
            } else {
                (words.part_of, words.all_of)
            };
            if !lower.contains(right) || lower.contains(wrong) {
                check.fail(
                    format!(
                        "“{right}” refund (offset {} of {})",
                        offset.offset_amount.dollars(),
                        offset.refund_amount.dollars()
                    ),
                    format!(
                        "says “{}”",
                        if lower.contains(wrong) {
                            wrong
                        } else {
                            "neither"
                        }
                    ),
                );
            }
            if variant == Some(Variant::Federal) {
                federal_excess(check, account, decision, config, subject);
                let remaining = plan_amounts(letter)
                    .into_iter()
                    .find(|(name, _)| name == "remaining_balance")
                    .map(|(_, m)| m);
                if remaining.is_some_and(|m| !m.is_positive())
                    && let Some(referral) = decision.referrals.first()
                {
                    check.fail(
                        "no referral beside a remaining balance of $0.00".to_owned(),
                        format!(
                            "says $0.00 remains while the same plan refers {} under `{}`",
                            referral.amount.dollars(),
                            referral.notice_key
                        ),
                    );
                }
            }
        }
        (LetterKind::ReviewOutcome, Some(Variant::Upheld | Variant::Reduced)) => {
            review_referral(check, account, decision);
        }
        _ => {}
    }
}

/// An excess that posted is refunded by the refund letter of the same day, named; one that
/// has not posted has no refund letter yet.
fn federal_excess(
    check: &mut LetterCheck<'_>,
    account: &Account,
    decision: &AccountDecision,
    config: &Config,
    offset_id: &str,
) {
    let refund_key = LetterKey::new(&account.account_id, LetterKind::Refund, offset_id);
    let refund_letter = decision.letters.iter().find(|l| l.key == refund_key);
    let lower = check.text.to_lowercase();
    match check.letter.shown.excess_posted_on {
        Some(_) => {
            let future = Wording::of(check.lang).future_refund;
            if let Some(promise) = future.iter().find(|p| lower.contains(*p)) {
                check.fail(
                    "a posted excess is refunded, not to be refunded".to_owned(),
                    format!("says “{promise}”"),
                );
            }
            if refund_letter.is_some() {
                let title = config.titles.refund_excess_offset.clone();
                if !check.has(&title) {
                    check.fail(
                        format!("names the refund letter of the same day, “{title}”"),
                        "does not name it".to_owned(),
                    );
                }
            }
        }
        None => {
            if let Some(refund) = refund_letter {
                check.fail(
                    "an excess not yet posted has no refund letter beside it".to_owned(),
                    format!("is planned beside `{}`", refund.key),
                );
            }
        }
    }
}

/// `to_refer` equals what the same plan refers under the notices covering the reviewed
/// liabilities (once their deadline has passed), and every amount the letter says is
/// referred is `to_refer`.
fn review_referral(check: &mut LetterCheck<'_>, account: &Account, decision: &AccountDecision) {
    let to_refer = plan_amounts(check.letter)
        .into_iter()
        .find(|(name, _)| name == "to_refer")
        .map(|(_, m)| m);
    // "refer $X", "refer only $X": the amount right after the verb.
    let words = Wording::of(check.lang);
    let mut said = Vec::new();
    let verbs: BTreeSet<&str> = words.refer.into_iter().collect();
    for verb in verbs {
        for (at, _) in check.text.match_indices(verb) {
            let rest = &check.text[at + verb.len()..];
            let rest = rest.strip_prefix(words.refer_only).unwrap_or(rest);
            if rest.starts_with('$')
                && let Some(amount) = dollar_amounts(rest).first()
            {
                said.push(amount.clone());
            }
        }
    }
    let expected = to_refer.map(Money::dollars);
    if said.iter().any(|s| Some(s) != expected.as_ref()) {
        check.fail(
            format!(
                "the amount to be referred is `to_refer` ({})",
                expected.as_deref().unwrap_or("none")
            ),
            format!("says it will refer {}", said.join(", ")),
        );
    }
    let subject = check.letter.subject.as_str();
    let Some(review) = account.reviews.iter().find(|r| r.id == subject) else {
        return;
    };
    if check.letter.shown.pay_by.is_some() {
        return; // before the deadline the plan refers nothing yet to compare with
    }
    let notice_keys: BTreeSet<LetterKey> = account
        .notices
        .iter()
        .filter(|n| n.kind == LetterKind::IntentToOffset && !n.undeliverable)
        .filter_map(|n| match &n.subject {
            NoticeSubject::Liabilities(ids) if ids.iter().any(|id| review.covers(id)) => {
                Some(LetterKey::intent_to_offset(&account.account_id, ids))
            }
            _ => None,
        })
        .collect();
    let referred: Vec<Money> = decision
        .referrals
        .iter()
        .filter(|r| notice_keys.contains(&r.notice_key))
        .map(|r| r.amount)
        .collect();
    let top_holds = account
        .referrals
        .iter()
        .any(|r| notice_keys.contains(&r.notice_key));
    if referred.is_empty() || top_holds {
        // Held, or (also) held by TOP from an earlier run: what it holds after the
        // update is not in this plan's referrals, so there is nothing here to compare.
        return;
    }
    let total: Money = referred.iter().sum();
    if to_refer != Some(total) {
        check.fail(
            format!(
                "`to_refer` equals what the same plan refers ({})",
                total.dollars()
            ),
            format!(
                "states {}",
                expected.as_deref().unwrap_or("no amount to be referred")
            ),
        );
    }
}

/// An intent to offset lists its liabilities in period order.
fn periods_in_order(check: &mut LetterCheck<'_>, account: &Account) {
    let Facts::IntentToOffset { lines } = &check.letter.facts else {
        return;
    };
    let start = check
        .text
        .find(Wording::of(check.lang).period_header)
        .unwrap_or(0);
    let mut rows: Vec<(&str, usize)> = Vec::new();
    for line in lines {
        let Some(l) = account.liability(&line.liability_id) else {
            continue;
        };
        let at = check.text[start..]
            .find(&format!("{} ", l.period))
            .map_or(usize::MAX, |p| p + start);
        rows.push((l.period.as_str(), at));
    }
    let mut by_position = rows.clone();
    by_position.sort_by_key(|r| r.1);
    let shown: Vec<&str> = by_position.iter().map(|r| r.0).collect();
    let mut wanted = shown.clone();
    wanted.sort_unstable();
    if shown != wanted {
        check.fail(
            format!("liabilities in period order ({})", wanted.join(", ")),
            format!("lists {}", shown.join(", ")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BUILT_IN;
    use crate::review::{Samples, sample_as_of};

    /// The reversed review of the samples (CT-0001015), with a text made to measure.
    fn reversed() -> (Config, Account, AccountDecision, LetterKey, String) {
        let config = Config::parse(BUILT_IN).expect("config");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/accounts");
        let samples = Samples::load(&dir, &config, sample_as_of()).expect("samples");
        let (account, decision) = samples
            .decisions
            .into_iter()
            .find(|(a, _)| a.account_id == "CT-0001015")
            .expect("sample 15");
        let letter = decision
            .letters
            .iter()
            .find(|l| l.variant == Some(Variant::Reversed))
            .expect("reversed letter");
        let text = format!(
            "{}\n{}\n{}\nXXX-XX-{}\n{}\nYou owe $0.00 for these periods.",
            config.titles.review_outcome_reversed,
            letter.recipients.join("\n"),
            account.account_id,
            account.taxpayer.tin_last4,
            Language::En.long_date(letter.letter_date),
        );
        let key = letter.key.clone();
        (config, account, decision, key, text)
    }

    #[test]
    fn a_letter_that_states_its_plan_passes() {
        let (config, account, decision, key, text) = reversed();
        let texts = BTreeMap::from([(key, text)]);
        assert_eq!(check_account(&account, &decision, &config, &texts), []);
    }

    #[test]
    fn a_stray_or_missing_amount_fails_naming_what_the_pdf_says() {
        let (config, account, decision, key, text) = reversed();
        let stray = text.replace("$0.00 for", "$0.00 (balance on record $3,872.00) for");
        let texts = BTreeMap::from([(key.clone(), stray)]);
        let failures = check_account(&account, &decision, &config, &texts);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].key, key);
        assert_eq!(failures[0].found, "also shows $3,872.00");
        let missing = text.replace("$0.00", "nothing");
        let texts = BTreeMap::from([(key.clone(), missing)]);
        let failures = check_account(&account, &decision, &config, &texts);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].fact, "amount `balance` $0.00 is not stated");
        assert_eq!(failures[0].found, "shows none");
        let coupon = format!("{text} Mail the coupon.");
        let texts = BTreeMap::from([(key, coupon)]);
        let failures = check_account(&account, &decision, &config, &texts);
        assert!(
            failures[0]
                .to_string()
                .contains("mentions a coupon but prints none"),
            "{failures:?}"
        );
    }
}
