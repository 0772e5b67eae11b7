//! Letters in Spanish (issue 17): every kind and variant rendered from a sample account
//! whose `language` is `es`, read back with `pdftotext`; no sentence of the English
//! template (nor an English configuration statement) in a Spanish letter; an unknown
//! language falls back to English with the plan's `why` saying so; a missing Spanish
//! configuration text is an error naming its key.
//!
//! Needs poppler's `pdftotext`; without it the PDF tests print a notice and pass, like
//! `tests/letters.rs`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Fixture, dollars, have_pdftotext, letter, missive_in, pdftotext, root};
use missive::review::facts::flatten;
use serde_json::Value;

/// Every kind and variant, and a sample account that gets such a letter.
const CASES: [(&str, &str); 9] = [
    ("intent_to_offset", "02-ito-several-judgment-too-old.json"),
    (
        "offset_notice/federal",
        "07-offset-federal-joint-excess-refund.json",
    ),
    ("offset_notice/state", "10-offset-state-child-support.json"),
    (
        "refund/excess_offset",
        "07-offset-federal-joint-excess-refund.json",
    ),
    (
        "refund/late_return",
        "11-refund-late-return-extended-due-date.json",
    ),
    ("refund/late_return", "12-refund-late-return-barred.json"),
    ("review_outcome/upheld", "13-review-upheld-and-pending.json"),
    ("review_outcome/reduced", "14-review-reduced-referral.json"),
    ("review_outcome/reversed", "15-review-reversed.json"),
];

/// The PDF's text in reading order, whitespace flattened.
fn pdf_text(pdf: &Path) -> String {
    flatten(&pdftotext(pdf, false))
}

/// A copy of sample `file` in `fixture` with `language` set to `lang`.
fn with_language(fixture: &Fixture, file: &str, lang: &str) -> String {
    let text = std::fs::read_to_string(root().join("samples/accounts").join(file)).expect("sample");
    let mut account: Value = serde_json::from_str(&text).expect("sample JSON");
    account["language"] = Value::String(lang.to_owned());
    let rel = format!("{lang}-{file}");
    fixture.write(&rel, serde_json::to_vec_pretty(&account).expect("JSON"));
    fixture.join(&rel).to_str().expect("UTF-8").to_owned()
}

/// `missive preview KIND --account FILE --out OUT.pdf` and the PDF's text.
fn preview(fixture: &Fixture, kind: &str, account: &str, name: &str) -> String {
    let out = fixture.join(&format!("{name}.pdf"));
    missive_in(
        root(),
        &[
            "preview",
            kind,
            "--account",
            account,
            "--out",
            out.to_str().expect("UTF-8"),
        ],
    )
    .expect_code(0);
    pdf_text(&out)
}

/// "2027-02-01" → "1 de febrero de 2027".
fn fecha(iso: &str) -> String {
    const MESES: [&str; 12] = [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ];
    let parts: Vec<u32> = iso
        .split('-')
        .map(|p| p.parse().expect("date part"))
        .collect();
    format!(
        "{} de {} de {}",
        parts[2],
        MESES[parts[1] as usize - 1],
        parts[0]
    )
}

/// The plain-text sentences of an English letter template (or a config text): Tera tags
/// and Typst calls removed, split at sentence ends, those of at least four words of
/// letters only (a sentence that is mostly a value, like "Telephone", is not English
/// prose a Spanish letter could wrongly carry).
fn english_sentences(template: &str) -> Vec<String> {
    let mut text = String::new();
    let mut rest = template;
    // Drop `{{ … }}`, `{% … %}`, `{# … #}` (a value or a tag is a break in the prose).
    while let Some(start) = rest.find('{') {
        text.push_str(&rest[..start]);
        let after = &rest[start..];
        let close = match after.get(..2) {
            Some("{{") => "}}",
            Some("{%") => "%}",
            Some("{#") => "#}",
            _ => {
                text.push('{');
                rest = &after[1..];
                continue;
            }
        };
        let end = after.find(close).map_or(after.len(), |e| e + 2);
        text.push('|');
        rest = &after[end..];
    }
    text.push_str(rest);
    let mut out = Vec::new();
    for piece in text.split([
        '.', '?', ':', '|', '#', '*', '[', ']', '(', ')', '\n', '“', '”', '"',
    ]) {
        let piece = piece.trim().trim_start_matches(['+', '=', ',', ' ']).trim();
        let words: Vec<&str> = piece.split_whitespace().collect();
        let prose = words.len() >= 4
            && words.iter().all(|w| {
                w.trim_end_matches([',', ';'])
                    .chars()
                    .all(|c| c.is_alphabetic() || c == '’' || c == '\'' || c == '-')
            });
        if prose {
            out.push(words.join(" "));
        }
    }
    out
}

/// The English sentences that must not appear in a Spanish letter: every sentence of the
/// English templates and of the English statements in `missive.toml`.
fn all_english_sentences() -> Vec<String> {
    let mut sentences = Vec::new();
    for entry in std::fs::read_dir(root().join("templates/letters")).expect("templates") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            sentences.extend(english_sentences(
                &std::fs::read_to_string(path).expect("read"),
            ));
        }
    }
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("missive.toml")).expect("config"))
            .expect("TOML");
    for table in ["statements", "titles"] {
        for (_, text) in config[table].as_table().expect("table") {
            sentences.extend(english_sentences(text.as_str().expect("text")));
        }
    }
    for (table, key) in [("payments", "online_text"), ("payments", "coupon_note")] {
        sentences.extend(english_sentences(
            config[table][key].as_str().expect("text"),
        ));
    }
    sentences.sort();
    sentences.dedup();
    sentences
}

#[test]
fn every_kind_and_variant_renders_in_spanish() {
    if !have_pdftotext() {
        return;
    }
    let fixture = Fixture::empty();
    let sentences = all_english_sentences();
    assert!(
        sentences.len() > 60,
        "too few English sentences found: {sentences:?}"
    );
    for (kind, file) in CASES {
        let name = format!("{}-{}", kind.replace('/', "-"), &file[..2]);
        let es_account = with_language(&fixture, file, "es");
        let es = preview(&fixture, kind, &es_account, &format!("es-{name}"));
        let en_account = with_language(&fixture, file, "en");
        let en = preview(&fixture, kind, &en_account, &format!("en-{name}"));

        // The plan's letter for this kind: its amounts and deadline must be in the text.
        let plan = Fixture::empty();
        plan.write("a.json", std::fs::read(&es_account).expect("account"));
        let (_, plan) = plan.plan(".", &["--as-of", "2026-12-01", "--mail-date", "2026-12-01"]);
        let base = kind.split('/').next().expect("kind");
        let planned = common::array(&plan["letters"])
            .iter()
            .find(|l| l["kind"] == base && l["variant"].as_str().is_none_or(|v| kind.ends_with(v)))
            .unwrap_or_else(|| panic!("{file}: no {kind} letter in the plan"));
        let key = planned["key"].as_str().expect("key");
        assert_eq!(letter(&plan, key)["kind"], base);

        assert!(
            es.contains("1 de diciembre de 2026"),
            "{name}: no Spanish letter date:\n{es}"
        );
        assert!(
            !es.contains("December 1, 2026"),
            "{name}: English date in:\n{es}"
        );
        for (field, amount) in planned["amounts"].as_object().expect("amounts") {
            if let Some(amount) = amount.as_str() {
                let shown = dollars(amount);
                assert!(
                    es.contains(&shown),
                    "{name}: amount {field} {shown} missing:\n{es}"
                );
            }
        }
        if let Some(deadline) = planned["deadline"].as_str() {
            assert!(
                es.contains(&fecha(deadline)),
                "{name}: deadline {deadline} missing:\n{es}"
            );
        }
        for contact in ["860-297-5962", "drs@po.state.ct.us", "portal.ct.gov/DRS"] {
            assert!(
                es.contains(contact),
                "{name}: contact {contact} missing:\n{es}"
            );
        }
        assert!(
            es.contains("Página 1 de"),
            "{name}: page number not in Spanish:\n{es}"
        );

        // Non-vacuous: the English letter carries English sentences this test can see.
        let in_english = sentences.iter().filter(|s| en.contains(s.as_str())).count();
        assert!(
            in_english >= 3,
            "{name}: only {in_english} English sentences in the English letter"
        );
        let leaked: Vec<&String> = sentences
            .iter()
            .filter(|s| es.contains(s.as_str()))
            .collect();
        assert!(
            leaked.is_empty(),
            "{name}: English sentences in the Spanish letter: {leaked:?}"
        );
    }
}

#[test]
fn spanish_pdf_declares_its_language_and_spanish_title() {
    if !have_pdftotext() {
        return;
    }
    let fixture = Fixture::empty();
    let account = with_language(&fixture, "01-ito-basic.json", "es");
    let out = fixture.join("ito.pdf");
    missive_in(
        root(),
        &[
            "preview",
            "intent_to_offset",
            "--account",
            &account,
            "--out",
            out.to_str().expect("UTF-8"),
        ],
    )
    .expect_code(0);
    let doc = lopdf::Document::load(&out).expect("PDF parses");
    let catalog = doc.catalog().expect("catalog");
    let lang = catalog
        .get(b"Lang")
        .and_then(|l| l.as_str())
        .expect("/Lang");
    assert_eq!(lang, b"es-US");
    let info = Command::new("pdfinfo").arg(&out).output().expect("pdfinfo");
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("Title:           Aviso de intención de compensar"),
        "title not Spanish:\n{info}"
    );
}

#[test]
fn an_unknown_language_falls_back_to_english_and_says_why() {
    let fixture = Fixture::empty();
    with_language(&fixture, "01-ito-basic.json", "fr");
    with_language(&fixture, "10-offset-state-child-support.json", "es");
    let (code, plan) = fixture.plan(".", &["--as-of", "2026-12-01", "--mail-date", "2026-12-01"]);
    assert_eq!(code, 0, "{plan}");
    let letters = common::array(&plan["letters"]);
    let fr = letters
        .iter()
        .find(|l| l["account_id"] == "CT-0001001")
        .expect("fr letter");
    let why = fr["why"].as_str().expect("why");
    assert!(
        why.contains("written in English") && why.contains("`fr`"),
        "why does not say the letter falls back: {why}"
    );
    let es = letters
        .iter()
        .find(|l| l["account_id"] == "CT-0001010")
        .expect("es letter");
    assert!(
        !es["why"].as_str().expect("why").contains("English"),
        "{es}"
    );
    if !have_pdftotext() {
        return;
    }
    let account = fixture.join("fr-01-ito-basic.json");
    let text = preview(
        &fixture,
        "intent_to_offset",
        account.to_str().expect("UTF-8"),
        "fr",
    );
    assert!(
        text.contains("Notice of Intent to Offset") && text.contains("Page 1 of"),
        "{text}"
    );
}

#[test]
fn a_missing_spanish_configuration_text_names_its_key() {
    let shipped = std::fs::read_to_string(root().join("missive.toml")).expect("config");
    let start = shipped
        .find("[es.statements]")
        .expect("[es.statements] in missive.toml");
    let line = shipped[start..]
        .lines()
        .find(|l| l.starts_with("garnishment = "))
        .expect("es garnishment line");
    let broken = shipped.replacen(line, "", 1);
    assert_ne!(broken, shipped);
    let fixture = Fixture::empty();
    let config = fixture.write("missive.toml", broken);
    fixture.copy("samples/accounts/01-ito-basic.json", "a.json");
    let run = missive_in(
        fixture.path(),
        &[
            "plan",
            "--accounts",
            ".",
            "--config",
            config.to_str().expect("UTF-8"),
            "--format",
            "json",
        ],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("es.statements") && run.stderr.contains("garnishment"),
        "error does not name the key:\n{}",
        run.stderr
    );
}

/// Every sample account as a Spanish speaker's, in a fixture directory.
fn spanish_samples() -> Fixture {
    let fixture = Fixture::empty();
    for entry in std::fs::read_dir(root().join("samples/accounts")).expect("samples") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        with_language(&fixture, &name, "es");
    }
    fixture
}

#[test]
fn check_holds_spanish_letters_and_emails_to_their_plan() {
    if !have_pdftotext() {
        return;
    }
    let accounts = spanish_samples();
    let run = missive_in(root(), &["check", "--accounts", &accounts.arg()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(": 0 errors, 0 warnings"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("emails)"), "{}", run.stderr);

    // A Spanish template that says "parte de" where the whole refund was taken fails the
    // facts check with its Spanish wording.
    let templates = Fixture::from_dir("templates");
    let notice = templates.join("letters/es/offset_notice.typ.tera");
    let text = std::fs::read_to_string(&notice).expect("template");
    let broken = text.replace(
        "{% set share = \"todo\" %}",
        "{% set share = \"parte de\" %}",
    );
    assert_ne!(broken, text);
    std::fs::write(&notice, broken).expect("write");
    let run = missive_in(
        root(),
        &[
            "check",
            "--accounts",
            &accounts.arg(),
            "--templates",
            &templates.arg(),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("“todo su” refund") && run.stderr.contains("says “parte de su”"),
        "the failure names the Spanish wording:\n{}",
        run.stderr
    );
}

#[test]
fn preview_writes_the_language_asked_for() {
    if !have_pdftotext() {
        return;
    }
    let fixture = Fixture::empty();
    let out = fixture.join("es.pdf");
    let run = missive_in(
        root(),
        &[
            "preview",
            "refund/late_return",
            "--language",
            "es",
            "--out",
            out.to_str().expect("UTF-8"),
        ],
    );
    run.expect_code(0);
    let text = pdf_text(&out);
    assert!(
        text.contains("Le devolvemos dinero después de su declaración tardía"),
        "{text}"
    );
    let english = fixture.join("en.pdf");
    let account = root().join("samples/accounts/33-es-refund-late-return.json");
    missive_in(
        root(),
        &[
            "preview",
            "refund/late_return",
            "--account",
            account.to_str().expect("UTF-8"),
            "--language",
            "en",
            "--out",
            english.to_str().expect("UTF-8"),
        ],
    )
    .expect_code(0);
    let text = pdf_text(&english);
    assert!(
        text.contains("We Are Refunding Money After Your Late Return"),
        "{text}"
    );
    let bad = missive_in(root(), &["preview", "refund", "--language", "xx"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("--language `xx`"), "{}", bad.stderr);
}
