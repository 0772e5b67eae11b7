//! A rendered letter's text, as a reader's tools get it: poppler's `pdftotext`, and the
//! amounts and dates found in it (used by the letter-facts check, [`super::facts`]).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A PDF's text could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// `pdftotext` could not be started (poppler-utils is not installed?).
    #[error(
        "the letter-facts check reads PDFs with `pdftotext` (poppler-utils), which did not run"
    )]
    Spawn(#[source] std::io::Error),
    /// A temporary file could not be written or read.
    #[error("failed to use the temporary file `{path}`")]
    Temp {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `pdftotext` refused the file.
    #[error("pdftotext failed: {0}")]
    Failed(String),
}

/// The text of a PDF as `pdftotext -enc UTF-8` extracts it (reading order, pages
/// separated by form feeds).
pub fn pdf_text(pdf: &[u8]) -> Result<String, TextError> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "missive-facts-{}-{}.pdf",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let temp = |source| TextError::Temp {
        path: path.clone(),
        source,
    };
    std::fs::write(&path, pdf).map_err(temp)?;
    let output = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output();
    let _ = std::fs::remove_file(&path);
    let output = output.map_err(TextError::Spawn)?;
    if !output.status.success() {
        return Err(TextError::Failed(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Text with every run of white space as one space and typographic apostrophes plain, for
/// matching phrases that a line or page break may split.
pub fn flatten(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('\u{2019}', "'")
}

/// Every `$1,234.56` amount in `text`, in order.
pub fn dollar_amounts(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices('$') {
        let rest = &text[at + 1..];
        let body: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
            .collect();
        let body = body.trim_end_matches([',', '.']);
        if let Some((whole, cents)) = body.split_once('.')
            && cents.len() == 2
            && !whole.is_empty()
            && whole.starts_with(|c: char| c.is_ascii_digit())
        {
            found.push(format!("${body}"));
        }
    }
    found
}

/// Every "January 29, 2027" date in `text`, in order.
pub fn long_dates(text: &str) -> Vec<String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut found: Vec<(usize, String)> = Vec::new();
    for month in MONTHS {
        for (at, _) in text.match_indices(month) {
            let rest = &text[at + month.len()..];
            let mut parts = rest.split(' ');
            let (Some(""), Some(day), Some(year)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let year: String = year.chars().take_while(char::is_ascii_digit).collect();
            if day.ends_with(',') && year.len() == 4 {
                found.push((at, format!("{month} {day} {year}")));
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_amounts_and_dates_in_text() {
        let text = "Pay $1,234.56 by February 1, 2027, not $12. Or $0.00; see May 3, 2026.";
        assert_eq!(dollar_amounts(text), ["$1,234.56", "$0.00"]);
        assert_eq!(long_dates(text), ["February 1, 2027", "May 3, 2026"]);
        assert_eq!(flatten(" a\n\u{c}b  O’Neil "), "a b O'Neil");
    }
}
