//! `missive run` and the Treasury file, from outside: what TOP holds is recorded in the
//! ledger, so a rerun sends nothing twice, a payment sends exactly one decrease and a
//! reversal exactly one delete; a run killed after recording its actions loses nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Fixture, Run, root};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

/// The shipped configuration with the approval gate off (these tests are not about it).
fn config(dir: &Fixture) -> String {
    let shipped = std::fs::read_to_string(root().join("missive.toml")).expect("missive.toml");
    let text = shipped.replace("require_approval = true", "require_approval = false");
    dir.write("missive-test.toml", text).display().to_string()
}

/// L1 (740.00) and L2 (300.00) under an intent to offset mailed 2026-06-01 (deadline
/// 2026-07-31); `edit` changes the account before it is written.
fn write_account(dir: &Fixture, edit: impl FnOnce(&mut Value)) {
    let mut account = json!({
        "account_id": "TR-RUN",
        "taxpayer": {"name": "Dana Whitfield", "tin_last4": "5150"},
        "address": {"line1": "5 Oak St", "city": "Hartford", "state": "CT", "zip": "06103"},
        "balance_as_of": "2026-11-01",
        "liabilities": [
            {"id": "L1", "tax_type": "individual_income", "period": "2023", "due_date": "2024-04-15",
             "tax": "600.00", "penalty": "60.00", "interest": "80.00", "enforceable": true},
            {"id": "L2", "tax_type": "individual_income", "period": "2023", "due_date": "2024-04-15",
             "tax": "300.00", "penalty": "0.00", "interest": "0.00", "enforceable": true}
        ],
        "notices": [{"kind": "intent_to_offset", "mailed_on": "2026-06-01", "liability_ids": ["L1", "L2"]}]
    });
    edit(&mut account);
    dir.write(
        "accounts/account.json",
        serde_json::to_vec_pretty(&account).expect("json"),
    );
}

fn run_args(dir: &Fixture) -> Vec<String> {
    [
        "--config",
        &config(dir),
        "run",
        "--accounts",
        &dir.join("accounts").display().to_string(),
        "--out",
        &dir.join("out").display().to_string(),
        "--as-of",
        "2026-12-01",
        "--allow-past-mail-date",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn run(dir: &Fixture) -> Run {
    let args = run_args(dir);
    let run = common::missive(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_code(0);
    run
}

/// The rows of `out/treasury/<run>.csv` (header left out), each as its fields; `None` when
/// the run wrote no file.
fn rows(dir: &Fixture, run_id: i64) -> Option<Vec<Vec<String>>> {
    let path = dir.join(&format!("out/treasury/{run_id}.csv"));
    let text = std::fs::read_to_string(path).ok()?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    Some(
        reader
            .records()
            .map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect())
            .collect(),
    )
}

/// `action, notice_key, liability_ids, before, after, reason, debtor, tin` of a row.
fn brief(row: &[String]) -> Vec<&str> {
    [1, 3, 4, 5, 6, 7, 8, 9]
        .iter()
        .map(|&i| row[i].as_str())
        .collect()
}

#[test]
fn a_rerun_sends_nothing_a_payment_one_decrease_a_reversal_one_delete() {
    let dir = Fixture::empty();
    let key = "TR-RUN/intent_to_offset/L1+L2";
    write_account(&dir, |_| {});
    run(&dir);
    assert_eq!(
        rows(&dir, 1)
            .expect("run 1 refers")
            .iter()
            .map(|r| brief(r))
            .collect::<Vec<_>>(),
        [vec![
            "add",
            key,
            "L1+L2",
            "0.00",
            "1040.00",
            "deadline_passed",
            "Dana Whitfield",
            "5150"
        ]]
    );

    // The same data again: TOP holds it by the ledger; nothing is sent, no file written.
    let again = run(&dir);
    assert!(
        again.stderr.contains("0 new referrals, 0 Treasury updates"),
        "{}",
        again.stderr
    );
    assert_eq!(rows(&dir, 2), None);

    // A payment: L1's interest is paid (660.00 + 300.00).
    write_account(&dir, |a| a["liabilities"][0]["interest"] = json!("0.00"));
    run(&dir);
    assert_eq!(
        rows(&dir, 3)
            .expect("run 3 decreases")
            .iter()
            .map(|r| brief(r))
            .collect::<Vec<_>>(),
        [vec![
            "decrease",
            key,
            "L1+L2",
            "1040.00",
            "960.00",
            "reduced",
            "Dana Whitfield",
            "5150"
        ]]
    );
    run(&dir);
    assert_eq!(rows(&dir, 4), None, "the decrease is not sent twice");

    // Both liabilities reversed on review: one delete, of what TOP holds now.
    write_account(&dir, |a| {
        a["liabilities"][0]["interest"] = json!("0.00");
        a["reviews"] = json!([{"id": "R1", "liability_ids": ["L1", "L2"], "requested_on": "2026-09-01",
                               "decided_on": "2026-11-20", "outcome": "reversed"}]);
    });
    run(&dir);
    assert_eq!(
        rows(&dir, 5)
            .expect("run 5 deletes")
            .iter()
            .map(|r| brief(r))
            .collect::<Vec<_>>(),
        [vec![
            "delete",
            key,
            "L1+L2",
            "960.00",
            "0.00",
            "reversed",
            "Dana Whitfield",
            "5150"
        ]]
    );
    run(&dir);
    assert_eq!(rows(&dir, 6), None, "the delete is not sent twice");
    let control: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/treasury/5-control.json")).expect("control"),
    )
    .expect("JSON");
    assert_eq!(
        control["actions"]["delete"],
        json!({"count": 1, "dollars": "960.00"})
    );
    assert_eq!(
        control["actions"]["add"],
        json!({"count": 0, "dollars": "0.00"})
    );

    // history lists every action with its run and reason.
    let history = common::missive(&[
        "history",
        "TR-RUN",
        "--ledger",
        &dir.join("out/missive.db").display().to_string(),
        "--format",
        "json",
    ]);
    history.expect_code(0);
    let doc = history.json();
    let seen: Vec<(i64, &str, &str)> = doc["treasury"]
        .as_array()
        .expect("treasury")
        .iter()
        .map(|t| {
            (
                t["run_id"].as_i64().expect("run"),
                t["action"].as_str().expect("action"),
                t["reason"].as_str().expect("reason"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "add", "deadline_passed"),
            (3, "decrease", "reduced"),
            (5, "delete", "reversed")
        ]
    );
    let table = common::missive(&[
        "history",
        "TR-RUN",
        "--ledger",
        &dir.join("out/missive.db").display().to_string(),
    ]);
    assert!(table.stdout.contains("TREASURY (3)"), "{}", table.stdout);
}

#[test]
fn a_missing_treasury_file_is_written_again_from_the_ledger() {
    // What a crash between the ledger commit and the file write leaves: actions recorded,
    // no file. The next run writes that run's file, byte for byte the same.
    let dir = Fixture::empty();
    write_account(&dir, |_| {});
    run(&dir);
    let csv = std::fs::read(dir.join("out/treasury/1.csv")).expect("csv");
    let control = std::fs::read(dir.join("out/treasury/1-control.json")).expect("control");
    std::fs::remove_file(dir.join("out/treasury/1.csv")).expect("remove");
    std::fs::remove_file(dir.join("out/treasury/1-control.json")).expect("remove");
    run(&dir);
    assert_eq!(
        std::fs::read(dir.join("out/treasury/1.csv")).expect("csv"),
        csv
    );
    assert_eq!(
        std::fs::read(dir.join("out/treasury/1-control.json")).expect("control"),
        control
    );
    assert_eq!(rows(&dir, 2), None);
}

/// True once the newest run has recorded a Treasury action (read-only peek).
fn actions_recorded(ledger: &Path) -> bool {
    let Ok(conn) = Connection::open_with_flags(ledger, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return false;
    };
    conn.query_row("SELECT count(*) FROM treasury_actions", [], |r| {
        r.get::<_, i64>(0)
    })
    .is_ok_and(|n| n > 0)
}

#[test]
fn sigkill_after_the_ledger_commit_loses_no_action_and_repeats_none() {
    // Many accounts, so the run is busy when the actions are committed; it is killed
    // (SIGKILL) the moment the ledger shows them, then run again.
    let dir = Fixture::empty();
    for i in 0..40 {
        let mut account: Value = serde_json::from_str(
            &std::fs::read_to_string(
                root().join("tests/fixtures/update_decrease_payment/accounts/payment.json"),
            )
            .expect("fixture"),
        )
        .expect("json");
        account["account_id"] = json!(format!("TK-{i:03}"));
        account["referrals"] = json!([]);
        if i % 2 == 0 {
            // Half already referred (TOP holds more than owed now): a decrease each.
            account["referrals"] = json!([{ "notice_key": format!("TK-{i:03}/intent_to_offset/L1+L2"),
                "liability_ids": ["L1", "L2"], "referred_on": "2026-08-03", "amount": "1040.00",
                "updated_on": null }]);
        }
        dir.write(
            &format!("accounts/{i:03}.json"),
            serde_json::to_vec(&account).expect("json"),
        );
    }
    let ledger: PathBuf = dir.join("out/missive.db");
    let args = run_args(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(&args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start missive run");
    let started = Instant::now();
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(120) {
        if actions_recorded(&ledger) {
            child.kill().expect("SIGKILL the run");
            killed = true;
            break;
        }
        if child.try_wait().expect("poll").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.wait();
    assert!(
        killed || actions_recorded(&ledger),
        "the run ended without recording actions"
    );
    // Run again: run 1's file is there (written now if the kill came first) with every
    // action exactly once, and the rerun sends nothing.
    let again = common::missive(&args.iter().map(String::as_str).collect::<Vec<_>>());
    again.expect_code(0);
    let rows = rows(&dir, 1).expect("run 1's Treasury file");
    assert_eq!(rows.len(), 40, "20 adds and 20 decreases, once each");
    let mut seen: Vec<(String, String)> =
        rows.iter().map(|r| (r[2].clone(), r[1].clone())).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 40, "no action twice");
    assert_eq!(rows.iter().filter(|r| r[1] == "decrease").count(), 20);
    assert!(
        !dir.join("out/treasury/2.csv").exists(),
        "nothing sent twice"
    );
}
