//! The Treasury file: one row per new referral and per Treasury update of the plan, with
//! its control totals, shown by `history`; later runs never write it again.

use crate::common::files::{json_file, names, sha256_hex};
use crate::common::{self, Fixture, array};
use crate::{AS_OF, SAMPLES, history_json, samples_run, str_of};

/// The Treasury file's header row (docs/treasury.md).
const TREASURY_HEADER: &str = "run_id,action,account_id,notice_key,liability_ids,amount_before,amount_after,reason,debtor_name,tin_last4,recorded_at";

#[test]
fn the_treasury_file_has_one_row_per_action_and_is_not_duplicated() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    samples_run(&out, AS_OF).expect_code(0);
    let plan = common::plan_ok(SAMPLES, &["--as-of", AS_OF]);
    let mut expected: Vec<Vec<String>> = Vec::new();
    for r in array(&plan["referrals"]) {
        expected.push(vec![
            "1".to_owned(),
            "add".to_owned(),
            str_of(r, "account_id").to_owned(),
            str_of(r, "notice_key").to_owned(),
            common::strings(&r["liability_ids"]).join("+"),
            "0.00".to_owned(),
            str_of(r, "amount").to_owned(),
            "deadline_passed".to_owned(),
        ]);
    }
    for u in array(&plan["treasury_updates"]) {
        expected.push(vec![
            "1".to_owned(),
            str_of(u, "action").to_owned(),
            str_of(u, "account_id").to_owned(),
            str_of(u, "notice_key").to_owned(),
            common::strings(&u["liability_ids"]).join("+"),
            str_of(u, "amount_before").to_owned(),
            str_of(u, "amount_after").to_owned(),
            str_of(u, "reason").to_owned(),
        ]);
    }
    assert_eq!(expected.len(), 8, "the samples: 4 referrals and 4 updates");

    let text = std::fs::read_to_string(out.join("treasury/1.csv")).expect("treasury/1.csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header.join(","), TREASURY_HEADER);
    let mut rows: Vec<Vec<String>> = Vec::new();
    for record in reader.records() {
        let record = record.expect("a CSV row");
        assert_eq!(record.len(), 11);
        assert!(!record[8].is_empty(), "debtor name in {record:?}");
        assert_eq!(record[9].len(), 4, "TIN last four in {record:?}");
        assert!(chrono::DateTime::parse_from_rfc3339(&record[10]).is_ok());
        rows.push(record.iter().take(8).map(str::to_owned).collect());
    }
    rows.sort();
    expected.sort();
    assert_eq!(rows, expected);
    let control = json_file(&out.join("treasury/1-control.json"));
    assert_eq!(control["rows"], 8);
    assert_eq!(control["file_sha256"], sha256_hex(text.as_bytes()));
    assert_eq!(
        control["actions"],
        serde_json::json!({
            "add": {"count": 4, "dollars": "11454.55"},
            "decrease": {"count": 2, "dollars": "1660.55"},
            "delete": {"count": 2, "dollars": "4512.45"},
        })
    );

    // history shows the account's referral with its run and reason.
    let doc = history_json(&out.join("missive.db"), &["CT-0001014"]);
    let treasury = array(&doc["treasury"]);
    assert_eq!(treasury.len(), 1, "{doc:#}");
    assert_eq!(
        treasury[0]["notice_key"],
        "CT-0001014/intent_to_offset/L1+L2+L3"
    );
    assert_eq!(treasury[0]["run_id"], 1);
    assert_eq!(treasury[0]["reason"], "deadline_passed");

    // A second run (and a next-day one) sends nothing again and writes no file.
    samples_run(&out, AS_OF).expect_code(0);
    let next_day = samples_run(&out, "2026-12-02");
    next_day.expect_code(0);
    assert!(
        next_day
            .stderr
            .contains("0 new referrals, 0 Treasury updates"),
        "{}",
        next_day.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.join("treasury/1.csv")).expect("csv"),
        text
    );
    assert_eq!(names(&out.join("treasury")).len(), 2, "only run 1's files");
}
