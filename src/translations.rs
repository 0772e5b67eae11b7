//! The agency's texts in another language: configuration's `[es]` tables.
//!
//! Everything in `missive.toml` that a letter prints as a sentence or a label (hours,
//! unit roles, payment instructions, policy statements, titles, tax type labels) has a
//! Spanish version under `[es]`, with the same keys as the English one. Every key is
//! required, so a missing translation is an error at load naming the key
//! (`es.statements.fees: missing field`), never an English sentence inside a Spanish
//! letter. Names, addresses, telephone numbers and the federal program's name are the
//! same in every language and are not repeated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Statements, Titles};
use crate::language::Language;

/// One language's texts (`[es]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Translation {
    /// `agency.hours`.
    pub agency: AgencyTexts,
    /// `contacts.review.unit_role`, `contacts.bankruptcy.hours`.
    pub contacts: ContactTexts,
    /// `payments.online_text`, `payments.coupon_note`.
    pub payments: PaymentTexts,
    /// Every `statements.*`.
    pub statements: Statements,
    /// Every `titles.*`.
    pub titles: Titles,
    /// `policy.tax_type_labels`: one label per English one.
    pub policy: PolicyTexts,
}

/// The agency's texts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyTexts {
    /// Telephone hours.
    pub hours: String,
}

/// The contacts' texts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContactTexts {
    /// The review unit's texts.
    pub review: ReviewTexts,
    /// The bankruptcy unit's texts.
    pub bankruptcy: BankruptcyTexts,
}

/// The review unit's texts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewTexts {
    /// What the unit does, printed after its name.
    pub unit_role: String,
}

/// The bankruptcy unit's texts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BankruptcyTexts {
    /// Telephone hours.
    pub hours: String,
}

/// Payment texts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentTexts {
    /// How to pay online.
    pub online_text: String,
    /// What paying online means for the coupon.
    pub coupon_note: String,
}

/// Policy texts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyTexts {
    /// Tax type labels, same codes as `policy.tax_type_labels`.
    pub tax_type_labels: BTreeMap<String, String>,
}

/// Meaning checks: every English tax type label has a translation and no label is
/// translated that English lacks; no text is blank. `Err((key, message))`.
pub(crate) fn check(config: &Config) -> Result<(), (String, String)> {
    let es = &config.es;
    for code in config.policy.tax_type_labels.keys() {
        if !es.policy.tax_type_labels.contains_key(code) {
            return Err((
                format!("es.policy.tax_type_labels.{code}"),
                "missing translation of `policy.tax_type_labels`".to_owned(),
            ));
        }
    }
    if let Some(code) = es
        .policy
        .tax_type_labels
        .keys()
        .find(|code| !config.policy.tax_type_labels.contains_key(*code))
    {
        return Err((
            format!("es.policy.tax_type_labels.{code}"),
            "no such tax type in `policy.tax_type_labels`".to_owned(),
        ));
    }
    let value = serde_json::to_value(es).map_err(|e| ("es".to_owned(), e.to_string()))?;
    if let Some(key) = blank_key(&value, "es") {
        return Err((key, "must not be blank".to_owned()));
    }
    Ok(())
}

/// The first blank string's key path in `value`.
fn blank_key(value: &serde_json::Value, path: &str) -> Option<String> {
    match value {
        serde_json::Value::String(s) if s.trim().is_empty() => Some(path.to_owned()),
        serde_json::Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| blank_key(v, &format!("{path}.{k}"))),
        _ => None,
    }
}

impl Config {
    /// This configuration with its texts in `lang`: the English one as is, or a copy
    /// whose hours, roles, payment texts, statements, titles and tax type labels are the
    /// `[es]` ones.
    pub fn localized(&self, lang: Language) -> Config {
        let mut out = self.clone();
        if lang == Language::Es {
            let es = &self.es;
            out.agency.hours = es.agency.hours.clone();
            out.contacts.review.unit_role = es.contacts.review.unit_role.clone();
            out.contacts.bankruptcy.hours = es.contacts.bankruptcy.hours.clone();
            out.payments.online_text = es.payments.online_text.clone();
            out.payments.coupon_note = es.payments.coupon_note.clone();
            out.statements = es.statements.clone();
            out.titles = es.titles.clone();
            out.policy.tax_type_labels = es.policy.tax_type_labels.clone();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{BUILT_IN, Config};
    use crate::language::Language;

    #[test]
    fn spanish_labels_must_match_the_english_ones() {
        let text = BUILT_IN.replace("withholding = \"Impuesto retenido\"\n", "");
        let (key, message) = Config::parse(&text).expect_err("missing label");
        assert_eq!(key, "es.policy.tax_type_labels.withholding", "{message}");
        let text = BUILT_IN.replace(
            "withholding = \"Impuesto retenido\"\n",
            "withholding = \"Impuesto retenido\"\nestate = \"Herencias\"\n",
        );
        let (key, _) = Config::parse(&text).expect_err("extra label");
        assert_eq!(key, "es.policy.tax_type_labels.estate");
        let text = BUILT_IN.replace(
            "fees = \"No cobramos ningún cargo cuando compensamos un reembolso.\"",
            "fees = \" \"",
        );
        let (key, _) = Config::parse(&text).expect_err("blank text");
        assert_eq!(key, "es.statements.fees");
    }

    #[test]
    fn localized_swaps_every_text() {
        let config = Config::parse(BUILT_IN).expect("built-in");
        let es = config.localized(Language::Es);
        assert_eq!(es.statements.fees, config.es.statements.fees);
        assert_eq!(
            es.titles.refund_late_return,
            config.es.titles.refund_late_return
        );
        assert_eq!(es.agency.hours, config.es.agency.hours);
        assert_eq!(
            es.policy.tax_type_labels["sales_use"],
            "Impuesto sobre las ventas y el uso"
        );
        assert_eq!(es.agency.phone, config.agency.phone);
        let en = config.localized(Language::En);
        assert_eq!(en.statements.fees, config.statements.fees);
    }
}
