//! The Typst source of the mailroom's one typeset document, the firm mailing book of a
//! certified batch. Print batches are not typeset: they are assembled from the letters'
//! own files ([`super::assemble`]). Every value enters the source as a Typst string
//! literal ([`typst_string`]).

use std::fmt::Write as _;

use crate::typst_literal::typst_string;

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
    // Fixed column widths (a three-digit sequence, a grouped article number, the longest
    // service line): `auto` columns made Typst measure every cell of a 500-row book before
    // laying it out (the books are about a quarter of the batch step's CPU).
    out.push_str("#v(0.6em)\n#table(\n  columns: (0.45in, 1.75in, 1fr, 2.75in),\n  inset: 4pt,\n");
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
