//! The Typst sources of the mailroom's documents: a print batch (many composed letters
//! in one document) and a firm mailing book.
//!
//! A batch is ONE Typst document, so it is exported once as PDF/A-2b + PDF/UA-1 (merging
//! conformant files with a generic tool would break conformance). Each composed letter is
//! wrapped in its own content block `#[ … ]`: its `#import` and `#show: letter.with(..)`
//! stay inside that block, so every letter sets up its own pages; the layout marks each
//! letter's first page (`<missive-letter-start>`) and, here, its last
//! (`<missive-letter-end>`), which number its pages on their own. Between letters,
//! `pagebreak(to: "odd")` makes every letter start on an odd (front) page: a letter with
//! an odd page count gets a blank back page in the batch's own page style, which says
//! "This page intentionally left blank"; the last letter gets one too if it needs it.

use std::fmt::Write as _;

use crate::typst_literal::typst_string;

/// The label of the mark on each letter's first page.
pub const LETTER_START: &str = "missive-letter-start";

/// One Typst document holding `letters` (composed sources) one after another, each
/// padded to an even number of pages.
pub fn batch_source(letters: &[&str]) -> String {
    let size = letters.iter().map(|l| l.len() + 40).sum::<usize>() + 200;
    let mut out = String::with_capacity(size);
    out.push_str("#import \"/lib/letter.typ\": batch-setup\n#show: batch-setup\n");
    for (i, letter) in letters.iter().enumerate() {
        if i > 0 {
            out.push_str("#pagebreak(to: \"odd\", weak: true)\n");
        }
        out.push_str("#[\n");
        out.push_str(letter);
        // A letter source may end in a line comment: the closing bracket goes on a line
        // of its own.
        out.push_str("\n#letter-end()\n]\n");
    }
    // The last letter's end mark, not `here()`: a context after its own page break would
    // see the page it created.
    out.push_str(
        "#context if calc.odd(query(<missive-letter-end>).last().location().page()) { pagebreak() }\n",
    );
    out
}

/// One row of a firm mailing book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookRow {
    /// Position in the batch.
    pub sequence: u32,
    /// The 20-digit article number, grouped for reading.
    pub article: String,
    /// Addressee names.
    pub names: Vec<String>,
    /// Address lines (street lines, city line).
    pub address: Vec<String>,
    /// Postage class and extra services.
    pub service: String,
}

/// What a mailing book's heading states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookHeading {
    /// The sender (agency) name.
    pub sender: String,
    /// The sender's address lines.
    pub sender_address: Vec<String>,
    /// The batch name.
    pub batch: String,
    /// The mail date, as printed.
    pub mail_date: String,
}

/// A firm mailing book for accountable mail in the manner of PS Form 3877: one numbered
/// line per certified piece, the totals, and the lines the post office signs.
pub fn mailing_book_source(heading: &BookHeading, rows: &[BookRow]) -> String {
    let s = |t: &str| typst_string(t);
    let lines = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|i| typst_string(i)).collect();
        format!("({},)", quoted.join(", "))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#set page(paper: \"us-letter\", flipped: true, margin: 0.6in, footer: context \
         text(size: 7.5pt)[#{} · Page #counter(page).display() of #counter(page).final().first()])",
        s(&heading.batch)
    );
    out.push_str("#set text(font: \"Liberation Sans\", size: 9pt)\n");
    let _ = writeln!(
        out,
        "#heading(level: 1, {})",
        s("Firm mailing book for accountable mail (PS Form 3877)")
    );
    let _ = writeln!(
        out,
        "#grid(columns: (auto, 1fr), column-gutter: 1.2em, row-gutter: 0.45em,\n  \
         [Sender], {}.join(linebreak()),\n  [Batch], {},\n  [Mail date], {},\n  \
         [Service], {},\n)",
        lines(&[vec![heading.sender.clone()], heading.sender_address.clone()].concat()),
        s(&heading.batch),
        s(&heading.mail_date),
        s("Certified Mail with Return Receipt"),
    );
    out.push_str("#v(0.6em)\n#table(\n  columns: (auto, auto, 1fr, auto),\n  inset: 4pt,\n");
    out.push_str("  table.header([*No.*], [*Article number*], [*Addressee and address*], [*Postage class and services*]),\n");
    for row in rows {
        let addressee: Vec<String> = row.names.iter().chain(&row.address).cloned().collect();
        let _ = writeln!(
            out,
            "  [{}], {}, {}.join(linebreak()), {},",
            row.sequence,
            s(&row.article),
            lines(&addressee),
            s(&row.service)
        );
    }
    out.push_str(")\n#v(1em)\n");
    let _ = writeln!(
        out,
        "#grid(columns: (auto, 1fr), column-gutter: 1.2em, row-gutter: 1.2em,\n  \
         [Total pieces listed by sender], [{}],\n  \
         [Total pieces received at post office], box(width: 2in, line(length: 100%)),\n  \
         [Postmaster, per (receiving employee)], box(width: 3in, line(length: 100%)),\n)",
        rows.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_wrapped_and_padded() {
        let source = batch_source(&["A // ends in a comment", "B"]);
        assert!(source.contains(
            "#[\nA // ends in a comment\n#letter-end()\n]\n#pagebreak(to: \"odd\", weak: true)\n#[\nB\n#letter-end()\n]\n"
        ));
    }

    #[test]
    fn the_mailing_book_quotes_every_value() {
        let heading = BookHeading {
            sender: "Agency #1".to_owned(),
            sender_address: vec!["1 Main St".to_owned(), "Town CT 06103".to_owned()],
            batch: "7-certified-1".to_owned(),
            mail_date: "December 1, 2026".to_owned(),
        };
        let row = BookRow {
            sequence: 1,
            article: "7196 9008 9110 0000 0017".to_owned(),
            names: vec!["$Jane \"J\" Doe".to_owned()],
            address: vec!["1 Elm St".to_owned(), "Town CT 06103".to_owned()],
            service: "Certified Mail, Return Receipt".to_owned(),
        };
        let source = mailing_book_source(&heading, &[row]);
        assert!(source.contains("\"$Jane \\\"J\\\" Doe\""), "{source}");
        assert!(source.contains("\"Agency #1\""), "{source}");
    }
}
