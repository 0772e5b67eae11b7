//! A text diff between the template files of an approved version and the current ones.

use std::collections::{BTreeMap, BTreeSet};

use similar::{ChangeTag, TextDiff};

/// How one line of a diff changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineChange {
    /// A header (`--- file`, `@@ … @@`).
    Header,
    /// Unchanged context.
    Same,
    /// Only in the approved version.
    Removed,
    /// Only in the current version.
    Added,
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    /// How it changed.
    pub change: LineChange,
    /// The line, without its end and without a `+`/`-` marker.
    pub text: String,
}

/// The unified diff (3 lines of context) of every file whose text differs between
/// `approved` and `current` (file name → text); a file only on one side counts as empty on
/// the other. Empty when nothing changed.
pub fn diff_files(
    approved: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Vec<DiffLine> {
    let names: BTreeSet<&String> = approved.keys().chain(current.keys()).collect();
    let mut lines = Vec::new();
    for name in names {
        let old = approved.get(name).map_or("", String::as_str);
        let new = current.get(name).map_or("", String::as_str);
        if old == new {
            continue;
        }
        let header = |text: String| DiffLine {
            change: LineChange::Header,
            text,
        };
        lines.push(header(format!("--- approved {name}")));
        lines.push(header(format!("+++ current {name}")));
        let diff = TextDiff::from_lines(old, new);
        for group in diff.grouped_ops(3) {
            let (Some(first), Some(last)) = (group.first(), group.last()) else {
                continue;
            };
            let (old_range, new_range) = (first.old_range(), first.new_range());
            lines.push(header(format!(
                "@@ -{},{} +{},{} @@",
                old_range.start + 1,
                last.old_range().end - old_range.start,
                new_range.start + 1,
                last.new_range().end - new_range.start,
            )));
            for op in &group {
                for change in diff.iter_changes(op) {
                    lines.push(DiffLine {
                        change: match change.tag() {
                            ChangeTag::Equal => LineChange::Same,
                            ChangeTag::Delete => LineChange::Removed,
                            ChangeTag::Insert => LineChange::Added,
                        },
                        text: change.value().trim_end_matches(['\n', '\r']).to_owned(),
                    });
                }
            }
        }
    }
    lines
}

/// A diff as plain unified-diff text (`+`, `-`, space markers).
pub fn to_text(lines: &[DiffLine]) -> String {
    let mut out = String::new();
    for line in lines {
        let marker = match line.change {
            LineChange::Header => "",
            LineChange::Same => " ",
            LineChange::Removed => "-",
            LineChange::Added => "+",
        };
        out.push_str(marker);
        out.push_str(&line.text);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect()
    }

    #[test]
    fn shows_only_changed_files() {
        let old = files(&[("a", "one\ntwo\nthree\n"), ("b", "same\n")]);
        let new = files(&[("a", "one\nTWO\nthree\n"), ("b", "same\n"), ("c", "new\n")]);
        let text = to_text(&diff_files(&old, &new));
        assert_eq!(
            text,
            "--- approved a\n+++ current a\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n\
             --- approved c\n+++ current c\n@@ -1,0 +1,1 @@\n+new\n"
        );
        assert!(diff_files(&old, &old).is_empty());
    }
}
