//! `missive check`'s rules: the facts each kind of letter must state, and readability.
//!
//! Required facts are data ([`REQUIRED_FACTS`]), taken from letters.md: each names a kind
//! (and variants), a fact, and where its value lives in the composed context (so the values
//! come from `missive.toml` and the letter, never from the code). A composed letter states a
//! fact when every value of it appears in the Typst source as the string literal the
//! template filters emit (`"January 29, 2027"`, `"$1,860.50"`, each address line).
//!
//! Readability is the Flesch-Kincaid grade of the letter's body text
//! ([`body_text`]: the prose lines of the composed source, headings, tables, addresses and
//! code left out), with a simple syllable counter ([`syllables`]).

use serde_json::Value;

use crate::language::Language;
use crate::letter::{LetterKind, Variant};
use crate::money::Money;
use crate::typst_literal::typst_string;

use super::vars::lookup;

/// The grade above which `check` warns.
pub const MAX_GRADE: f64 = 8.0;

/// How a context value is printed in a letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// As written (`str` filter).
    Text,
    /// A decimal amount as dollars (`money` filter).
    Money,
    /// A `YYYY-MM-DD` date in words (`date` filter).
    Date,
    /// A list of lines (an address), each as written.
    Lines,
}

/// A fact a letter must state.
#[derive(Debug, Clone, Copy)]
pub struct RequiredFact {
    /// The kind; `None` for every letter.
    pub kind: Option<LetterKind>,
    /// The variants it applies to; empty for all.
    pub variants: &'static [Variant],
    /// The fact, for messages ("review address").
    pub fact: &'static str,
    /// Where its value is in the composed context.
    pub path: &'static str,
    /// How the template prints it.
    pub shown: Shown,
}

const fn every(fact: &'static str, path: &'static str, shown: Shown) -> RequiredFact {
    RequiredFact {
        kind: None,
        variants: &[],
        fact,
        path,
        shown,
    }
}

const fn of(
    kind: LetterKind,
    variants: &'static [Variant],
    fact: &'static str,
    path: &'static str,
    shown: Shown,
) -> RequiredFact {
    RequiredFact {
        kind: Some(kind),
        variants,
        fact,
        path,
        shown,
    }
}

use LetterKind::{IntentToOffset as Ito, OffsetNotice, Refund, ReviewOutcome};
use Shown::{Date, Lines, Money as Amount, Text};

/// What letters.md requires each letter to state.
pub const REQUIRED_FACTS: &[RequiredFact] = &[
    // "Every letter names the agency, a contact telephone and hours, and the account id."
    every("agency name", "agency.name", Text),
    every("agency telephone", "agency.phone", Text),
    every("agency hours", "agency.hours", Text),
    every("account id", "account.id", Text),
    // Intent to offset: "both ways to avoid offset, the review address, the coupon
    // (account id, amount, deadline), TSC-IND, that a payment plan does not stop offset,
    // the bankruptcy contact, and that no fee is charged."
    of(Ito, &[], "deadline", "letter.deadline", Date),
    of(Ito, &[], "payoff amount", "letter.amounts.payoff", Amount),
    of(Ito, &[], "total balance", "letter.amounts.balance", Amount),
    of(Ito, &[], "review address", "review.address", Lines),
    of(
        Ito,
        &[],
        "online payment (TSC-IND)",
        "payments.online_text",
        Text,
    ),
    of(Ito, &[], "coupon payee", "payments.payee", Text),
    of(Ito, &[], "coupon address", "payments.coupon_address", Lines),
    of(
        Ito,
        &[],
        "payment-plan statement",
        "statements.payment_plan",
        Text,
    ),
    of(Ito, &[], "bankruptcy unit", "bankruptcy.unit", Text),
    of(Ito, &[], "bankruptcy telephone", "bankruptcy.phone", Text),
    of(Ito, &[], "bankruptcy hours", "bankruptcy.hours", Text),
    of(Ito, &[], "bankruptcy address", "bankruptcy.address", Lines),
    of(Ito, &[], "no-fee statement", "statements.fees", Text),
    of(Ito, &[], "offset programme", "federal.program", Text),
    // "It also states: the date the balance was computed; that the taxpayer may inspect and
    // copy the agency's records …; that the agency will discuss a payment agreement …; what
    // a taxpayer who has not filed a return should do …; and the legal authority."
    of(Ito, &[], "balance date", "account.balance_as_of", Date),
    of(
        Ito,
        &[],
        "records access",
        "statements.records_access",
        Text,
    ),
    of(
        Ito,
        &[],
        "payment agreement",
        "statements.payment_agreement",
        Text,
    ),
    of(
        Ito,
        &[],
        "legal authority",
        "statements.legal_authority",
        Text,
    ),
    of(
        Ito,
        &[],
        "filing duty in bankruptcy",
        "statements.bankruptcy_filing",
        Text,
    ),
    of(Ito, &[], "late-filer route", "statements.late_filers", Text),
    of(
        Ito,
        &[],
        "collections address",
        "collections.address",
        Lines,
    ),
    of(
        Ito,
        &[],
        "what the review unit is",
        "review.unit_role",
        Text,
    ),
    of(
        Ito,
        &[],
        "coupon and online payment",
        "payments.coupon_note",
        Text,
    ),
    // Offset notices.
    of(
        OffsetNotice,
        &[],
        "refund amount",
        "letter.amounts.refund",
        Amount,
    ),
    of(
        OffsetNotice,
        &[],
        "offset amount",
        "letter.amounts.offset",
        Amount,
    ),
    of(
        OffsetNotice,
        &[Variant::Federal],
        "remaining balance",
        "letter.amounts.remaining_balance",
        Amount,
    ),
    of(
        OffsetNotice,
        &[Variant::Federal],
        "no-fee statement",
        "statements.fees",
        Text,
    ),
    of(
        OffsetNotice,
        &[Variant::State],
        "receiving agency",
        "offset.agency.name",
        Text,
    ),
    of(
        OffsetNotice,
        &[Variant::State],
        "receiving agency's address",
        "offset.agency.address",
        Lines,
    ),
    of(
        OffsetNotice,
        &[Variant::State],
        "receiving agency's telephone",
        "offset.agency.phone",
        Text,
    ),
    of(
        OffsetNotice,
        &[Variant::State],
        "amount still refunded",
        "letter.amounts.refund_paid",
        Amount,
    ),
    // Refunds and review outcomes.
    of(
        Refund,
        &[],
        "refund amount",
        "letter.amounts.refund",
        Amount,
    ),
    of(
        ReviewOutcome,
        &[],
        "balance decided",
        "letter.amounts.balance",
        Amount,
    ),
    of(
        ReviewOutcome,
        &[],
        "date of decision",
        "review.decided_on",
        Date,
    ),
    // Upheld and reduced: "They tell how to pay (payee, address, TSC-IND) and that
    // interest continues."
    of(ReviewOutcome, STANDS, "payee", "payments.payee", Text),
    of(
        ReviewOutcome,
        STANDS,
        "payment address",
        "payments.coupon_address",
        Lines,
    ),
    of(
        ReviewOutcome,
        STANDS,
        "online payment (TSC-IND)",
        "payments.online_text",
        Text,
    ),
    of(
        ReviewOutcome,
        STANDS,
        "payment-plan statement",
        "statements.payment_plan",
        Text,
    ),
];

/// Review outcomes after which a debt stands.
const STANDS: &[Variant] = &[Variant::Upheld, Variant::Reduced];

impl RequiredFact {
    /// Whether the fact applies to letters of `kind`/`variant`.
    pub fn applies(&self, kind: LetterKind, variant: Option<Variant>) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && (self.variants.is_empty() || variant.is_some_and(|v| self.variants.contains(&v)))
    }

    /// The string literals the letter must contain, from the context; `Err` says why
    /// the context cannot give them.
    pub fn literals(&self, context: &Value, lang: Language) -> Result<Vec<String>, String> {
        let values = lookup(context, self.path)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("the context has no `{}`", self.path))?;
        let mut out = Vec::new();
        for value in values {
            let text = |v: &Value| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("`{}` is {other}, not text", self.path)),
            };
            match (self.shown, value) {
                (Shown::Lines, Value::Array(lines)) => {
                    for line in lines {
                        out.push(typst_string(&text(line)?));
                    }
                }
                (Shown::Lines, other) => {
                    return Err(format!("`{}` is {other}, not a list of lines", self.path));
                }
                (Shown::Text, v) => out.push(typst_string(&text(v)?)),
                (Shown::Money, v) => {
                    let raw = text(v)?;
                    let money = Money::parse(&raw)
                        .map_err(|err| format!("`{}` = `{raw}`: {err}", self.path))?;
                    out.push(typst_string(&money.dollars()));
                }
                (Shown::Date, v) => {
                    let raw = text(v)?;
                    let date = crate::load::parse_iso_date(&raw)
                        .ok_or_else(|| format!("`{}` = `{raw}` is not a date", self.path))?;
                    out.push(typst_string(&lang.long_date(date)));
                }
            }
        }
        Ok(out)
    }
}

/// The required facts a composed letter does not state: `(fact, what is missing)`.
pub fn missing_facts(
    kind: LetterKind,
    variant: Option<Variant>,
    lang: Language,
    context: &Value,
    source: &str,
) -> Vec<(&'static str, String)> {
    let mut missing = Vec::new();
    for rule in REQUIRED_FACTS.iter().filter(|r| r.applies(kind, variant)) {
        match rule.literals(context, lang) {
            Ok(literals) => {
                let absent: Vec<String> = literals
                    .into_iter()
                    .filter(|l| !source.contains(l.as_str()))
                    .collect();
                if !absent.is_empty() {
                    missing.push((rule.fact, absent.join(", ")));
                }
            }
            Err(reason) => missing.push((rule.fact, reason)),
        }
    }
    missing
}

/// The body text of a composed letter: its prose lines (list items included), with
/// `#"…"` string literals replaced by their text and `*`/`_` emphasis marks dropped.
/// Headings (`==`), code lines (`#pad(…)`, `#money-table(…)`, …), their arguments and
/// blank lines are left out; paragraphs are separated by blank lines.
pub fn body_text(source: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for line in source.lines() {
        let trimmed = line.trim();
        let item = trimmed
            .strip_prefix("+ ")
            .or_else(|| trimmed.strip_prefix("- "))
            .unwrap_or(trimmed);
        let starts_prose = item.starts_with("#\"")
            || item
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '*' || c == '_');
        // Indented lines are arguments of a call, unless they are list items or
        // emphasised text inside a content block (`#callout[ … ]`).
        let argument = line.starts_with(' ') && !trimmed.starts_with(['+', '*', '-', '_']);
        if starts_prose && !argument {
            current.push(unquote(item));
        } else if !current.is_empty() {
            paragraphs.push(current.join("\n"));
            current.clear();
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join("\n"));
    }
    paragraphs.join("\n\n")
}

/// Replaces `#"…"` literals by their text and drops emphasis and escape characters.
fn unquote(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' if chars.peek() == Some(&'"') => {
                chars.next();
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                out.push(e);
                            }
                        }
                        '"' => break,
                        d => out.push(d),
                    }
                }
            }
            '*' | '_' | '\\' => {}
            c => out.push(c),
        }
    }
    out
}

/// Syllables in one word: groups of vowels (`y` too, unless a vowel follows it), less a silent final `e`
/// (not `-le`), at least one.
pub fn syllables(word: &str) -> usize {
    let word: Vec<char> = word
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    if word.is_empty() {
        return 1;
    }
    let vowel = |c: char| "aeiouy".contains(c);
    let mut count = 0;
    let mut previous = false;
    for (i, &c) in word.iter().enumerate() {
        // `y` before a vowel is a consonant ("you", "payer").
        let v = vowel(c) && !(c == 'y' && word.get(i + 1).is_some_and(|&d| vowel(d)));
        if v && !previous {
            count += 1;
        }
        previous = v;
    }
    let n = word.len();
    if n > 2 && word[n - 1] == 'e' && !vowel(word[n - 2]) && word[n - 2] != 'l' && count > 1 {
        count -= 1;
    }
    count.max(1)
}

/// Counts of a text for readability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Readability {
    /// Sentences.
    pub sentences: usize,
    /// Words.
    pub words: usize,
    /// Syllables.
    pub syllables: usize,
}

impl Readability {
    /// Counts `text`: a sentence ends at `.`, `!`, `?` or `:` before a blank, an upper-case
    /// word or the end, and at every line end (a list item, a line of its own); "a.m."
    /// followed by a lower-case word does not end one. A word is a run without blanks that
    /// holds a letter or digit.
    pub fn of(text: &str) -> Readability {
        Readability::of_with(text, syllables)
    }

    /// [`Readability::of`] with another language's syllable counter.
    pub fn of_with(text: &str, syllables: fn(&str) -> usize) -> Readability {
        let mut r = Readability {
            sentences: 0,
            words: 0,
            syllables: 0,
        };
        for line in text.lines() {
            let words: Vec<&str> = line
                .split_whitespace()
                .filter(|w| w.chars().any(char::is_alphanumeric))
                .collect();
            if words.is_empty() {
                continue;
            }
            for (i, word) in words.iter().enumerate() {
                r.words += 1;
                r.syllables += if word.chars().any(char::is_alphabetic) {
                    syllables(word)
                } else {
                    1
                };
                let ends = word.ends_with(['.', '!', '?', ':']);
                let next_starts_sentence = words
                    .get(i + 1)
                    .and_then(|w| w.chars().find(|c| c.is_alphanumeric()))
                    .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
                if ends && next_starts_sentence {
                    r.sentences += 1;
                }
            }
            r.sentences += 1;
        }
        r
    }

    /// The Flesch-Kincaid grade level:
    /// `0.39 × words/sentences + 11.8 × syllables/words − 15.59` (0 for no words).
    pub fn grade(&self) -> f64 {
        if self.words == 0 || self.sentences == 0 {
            return 0.0;
        }
        let words = self.words as f64;
        0.39 * words / self.sentences as f64 + 11.8 * self.syllables as f64 / words - 15.59
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_syllables() {
        for (word, n) in [
            ("cat", 1),
            ("refund", 2),
            ("offset", 2),
            ("taxpayer", 3),
            ("the", 1),
            ("make", 1),
            ("table", 2),
            ("responsible", 4),
            ("you", 1),
            ("Connecticut", 4),
        ] {
            assert_eq!(syllables(word), n, "{word}");
        }
    }

    #[test]
    fn grades_plain_and_hard_text() {
        let plain = Readability::of("We took your refund. You owe less now. Call us.");
        assert_eq!((plain.sentences, plain.words), (3, 10));
        assert!(plain.grade() < 3.0, "{}", plain.grade());
        let hard = Readability::of(
            "Notwithstanding any contrary determination, administrative adjudication \
             necessitates comprehensive documentation substantiating eligibility.",
        );
        assert!(hard.grade() > 16.0, "{}", hard.grade());
        let abbrev = Readability::of("Call 8:30 a.m. to 4:30 p.m. today.");
        assert_eq!(abbrev.sentences, 1);
    }

    #[test]
    fn body_text_keeps_prose_only() {
        let source = "#import \"/lib/letter.typ\": *\n#show: letter.with(\n  title: \"T\",\n)\n\
                      You owe #\"$1,860.50\". Pay by *#\"January 29, 2027\"*.\n\n== How to ask\n\
                      #pad(left: 1.5em, lines((\"A\", \"B\")))\n#callout[\n  *Do one:*\n\n  + *Pay.* Now.\n]\n";
        assert_eq!(
            body_text(source),
            "You owe $1,860.50. Pay by January 29, 2027.\n\nDo one:\n\nPay. Now."
        );
    }

    #[test]
    fn missing_facts_name_the_fact() {
        let ctx = json!({
            "agency": {"name": "DRS", "phone": "1", "hours": "9-5"},
            "account": {"id": "CT-1"},
            "letter": {"deadline": "2027-01-29", "amounts": {"refund": "10.00"}},
        });
        let source = "\"DRS\" \"1\" \"9-5\" \"CT-1\" \"$10.00\"";
        assert!(
            missing_facts(
                Refund,
                Some(Variant::LateReturn),
                Language::En,
                &ctx,
                source
            )
            .is_empty()
        );
        let missing = missing_facts(
            Refund,
            Some(Variant::LateReturn),
            Language::En,
            &ctx,
            "\"DRS\"",
        );
        let facts: Vec<&str> = missing.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            facts,
            [
                "agency telephone",
                "agency hours",
                "account id",
                "refund amount"
            ]
        );
        let ito = missing_facts(Ito, None, Language::En, &ctx, source);
        assert!(
            ito.iter()
                .any(|(f, why)| *f == "deadline" && why == "\"January 29, 2027\"")
        );
    }
}
