//! The mail date guard: a mail date before today is refused (exit 2, nothing written, no run
//! recorded, a refused resume leaves its run as it was) unless `--allow-past-mail-date`;
//! letter dates and deadlines count from the mail date, not the as-of date nor today.

use std::path::Path;

use missive::ledger::RunStatus;
use missive::ledger::prelude::*;

use crate::common::files::{names, pdfs, utf8};
use crate::common::ledger::{letter_of, open_ledger};
use crate::common::{Fixture, Run};
use crate::{AS_OF, ITO_1001, ITO_1001_FILE, SAMPLES, date, history_json, missive, pdf_text};

/// A Monday in the past for any clock these tests run under; its deadline rolls over New
/// Year's Day: 2026-11-02 + 60 days = Friday 2027-01-01 (a holiday) → Monday 2027-01-04.
const PAST_MAIL_DATE: &str = "2026-11-02";

fn require_past(mail_date: &str) {
    let today = chrono::Local::now().date_naive();
    assert!(
        date(mail_date) < today,
        "this test needs {mail_date} to be before today ({today})"
    );
}

fn guarded_run(out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "run",
        "--accounts",
        SAMPLES,
        "--out",
        utf8(out),
        "--as-of",
        AS_OF,
        "--mail-date",
        PAST_MAIL_DATE,
        "--jobs",
        "2",
    ];
    args.extend_from_slice(extra);
    missive(&args)
}

#[test]
fn a_past_mail_date_is_refused_without_the_flag_and_deadlines_follow_the_mail_date() {
    require_past(PAST_MAIL_DATE);
    let dir = Fixture::empty();
    let out = dir.join("out");
    let refused = guarded_run(&out, &[]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr
            .contains(&format!("mail date {PAST_MAIL_DATE} is before today"))
            && refused.stderr.contains("--allow-past-mail-date"),
        "{}",
        refused.stderr
    );
    assert!(pdfs(&out).is_empty(), "a refused run wrote PDFs");
    let written = names(&out);
    assert!(
        !written
            .iter()
            .any(|n| n.starts_with("run-") || n == "treasury"),
        "a refused run wrote {written:?}"
    );
    if out.join("missive.db").exists() {
        let ledger = open_ledger(&out.join("missive.db"));
        assert!(
            ledger.runs().expect("runs").is_empty(),
            "a refused run was recorded"
        );
    }

    let allowed = guarded_run(&out, &["--allow-past-mail-date"]);
    allowed.expect_code(0);
    let ledger = open_ledger(&out.join("missive.db"));
    let run = ledger.run(1).expect("run").expect("run 1 recorded");
    assert_eq!(
        (run.as_of, run.mail_date),
        (date(AS_OF), date(PAST_MAIL_DATE))
    );
    let letter = letter_of(&ledger, ITO_1001);
    assert_eq!(letter.letter_date, date(PAST_MAIL_DATE));
    // From the mail date, not the as-of date (2026-12-01 → 2027-02-01) nor today.
    assert_eq!(letter.deadline, Some(date("2027-01-04")));
    let doc = history_json(&out.join("missive.db"), &["--key", ITO_1001]);
    assert_eq!(doc["letters"][0]["deadline"], "2027-01-04");
    if let Some(text) = pdf_text(&out.join(ITO_1001_FILE)) {
        assert!(text.contains("November 2, 2026"), "letter date:\n{text}");
        assert!(text.contains("January 4, 2027"), "deadline:\n{text}");
        assert!(
            !text.contains("February 1, 2027"),
            "as-of deadline:\n{text}"
        );
    }
}

#[test]
fn a_mail_date_from_today_on_needs_no_flag() {
    let mail = chrono::Local::now().date_naive() + chrono::Days::new(7);
    let mail = mail.to_string();
    let dir = Fixture::empty();
    let out = dir.join("out");
    let run = missive(&[
        "run",
        "--accounts",
        SAMPLES,
        "--out",
        utf8(&out),
        "--as-of",
        AS_OF,
        "--mail-date",
        &mail,
        "--jobs",
        "2",
    ]);
    run.expect_code(0);
    let ledger = open_ledger(&out.join("missive.db"));
    assert_eq!(letter_of(&ledger, ITO_1001).letter_date, date(&mail));
}

#[test]
fn a_run_refused_for_its_mail_date_writes_nothing_at_all() {
    require_past(PAST_MAIL_DATE);
    let dir = Fixture::empty();
    let out = dir.join("out");
    guarded_run(&out, &[]).expect_code(2);
    assert!(!out.exists(), "left behind: {:?}", names(&out));
}

#[test]
fn a_refused_resume_leaves_the_run_as_it_was() {
    require_past(PAST_MAIL_DATE);
    let dir = Fixture::empty();
    let out = dir.join("out");
    guarded_run(&out, &["--allow-past-mail-date"]).expect_code(0);
    let ledger_path = out.join("missive.db");
    let before = open_ledger(&ledger_path)
        .run(1)
        .expect("run")
        .expect("run 1");
    assert_eq!(before.status, RunStatus::Finished);
    let refused = missive(&["run", "--resume", "1", "--ledger", utf8(&ledger_path)]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("--allow-past-mail-date"),
        "{}",
        refused.stderr
    );
    let after = open_ledger(&ledger_path)
        .run(1)
        .expect("run")
        .expect("run 1");
    assert_eq!(after, before, "the refused resume changed run 1");
}
