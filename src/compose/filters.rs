//! Tera filters that turn values into **Typst string literals**.
//!
//! Tera knows nothing of Typst: a `$` in a name would start math, a `#` code, a `*` bold.
//! So every value reaches a letter through one of these filters, each of which returns a
//! complete, quoted Typst string literal (`"O'Neil \"Jr.\""`), which Typst prints verbatim
//! whatever it contains. The composer refuses any template with a `{{ … }}` that does not
//! end in one of [`SAFE_FILTERS`], so a raw value can never reach Typst markup.

use std::collections::HashMap;

use tera::{Result, Value};

use crate::calendar::parse_iso_date;
use crate::language::Language;
use crate::money::Money;
use crate::template_tags::{TagKind, final_filter, tags};
pub use crate::typst_literal::typst_string;

/// The filters whose output is safe inside Typst source; every `{{ … }}` must end in one.
pub const SAFE_FILTERS: [&str; 5] = ["str", "money", "date", "tin", "int"];

fn text_of(value: &Value, filter: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err(format!(
            "filter `{filter}` got a null value; guard optional fields with {{% if … %}}"
        )
        .into()),
        other => Err(format!("filter `{filter}` expects text, got {other}").into()),
    }
}

/// `{{ name | str }}`: any text as a Typst string literal.
pub fn str_filter(value: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    Ok(Value::String(typst_string(&text_of(value, "str")?)))
}

/// `{{ amount | money }}`: a decimal string as `"$1,234.56"`.
pub fn money_filter(value: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let text = text_of(value, "money")?;
    let money = Money::parse(&text).map_err(|err| format!("filter `money`: {err}"))?;
    Ok(Value::String(typst_string(&money.dollars())))
}

/// `{{ date | date }}`: `2027-01-29` as `"January 29, 2027"`.
pub fn date_filter(value: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let text = text_of(value, "date")?;
    let date = parse_iso_date(&text)
        .ok_or_else(|| format!("filter `date`: `{text}` is not a YYYY-MM-DD date"))?;
    Ok(Value::String(typst_string(&long_date(date))))
}

/// A date as English letters print it: "January 29, 2027".
pub fn long_date(date: chrono::NaiveDate) -> String {
    Language::En.long_date(date)
}

/// The `date` filter of letters in `lang` ("1 de febrero de 2027" in Spanish).
pub fn date_filter_in(lang: Language) -> impl tera::Filter + 'static {
    move |value: &Value, _: &HashMap<String, Value>| -> Result<Value> {
        let text = text_of(value, "date")?;
        let date = parse_iso_date(&text)
            .ok_or_else(|| format!("filter `date`: `{text}` is not a YYYY-MM-DD date"))?;
        Ok(Value::String(typst_string(&lang.long_date(date))))
    }
}

/// `{{ tin_last4 | tin }}`: the masked taxpayer id `"XXX-XX-6789"`; refuses anything but
/// exactly four digits so a full id can never be printed through it.
pub fn tin_filter(value: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let text = text_of(value, "tin")?;
    if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("filter `tin` takes exactly the last four digits".into());
    }
    Ok(Value::String(typst_string(&format!("XXX-XX-{text}"))))
}

/// `{{ count | int }}`: a whole number, bare (digits are inert in Typst code).
pub fn int_filter(value: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    match value {
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(Value::String(n.to_string())),
        other => Err(format!("filter `int` expects a whole number, got {other}").into()),
    }
}

/// The `{{ … }}` expressions of a template that do not end in a safe filter, with their
/// line numbers. Comments, `{% raw %}` text and `{% … %}` tags are not output and are not
/// checked.
pub fn unsafe_expressions(source: &str) -> Vec<(usize, String)> {
    tags(source)
        .into_iter()
        .filter(|tag| tag.kind == TagKind::Expression)
        .filter(|tag| !final_filter(&tag.tokens()).is_some_and(|f| SAFE_FILTERS.contains(&f)))
        .map(|tag| (tag.line(source), format!("{{{{ {} }}}}", tag.text)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(f: fn(&Value, &HashMap<String, Value>) -> Result<Value>, v: Value) -> String {
        match f(&v, &HashMap::new()) {
            Ok(Value::String(s)) => s,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn strings_are_quoted_and_escaped() {
        let nasty = "Ann $x$ #set page(width: 1pt) *Bold* \\ ] O'Neil <b> \"q\"\n";
        assert_eq!(
            typst_string(nasty),
            "\"Ann $x$ #set page(width: 1pt) *Bold* \\\\ ] O'Neil <b> \\\"q\\\"\\n\""
        );
        assert_eq!(typst_string("\u{7}"), "\"\\u{7}\"");
    }

    #[test]
    fn money_dates_and_tins() {
        assert_eq!(apply(money_filter, "1860.5".into()), "\"$1,860.50\"");
        assert_eq!(
            apply(date_filter, "2027-01-29".into()),
            "\"January 29, 2027\""
        );
        assert_eq!(
            apply(date_filter, "2027-02-01".into()),
            "\"February 1, 2027\""
        );
        assert_eq!(apply(tin_filter, "6789".into()), "\"XXX-XX-6789\"");
        assert!(tin_filter(&"123456789".into(), &HashMap::new()).is_err());
        assert!(money_filter(&"12,00".into(), &HashMap::new()).is_err());
        assert!(str_filter(&Value::Null, &HashMap::new()).is_err());
        assert_eq!(apply(int_filter, 60.into()), "60");
        assert!(int_filter(&"60; #panic".into(), &HashMap::new()).is_err());
    }

    #[test]
    fn finds_expressions_without_a_safe_filter() {
        let template = "#let a = {{ x | str }}\n{{- y -}}\n{{ z | upper }} {{ w | money }}\n{{ v | date(format=1) }}\n\
                        {# {{ c }} #}{% raw %}{{ r }}{% endraw %}{{ \"}}\" | str ~ t }}";
        let found = unsafe_expressions(template);
        assert_eq!(
            found,
            [
                (2, "{{ y }}".to_owned()),
                (3, "{{ z | upper }}".to_owned()),
                (5, "{{ \"}}\" | str ~ t }}".to_owned())
            ]
        );
    }
}
