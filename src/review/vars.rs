//! The variables a template uses, found in its `{{ … }}` and `{% … %}` tags
//! ([`crate::template_tags`] finds the tags and their tokens).
//!
//! A variable is a dotted path into the composed context (`letter.deadline`,
//! `review.address`). Loop variables are resolved to the list they walk
//! (`{% for l in liabilities %}…{{ l.period }}` uses `liabilities[].period`); names bound by
//! `{% set %}` are the template's own and are left out, as are filter and test names,
//! keywords, literals and Tera's `loop` object. Included partials are scanned too.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::template_tags::{TagKind, tags};

/// Words inside tags that are never variables.
const KEYWORDS: &[&str] = &[
    "if",
    "elif",
    "else",
    "endif",
    "for",
    "in",
    "endfor",
    "set",
    "set_global",
    "include",
    "import",
    "extends",
    "block",
    "endblock",
    "macro",
    "endmacro",
    "filter",
    "endfilter",
    "raw",
    "endraw",
    "not",
    "and",
    "or",
    "is",
    "true",
    "false",
    "True",
    "False",
    "loop",
    "super",
    "break",
    "continue",
    "as",
    "ignore",
    "missing",
    "self",
];

/// What one file uses: context paths, names it binds with `set`, partials it includes.
struct Scan {
    used: BTreeSet<String>,
    locals: BTreeSet<String>,
    includes: Vec<String>,
}

/// Scans one template file.
fn scan(source: &str) -> Scan {
    let mut bound: BTreeMap<String, String> = BTreeMap::new();
    let mut locals: BTreeSet<String> = BTreeSet::new();
    let mut used = BTreeSet::new();
    let mut includes = Vec::new();
    for tag in tags(source) {
        let statement = tag.kind == TagKind::Statement;
        let tokens = tag.tokens();
        if statement {
            match tokens.first().copied() {
                Some("include") => {
                    if let Some(name) = tokens.iter().find_map(|t| unquoted(t)) {
                        includes.push(name.to_owned());
                    }
                    continue;
                }
                Some("for") => {
                    if let Some(pos) = tokens.iter().position(|t| *t == "in") {
                        let list = tokens.get(pos + 1).map(|t| resolve(t, &bound));
                        for var in tokens[1..pos].iter().filter(|t| **t != ",") {
                            if let Some(list) = &list {
                                bound.insert((*var).to_owned(), format!("{list}[]"));
                            }
                        }
                    }
                }
                Some("set") | Some("set_global") => {
                    if let Some(name) = tokens.get(1) {
                        locals.insert((*name).to_owned());
                    }
                }
                _ => {}
            }
        }
        let mut skip = 0;
        for (i, token) in tokens.iter().enumerate() {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            // A filter name follows `|`, a test name `is` or `is not` (`is not none`).
            if *token == "|" {
                skip = 1;
                continue;
            }
            if *token == "is" {
                skip = if tokens.get(i + 1).is_some_and(|t| *t == "not") {
                    2
                } else {
                    1
                };
                continue;
            }
            let first = token.chars().next().unwrap_or(' ');
            if !(first.is_alphabetic() || first == '_') || KEYWORDS.contains(token) {
                continue;
            }
            // A keyword argument of a filter (`date(format=…)`) is not a variable.
            if tokens.get(i + 1).is_some_and(|t| *t == "=") && !statement {
                continue;
            }
            let head = token.split('.').next().unwrap_or(token);
            if locals.contains(head) || KEYWORDS.contains(&head) {
                continue;
            }
            // The loop variables themselves (`for l in …`) resolve through `bound`.
            let is_for_var = statement
                && tokens.first() == Some(&"for")
                && tokens
                    .iter()
                    .position(|t| *t == "in")
                    .is_some_and(|p| i < p);
            if is_for_var || (statement && tokens.first() == Some(&"set") && i == 1) {
                continue;
            }
            used.insert(resolve(token, &bound));
        }
    }
    Scan {
        used,
        locals,
        includes,
    }
}

/// `l.period` with `l` bound to `liabilities[]` → `liabilities[].period`.
fn resolve(token: &str, bound: &BTreeMap<String, String>) -> String {
    let (head, rest) = match token.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (token, None),
    };
    match (bound.get(head), rest) {
        (Some(list), Some(rest)) => format!("{list}.{rest}"),
        (Some(list), None) => list.clone(),
        (None, _) => token.to_owned(),
    }
}

/// The text of a string-literal token (`"letters/_h.typ.tera"`), `None` for other tokens.
fn unquoted(token: &str) -> Option<&str> {
    let quote = token
        .chars()
        .next()
        .filter(|c| matches!(c, '"' | '\'' | '`'))?;
    token[1..].strip_suffix(quote)
}

/// Every context path `template` uses, including through the partials it includes
/// (`files`: template name → text, as the composer loaded them), sorted.
pub fn variables(template: &str, files: &BTreeMap<String, String>) -> Vec<String> {
    let mut used = BTreeSet::new();
    let mut locals = BTreeSet::new();
    let mut queue = vec![template.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(text) = files.get(&name) {
            let scan = scan(text);
            used.extend(scan.used);
            locals.extend(scan.locals);
            queue.extend(scan.includes);
        }
    }
    // A name set in the template is seen by the partials it includes (`title`).
    used.into_iter()
        .filter(|path| {
            let head = path.split(['.', '[']).next().unwrap_or(path);
            !locals.contains(head)
        })
        .collect()
}

/// What a context holds at `path` (`liabilities[].period`): `None` when some step is
/// missing (the path is not provided), else the values found (a list step collects from
/// every element; an empty list gives no values, which proves nothing either way).
pub fn lookup<'a>(context: &'a Value, path: &str) -> Option<Vec<&'a Value>> {
    let mut current = vec![context];
    for step in path.split('.') {
        let (name, is_list) = match step.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (step, false),
        };
        let mut next = Vec::new();
        for value in current {
            match value {
                Value::Null => {}
                Value::Object(map) => match map.get(name) {
                    Some(Value::Array(items)) if is_list => next.extend(items.iter()),
                    Some(Value::Null) if is_list => {}
                    Some(_) if is_list => return None,
                    Some(found) => next.push(found),
                    None => return None,
                },
                _ => return None,
            }
        }
        current = next;
    }
    Some(current)
}

/// A short display of the values at a path, for reviewers (`"January 29, 2027"`,
/// `["L1", "L2"]`, `(none)`).
pub fn describe(values: &[&Value]) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => format!("(list of {})", items.len()),
            Value::Object(map) => format!("(object with {} fields)", map.len()),
            other => other.to_string(),
        })
        .collect();
    match shown.len() {
        0 => "(none)".to_owned(),
        1 => shown.into_iter().next().unwrap_or_default(),
        n if n > 6 => format!("{} … ({n} values)", shown[..6].join(" · ")),
        _ => shown.join(" · "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect()
    }

    #[test]
    fn finds_paths_through_loops_partials_and_filters() {
        let files = files(&[
            (
                "letters/x.typ.tera",
                "{% set title = \"T\" -%}\n{% include \"letters/_h.typ.tera\" %}\n\
                 {# {{ commented.out }} #}{% raw %}{{ raw.text }}{% endraw %}\n\
                 {% for l in liabilities %}{{ l.period | str }}{% if loop.last %}{% endif %}{% endfor %}\n\
                 {% if letter.variant == \"federal\" and offset.excess is not none %}\n\
                 {{ letter.amounts.payoff | money }} {{ letter.date | date(format=\"x\") }}\n\
                 {% if letter.recipients | length > 1 %}{% endif %}{% endif %}",
            ),
            (
                "letters/_h.typ.tera",
                "{{ title | str }} {{ agency.name | str }}",
            ),
        ]);
        assert_eq!(
            variables("letters/x.typ.tera", &files),
            [
                "agency.name",
                "letter.amounts.payoff",
                "letter.date",
                "letter.recipients",
                "letter.variant",
                "liabilities",
                "liabilities[].period",
                "offset.excess",
            ]
        );
    }

    #[test]
    fn looks_paths_up_in_a_context() {
        let ctx = json!({"a": {"b": "x", "n": null}, "l": [{"p": 1}, {"p": 2}], "e": []});
        assert_eq!(describe(&lookup(&ctx, "a.b").expect("found")), "x");
        assert_eq!(describe(&lookup(&ctx, "l[].p").expect("found")), "1 · 2");
        assert_eq!(lookup(&ctx, "e[].q").expect("empty").len(), 0);
        assert!(lookup(&ctx, "a.c").is_none());
        assert!(lookup(&ctx, "nickname").is_none());
        assert_eq!(lookup(&ctx, "a.n.deeper").expect("null").len(), 0);
    }
}
