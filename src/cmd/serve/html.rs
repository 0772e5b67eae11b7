//! The reviewers' pages as HTML, from Tera templates embedded in the binary
//! (`src/cmd/serve/pages/*.html`, so the app looks the same from any directory and
//! `--templates`, which is about letters, cannot change it). The templates are parsed once.
//!
//! Invariants: every value from outside (templates, sample data, ledger entries, error
//! messages) reaches a page through Tera's autoescaping of `.html` templates; nothing is
//! marked `safe`. A query value goes through the `query_value` filter (percent-encoding)
//! before it is escaped. The handlers hand in plain structs; the views built here are what
//! the templates see.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anyhow::{Context as _, Result, anyhow};
use axum::http::StatusCode;
use missive::language::Language;
use missive::ledger::stamp;
use missive::review::diff::{LineChange, diff_files};
use missive::review::vars::{describe, lookup, variables};
use missive::review::{ApprovalState, LetterType, short_hash};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::Value;
use tera::{Context, Tera};

/// The pages, by template name.
const PAGES: [(&str, &str); 4] = [
    ("base.html", include_str!("pages/base.html")),
    ("index.html", include_str!("pages/index.html")),
    ("letter.html", include_str!("pages/letter.html")),
    ("error.html", include_str!("pages/error.html")),
];

/// What a query value keeps as it is: letters, digits and `-_.~` (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The parsed pages, or why they do not parse (a fault in the embedded templates,
/// reported when the server starts: [`check`]).
static TERA: LazyLock<Result<Tera, String>> = LazyLock::new(|| {
    let mut tera = Tera::default();
    tera.autoescape_on(vec![".html"]);
    tera.set_escape_fn(escape);
    tera.register_filter("query_value", query_value);
    tera.add_raw_templates(PAGES)
        .map_err(|err| format!("{:#}", anyhow::Error::new(err)))?;
    Ok(tera)
});

/// Tera's HTML escaping, except that `/` stays as it is: it is not special in element
/// content or in a quoted attribute, and template paths (`letters/es/refund.typ.tera`) and
/// letter types (`refund/late_return`) read as themselves in the page source.
fn escape(text: &str) -> String {
    // `&` becomes `&amp;`, so `&#x2F;` in the result can only be an escaped `/`.
    tera::escape_html(text).replace("&#x2F;", "/")
}

/// `{{ account | query_value }}`: the text percent-encoded for a URL query.
fn query_value(value: &Value, _: &std::collections::HashMap<String, Value>) -> tera::Result<Value> {
    let text = value.as_str().ok_or_else(|| {
        tera::Error::msg(format!("filter `query_value` expects text, got {value}"))
    })?;
    Ok(Value::String(
        utf8_percent_encode(text, QUERY_VALUE).to_string(),
    ))
}

/// Fails when the embedded templates do not parse, so the server refuses to start rather
/// than answer every request with an error.
pub(crate) fn check() -> Result<()> {
    match &*TERA {
        Ok(_) => Ok(()),
        Err(err) => Err(anyhow!("the review app's pages do not parse: {err}")),
    }
}

/// Renders page `name` with `view`.
fn render(name: &str, view: &impl Serialize) -> Result<String> {
    let tera = TERA
        .as_ref()
        .map_err(|err| anyhow!("the review app's pages do not parse: {err}"))?;
    tera.render(name, &Context::from_serialize(view)?)
        .with_context(|| format!("failed to render the page `{name}`"))
}

/// The CSS class and `data-state` value of an approval state.
fn state_class(state: &ApprovalState) -> &'static str {
    match state {
        ApprovalState::Approved(_) => "approved",
        ApprovalState::NotApproved => "not_approved",
        ApprovalState::Changed(_) => "changed",
    }
}

/// One language's template of an index row.
pub(crate) struct IndexCell {
    pub(crate) lang: Language,
    pub(crate) template: String,
    pub(crate) sha256: String,
    pub(crate) state: ApprovalState,
}

/// One row of the index: a letter type, with its template in each language.
pub(crate) struct IndexRow {
    pub(crate) letter_type: LetterType,
    /// English first.
    pub(crate) cells: Vec<IndexCell>,
}

/// An approval as the pages show it.
#[derive(Serialize)]
struct ApprovalView<'a> {
    reviewer: &'a str,
    at: String,
    /// Short hash of the approved version.
    version: &'a str,
    /// The note, `None` when blank.
    note: Option<&'a str>,
}

impl<'a> ApprovalView<'a> {
    fn of(a: &'a missive::ledger::Approval) -> ApprovalView<'a> {
        ApprovalView {
            reviewer: &a.reviewer,
            at: stamp::text(&a.at),
            version: short_hash(&a.template_sha256),
            note: Some(a.note.as_str()).filter(|n| !n.trim().is_empty()),
        }
    }
}

#[derive(Serialize)]
struct IndexView<'a> {
    title: &'a str,
    accounts: &'a str,
    ledger: &'a str,
    headings: Vec<&'static str>,
    rows: Vec<IndexRowView<'a>>,
}

#[derive(Serialize)]
struct IndexRowView<'a> {
    id: String,
    kind: &'static str,
    letter_type: String,
    cells: Vec<IndexCellView<'a>>,
}

#[derive(Serialize)]
struct IndexCellView<'a> {
    lang: &'static str,
    state: &'static str,
    label: &'static str,
    template: &'a str,
    version: &'a str,
    last: Option<ApprovalView<'a>>,
}

/// The list of letter types with the approval state of each language's template.
pub(crate) fn index_page(rows: &[IndexRow], accounts: &str, ledger: &str) -> Result<String> {
    let rows = rows
        .iter()
        .map(|row| {
            let t = row.letter_type.to_string();
            IndexRowView {
                id: t.replace('/', "-"),
                kind: row.letter_type.kind.as_str(),
                letter_type: t,
                cells: row
                    .cells
                    .iter()
                    .map(|cell| IndexCellView {
                        lang: cell.lang.as_str(),
                        state: state_class(&cell.state),
                        label: cell.state.label(),
                        template: &cell.template,
                        version: short_hash(&cell.sha256),
                        last: cell.state.last_approval().map(ApprovalView::of),
                    })
                    .collect(),
            }
        })
        .collect();
    let view = IndexView {
        title: "Letters",
        accounts,
        ledger,
        headings: Language::ALL.iter().map(|l| words(*l).heading).collect(),
        rows,
    };
    render("index.html", &view)
}

/// One language's column on a letter page.
pub(crate) struct Column {
    pub(crate) lang: Language,
    pub(crate) template: String,
    pub(crate) sha256: String,
    pub(crate) state: ApprovalState,
    /// Template, partials and layout as on disk now.
    pub(crate) sources: BTreeMap<String, String>,
    /// Number of rendered pages (0 when it could not be rendered).
    pub(crate) pages: usize,
    /// The composed context of the letter shown.
    pub(crate) context: Option<Value>,
    /// Why this language's letter could not be shown, if so.
    pub(crate) problem: Option<String>,
}

/// Everything a letter page shows: the same sample letter once per language.
pub(crate) struct LetterPage {
    pub(crate) letter_type: LetterType,
    /// Sample accounts with this letter type: (account id, file).
    pub(crate) samples: Vec<(String, String)>,
    /// The account shown.
    pub(crate) account: Option<String>,
    /// Why no sample letter could be picked, if so.
    pub(crate) problem: Option<String>,
    /// One column per language, English first.
    pub(crate) columns: Vec<Column>,
    /// The form token.
    pub(crate) token: String,
}

/// The words of a column, in its own language (a reviewer reads the Spanish column's
/// labels in Spanish, with the English in parentheses).
struct Words {
    heading: &'static str,
    letter: &'static str,
}

fn words(lang: Language) -> Words {
    match lang {
        Language::En => Words {
            heading: "English",
            letter: "English letter",
        },
        Language::Es => Words {
            heading: "Español (Spanish)",
            letter: "Carta en español",
        },
    }
}

/// The `alt` text of page `n` of `total` of a column's letter.
fn page_alt(lang: Language, t: &str, n: usize, total: usize, account: &str) -> String {
    match lang {
        Language::En => {
            format!("Page {n} of {total} of the {t} letter in English for account {account}")
        }
        Language::Es => {
            format!("Página {n} de {total} de la carta {t} en español para la cuenta {account}")
        }
    }
}

#[derive(Serialize)]
struct LetterView<'a> {
    title: &'a str,
    letter_type: &'a str,
    kind: &'static str,
    samples: Vec<SampleView<'a>>,
    account: &'a str,
    problem: Option<&'a str>,
    columns: Vec<ColumnView<'a>>,
    token: &'a str,
}

#[derive(Serialize)]
struct SampleView<'a> {
    account: &'a str,
    file: &'a str,
    selected: bool,
}

#[derive(Serialize)]
struct ColumnView<'a> {
    lang: &'static str,
    heading: &'static str,
    letter: &'static str,
    template: &'a str,
    sha256: &'a str,
    version: &'a str,
    state: &'static str,
    label: &'static str,
    problem: Option<&'a str>,
    images: Vec<ImageView>,
    /// The `lang` of the page images' query (none for English).
    image_lang: Option<&'static str>,
    approved: Option<ApprovalView<'a>>,
    changed: Option<ApprovalView<'a>>,
    diff: Vec<DiffLineView>,
    has_context: bool,
    variables: Vec<VariableView>,
    source: &'a str,
    shared: Vec<SharedView<'a>>,
}

#[derive(Serialize)]
struct ImageView {
    number: usize,
    alt: String,
}

#[derive(Serialize)]
struct DiffLineView {
    class: &'static str,
    marker: &'static str,
    text: String,
}

#[derive(Serialize)]
struct VariableView {
    path: String,
    /// The values at the path, described; `None` when the letter's data lacks the path.
    value: Option<String>,
}

#[derive(Serialize)]
struct SharedView<'a> {
    name: &'a str,
    text: &'a str,
}

/// A letter type's page: the sample selector, then the languages side by side.
pub(crate) fn letter_page(page: &LetterPage) -> Result<String> {
    let t = page.letter_type.to_string();
    let account = page.account.as_deref().unwrap_or("");
    let view = LetterView {
        title: &t,
        letter_type: &t,
        kind: page.letter_type.kind.as_str(),
        samples: page
            .samples
            .iter()
            .map(|(id, file)| SampleView {
                account: id,
                file,
                selected: page.account.as_deref() == Some(id.as_str()),
            })
            .collect(),
        account,
        problem: page.problem.as_deref(),
        columns: page
            .columns
            .iter()
            .map(|column| column_view(column, &t, account))
            .collect(),
        token: &page.token,
    };
    render("letter.html", &view)
}

fn column_view<'a>(column: &'a Column, t: &str, account: &str) -> ColumnView<'a> {
    let w = words(column.lang);
    let (approved, changed, diff) = match &column.state {
        ApprovalState::Approved(a) => (Some(ApprovalView::of(a)), None, Vec::new()),
        ApprovalState::NotApproved => (None, None, Vec::new()),
        ApprovalState::Changed(a) => {
            let diff = diff_files(&a.sources, &column.sources)
                .into_iter()
                .map(|line| {
                    let (class, marker) = match line.change {
                        LineChange::Header => ("header", ""),
                        LineChange::Same => ("same", " "),
                        LineChange::Removed => ("removed", "-"),
                        LineChange::Added => ("added", "+"),
                    };
                    DiffLineView {
                        class,
                        marker,
                        text: line.text,
                    }
                })
                .collect();
            (None, Some(ApprovalView::of(a)), diff)
        }
    };
    let variables = variables(&column.template, &column.sources)
        .into_iter()
        .map(|path| VariableView {
            value: column
                .context
                .as_ref()
                .and_then(|context| lookup(context, &path))
                .map(|values| describe(&values)),
            path,
        })
        .collect();
    ColumnView {
        lang: column.lang.as_str(),
        heading: w.heading,
        letter: w.letter,
        template: &column.template,
        sha256: &column.sha256,
        version: short_hash(&column.sha256),
        state: state_class(&column.state),
        label: column.state.label(),
        problem: column.problem.as_deref(),
        images: (1..=column.pages)
            .map(|n| ImageView {
                number: n,
                alt: page_alt(column.lang, t, n, column.pages, account),
            })
            .collect(),
        image_lang: (column.lang != Language::En).then(|| column.lang.as_str()),
        approved,
        changed,
        diff,
        has_context: column.context.is_some(),
        variables,
        source: column
            .sources
            .get(&column.template)
            .map_or("", String::as_str),
        shared: column
            .sources
            .iter()
            .filter(|(n, _)| **n != column.template)
            .map(|(name, text)| SharedView { name, text })
            .collect(),
    }
}

#[derive(Serialize)]
struct ErrorView<'a> {
    title: &'a str,
    status: String,
    message: &'a str,
}

/// An error page.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Result<String> {
    let view = ErrorView {
        title: status.as_str(),
        status: status.to_string(),
        message,
    };
    render("error.html", &view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_slashes_and_escapes_markup() {
        assert_eq!(
            escape("a/b <i>&\"x\" it's"),
            "a/b &lt;i&gt;&amp;&quot;x&quot; it&#x27;s"
        );
        assert_eq!(escape("&#x2F;"), "&amp;#x2F;");
    }

    #[test]
    fn query_values_keep_only_unreserved_characters() {
        let encoded =
            query_value(&Value::from("CT-1_a.b~ é/%&?="), &Default::default()).expect("text");
        assert_eq!(encoded, Value::from("CT-1_a.b~%20%C3%A9%2F%25%26%3F%3D"));
        assert!(query_value(&Value::from(1), &Default::default()).is_err());
    }

    #[test]
    fn the_pages_parse_and_an_error_page_escapes_its_message() {
        check().expect("embedded pages");
        let page = error_page(StatusCode::NOT_FOUND, "no <b>such</b> letter").expect("page");
        assert!(
            page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{page}"
        );
        assert!(page.contains("<title>404 · missive review</title>"));
        assert!(page.contains(
            "<h1>404 Not Found</h1><pre class=\"problem\">no &lt;b&gt;such&lt;/b&gt; letter</pre>\n</body></html>\n"
        ));
    }
}
