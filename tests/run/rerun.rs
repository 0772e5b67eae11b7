//! The same command twice: the second run the same day plans, renders and refers nothing,
//! changes no file and keeps the first run's summary; `history` then shows the first run's
//! letter with its run, template and file hashes and its events.

use serde_json::Value;

use missive::ledger::RunStatus;
use missive::ledger::prelude::*;

use crate::common::files::{file_sha, json_file, pdfs, utf8};
use crate::common::ledger::open_ledger;
use crate::common::{self, Fixture, array};
use crate::{
    AS_OF, ITO_1001, ITO_1001_FILE, history_json, is_sha256, missive, reported_run_id, samples_run,
    str_of,
};

#[test]
fn a_second_run_the_same_day_produces_nothing_new() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    let first = samples_run(&out, AS_OF);
    first.expect_code(0);
    assert_eq!(reported_run_id(&first), 1);
    let pdfs_before = pdfs(&out);
    assert_eq!(
        pdfs_before.len(),
        31,
        "the samples' 31 letters: {pdfs_before:?}"
    );
    let treasury_before = std::fs::read(out.join("treasury/1.csv")).expect("treasury/1.csv");
    let run1 = json_file(&out.join("run-1.json"));
    assert_eq!(array(&run1["letters"]).len(), 31);

    let second = samples_run(&out, AS_OF);
    second.expect_code(0);
    assert!(
        second
            .stderr
            .contains("run 2: 0 letters planned, 0 rendered, 0 failed, 0 new referrals"),
        "{}",
        second.stderr
    );
    assert_eq!(pdfs(&out), pdfs_before, "no new or changed PDF");
    assert_eq!(
        std::fs::read(out.join("treasury/1.csv")).expect("treasury/1.csv"),
        treasury_before,
        "treasury/1.csv unchanged"
    );
    assert!(
        !out.join("treasury/2.csv").exists(),
        "a run with no actions writes no Treasury file"
    );
    assert_eq!(
        json_file(&out.join("run-2.json")),
        serde_json::json!({"run_id": 2, "letters": [], "failed": []})
    );
    assert_eq!(
        json_file(&out.join("run-1.json")),
        run1,
        "run 1's summary is kept"
    );
    let ledger = open_ledger(&out.join("missive.db"));
    assert!(ledger.letters_of_run(2, None).expect("letters").is_empty());
    let runs = ledger.runs().expect("runs");
    assert_eq!(
        runs.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>(),
        vec![(1, RunStatus::Finished), (2, RunStatus::Finished)]
    );
    drop(ledger);

    // history: the letter with its run, template and file hashes, and its events.
    let written = array(&run1["letters"])
        .iter()
        .find(|l| l["key"] == ITO_1001)
        .expect("run-1.json lists the letter");
    let file_sha = file_sha(&out.join(ITO_1001_FILE));
    let doc = history_json(&out.join("missive.db"), &["CT-0001001"]);
    assert_eq!(doc["account_id"], "CT-0001001");
    let letters = array(&doc["letters"]);
    assert_eq!(letters.len(), 1, "{doc:#}");
    let l = &letters[0];
    common::assert_fields(
        l,
        serde_json::json!({
            "key": ITO_1001,
            "run_id": 1,
            "state": "rendered",
            "kind": "intent_to_offset",
            "letter_date": "2026-12-01",
            "deadline": "2027-02-01",
            "template": "letters/intent_to_offset.typ.tera",
            "template_sha256": written["template_sha256"],
            "file": ITO_1001_FILE,
            "file_sha256": file_sha,
            "pages": written["pages"],
        }),
    );
    assert!(is_sha256(str_of(l, "template_sha256")), "{l:#}");
    assert_eq!(written["sha256"], file_sha.as_str());
    let events = array(&l["events"]);
    let moves: Vec<(Value, Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e["from_state"].clone(),
                e["to_state"].clone(),
                e["run_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        vec![
            (Value::Null, "planned".into(), 1.into()),
            ("planned".into(), "rendered".into(), 1.into()),
        ]
    );
    let rendered = str_of(&events[1], "detail");
    assert!(rendered.contains(&file_sha), "{rendered}");
    assert!(
        rendered.contains(str_of(l, "template_sha256")),
        "{rendered}"
    );

    // --key shows the same letter; the table names it too.
    let by_key = history_json(&out.join("missive.db"), &["--key", ITO_1001]);
    assert_eq!(array(&by_key["letters"]), letters);
    let table = missive(&[
        "history",
        "CT-0001001",
        "--ledger",
        utf8(&out.join("missive.db")),
    ]);
    table.expect_code(0);
    assert!(table.stdout.contains(ITO_1001), "{}", table.stdout);
    assert!(table.stdout.contains("rendered"), "{}", table.stdout);

    // An account with no letters: exit 1 and says so.
    let none = missive(&[
        "history",
        "CT-0000000",
        "--ledger",
        utf8(&out.join("missive.db")),
    ]);
    none.expect_code(1);
    assert!(none.stderr.contains("no letters found"), "{}", none.stderr);
}
