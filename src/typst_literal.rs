//! Typst string literals: the one way a value from outside enters Typst source.
//!
//! Typst prints a string literal verbatim whatever it holds, while the same text in markup
//! could start math (`$`), code (`#`) or emphasis (`*`). The composer's filters, the
//! mailroom's mailing book and the review lint all quote values with [`typst_string`].

/// Quotes text as a Typst string literal: only `\`, `"` and control characters need
/// escaping inside one.
pub fn typst_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
