//! The tags of a Tera template (`{{ … }}` and `{% … %}`) and the tokens inside them: the
//! one scanner behind every check that reads templates as text. The letter composer
//! refuses a `{{ … }}` that does not end in a Typst-safe filter, the email composer
//! refuses `safe` in HTML templates, and `check` and the review app list the variables a
//! template uses ([`crate::review::vars`]).
//!
//! Invariants, as Tera itself reads a template:
//! - a tag ends at the first closing delimiter outside a string literal, so
//!   `{{ "}}" | str }}` is one tag;
//! - comments (`{# … #}`) and the body of `{% raw %}…{% endraw %}` are text, not tags;
//! - a tag's text has its whitespace-control dashes and surrounding spaces trimmed;
//! - an unclosed tag or comment ends the scan (Tera refuses such a template when it loads).
//!
//! Tera's own parse tree (`tera::ast`) is not used: it is hidden from Tera's documentation,
//! outside its semantic-versioning promise, and carries no positions, while `check` and
//! the composer report the line and the expression as written.

/// Which kind of tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    /// `{{ … }}`: an expression whose value is output.
    Expression,
    /// `{% … %}`: a statement (`if`, `for`, `set`, `include`, `filter`, …).
    Statement,
}

/// One tag of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// Expression or statement.
    pub kind: TagKind,
    /// The text between the delimiters, without whitespace-control dashes and spaces
    /// (`x | str` for `{{- x | str -}}`).
    pub text: &'a str,
    /// Byte offset of the opening delimiter in the template.
    pub start: usize,
}

impl Tag<'_> {
    /// The 1-based line of the template the tag starts on.
    pub fn line(&self, source: &str) -> usize {
        source[..self.start].matches('\n').count() + 1
    }

    /// The tag's tokens (see [`tokens`]).
    pub fn tokens(&self) -> Vec<&str> {
        tokens(self.text)
    }
}

/// The `{{ … }}` and `{% … %}` tags of a template, in order.
pub fn tags(source: &str) -> Vec<Tag<'_>> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(offset) = source[pos..].find('{') {
        let start = pos + offset;
        let (close, kind) = match source.get(start..start + 2) {
            Some("{{") => ("}}", TagKind::Expression),
            Some("{%") => ("%}", TagKind::Statement),
            Some("{#") => {
                let Some(end) = source[start + 2..].find("#}") else {
                    break;
                };
                pos = start + 2 + end + 2;
                continue;
            }
            _ => {
                pos = start + 1;
                continue;
            }
        };
        let Some(end) = closing(source, start + 2, close) else {
            break;
        };
        let tag = Tag {
            kind,
            text: source[start + 2..end].trim_matches('-').trim(),
            start,
        };
        found.push(tag);
        pos = end + 2;
        if kind == TagKind::Statement && tag.tokens().first() == Some(&"raw") {
            let Some(after) = end_of_raw(source, pos) else {
                break;
            };
            pos = after;
        }
    }
    found
}

/// Where `close` first occurs from `from` on, outside string literals.
fn closing(source: &str, from: usize, close: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'' | b'`') => {
                i += 1 + source[i + 1..].find(quote as char)? + 1;
            }
            _ if bytes[i..].starts_with(close.as_bytes()) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The offset just past the `{% endraw %}` tag that ends a raw block starting at `from`.
fn end_of_raw(source: &str, from: usize) -> Option<usize> {
    let mut pos = from;
    loop {
        let start = pos + source[pos..].find("{%")?;
        let end = closing(source, start + 2, "%}")?;
        if source[start + 2..end].trim_matches('-').trim() == "endraw" {
            return Some(end + 2);
        }
        pos = end + 2;
    }
}

/// Splits a tag's text into tokens: dotted names (`letter.amounts.payoff`), string
/// literals with their quotes (`"x"`), and single symbols (`|`, `(`, `=`, …). Numbers
/// come out digit by digit; nothing here needs them whole.
pub fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if matches!(c, '"' | '\'' | '`') {
            let end = chars
                .by_ref()
                .find(|&(_, d)| d == c)
                .map_or(text.len(), |(i, d)| i + d.len_utf8());
            out.push(&text[start..end]);
        } else if c.is_alphabetic() || c == '_' {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if !(d.is_alphanumeric() || d == '_' || d == '.') {
                    break;
                }
                end = i + d.len_utf8();
                chars.next();
            }
            out.push(&text[start..end]);
        } else if !c.is_whitespace() {
            out.push(&text[start..start + c.len_utf8()]);
        }
    }
    out
}

/// The names of the filters applied in a tag's tokens (each name after a `|`), and for a
/// `{% filter name %}` section its filter.
pub fn filter_names<'a>(tokens: &[&'a str]) -> Vec<&'a str> {
    let mut names: Vec<&str> = tokens
        .windows(2)
        .filter(|pair| pair[0] == "|")
        .map(|pair| pair[1])
        .collect();
    if let ["filter", name, ..] = tokens {
        names.insert(0, name);
    }
    names
}

/// The filter an expression ends in: the name after its last `|` when only that filter's
/// argument list (`date(format="…")`) follows it. `None` for `x`, `x | str ~ y`.
pub fn final_filter<'a>(tokens: &[&'a str]) -> Option<&'a str> {
    let bar = tokens.iter().rposition(|t| *t == "|")?;
    let name = *tokens.get(bar + 1)?;
    let args = &tokens[bar + 2..];
    if args.is_empty() {
        return Some(name);
    }
    if args.first() != Some(&"(") {
        return None;
    }
    // The `(` after the name must close on the last token.
    let mut depth = 0usize;
    for (i, token) in args.iter().enumerate() {
        match *token {
            "(" => depth += 1,
            ")" => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (i == args.len() - 1).then_some(name);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(source: &str) -> Vec<(TagKind, &str)> {
        tags(source).iter().map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn finds_expressions_and_statements_in_order() {
        use TagKind::{Expression, Statement};
        let source = "a {{- x | str -}} b {% if y %}{{ z }}{%- endif %} {";
        assert_eq!(
            texts(source),
            [
                (Expression, "x | str"),
                (Statement, "if y"),
                (Expression, "z"),
                (Statement, "endif"),
            ]
        );
    }

    #[test]
    fn nested_filters_and_their_arguments() {
        let tag = tags("{{ letter.date | date(format=\"%B | %d\") | upper }}")[0];
        let tokens = tag.tokens();
        assert_eq!(filter_names(&tokens), ["date", "upper"]);
        assert_eq!(final_filter(&tokens), Some("upper"));

        let tokens = super::tokens("x | money | date(format=f(\"(\")) ");
        assert_eq!(filter_names(&tokens), ["money", "date"]);
        assert_eq!(final_filter(&tokens), Some("date"));

        assert_eq!(final_filter(&super::tokens("x")), None);
        assert_eq!(final_filter(&super::tokens("x | str ~ y")), None);
        assert_eq!(final_filter(&super::tokens("x | str(a=1) ~ y")), None);
        assert_eq!(final_filter(&super::tokens("\"a | b\"")), None);
    }

    #[test]
    fn if_blocks_and_filter_sections() {
        let found =
            tags("{% if a.b is not none and c | length > 1 %}{% filter safe %}x{% endfilter %}");
        assert_eq!(
            found[0].tokens(),
            [
                "if", "a.b", "is", "not", "none", "and", "c", "|", "length", ">", "1"
            ]
        );
        assert_eq!(filter_names(&found[0].tokens()), ["length"]);
        assert_eq!(filter_names(&found[1].tokens()), ["safe"]);
    }

    #[test]
    fn comments_and_raw_blocks_are_text() {
        let source = "{# {{ hidden | safe }} #}{% raw %}{{ literal }}{% endraw %}{{ shown }}\
                      {%- raw -%}{% if %}{%- endraw -%}{{ last }}";
        let found: Vec<&str> = tags(source).iter().map(|t| t.text).collect();
        assert_eq!(found, ["raw", "shown", "raw", "last"]);
    }

    #[test]
    fn strings_may_hold_braces_and_quotes() {
        let source = "{{ \"}}\" | str }} {% set s = '%}' %}{{ `{{` }}{{ \"it's\" }}";
        let found: Vec<&str> = tags(source).iter().map(|t| t.text).collect();
        assert_eq!(found, ["\"}}\" | str", "set s = '%}'", "`{{`", "\"it's\""]);
        assert_eq!(tokens("set s = '%}'"), ["set", "s", "=", "'%}'"]);
    }

    #[test]
    fn unclosed_tags_end_the_scan() {
        assert_eq!(texts("{{ a }} {{ b").len(), 1);
        assert_eq!(texts("{{ a }} {# b").len(), 1);
        assert_eq!(texts("{{ \"a }}").len(), 0);
        assert_eq!(texts("{% raw %}{{ a }}").len(), 1);
    }

    #[test]
    fn lines_count_from_one() {
        let source = "a\n{{ x }}\n\n{% if y %}";
        let lines: Vec<usize> = tags(source).iter().map(|t| t.line(source)).collect();
        assert_eq!(lines, [2, 4]);
    }

    #[test]
    fn tokens_keep_unicode_names_and_unclosed_strings() {
        assert_eq!(tokens("año.mes | str"), ["año.mes", "|", "str"]);
        assert_eq!(tokens("x ~ \"open"), ["x", "~", "\"open"]);
    }
}
