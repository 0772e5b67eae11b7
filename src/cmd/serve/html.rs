//! The reviewers' pages as HTML. Every value from outside (templates, sample data, ledger
//! entries, error messages) goes through [`esc`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::http::StatusCode;
use missive::language::Language;
use missive::ledger::stamp;
use missive::review::diff::{LineChange, diff_files};
use missive::review::vars::{describe, lookup, variables};
use missive::review::{ApprovalState, LetterType, short_hash};
use serde_json::Value;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
fn query_value(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:110em;margin:1em auto;padding:0 1em;color:#111}\
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}\
.approved{background:#d9f2d9}.not_approved{background:#f9d6d5}.changed{background:#fbeccb}\
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}\
.pages img{border:1px solid #999;margin:.5em .5em 0 0;max-width:100%;box-shadow:0 1px 4px #aaa}\
.diff .added{background:#dbf5db}.diff .removed{background:#f8d7d7}.diff .header{color:#555;font-weight:bold}\
.problem{background:#f9d6d5;padding:.6em;border:1px solid #c33}label{display:block;margin:.4em 0}\
.columns{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:1.5em}\
.column{min-width:0}.column pre{white-space:pre-wrap}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · missive review</title>\
         <style>{STYLE}</style></head><body>\n{body}\n</body></html>\n",
        esc(title)
    )
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

/// The list of letter types with the approval state of each language's template.
pub(crate) fn index_page(rows: &[IndexRow], accounts: &str, ledger: &str) -> String {
    let mut body = String::from("<h1>Letters for legal review</h1>\n");
    let _ = write!(
        body,
        "<p>Sample accounts from <code>{}</code>; approvals recorded in <code>{}</code>. \
         A run uses only template versions approved here or with <code>missive approve</code>; \
         each language’s template needs its own approval.</p>\n\
         <table id=\"letters\"><thead><tr><th>Letter</th>",
        esc(accounts),
        esc(ledger)
    );
    for lang in Language::ALL {
        let heading = words(lang).heading;
        let _ = write!(
            body,
            "<th>{h}: state</th><th>{h}: template, version, last approval</th>",
            h = esc(heading)
        );
    }
    body.push_str("</tr></thead><tbody>\n");
    for row in rows {
        let t = row.letter_type.to_string();
        let _ = write!(
            body,
            "<tr id=\"row-{id}\" data-kind=\"{kind}\"><td><a href=\"/{t}\">{t}</a></td>",
            id = esc(&t.replace('/', "-")),
            kind = esc(row.letter_type.kind.as_str()),
            t = esc(&t),
        );
        for cell in &row.cells {
            let last = match cell.state.last_approval() {
                Some(a) => format!(
                    "{} at {} (version {})",
                    esc(&a.reviewer),
                    esc(&stamp::text(&a.at)),
                    esc(short_hash(&a.template_sha256))
                ),
                None => "never approved".to_owned(),
            };
            let _ = write!(
                body,
                "<td class=\"state {class}\" data-lang=\"{lang}\" data-state=\"{class}\">{label}</td>\
                 <td><code>{tpl}</code> <code>{sha}</code><br>{last}</td>",
                lang = cell.lang.as_str(),
                tpl = esc(&cell.template),
                sha = esc(short_hash(&cell.sha256)),
                class = state_class(&cell.state),
                label = esc(cell.state.label()),
            );
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</tbody></table>\n");
    document("Letters", &body)
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

/// The query of a column's page images.
fn image_query(lang: Language, account: &str) -> String {
    match lang {
        Language::En => format!("account={}", query_value(account)),
        _ => format!("account={}&lang={}", query_value(account), lang.as_str()),
    }
}

/// A letter type's page: the sample selector, then the languages side by side.
pub(crate) fn letter_page(page: &LetterPage) -> String {
    let t = page.letter_type.to_string();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p><a href=\"/\">All letters</a></p>\n<h1>{}</h1>\n\
         <p>The same sample letter written with each language’s template. Each language has \
         its own template version and its own approval.</p>\n",
        esc(&t),
    );
    sample_form(&mut body, page, &t);
    if let Some(problem) = &page.problem {
        let _ = writeln!(
            body,
            "<div class=\"problem\" id=\"problem\"><strong>This letter cannot be shown:</strong><pre>{}</pre></div>",
            esc(problem)
        );
    }
    body.push_str("<div class=\"columns\">\n");
    for column in &page.columns {
        column_section(&mut body, page, column, &t);
    }
    body.push_str("</div>\n");
    document(&t, &body)
}

fn column_section(body: &mut String, page: &LetterPage, column: &Column, t: &str) {
    let lang = column.lang.as_str();
    let w = words(column.lang);
    let _ = write!(
        body,
        "<section class=\"column\" id=\"lang-{lang}\" lang=\"{lang}\" data-lang=\"{lang}\">\n\
         <h2>{}</h2>\n<p>Template <code>{}</code>, version <code>{}</code>: \
         <span id=\"state-{lang}\" class=\"state {class}\" data-state=\"{class}\">{}</span></p>\n",
        esc(w.heading),
        esc(&column.template),
        esc(short_hash(&column.sha256)),
        esc(column.state.label()),
        class = state_class(&column.state),
    );
    if let Some(problem) = &column.problem {
        let _ = writeln!(
            body,
            "<div class=\"problem\" id=\"problem-{lang}\"><strong>This letter cannot be shown:</strong><pre>{}</pre></div>",
            esc(problem)
        );
    }
    if column.pages > 0 {
        let account = page.account.as_deref().unwrap_or("");
        let _ = writeln!(body, "<h3>{}</h3>\n<div class=\"pages\">", esc(w.letter));
        for n in 1..=column.pages {
            let _ = writeln!(
                body,
                "<img src=\"/{t}/page/{n}.png?{q}\" alt=\"{alt}\">",
                t = esc(t),
                q = esc(&image_query(column.lang, account)),
                alt = esc(&page_alt(column.lang, t, n, column.pages, account)),
            );
        }
        body.push_str("</div>\n");
    }
    approval_section(body, page, column, t);
    variables_section(body, column);
    let _ = writeln!(
        body,
        "<h3>Template source</h3>\n<pre id=\"source-{lang}\">{}</pre>",
        esc(column
            .sources
            .get(&column.template)
            .map_or("", String::as_str))
    );
    for (name, text) in column
        .sources
        .iter()
        .filter(|(n, _)| **n != column.template)
    {
        let _ = writeln!(
            body,
            "<details><summary>Shared: <code>{}</code></summary><pre>{}</pre></details>",
            esc(name),
            esc(text)
        );
    }
    body.push_str("</section>\n");
}

fn sample_form(body: &mut String, page: &LetterPage, t: &str) {
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/{}\" id=\"sample\"><label>Sample account \
         <select name=\"account\">",
        esc(t)
    );
    for (id, source) in &page.samples {
        let selected = if page.account.as_deref() == Some(id.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<option value=\"{v}\"{selected}>{v} ({s})</option>",
            v = esc(id),
            s = esc(source)
        );
    }
    body.push_str("</select></label> <button type=\"submit\">Show</button></form>\n");
}

fn approval_section(body: &mut String, page: &LetterPage, column: &Column, t: &str) {
    let lang = column.lang.as_str();
    body.push_str("<h3>Approval</h3>\n");
    match &column.state {
        ApprovalState::Approved(a) => {
            let _ = writeln!(
                body,
                "<p>This version was approved by <strong>{}</strong> at {}{}.</p>",
                esc(&a.reviewer),
                esc(&stamp::text(&a.at)),
                note(&a.note)
            );
        }
        ApprovalState::NotApproved => {
            body.push_str(
                "<p>No version of this template was ever approved. Runs refuse its letters.</p>\n",
            );
        }
        ApprovalState::Changed(a) => {
            let _ = writeln!(
                body,
                "<p>The template changed since version <code>{}</code> was approved by \
                 <strong>{}</strong> at {}{}. Runs refuse its letters until this version is approved.</p>",
                esc(short_hash(&a.template_sha256)),
                esc(&a.reviewer),
                esc(&stamp::text(&a.at)),
                note(&a.note)
            );
            let diff = diff_files(&a.sources, &column.sources);
            let _ = write!(
                body,
                "<h4>Changes since the approved version</h4>\n<pre class=\"diff\" id=\"diff-{lang}\">"
            );
            for line in &diff {
                let (class, marker) = match line.change {
                    LineChange::Header => ("header", ""),
                    LineChange::Same => ("same", " "),
                    LineChange::Removed => ("removed", "-"),
                    LineChange::Added => ("added", "+"),
                };
                let _ = writeln!(
                    body,
                    "<span class=\"{class}\">{marker}{}</span>",
                    esc(&line.text)
                );
            }
            body.push_str("</pre>\n");
        }
    }
    let _ = writeln!(
        body,
        "<form method=\"post\" action=\"/{kind}/approve\" id=\"approve-{lang}\">\
         <p>Approving records your name, the time, this exact version of <code>{tpl}</code> \
         (with the shared partials and layout) and your note. It covers every variant of the kind \
         in this language only.</p>\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <input type=\"hidden\" name=\"sha256\" value=\"{sha}\">\
         <input type=\"hidden\" name=\"language\" value=\"{lang}\">\
         <input type=\"hidden\" name=\"back\" value=\"{back}\">\
         <label>Reviewer <input name=\"reviewer\" required maxlength=\"200\"></label>\
         <label>Note <textarea name=\"note\" rows=\"2\" cols=\"40\"></textarea></label>\
         <button type=\"submit\">Approve {heading} version {short}</button></form>",
        kind = esc(page.letter_type.kind.as_str()),
        tpl = esc(&column.template),
        token = esc(&page.token),
        sha = esc(&column.sha256),
        back = esc(t),
        heading = esc(words(column.lang).heading),
        short = esc(short_hash(&column.sha256)),
    );
}

fn note(text: &str) -> String {
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": “{}”", esc(text))
    }
}

fn variables_section(body: &mut String, column: &Column) {
    let _ = write!(
        body,
        "<h3>Variables the template uses</h3>\n<table id=\"variables-{}\"><thead><tr>\
         <th>Variable</th><th>Value for this account</th></tr></thead><tbody>\n",
        column.lang.as_str()
    );
    for path in variables(&column.template, &column.sources) {
        let value = match &column.context {
            Some(context) => match lookup(context, &path) {
                Some(values) => esc(&describe(&values)),
                None => "<em>not in this letter’s data (another variant’s branch, or a misspelling: see `missive check`)</em>".to_owned(),
            },
            None => "–".to_owned(),
        };
        let _ = writeln!(
            body,
            "<tr><td><code>{}</code></td><td>{value}</td></tr>",
            esc(&path)
        );
    }
    body.push_str("</tbody></table>\n");
}

/// An error page.
pub(crate) fn error_page(status: StatusCode, message: &str) -> String {
    document(
        status.as_str(),
        &format!(
            "<p><a href=\"/\">All letters</a></p><h1>{}</h1><pre class=\"problem\">{}</pre>",
            esc(&status.to_string()),
            esc(message)
        ),
    )
}
