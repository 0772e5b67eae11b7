//! The reviewers' pages as HTML. Every value from outside (templates, sample data, ledger
//! entries, error messages) goes through [`esc`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::http::StatusCode;
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

const STYLE: &str = "body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em;color:#111}\
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}\
.approved{background:#d9f2d9}.not_approved{background:#f9d6d5}.changed{background:#fbeccb}\
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}\
.pages img{border:1px solid #999;margin:.5em .5em 0 0;max-width:100%;box-shadow:0 1px 4px #aaa}\
.diff .added{background:#dbf5db}.diff .removed{background:#f8d7d7}.diff .header{color:#555;font-weight:bold}\
.problem{background:#f9d6d5;padding:.6em;border:1px solid #c33}label{display:block;margin:.4em 0}";

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

/// One row of the index.
pub(crate) struct IndexRow {
    pub(crate) letter_type: LetterType,
    pub(crate) template: String,
    pub(crate) sha256: String,
    pub(crate) state: ApprovalState,
}

/// The list of letter types with their approval state.
pub(crate) fn index_page(rows: &[IndexRow], accounts: &str, ledger: &str) -> String {
    let mut body = String::from("<h1>Letters for legal review</h1>\n");
    let _ = write!(
        body,
        "<p>Sample accounts from <code>{}</code>; approvals recorded in <code>{}</code>. \
         A run uses only template versions approved here or with <code>missive approve</code>.</p>\n\
         <table id=\"letters\"><thead><tr><th>Letter</th><th>Template</th><th>Version</th>\
         <th>State</th><th>Last approval</th></tr></thead><tbody>\n",
        esc(accounts),
        esc(ledger)
    );
    for row in rows {
        let t = row.letter_type.to_string();
        let last = match row.state.last_approval() {
            Some(a) => format!(
                "{} at {} (version {})",
                esc(&a.reviewer),
                esc(&a.at),
                esc(short_hash(&a.template_sha256))
            ),
            None => "never".to_owned(),
        };
        let _ = writeln!(
            body,
            "<tr id=\"row-{id}\" data-kind=\"{kind}\"><td><a href=\"/{t}\">{t}</a></td><td><code>{tpl}</code></td>\
             <td><code>{sha}</code></td><td class=\"state {class}\" data-state=\"{class}\">{label}</td><td>{last}</td></tr>",
            id = esc(&t.replace('/', "-")),
            kind = esc(row.letter_type.kind.as_str()),
            t = esc(&t),
            tpl = esc(&row.template),
            sha = esc(short_hash(&row.sha256)),
            class = state_class(&row.state),
            label = esc(row.state.label()),
        );
    }
    body.push_str("</tbody></table>\n");
    document("Letters", &body)
}

/// Everything a letter page shows.
pub(crate) struct LetterPage {
    pub(crate) letter_type: LetterType,
    pub(crate) template: String,
    pub(crate) sha256: String,
    pub(crate) state: ApprovalState,
    /// Template, partials and layout as on disk now.
    pub(crate) sources: BTreeMap<String, String>,
    /// Sample accounts with this letter type: (account id, file).
    pub(crate) samples: Vec<(String, String)>,
    /// The account shown.
    pub(crate) account: Option<String>,
    /// Number of rendered pages (0 when it could not be rendered).
    pub(crate) pages: usize,
    /// The composed context of the letter shown.
    pub(crate) context: Option<Value>,
    /// Why nothing could be shown, if so.
    pub(crate) problem: Option<String>,
    /// The form token.
    pub(crate) token: String,
}

/// A letter type's page.
pub(crate) fn letter_page(page: &LetterPage) -> String {
    let t = page.letter_type.to_string();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p><a href=\"/\">All letters</a></p>\n<h1>{}</h1>\n\
         <p>Template <code>{}</code>, version <code>{}</code>: \
         <span id=\"state\" class=\"state {class}\" data-state=\"{class}\">{}</span></p>\n",
        esc(&t),
        esc(&page.template),
        esc(short_hash(&page.sha256)),
        esc(page.state.label()),
        class = state_class(&page.state),
    );
    sample_form(&mut body, page, &t);
    if let Some(problem) = &page.problem {
        let _ = writeln!(
            body,
            "<div class=\"problem\" id=\"problem\"><strong>This letter cannot be shown:</strong><pre>{}</pre></div>",
            esc(problem)
        );
    }
    if page.pages > 0 {
        let account = page.account.as_deref().unwrap_or("");
        body.push_str("<h2>The letter as the taxpayer gets it</h2>\n<div class=\"pages\">\n");
        for n in 1..=page.pages {
            let _ = writeln!(
                body,
                "<img src=\"/{t}/page/{n}.png?account={q}\" alt=\"Page {n} of {total} of the {t} letter for account {a}\">",
                t = esc(&t),
                q = esc(&query_value(account)),
                total = page.pages,
                a = esc(account),
            );
        }
        body.push_str("</div>\n");
    }
    approval_section(&mut body, page, &t);
    variables_section(&mut body, page);
    body.push_str("<h2>Template source</h2>\n");
    let _ = writeln!(
        body,
        "<pre id=\"source\">{}</pre>",
        esc(page.sources.get(&page.template).map_or("", String::as_str))
    );
    for (name, text) in page.sources.iter().filter(|(n, _)| **n != page.template) {
        let _ = writeln!(
            body,
            "<details><summary>Shared: <code>{}</code></summary><pre>{}</pre></details>",
            esc(name),
            esc(text)
        );
    }
    document(&t, &body)
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

fn approval_section(body: &mut String, page: &LetterPage, t: &str) {
    body.push_str("<h2>Approval</h2>\n");
    match &page.state {
        ApprovalState::Approved(a) => {
            let _ = writeln!(
                body,
                "<p>This version was approved by <strong>{}</strong> at {}{}.</p>",
                esc(&a.reviewer),
                esc(&a.at),
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
                esc(&a.at),
                note(&a.note)
            );
            let diff = diff_files(&a.sources, &page.sources);
            body.push_str(
                "<h3>Changes since the approved version</h3>\n<pre class=\"diff\" id=\"diff\">",
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
        "<form method=\"post\" action=\"/{kind}/approve\" id=\"approve\">\
         <p>Approving records your name, the time, this exact version of <code>{tpl}</code> \
         (with the shared partials and layout) and your note. It covers every variant of the kind.</p>\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <input type=\"hidden\" name=\"sha256\" value=\"{sha}\">\
         <input type=\"hidden\" name=\"back\" value=\"{back}\">\
         <label>Reviewer <input name=\"reviewer\" required maxlength=\"200\"></label>\
         <label>Note <textarea name=\"note\" rows=\"2\" cols=\"60\"></textarea></label>\
         <button type=\"submit\">Approve version {short}</button></form>",
        kind = esc(page.letter_type.kind.as_str()),
        tpl = esc(&page.template),
        token = esc(&page.token),
        sha = esc(&page.sha256),
        back = esc(t),
        short = esc(short_hash(&page.sha256)),
    );
}

fn note(text: &str) -> String {
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": “{}”", esc(text))
    }
}

fn variables_section(body: &mut String, page: &LetterPage) {
    body.push_str(
        "<h2>Variables the template uses</h2>\n<table id=\"variables\"><thead><tr>\
         <th>Variable</th><th>Value for this account</th></tr></thead><tbody>\n",
    );
    for path in variables(&page.template, &page.sources) {
        let value = match &page.context {
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
