//! The defects of the adversarial pass (issue 11), each from the outside: the run lock
//! through a symlink, long letter keys, names the fonts cannot print, layout characters,
//! amounts that sum past the limit, terminal escapes in messages, and a run that stops
//! with exit 2. (Framing: `tests/review_browser.rs`; mail that waits: `tests/batches.rs`,
//! `tests/run/`, `tests/email.rs`.)

mod common;

use std::path::{Path, PathBuf};

use missive::ledger::prelude::*;
use missive::ledger::{LetterState, RunStatus, SqliteLedger};
use serde_json::{Value, json};

use common::files::utf8;
use common::{Fixture, Run, array, root};

/// `missive --config <gate off> ARGS` from the crate root: these tests are not about
/// approvals.
fn missive(args: &[&str]) -> Run {
    common::missive_gate_off("hardening-tests", args)
}

/// The basic intent-to-offset sample as JSON, to vary.
fn base_account() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("samples/accounts/01-ito-basic.json"))
            .expect("sample"),
    )
    .expect("sample JSON")
}

/// An account like the basic sample, with id `id`, changed by `edit`.
fn account(id: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut account = base_account();
    account["account_id"] = id.into();
    edit(&mut account);
    account
}

/// Writes accounts into `dir/accounts/NN.json`; returns the directory.
fn write_accounts(dir: &Fixture, accounts: &[Value]) -> PathBuf {
    for (i, account) in accounts.iter().enumerate() {
        dir.write(
            &format!("accounts/{i:02}.json"),
            serde_json::to_vec_pretty(account).expect("JSON"),
        );
    }
    dir.join("accounts")
}

/// `plan --format json` of `accounts`: exit status and plan.
fn plan(accounts: &Path) -> (Run, Value) {
    let run = missive(&[
        "plan",
        "--accounts",
        utf8(accounts),
        "--as-of",
        "2026-12-01",
        "--format",
        "json",
    ]);
    let json = run.json();
    (run, json)
}

/// The plan's error for account `id` (its message), panicking when there is none.
fn error_of<'a>(plan: &'a Value, id: &str) -> &'a str {
    plan["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["account_id"] == id)
        .and_then(|e| e["message"].as_str())
        .unwrap_or_else(|| panic!("no error for {id}: {:#}", plan["errors"]))
}

fn run_args<'a>(accounts: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--accounts",
        utf8(accounts),
        "--out",
        utf8(out),
        "--as-of",
        "2026-12-01",
        "--allow-past-mail-date",
        "--jobs",
        "2",
    ];
    args.extend_from_slice(extra);
    args
}

/// `missive render` of `accounts` into `out` (as of 2026-12-01).
fn render(accounts: &Path, out: &Path) -> Run {
    missive(&[
        "render",
        "--accounts",
        utf8(accounts),
        "--as-of",
        "2026-12-01",
        "--out",
        utf8(out),
        "--jobs",
        "2",
    ])
}

/// How many letters `plan` finds due in `accounts` on the dates these tests use.
fn planned_letters(accounts: &Path) -> usize {
    let (_, plan) = common::plan(utf8(accounts), &["--as-of", "2026-12-01"]);
    array(&plan["letters"]).len()
}

// 1. The run lock is the ledger file's, whatever name reaches it.
#[test]
fn a_run_through_a_symlink_to_a_locked_ledger_is_refused() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("out");
    let ledger_path = out.join("missive.db");
    let ledger = SqliteLedger::open(&ledger_path).expect("ledger");
    let guard = ledger.lock_for_run().expect("take the run lock");

    let link = dir.join("link.db");
    std::os::unix::fs::symlink(&ledger_path, &link).expect("symlink");
    let other_out = dir.join("other");
    let accounts = root().join("samples/accounts");
    let run = missive(&run_args(&accounts, &other_out, &["--ledger", utf8(&link)]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("another missive run is using"),
        "{}",
        run.stderr
    );
    assert!(
        ledger.runs().expect("runs").is_empty(),
        "the refused run recorded a run"
    );
    assert!(
        !other_out.join("batches").exists(),
        "the refused run wrote batches"
    );
    // A relative path with `..` to the same file is the same lock too.
    let dotted = out.join("..").join("out").join("missive.db");
    let run = missive(&run_args(
        &accounts,
        &other_out,
        &["--ledger", utf8(&dotted)],
    ));
    run.expect_code(2);

    drop(guard);
    let run = missive(&run_args(&accounts, &other_out, &["--ledger", utf8(&link)]));
    run.expect_code(0);
}

// 2. Long letter keys get bounded file names; a letter that cannot be written is that
// letter's failure.
#[test]
fn four_liabilities_with_64_character_ids_render_and_batch() {
    let dir = Fixture::empty();
    let ids: Vec<String> = (0..4).map(|i| format!("{i}{}", "L".repeat(63))).collect();
    let long = account("CT-0099999", |a| {
        let template = a["liabilities"][0].clone();
        a["liabilities"] = ids
            .iter()
            .map(|id| {
                let mut l = template.clone();
                l["id"] = id.as_str().into();
                l
            })
            .collect();
    });
    let accounts = dir.join("accounts");
    std::fs::create_dir_all(&accounts).expect("accounts");
    for entry in std::fs::read_dir(root().join("samples/accounts")).expect("samples") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), accounts.join(entry.file_name())).expect("copy");
    }
    dir.write(
        "accounts/99-long-ids.json",
        serde_json::to_vec(&long).expect("JSON"),
    );
    let key = format!("CT-0099999/intent_to_offset/{}", ids.join("+"));
    assert!(
        key.len() > 255,
        "the key alone is longer than a file name may be"
    );

    let out = dir.join("out");
    let run = missive(&run_args(&accounts, &out, &[]));
    run.expect_code(0);
    let ledger = SqliteLedger::open(&out.join("missive.db")).expect("ledger");
    let letter = ledger
        .letter(&missive::letter::LetterKey::from_text(&key))
        .expect("read")
        .expect("the long letter is recorded");
    assert_eq!(letter.state, LetterState::Rendered);
    let file = letter.file.expect("a file name");
    assert!(file.len() < 120, "{file}");
    assert!(
        file.starts_with("CT-0099999_intent_to_offset_0LLL"),
        "{file}"
    );
    assert!(out.join(&file).is_file(), "{file}");
    assert!(ledger.unbatched_letters().expect("unbatched").is_empty());
    assert_eq!(
        ledger
            .letters_of_run(1, Some(LetterState::Rendered))
            .expect("letters")
            .len(),
        planned_letters(&accounts),
        "every planned letter, the long one included, is rendered"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("run-1.json")).expect("run-1.json"))
            .expect("JSON");
    assert!(
        summary["letters"]
            .as_array()
            .expect("letters")
            .iter()
            .any(|l| l["key"] == key.as_str() && l["file"] == file.as_str()),
        "run-1.json records the file of the long key"
    );

    // `render` names it the same way and records it in render.json.
    let rendered = dir.join("rendered");
    let run = render(&accounts, &rendered);
    run.expect_code(0);
    let render_json: Value =
        serde_json::from_slice(&std::fs::read(rendered.join("render.json")).expect("render.json"))
            .expect("JSON");
    assert!(
        render_json["letters"]
            .as_array()
            .expect("letters")
            .iter()
            .any(|l| l["key"] == key.as_str() && l["file"] == file.as_str())
    );
    assert!(rendered.join(&file).is_file());
}

#[test]
fn a_letter_whose_file_cannot_be_written_fails_alone() {
    let dir = Fixture::empty();
    let accounts = root().join("samples/accounts");
    for (command, out) in [("render", dir.join("rendered")), ("run", dir.join("out"))] {
        // A directory where one letter's PDF should go.
        std::fs::create_dir_all(out.join("CT-0001001_intent_to_offset_L1.pdf/x"))
            .expect("block the file name");
        let run = if command == "run" {
            missive(&run_args(&accounts, &out, &[]))
        } else {
            render(&accounts, &out)
        };
        run.expect_code(1);
        assert!(
            run.stderr.contains("CT-0001001/intent_to_offset/L1")
                && run.stderr.contains("failed to write"),
            "{command}: {}",
            run.stderr
        );
        let pdfs = std::fs::read_dir(&out)
            .expect("out")
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file() && e.path().extension().is_some_and(|x| x == "pdf"))
            .count();
        assert_eq!(
            pdfs,
            planned_letters(&accounts) - 1,
            "{command}: every other letter is written"
        );
    }
    let ledger = SqliteLedger::open(&dir.join("out/missive.db")).expect("ledger");
    let failed = ledger
        .letter(&missive::letter::LetterKey::from_text(
            "CT-0001001/intent_to_offset/L1",
        ))
        .expect("read")
        .expect("recorded");
    assert_eq!(failed.state, LetterState::Failed);
    let run = ledger.run(1).expect("run").expect("run 1");
    assert_eq!(run.status, RunStatus::Finished, "the run itself went on");
}

// 3. Names the letter fonts cannot print are refused at load, naming field and character.
#[test]
fn names_in_scripts_the_fonts_lack_are_refused_at_load() {
    let dir = Fixture::empty();
    let cases = [
        ("CT-ARABIC", "taxpayer.name", "محمد علي", "U+0645"),
        ("CT-THAI", "taxpayer.name", "สมชาย ใจดี", "U+0E2A"),
        ("CT-EMOJI", "taxpayer.name", "Ann Lee 😀", "U+1F600"),
        (
            "CT-FULLWIDTH",
            "address.line1",
            "４７ Ｆａｒｍｉｎｇｔｏｎ Ave",
            "U+FF14",
        ),
        ("CT-CJK", "taxpayer.spouse_name", "山田 花子", "U+5C71"),
    ];
    let mut accounts: Vec<Value> = cases
        .iter()
        .map(|(id, field, text, _)| {
            account(id, |a| match *field {
                "taxpayer.name" => a["taxpayer"]["name"] = (*text).into(),
                "taxpayer.spouse_name" => a["taxpayer"]["spouse_name"] = (*text).into(),
                _ => a["address"]["line1"] = (*text).into(),
            })
        })
        .collect();
    // Latin with accents, Greek, Cyrillic and Hebrew are in the fonts: they print.
    accounts.push(account("CT-LATIN", |a| {
        a["taxpayer"]["name"] = "José Ñúñez-O’Brien".into();
        a["taxpayer"]["spouse_name"] = "Αλέξης Жанна".into();
    }));
    accounts.push(account("CT-HEBREW", |a| {
        a["taxpayer"]["name"] = "דוד כהן".into();
    }));
    let (run, plan) = plan(&write_accounts(&dir, &accounts));
    run.expect_code(1);
    for (id, field, _, code) in cases {
        let message = error_of(&plan, id);
        assert!(
            message.contains(field) && message.contains(code) && message.contains("fonts"),
            "{id}: {message}"
        );
    }
    let planned: Vec<&str> = plan["letters"]
        .as_array()
        .expect("letters")
        .iter()
        .filter_map(|l| l["account_id"].as_str())
        .collect();
    assert_eq!(
        planned,
        ["CT-HEBREW", "CT-LATIN"],
        "the printable accounts are planned"
    );
    assert_eq!(
        plan["errors"].as_array().expect("errors").len(),
        cases.len()
    );

    // What load lets through renders: both letters are written, names in the text.
    let out = dir.join("rendered");
    let run = render(&dir.join("accounts"), &out);
    run.expect_code(1);
    assert!(!run.stderr.contains("error: letter"), "{}", run.stderr);
    for (file, name) in [
        ("CT-HEBREW_intent_to_offset_L1.pdf", "דוד כהן"),
        ("CT-LATIN_intent_to_offset_L1.pdf", "Ñúñez-O’Brien"),
    ] {
        let text = std::process::Command::new("pdftotext")
            .arg(out.join(file))
            .arg("-")
            .output()
            .expect("pdftotext");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains(name), "{file}: {text}");
    }
}

// 4. Line and paragraph separators, bidi controls and other format characters are refused
// in every text field.
#[test]
fn separators_and_bidi_controls_are_refused_in_every_text_field() {
    let dir = Fixture::empty();
    let cases: [(&str, &str, char); 8] = [
        ("CT-LS", "taxpayer.name", '\u{2028}'),
        ("CT-PS", "address.line1", '\u{2029}'),
        ("CT-RLO", "taxpayer.name", '\u{202E}'),
        ("CT-LRI", "address.city", '\u{2066}'),
        ("CT-LRM", "taxpayer.spouse_name", '\u{200E}'),
        ("CT-ALM", "address.line2", '\u{061C}'),
        ("CT-ZWSP", "liabilities[0].period", '\u{200B}'),
        ("CT-PDI", "liabilities[0].tax_type", '\u{2069}'),
    ];
    let accounts: Vec<Value> = cases
        .iter()
        .map(|(id, field, c)| {
            account(id, |a| {
                let text = |s: &str| Value::from(format!("{s} {c}x"));
                match *field {
                    "taxpayer.name" => a["taxpayer"]["name"] = text("Eve"),
                    "taxpayer.spouse_name" => a["taxpayer"]["spouse_name"] = text("Bob"),
                    "address.line1" => a["address"]["line1"] = text("1 Main St"),
                    "address.line2" => a["address"]["line2"] = text("Apt"),
                    "address.city" => a["address"]["city"] = text("Hartford"),
                    "liabilities[0].period" => a["liabilities"][0]["period"] = text("2022"),
                    _ => a["liabilities"][0]["tax_type"] = text("income"),
                }
            })
        })
        .collect();
    let (run, plan) = plan(&write_accounts(&dir, &accounts));
    run.expect_code(1);
    for (id, field, c) in cases {
        let message = error_of(&plan, id);
        let code = format!("U+{:04X}", u32::from(c));
        assert!(
            message.contains(field) && message.contains(&code),
            "{id}: {message}"
        );
    }
    assert!(plan["letters"].as_array().expect("letters").is_empty());
    // The exact example of the issue prints nothing reordered: it is refused.
    assert!(error_of(&plan, "CT-RLO").contains("bidi"));
}

// 5. Amounts each within the limit that sum past it.
#[test]
fn amounts_that_sum_past_the_limit_fail_that_letter_at_plan() {
    let dir = Fixture::empty();
    let huge = account("CT-HUGE", |a| {
        a["liabilities"][0]["tax"] = "999999999999.99".into();
        a["liabilities"][0]["penalty"] = "0.00".into();
        a["liabilities"][0]["interest"] = "3250.00".into();
    });
    let fine = account("CT-FINE", |_| {});
    let (run, plan) = plan(&write_accounts(&dir, &[huge, fine]));
    run.expect_code(1);
    let message = error_of(&plan, "CT-HUGE");
    assert!(
        message.contains("CT-HUGE/intent_to_offset/L1") && message.contains("999999999999.99"),
        "{message}"
    );
    let letters: Vec<&str> = plan["letters"]
        .as_array()
        .expect("letters")
        .iter()
        .filter_map(|l| l["account_id"].as_str())
        .collect();
    assert_eq!(letters, ["CT-FINE"], "the other account goes on");
    let table = missive(&[
        "plan",
        "--accounts",
        utf8(&dir.join("accounts")),
        "--as-of",
        "2026-12-01",
    ]);
    table.expect_code(1);
    assert!(table.stderr.contains("CT-HUGE"), "{}", table.stderr);
}

// 6. Terminal escapes from input never reach the terminal raw.
#[test]
fn control_characters_from_input_are_escaped_in_messages() {
    let dir = Fixture::empty();
    let hostile = account("CT-\u{1b}[2J\u{1b}]0;owned\u{7}", |_| {});
    let bidi_file = account("CT-GOOD", |a| {
        a["taxpayer"]["name"] = "Eve \u{202e}evil".into()
    });
    let accounts = write_accounts(&dir, &[hostile, bidi_file]);
    // A file whose name holds an escape too.
    std::fs::write(accounts.join("evil-\u{1b}[31m.json"), b"{ not json").expect("write");
    for format in ["table", "json"] {
        let run = missive(&[
            "plan",
            "--accounts",
            utf8(&accounts),
            "--as-of",
            "2026-12-01",
            "--format",
            format,
        ]);
        run.expect_code(1);
        for (stream, text) in [("stderr", &run.stderr), ("stdout", &run.stdout)] {
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'),
                "{format} {stream} holds raw control characters: {text:?}"
            );
        }
        if format == "table" {
            // In JSON mode errors are only in `errors[]`, escaped by JSON itself.
            assert!(run.stderr.contains("\\u{1b}[2J"), "{}", run.stderr);
            assert!(
                run.stderr.contains("evil-\\u{1b}[31m.json"),
                "{}",
                run.stderr
            );
        }
    }
    let out = dir.join("out");
    let run = missive(&run_args(&accounts, &out, &[]));
    run.expect_code(1);
    assert!(
        !run.stderr.contains('\u{1b}') && run.stderr.contains("\\u{1b}[2J"),
        "{:?}",
        run.stderr
    );
    // An error that stops a command (exit 2) quotes the path it could not use, escaped.
    let missing = dir.join("no-\u{1b}[2J-such");
    let run = missive(&["plan", "--accounts", utf8(&missing)]);
    run.expect_code(2);
    assert!(
        !run.stderr.contains('\u{1b}') && run.stderr.contains("no-\\u{1b}[2J-such"),
        "{:?}",
        run.stderr
    );
}

// 10. A run that stops with exit 2 is recorded failed, with why, and shown.
#[test]
fn a_run_that_exits_2_is_recorded_failed_and_shown_in_history() {
    let dir = Fixture::empty();
    let accounts = root().join("samples/accounts");
    let ledger_path = dir.join("ledger/missive.db");
    // The output directory cannot be created: a file is in the way.
    dir.write("blocker", b"not a directory");
    let out = dir.join("blocker/out");
    let run = missive(&run_args(
        &accounts,
        &out,
        &["--ledger", utf8(&ledger_path)],
    ));
    run.expect_code(2);
    let ledger = SqliteLedger::open(&ledger_path).expect("ledger");
    let recorded = ledger.run(1).expect("read").expect("run 1 is recorded");
    assert_eq!(recorded.status, RunStatus::Failed);
    let why = recorded.failure.clone().expect("a reason");
    assert!(
        why.contains("failed to write") && why.contains("blocker"),
        "{why}"
    );
    drop(ledger);

    let history = missive(&["history", "--runs", "--ledger", utf8(&ledger_path)]);
    history.expect_code(0);
    assert!(
        history.stdout.contains("run 1 failed") && history.stdout.contains("failed to write"),
        "{}",
        history.stdout
    );
    let json = missive(&[
        "history",
        "--runs",
        "--format",
        "json",
        "--ledger",
        utf8(&ledger_path),
    ]);
    json.expect_code(0);
    let runs = json.json();
    assert_eq!(runs["runs"][0]["status"], "failed");
    assert_eq!(runs["runs"][0]["failure"], json!(why));
    // The account's history shows the run its letters belong to, failed.
    let account = missive(&["history", "CT-0001001", "--ledger", utf8(&ledger_path)]);
    account.expect_code(0);
    assert!(
        account.stdout.contains("run 1 failed"),
        "{}",
        account.stdout
    );

    // A new run with a usable output directory does the work.
    let good = dir.join("out");
    let run = missive(&run_args(
        &accounts,
        &good,
        &["--ledger", utf8(&ledger_path)],
    ));
    run.expect_code(0);
    let ledger = SqliteLedger::open(&ledger_path).expect("ledger");
    assert_eq!(
        ledger.run(1).expect("read").map(|r| r.status),
        Some(RunStatus::Failed),
        "the failed run stays failed"
    );
    assert_eq!(
        ledger.run(2).expect("read").map(|r| r.status),
        Some(RunStatus::Finished)
    );
    assert!(ledger.unbatched_letters().expect("unbatched").is_empty());
}

/// Unmounts a test's file system when the test ends, however it ends.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A real full disk: the output directory on a 256 KiB tmpfs, where the machine lets the
/// tests mount one (root in a container or VM; elsewhere skipped with a notice, the
/// portable case above covers the recording). The run stops with exit 2 at the first
/// letter that does not fit, and the ledger (on another disk) says why.
#[test]
fn a_run_on_a_full_disk_stops_and_is_recorded_failed() {
    let dir = Fixture::empty();
    let small = dir.join("small");
    std::fs::create_dir_all(&small).expect("mount point");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&small)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("notice: cannot mount a small tmpfs here (needs root), skipping");
        return;
    }
    let _unmount = Unmount(small.clone());
    let ledger_path = dir.join("ledger/missive.db");
    let run = missive(&run_args(
        &root().join("samples/accounts"),
        &small.join("out"),
        &["--ledger", utf8(&ledger_path)],
    ));
    run.expect_code(2);
    assert!(
        run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("error: letter"),
        "a full disk stops the run; it is not one letter's failure: {}",
        run.stderr
    );
    let ledger = SqliteLedger::open(&ledger_path).expect("ledger");
    let recorded = ledger.run(1).expect("read").expect("run 1");
    assert_eq!(recorded.status, RunStatus::Failed);
    assert!(
        recorded
            .failure
            .as_deref()
            .is_some_and(|why| why.contains("No space left on device")),
        "{recorded:?}"
    );
    let history = missive(&["history", "--runs", "--ledger", utf8(&ledger_path)]);
    assert!(
        history.stdout.contains("run 1 failed") && history.stdout.contains("No space left"),
        "{}",
        history.stdout
    );
}
