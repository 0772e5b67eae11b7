//! Ledger tests: opening, schema, lock, runs, referrals, volume. Letter states are in
//! `tests_state.rs`.

use std::path::Path;

use chrono::NaiveDate;
use tempfile::TempDir;

use super::*;
use crate::letter::{Channel, LetterKey, LetterKind, MailClass, Variant};

/// A fresh ledger in a temporary directory (kept alive by the `TempDir`).
pub(super) fn ledger() -> (TempDir, SqliteLedger) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = SqliteLedger::open(&dir.path().join("missive.db")).expect("open ledger");
    (dir, ledger)
}

pub(super) fn date(text: &str) -> NaiveDate {
    text.parse().expect("test date")
}

/// Starts a run with fixed dates.
pub(super) fn start(ledger: &mut SqliteLedger) -> RunInfo {
    ledger
        .begin_run(&NewRun {
            as_of: date("2026-12-01"),
            mail_date: date("2026-12-02"),
            config_sha256: "c0ffee".to_owned(),
            accounts: "samples/accounts".to_owned(),
            out_dir: "out".to_owned(),
        })
        .expect("begin run")
}

/// A planned letter of `kind`/`variant` about `subject` for `account`.
pub(super) fn letter(
    account: &str,
    kind: LetterKind,
    variant: Option<Variant>,
    subject: &str,
) -> PlannedLetter {
    let intent = kind == LetterKind::IntentToOffset;
    PlannedLetter {
        key: LetterKey::new(account, kind, subject),
        account_id: account.to_owned(),
        kind,
        variant,
        channel: Channel::Print,
        mail_class: Some(if intent {
            MailClass::Certified
        } else {
            MailClass::FirstClass
        }),
        letter_date: date("2026-12-02"),
        deadline: intent.then(|| date("2027-02-01")),
        liability_ids: if intent {
            subject.split('+').map(str::to_owned).collect()
        } else {
            vec!["L1".to_owned()]
        },
        subject: subject.to_owned(),
        data_sha256: "d1".to_owned(),
    }
}

/// An intent to offset for `account` about liability `L1`.
pub(super) fn intent(account: &str) -> PlannedLetter {
    letter(account, LetterKind::IntentToOffset, None, "L1")
}

/// The file a letter renders to in tests.
pub(super) fn file_of(letter: &PlannedLetter) -> RenderedFile {
    RenderedFile {
        key: letter.key.clone(),
        file: format!("{}.pdf", letter.key.file_stem()),
        file_sha256: format!("sha-{}", letter.key),
        pages: 2,
        template: format!("{}.typ", letter.kind),
        template_sha256: "t1".to_owned(),
    }
}

fn pragma(ledger: &SqliteLedger, name: &str) -> String {
    ledger
        .connection()
        .query_row(&format!("SELECT * FROM pragma_{name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| format!("{v:?}"))
        .expect("pragma")
}

#[test]
fn migrations_create_the_schema_and_reopening_keeps_it() {
    let (dir, mut ledger) = ledger();
    assert_eq!(
        pragma(&ledger, "user_version"),
        format!("Integer({})", schema::current_version())
    );
    assert_eq!(pragma(&ledger, "journal_mode"), r#"Text("wal")"#);
    assert_eq!(pragma(&ledger, "foreign_keys"), "Integer(1)");
    let tables: Vec<String> = {
        let conn = ledger.connection();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .expect("prepare");
        let rows = stmt.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    };
    for table in ["events", "letters", "referrals", "runs"] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    let run = start(&mut ledger);
    ledger
        .record_planned(run.id, &[intent("CT-1")])
        .expect("plan");
    drop(ledger);

    let reopened = SqliteLedger::open(&dir.path().join("missive.db")).expect("reopen");
    assert_eq!(reopened.run(run.id).expect("run"), Some(run));
    assert_eq!(
        reopened.letters_of_account("CT-1").expect("letters").len(),
        1
    );
}

#[test]
fn a_ledger_from_a_newer_missive_is_refused() {
    let (dir, ledger) = ledger();
    ledger
        .connection()
        .pragma_update(None, "user_version", 99)
        .expect("set version");
    drop(ledger);
    let path = dir.path().join("missive.db");
    let err = SqliteLedger::open(&path).expect_err("newer schema");
    assert!(
        matches!(err, LedgerError::NewerSchema { found: 99, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("99"),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_a_ledger_is_refused_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"not a database at all\n".repeat(200)).expect("write");
    let err = SqliteLedger::open(&garbage).expect_err("garbage");
    assert!(matches!(err, LedgerError::NotALedger { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&garbage.display().to_string()),
        "{err}"
    );

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
        .expect("other app's db");
    let err = SqliteLedger::open(&other).expect_err("another application's database");
    assert!(err.to_string().contains("another application"), "{err}");
}

#[test]
fn a_missing_or_unusable_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no such dir").join("missive.db");
    let err = SqliteLedger::open(&missing).expect_err("missing dir");
    assert!(matches!(err, LedgerError::NoDirectory { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let file = dir.path().join("a file");
    std::fs::write(&file, "x").expect("write");
    let err = SqliteLedger::open(&file.join("missive.db")).expect_err("parent is a file");
    assert!(matches!(err, LedgerError::NoDirectory { .. }), "{err:?}");
}

#[cfg(unix)]
#[test]
fn an_unwritable_directory_or_file_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    let existing = locked.join("existing.db");
    drop(SqliteLedger::open(&existing).expect("create"));
    // Only the main file is left once the connection closes (WAL files are removed).
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    // root ignores permissions: then there is nothing to test here.
    let enforced = std::fs::write(locked.join("probe"), "x").is_err();
    if enforced {
        let new = locked.join("missive.db");
        let err = SqliteLedger::open(&new).expect_err("unwritable directory");
        assert!(
            err.to_string().contains(&new.display().to_string()),
            "{err}"
        );
        let err = SqliteLedger::open(&existing).expect_err("read-only file");
        assert!(
            err.to_string().contains(&existing.display().to_string()),
            "{err}"
        );
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    // Not even root may create a file in /proc.
    if Path::new("/proc/self").is_dir() {
        let proc = Path::new("/proc/missive-ledger-test.db");
        let err = SqliteLedger::open(proc).expect_err("unwritable /proc");
        assert!(matches!(err, LedgerError::Open { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/proc/missive-ledger-test.db"),
            "{err}"
        );
    }
}

#[test]
fn the_run_lock_refuses_a_second_holder_until_released() {
    let (dir, ledger) = ledger();
    let first = ledger.lock_for_run().expect("first lock");
    assert_eq!(first.path(), dir.path().join("missive.db.lock"));
    // A second open file handle, as a second process would have.
    let err = ledger.lock_for_run().expect_err("second lock");
    assert!(matches!(err, LedgerError::Locked { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("another missive run is using `")
            && message.contains("missive.db.lock`"),
        "{message}"
    );
    let other = SqliteLedger::open(&dir.path().join("missive.db")).expect("second connection");
    assert!(matches!(
        other.lock_for_run(),
        Err(LedgerError::Locked { .. })
    ));
    drop(first);
    let again = ledger.lock_for_run().expect("lock after release");
    drop(again);
}

#[test]
fn beginning_a_run_interrupts_a_stale_running_one() {
    let (_dir, mut ledger) = ledger();
    let first = start(&mut ledger);
    assert_eq!(first.status, RunStatus::Running);
    assert_eq!(first.finished_at, None);
    let second = start(&mut ledger);
    assert!(second.id > first.id);
    let first = ledger.run(first.id).expect("read").expect("first run");
    assert_eq!(first.status, RunStatus::Interrupted);
    assert!(first.finished_at.is_some());
    assert_eq!(
        ledger.run(second.id).expect("read").map(|r| r.status),
        Some(RunStatus::Running)
    );

    ledger
        .finish_run(second.id, RunStatus::Finished)
        .expect("finish");
    let resumed = ledger.resume_run(first.id).expect("resume");
    assert_eq!(
        (resumed.status, resumed.finished_at),
        (RunStatus::Running, None)
    );
    let statuses: Vec<RunStatus> = ledger
        .runs()
        .expect("runs")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [RunStatus::Running, RunStatus::Finished]);
    assert!(matches!(
        ledger.finish_run(99, RunStatus::Failed),
        Err(LedgerError::UnknownRun { run_id: 99 })
    ));
    assert!(matches!(
        ledger.record_planned(99, &[intent("CT-1")]),
        Err(LedgerError::UnknownRun { run_id: 99 })
    ));
    assert_eq!(ledger.run(99).expect("read"), None);
}

fn referral(account: &str, amount: &str) -> NewReferral {
    NewReferral {
        account_id: account.to_owned(),
        liability_ids: vec!["L1".to_owned(), "L2".to_owned()],
        amount: crate::money::Money::parse(amount).expect("amount"),
        notice_key: LetterKey::intent_to_offset(account, &["L1", "L2"]),
        deadline_passed: date("2026-11-02"),
    }
}

#[test]
fn referrals_are_recorded_once_per_notice() {
    let (_dir, mut ledger) = ledger();
    let run = start(&mut ledger);
    let a = referral("CT-1", "1234.50");
    let b = referral("CT-2", "25.00");
    assert_eq!(
        ledger
            .record_referrals(run.id, std::slice::from_ref(&a))
            .expect("first"),
        std::slice::from_ref(&a)
    );
    let later = start(&mut ledger);
    assert_eq!(
        ledger
            .record_referrals(later.id, &[a.clone(), b.clone()])
            .expect("second"),
        std::slice::from_ref(&b)
    );
    assert_eq!(
        ledger
            .record_referrals(later.id, &[a.clone(), b])
            .expect("third"),
        []
    );
    let recorded = ledger.referrals_of_account("CT-1").expect("read");
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert_eq!(
        (
            &r.notice_key,
            r.amount.plain(),
            r.run_id,
            &r.liability_ids,
            r.deadline_passed
        ),
        (
            &a.notice_key,
            "1234.50".to_owned(),
            run.id,
            &a.liability_ids,
            a.deadline_passed
        )
    );
    let all: Vec<i64> = ledger
        .referrals()
        .expect("all")
        .iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(all, [run.id, later.id]);
}

#[test]
fn ten_thousand_letters_plan_and_render_in_chunks() {
    let (_dir, mut ledger) = ledger();
    let run = start(&mut ledger);
    let letters: Vec<PlannedLetter> = (0..10_000).map(|i| intent(&format!("CT-{i:05}"))).collect();
    let keys = ledger.record_planned(run.id, &letters).expect("plan");
    assert_eq!(keys.len(), letters.len());
    for chunk in letters.chunks(64) {
        let files: Vec<RenderedFile> = chunk.iter().map(file_of).collect();
        ledger.record_rendered(run.id, &files).expect("render");
    }
    let rendered = ledger
        .letters_of_run(run.id, Some(LetterState::Rendered))
        .expect("read");
    assert_eq!(rendered.len(), letters.len());
    assert!(rendered.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(
        ledger.prior_notices().expect("notices").len(),
        letters.len()
    );
}

fn new_approval(sha: &str, reviewer: &str) -> NewApproval {
    NewApproval {
        template: "letters/refund.typ.tera".to_owned(),
        template_sha256: sha.to_owned(),
        reviewer: reviewer.to_owned(),
        note: "checked against letters.md".to_owned(),
        sources: [("letters/refund.typ.tera".to_owned(), format!("text {sha}"))]
            .into_iter()
            .collect(),
    }
}

#[test]
fn approvals_cover_exactly_one_version_and_survive_reopening() {
    let (dir, mut ledger) = ledger();
    let a = ledger
        .record_approval(&new_approval("aaaa", " Pat Reviewer "))
        .expect("approve A");
    assert_eq!(a.reviewer, "Pat Reviewer");
    assert!(stamp::text(&a.at).ends_with('Z'), "{}", a.at);
    let refund = "letters/refund.typ.tera";
    assert_eq!(
        ledger.approval_of(refund, "aaaa").expect("read"),
        Some(a.clone())
    );
    assert_eq!(ledger.approval_of(refund, "bbbb").expect("read"), None);
    assert_eq!(
        ledger
            .approval_of("letters/other.typ.tera", "aaaa")
            .expect("read"),
        None
    );
    let b = ledger
        .record_approval(&new_approval("bbbb", "Lee"))
        .expect("approve B");
    drop(ledger);
    let ledger = SqliteLedger::open(&dir.path().join("missive.db")).expect("reopen");
    let all = ledger.approvals(Some(refund)).expect("list");
    assert_eq!(all, [a.clone(), b]);
    assert_eq!(all[0].sources[refund], "text aaaa");
    assert!(
        ledger
            .approvals(Some("letters/x"))
            .expect("list")
            .is_empty()
    );
}

#[test]
fn approvals_need_a_reviewer_and_are_append_only() {
    let (_dir, mut ledger) = ledger();
    for bad in ["", "   ", "a\nb"] {
        let err = ledger
            .record_approval(&new_approval("aaaa", bad))
            .expect_err("refused");
        assert!(matches!(err, LedgerError::BadApproval { .. }), "{err}");
    }
    ledger
        .record_approval(&new_approval("aaaa", "Pat"))
        .expect("approve");
    let conn = ledger.connection();
    assert!(
        conn.execute("UPDATE approvals SET reviewer = 'x'", [])
            .is_err()
    );
    assert!(conn.execute("DELETE FROM approvals", []).is_err());
}
