//! Composing an email from `templates/email/`: per kind a subject, a plain-text body and an
//! HTML body, from the same view the letter templates see. Spanish ones are in
//! `templates/email/es/`, for accounts whose language is `es`.
//!
//! This Tera instance is separate from the letters': the Typst-literal filters are not
//! registered here (their output is Typst source, meaningless in an email), and templates
//! named `*.html.tera` are autoescaped as HTML. `| safe` is refused in them, so a taxpayer's
//! name can never become markup. When `email.attach_pdf` is false the view is cut down to
//! the letter's kind, dates and key, the taxpayer's name and the agency: no amount can reach
//! such an email, whatever the template says.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tera::Tera;

use super::DispatchError;
use crate::account::Account;
use crate::calendar::parse_iso_date;
use crate::config::Config;
use crate::decide::DueLetter;
use crate::language::Language;
use crate::letter::{LetterKey, LetterKind};
use crate::money::Money;
use crate::template_tags::{filter_names, tags};

/// Whose email it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The letter itself goes by email (its channel is email).
    Letter,
    /// An email copy of an intent to offset; the letter itself goes by certified mail.
    Copy,
}

/// An email composed for a letter: what the run records with the letter and later sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedEmail {
    /// The letter's key (one email per key).
    pub key: LetterKey,
    /// The taxpayer's (valid) address.
    pub to_address: String,
    /// The taxpayer's name, for the To header.
    pub to_name: String,
    /// Subject, one line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body (autoescaped).
    pub html: String,
    /// Whether the letter's PDF goes with it.
    pub attach_pdf: bool,
}

/// The three parts each kind has.
const PARTS: [&str; 3] = ["subject", "txt", "html"];

/// Loaded email templates, ready to compose any letter's email.
pub struct EmailComposer {
    /// One Tera per language (each with its own `date` filter and templates).
    teras: BTreeMap<Language, Tera>,
    /// The configuration with its texts in each language.
    configs: BTreeMap<Language, Config>,
}

/// `templates/email/<kind>.<part>.tera`, `templates/email/es/<kind>.<part>.tera`.
fn template_name(kind: LetterKind, part: &str, lang: Language) -> String {
    format!("email/{}{}.{part}.tera", lang.template_dir(), kind.as_str())
}

/// The `.tera` files directly in `dir/sub`, as (`sub/name`, text), sorted.
fn read_templates(dir: &Path, sub: &str) -> Result<Vec<(String, String)>, DispatchError> {
    let path = dir.join(sub);
    let read_failed = |path: PathBuf| move |source| DispatchError::Templates { path, source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&path).map_err(read_failed(path.clone()))? {
        let entry = entry.map_err(read_failed(path.clone()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tera") && entry.path().is_file() {
            let text = std::fs::read_to_string(entry.path()).map_err(read_failed(entry.path()))?;
            files.push((format!("{sub}/{name}"), text));
        }
    }
    files.sort();
    Ok(files)
}

impl EmailComposer {
    /// Loads `dir/email/*.tera` (English) and `dir/email/es/*.tera` (Spanish), templates
    /// and `_` partials; every kind must have its subject, text and HTML template in
    /// every language.
    pub fn load(dir: &Path, config: &Config) -> Result<EmailComposer, DispatchError> {
        let mut teras = BTreeMap::new();
        let mut configs = BTreeMap::new();
        for lang in Language::ALL {
            let sub = format!("email/{}", lang.template_dir());
            let sub = sub.trim_end_matches('/');
            let files = read_templates(dir, sub)?;
            for (name, text) in &files {
                if name.ends_with(".html.tera") && uses_safe(text) {
                    return Err(DispatchError::Template {
                        template: name.clone(),
                        message: "`safe` is not allowed in email HTML: values must stay escaped"
                            .to_owned(),
                    });
                }
            }
            let mut tera = Tera::default();
            tera.autoescape_on(vec![".html.tera"]);
            tera.register_filter("money", money_text);
            tera.register_filter("date", date_text(lang));
            tera.add_raw_templates(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
                .map_err(|err| DispatchError::Template {
                    template: format!("{sub}/"),
                    message: crate::report::cause_chain(&err),
                })?;
            for kind in LetterKind::ALL {
                for part in PARTS {
                    let name = template_name(kind, part, lang);
                    if !files.iter().any(|(n, _)| *n == name) {
                        return Err(DispatchError::Template {
                            template: name,
                            message: format!(
                                "no {lang} email {part} template for `{kind}` letters"
                            ),
                        });
                    }
                }
            }
            teras.insert(lang, tera);
            configs.insert(lang, config.localized(lang));
        }
        Ok(EmailComposer { teras, configs })
    }

    /// Composes the email for `letter` (`role` copy: the email copy of an intent to offset).
    /// The taxpayer must have a valid address.
    pub fn compose(
        &self,
        account: &Account,
        letter: &DueLetter,
        role: Role,
    ) -> Result<ComposedEmail, DispatchError> {
        let fail = |template: String, message: String| DispatchError::Compose {
            key: letter.key.clone(),
            template,
            message,
        };
        let to_address = account
            .valid_email()
            .ok_or_else(|| {
                fail(
                    String::new(),
                    "the account has no valid email address".into(),
                )
            })?
            .to_owned();
        let lang = Language::of(account);
        let config = &self.configs[&lang];
        let attach = config.email.attach_pdf;
        let mut view = crate::view::letter_view(account, letter, config, None)
            .map_err(|message| fail(String::new(), message))?;
        if !attach {
            view = without_amounts(view);
        }
        if let Value::Object(map) = &mut view {
            map.insert(
                "email".to_owned(),
                serde_json::json!({
                    "attach_pdf": attach,
                    "copy": role == Role::Copy,
                    "view_url": config.email.view_url,
                }),
            );
        }
        let context =
            tera::Context::from_value(view).map_err(|err| fail(String::new(), err.to_string()))?;
        let render = |part: &str| {
            let name = template_name(letter.kind, part, lang);
            self.teras[&lang]
                .render(&name, &context)
                .map_err(|err| fail(name, crate::report::cause_chain(&err)))
        };
        let subject = render("subject")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(ComposedEmail {
            key: letter.key.clone(),
            to_address,
            to_name: account.taxpayer.name.clone(),
            subject,
            text: render("txt")?,
            html: render("html")?,
            attach_pdf: attach,
        })
    }
}

/// True if a template applies `safe` anywhere: as a filter in any tag, or as a
/// `{% filter safe %}` section.
fn uses_safe(text: &str) -> bool {
    tags(text)
        .iter()
        .any(|tag| filter_names(&tag.tokens()).contains(&"safe"))
}

/// The view an email without the PDF may see: no amounts, liabilities, offsets or reviews.
fn without_amounts(view: Value) -> Value {
    let Value::Object(map) = view else {
        return Value::Null;
    };
    let mut kept = serde_json::Map::new();
    for (name, value) in map {
        match name.as_str() {
            "letter" => {
                let mut letter = value;
                if let Value::Object(fields) = &mut letter {
                    fields.remove("amounts");
                    fields.remove("liability_ids");
                }
                kept.insert(name, letter);
            }
            "account" | "agency" => {
                kept.insert(name, value);
            }
            _ => {}
        }
    }
    Value::Object(kept)
}

/// `{{ amount | money }}` in email: a decimal string as `$1,234.56` (plain text; the HTML
/// templates escape it like any value).
fn money_text(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let text = value
        .as_str()
        .ok_or_else(|| tera::Error::msg(format!("filter `money` expects text, got {value}")))?;
    let money = Money::parse(text).map_err(|err| format!("filter `money`: {err}"))?;
    Ok(Value::String(money.dollars()))
}

/// `{{ date | date }}` in email: `2027-01-29` as `January 29, 2027` (English) or
/// `29 de enero de 2027` (Spanish).
fn date_text(lang: Language) -> impl tera::Filter + 'static {
    move |value: &Value, _: &HashMap<String, Value>| -> tera::Result<Value> {
        let text = value
            .as_str()
            .ok_or_else(|| tera::Error::msg(format!("filter `date` expects text, got {value}")))?;
        let date = parse_iso_date(text)
            .ok_or_else(|| format!("filter `date`: `{text}` is not a YYYY-MM-DD date"))?;
        Ok(Value::String(lang.long_date(date)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_is_found_in_expressions() {
        assert!(uses_safe("<p>{{ account.name | safe }}</p>"));
        assert!(uses_safe("{% set x = account.name | safe %}"));
        assert!(!uses_safe("<p>{{ account.name }} is safe</p>"));
        assert!(uses_safe(
            "{% filter safe %}{{ account.name }}{% endfilter %}"
        ));
        assert!(uses_safe("{{ account.name | upper | safe }}"));
        assert!(!uses_safe(
            "{# {{ account.name | safe }} #}{{ \"| safe\" }}"
        ));
    }

    #[test]
    fn without_amounts_keeps_only_the_allowed_parts() {
        let view = serde_json::json!({
            "letter": {"kind": "refund", "amounts": {"refund": "12.00"}, "liability_ids": ["L1"]},
            "account": {"name": "A"},
            "agency": {"name": "DRS"},
            "offset": {"refund_amount": "500.00"},
            "policy": {"minimum_amount": "25.00"},
        });
        let cut = without_amounts(view);
        assert_eq!(
            cut,
            serde_json::json!({
                "letter": {"kind": "refund"},
                "account": {"name": "A"},
                "agency": {"name": "DRS"},
            })
        );
    }
}
