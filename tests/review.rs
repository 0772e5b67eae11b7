//! Legal review from the outside: the approval gate of `run`, `approve`, `preview` and
//! `check`, each on a copy of the templates that the test edits.

mod common;

use common::{Fixture, missive};

const ITO: &str = "letters/intent_to_offset.typ.tera";

/// A fixture with a copy of the templates under `templates/`.
fn with_templates() -> Fixture {
    let fixture = Fixture::empty();
    for entry in walk(&common::root().join("templates")) {
        let rel = entry
            .strip_prefix(common::root())
            .expect("under root")
            .to_str()
            .expect("utf-8")
            .to_owned();
        fixture.copy(&rel, &rel);
    }
    fixture
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Edits a template file of the fixture.
fn edit(fixture: &Fixture, rel: &str, change: impl FnOnce(String) -> String) {
    let path = fixture.join(&format!("templates/{rel}"));
    let text = std::fs::read_to_string(&path).expect("read template");
    std::fs::write(&path, change(text)).expect("write template");
}

/// `missive run` on one sample account with the fixture's templates and ledger.
fn run(fixture: &Fixture, account: &str) -> common::Run {
    let out = fixture.join("out");
    let templates = fixture.join("templates");
    missive(&[
        "run",
        "--accounts",
        &format!("samples/accounts/{account}"),
        "--as-of",
        "2026-12-01",
        "--allow-past-mail-date",
        "--out",
        out.to_str().expect("utf-8"),
        "--templates",
        templates.to_str().expect("utf-8"),
    ])
}

/// `missive approve KIND --reviewer NAME` on the fixture; returns the full hash approved.
fn approve(fixture: &Fixture, kind: &str, reviewer: &str) -> String {
    let run = missive(&[
        "approve",
        kind,
        "--reviewer",
        reviewer,
        "--note",
        "read every page",
        "--ledger",
        fixture.join("out/missive.db").to_str().expect("utf-8"),
        "--templates",
        fixture.join("templates").to_str().expect("utf-8"),
    ]);
    run.expect_code(0);
    run.stdout
        .split("(sha256 ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no hash in {}", run.stdout))
        .to_owned()
}

fn history_json(fixture: &Fixture, account: &str) -> serde_json::Value {
    let history = missive(&[
        "history",
        account,
        "--format",
        "json",
        "--ledger",
        fixture.join("out/missive.db").to_str().expect("utf-8"),
    ]);
    history.json()
}

#[test]
fn run_refuses_unapproved_templates_and_proceeds_after_approval() {
    let f = with_templates();
    let refused = run(&f, "01-ito-basic.json");
    refused.expect_code(1);
    assert!(
        refused
            .stderr
            .contains(&format!("template `{ITO}` (version "))
    );
    assert!(
        refused
            .stderr
            .contains("missive approve intent_to_offset --reviewer NAME"),
        "{}",
        refused.stderr
    );
    assert!(!f.join("out/CT-0001001_intent_to_offset_L1.pdf").exists());
    assert_eq!(
        history_json(&f, "CT-0001001")["letters"],
        serde_json::json!([])
    );

    // Version A approved: the run renders it, and the ledger says with which version.
    let version_a = approve(&f, "intent_to_offset", "Pat Lee");
    assert!(
        refused.stderr.contains(&version_a[..12]),
        "the message names the version"
    );
    run(&f, "01-ito-basic.json").expect_code(0);
    assert!(f.join("out/CT-0001001_intent_to_offset_L1.pdf").is_file());
    let history = history_json(&f, "CT-0001001");
    let letter = &history["letters"][0];
    assert_eq!(letter["template_sha256"], version_a.as_str());
    assert_eq!(letter["approval"]["reviewer"], "Pat Lee");
    assert_eq!(letter["approval"]["template_sha256"], version_a.as_str());

    // Version B (the template edited) is not covered by A's approval.
    edit(&f, ITO, |t| t.replace("right away", "at once"));
    let refused = run(&f, "03-ito-payment-plan.json");
    refused.expect_code(1);
    assert!(!refused.stderr.contains(&version_a[..12]));
    let version_b = approve(&f, "intent_to_offset", "Lee Pat");
    assert_ne!(version_a, version_b);
    assert!(refused.stderr.contains(&version_b[..12]));
    run(&f, "03-ito-payment-plan.json").expect_code(0);

    // A change to a shared partial makes a version C that nobody approved.
    edit(&f, "letters/_footer.typ.tera", |t| {
        t.replace("Questions", "Any questions?")
    });
    let list = missive(&[
        "approve",
        "--list",
        "--ledger",
        f.join("out/missive.db").to_str().expect("utf-8"),
        "--templates",
        f.join("templates").to_str().expect("utf-8"),
    ]);
    list.expect_code(0);
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(ITO))
        .expect("ITO line");
    assert!(line.contains("changed since approval"), "{line}");
    run(&f, "05-ito-month-end-due-date.json").expect_code(1);
}

#[test]
fn run_without_required_approval_renders_everything() {
    let f = with_templates();
    let config = std::fs::read_to_string(common::root().join("missive.toml")).expect("config");
    f.write(
        "no-review.toml",
        config.replace("require_approval = true", "require_approval = false"),
    );
    let out = f.join("out");
    let run = missive(&[
        "run",
        "--config",
        f.join("no-review.toml").to_str().expect("utf-8"),
        "--accounts",
        "samples/accounts/01-ito-basic.json",
        "--as-of",
        "2026-12-01",
        "--allow-past-mail-date",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    run.expect_code(0);
    assert!(out.join("CT-0001001_intent_to_offset_L1.pdf").is_file());
}

#[test]
fn preview_writes_a_pdf_or_numbered_png_pages() {
    let f = Fixture::empty();
    let pdf = f.join("ito.pdf");
    missive(&[
        "preview",
        "refund/late_return",
        "--out",
        pdf.to_str().expect("utf-8"),
    ])
    .expect_code(0);
    assert!(std::fs::read(&pdf).expect("pdf").starts_with(b"%PDF-"));

    let png = f.join("ito.png");
    let run = missive(&[
        "preview",
        "intent_to_offset",
        "--out",
        png.to_str().expect("utf-8"),
    ]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("CT-0001001/intent_to_offset/L1"),
        "{}",
        run.stderr
    );
    for page in ["ito-1.png", "ito-2.png"] {
        let bytes = std::fs::read(f.join(page)).expect("page");
        assert!(bytes.starts_with(b"\x89PNG"), "{page}");
    }
    let one = f.join("state.png");
    missive(&[
        "preview",
        "offset_notice/state",
        "--account",
        "samples/accounts/10-offset-state-child-support.json",
        "--out",
        one.to_str().expect("utf-8"),
    ])
    .expect_code(0);
    assert!(
        one.is_file(),
        "a one-page letter is written under the name given"
    );

    let run = missive(&["preview", "refund/federal"]);
    run.expect_code(2);
    assert!(run.stderr.contains("refund/late_return"), "{}", run.stderr);
    let run = missive(&[
        "preview",
        "refund",
        "--account",
        "samples/accounts/01-ito-basic.json",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("has no letters") || run.stderr.contains("no account"));
}

fn check(f: &Fixture) -> common::Run {
    missive(&[
        "check",
        "--templates",
        f.join("templates").to_str().expect("utf-8"),
    ])
}

#[test]
fn check_passes_the_shipped_templates() {
    let run = missive(&["check"]);
    run.expect_code(0);
    assert!(run.stdout.contains("intent_to_offset"), "{}", run.stdout);
    assert!(run.stderr.contains("0 errors"), "{}", run.stderr);
}

#[test]
fn check_catches_a_missing_deadline() {
    let f = with_templates();
    for file in [ITO, "letters/_header.typ.tera"] {
        edit(&f, file, |t| {
            t.replace("{{ letter.deadline | date }}", "\"soon\"")
        });
    }
    let run = check(&f);
    run.expect_code(1);
    assert!(
        run.stderr.contains(
            "`CT-0001001/intent_to_offset/L1` (letters/intent_to_offset.typ.tera) does not state the deadline: \"February 1, 2027\""
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn check_catches_unknown_variables_even_in_branches_no_sample_takes() {
    let f = with_templates();
    edit(&f, "letters/refund.typ.tera", |t| {
        t.replace(
            "{% include \"letters/_footer.typ.tera\" %}",
            "#{{ account.nickname | str }}\n{% include \"letters/_footer.typ.tera\" %}",
        )
    });
    edit(&f, "letters/review_outcome.typ.tera", |t| {
        format!(
            "{t}\n{{% if letter.variant == \"withdrawn\" %}}#{{{{ review.judge | str }}}}{{% endif %}}\n"
        )
    });
    let run = check(&f);
    run.expect_code(1);
    assert!(
        run.stderr.contains("Variable `account.nickname` not found"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "`letters/review_outcome.typ.tera` uses `review.judge`, which no letter's context provides"
        ),
        "{}",
        run.stderr
    );
}

/// Issue 17: approvals are per kind and language. An approved English template does not
/// let a Spanish letter of the kind out; `approve KIND --language es` does, and the
/// ledger records the Spanish template.
#[test]
fn a_spanish_template_needs_its_own_approval() {
    let f = with_templates();
    approve(&f, "intent_to_offset", "Pat Lee");
    let refused = run(&f, "31-es-ito-basic.json");
    refused.expect_code(1);
    assert!(
        refused
            .stderr
            .contains("template `letters/es/intent_to_offset.typ.tera` (version "),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("missive approve intent_to_offset --language es --reviewer NAME"),
        "{}",
        refused.stderr
    );
    assert!(!f.join("out/CT-0001031_intent_to_offset_L1.pdf").exists());

    let run_es = missive(&[
        "approve",
        "intent_to_offset",
        "--language",
        "es",
        "--reviewer",
        "Ana Ruiz",
        "--ledger",
        f.join("out/missive.db").to_str().expect("utf-8"),
        "--templates",
        f.join("templates").to_str().expect("utf-8"),
    ]);
    run_es.expect_code(0);
    assert!(
        run_es
            .stdout
            .contains("approved `letters/es/intent_to_offset.typ.tera`"),
        "{}",
        run_es.stdout
    );
    run(&f, "31-es-ito-basic.json").expect_code(0);
    assert!(f.join("out/CT-0001031_intent_to_offset_L1.pdf").is_file());
    let letter = &history_json(&f, "CT-0001031")["letters"][0];
    assert_eq!(letter["template"], "letters/es/intent_to_offset.typ.tera");
    assert_eq!(letter["approval"]["reviewer"], "Ana Ruiz");

    let unknown = missive(&[
        "approve",
        "refund",
        "--language",
        "fr",
        "--reviewer",
        "X",
        "--ledger",
        f.join("out/missive.db").to_str().expect("utf-8"),
    ]);
    assert_ne!(unknown.code, 0);
    assert!(
        unknown.stderr.contains("--language `fr`"),
        "{}",
        unknown.stderr
    );
}
