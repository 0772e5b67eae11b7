//! The languages letters and emails are written in (letters.md "Language").
//!
//! An account's `language` is a short tag (`en`, `es`, `es-US`…); its primary subtag
//! picks the letter's language. A tag with no templates gets the English letter, and the
//! plan's `why` says so ([`fallback_note`]). Dates are written the language's way
//! ("February 1, 2027", "1 de febrero de 2027"); amounts keep `$1,234.56` in both.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::account::Account;

/// A language missive has letters in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English: the templates at the top of `templates/letters/` and `templates/email/`.
    En,
    /// US Spanish: the templates in `templates/letters/es/` and `templates/email/es/`.
    Es,
}

/// Spanish month names (lower case, as Spanish writes them inside a date).
const MESES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];

impl Language {
    /// Every language, English first.
    pub const ALL: [Language; 2] = [Language::En, Language::Es];

    /// The short code (`en`, `es`), as accounts and the command line write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es",
        }
    }

    /// The language of a tag by its primary subtag, case-insensitive (`es-US` → Spanish);
    /// `None` for a language missive has no letters in.
    pub fn from_tag(tag: &str) -> Option<Language> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        Language::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(primary))
    }

    /// The language an account's letters are written in (English when its tag has none).
    pub fn of(account: &Account) -> Language {
        Language::from_tag(&account.language).unwrap_or(Language::En)
    }

    /// The PDF document language (`/Lang`): `en`, `es-US`.
    pub fn pdf_tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Es => "es-US",
        }
    }

    /// Where this language's templates are under `letters/` and `email/`: `""` for
    /// English (the top level), `"es/"` for Spanish.
    pub fn template_dir(self) -> &'static str {
        match self {
            Language::En => "",
            Language::Es => "es/",
        }
    }

    /// A date as letters in this language print it: "February 1, 2027",
    /// "1 de febrero de 2027".
    pub fn long_date(self, date: NaiveDate) -> String {
        match self {
            Language::En => date.format("%B %-d, %Y").to_string(),
            Language::Es => format!(
                "{} de {} de {}",
                date.day(),
                MESES[date.month0() as usize],
                date.year()
            ),
        }
    }

    /// Every long date written in `text` in this language, as written.
    pub fn dates_in(self, text: &str) -> Vec<String> {
        match self {
            Language::En => crate::review::text::long_dates(text),
            Language::Es => spanish_dates(text),
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every "D de MES de AAAA" in `text` (whitespace between the words may be any run, as
/// extracted PDF text has it).
fn spanish_dates(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut found = Vec::new();
    for w in words.windows(5) {
        let day = w[0].trim_start_matches(['(', '“', '"']);
        let year = w[4].trim_end_matches(|c: char| !c.is_ascii_digit());
        let is_day = (1..=2).contains(&day.len()) && day.bytes().all(|b| b.is_ascii_digit());
        let is_year = year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit());
        if is_day && w[1] == "de" && MESES.contains(&w[2]) && w[3] == "de" && is_year {
            found.push(format!("{day} de {} de {year}", w[2]));
        }
    }
    found
}

/// What the plan's `why` adds when an account asks for a language missive has no letters
/// in: the letter falls back to English, and why. `None` when its language has letters.
pub fn fallback_note(account: &Account) -> Option<String> {
    if Language::from_tag(&account.language).is_some() {
        return None;
    }
    Some(format!(
        "written in English: the account asks for language `{}`, which has no letter templates (only {})",
        account.language,
        Language::ALL.map(Language::as_str).join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_pick_languages_by_primary_subtag() {
        assert_eq!(Language::from_tag("es"), Some(Language::Es));
        assert_eq!(Language::from_tag("ES-us"), Some(Language::Es));
        assert_eq!(Language::from_tag("en"), Some(Language::En));
        assert_eq!(Language::from_tag("fr"), None);
        assert_eq!(Language::from_tag("est"), None);
    }

    #[test]
    fn dates_in_each_language() {
        let d = NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
        assert_eq!(Language::En.long_date(d), "February 1, 2027");
        assert_eq!(Language::Es.long_date(d), "1 de febrero de 2027");
        let d = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert_eq!(Language::Es.long_date(d), "31 de diciembre de 2026");
    }

    #[test]
    fn finds_spanish_dates_across_line_breaks() {
        let text = "antes del\n1 de febrero\nde 2027. El 15 de mayo de 2026, y 3 de marzo 2026.";
        assert_eq!(
            spanish_dates(text),
            ["1 de febrero de 2027", "15 de mayo de 2026"]
        );
    }
}
