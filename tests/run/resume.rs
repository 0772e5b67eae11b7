//! Resuming a run with `--resume RUN_ID`: from any working directory it writes into the
//! run's own output directory, and it keeps the run's summary.

use std::path::PathBuf;

use crate::common::accounts::write_intent_accounts;
use crate::common::files::{file_sha, json_file, names, utf8};
use crate::common::ledger::{letter_of, open_ledger};
use crate::common::{self, Fixture, array};
use crate::{AS_OF, missive, run_config, samples_run};

#[test]
fn resume_from_another_directory_writes_into_the_runs_own_output_directory() {
    let work = Fixture::empty();
    let accounts = work.join("accounts.jsonl");
    write_intent_accounts(&accounts, 3);
    let run = common::missive_in(
        work.path(),
        &[
            "--config",
            run_config(),
            "run",
            "--accounts",
            utf8(&accounts),
            "--out",
            "out",
            "--as-of",
            AS_OF,
            "--allow-past-mail-date",
        ],
    );
    run.expect_code(0);
    let ledger_path = work.join("out/missive.db");
    let key = "CT-9000000/intent_to_offset/L1";
    missive(&["mark", key, "cancelled", "--ledger", utf8(&ledger_path)]).expect_code(0);

    let elsewhere = Fixture::empty();
    let resumed = common::missive_in(
        elsewhere.path(),
        &[
            "--config",
            run_config(),
            "run",
            "--resume",
            "1",
            "--ledger",
            utf8(&ledger_path),
            "--allow-past-mail-date",
        ],
    );
    resumed.expect_code(0);
    assert!(
        !elsewhere.join("out").exists(),
        "the resume wrote into the working directory: {:?}",
        names(&elsewhere.join("out"))
    );
    let ledger = open_ledger(&ledger_path);
    let letter = letter_of(&ledger, key);
    let file: PathBuf = work.join("out").join(letter.file.as_deref().expect("file"));
    assert_eq!(letter.file_sha256, Some(file_sha(&file)));
}

#[test]
fn resuming_a_run_keeps_its_summary() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    samples_run(&out, AS_OF).expect_code(0);
    let summary = json_file(&out.join("run-1.json"));
    assert_eq!(array(&summary["letters"]).len(), 31);
    let ledger = out.join("missive.db");
    let resumed = missive(&[
        "run",
        "--resume",
        "1",
        "--ledger",
        utf8(&ledger),
        "--allow-past-mail-date",
    ]);
    resumed.expect_code(0);
    assert_eq!(json_file(&out.join("run-1.json")), summary);
}
