//! One run at a time: a run (or `mark`) is refused at once while another process holds the
//! ledger's lock, whether that is a test holding it or a run still rendering.

use std::time::{Duration, Instant};

use missive::ledger::LetterState;
use missive::ledger::prelude::*;

use crate::common::Fixture;
use crate::common::accounts::write_intent_accounts;
use crate::common::files::{count_pdfs, pdfs, utf8};
use crate::common::ledger::open_ledger;
use crate::{AS_OF, ITO_1001, missive, samples_run, spawn_args, spawn_run};

#[test]
fn a_run_is_refused_while_another_holds_the_ledger_lock() {
    let dir = Fixture::empty();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("create out");
    let ledger_path = out.join("missive.db");
    let ledger = open_ledger(&ledger_path);
    let guard = ledger.lock_for_run().expect("take the run lock");

    let run = samples_run(&out, AS_OF);
    run.expect_code(2);
    assert!(
        run.stderr.contains("another missive run is using")
            && run
                .stderr
                .contains(&format!("{}.lock", ledger_path.display())),
        "{}",
        run.stderr
    );
    assert!(pdfs(&out).is_empty(), "a refused run wrote PDFs");
    assert!(!out.join("treasury").exists());
    assert!(
        ledger.runs().expect("runs").is_empty(),
        "a refused run recorded a run"
    );

    // mark waits for no one either: it needs the lock too.
    let mark = missive(&["mark", ITO_1001, "returned", "--ledger", utf8(&ledger_path)]);
    mark.expect_code(2);
    assert!(
        mark.stderr.contains("another missive run"),
        "{}",
        mark.stderr
    );

    drop(guard);
    let run = samples_run(&out, AS_OF);
    run.expect_code(0);
    assert_eq!(pdfs(&out).len(), 31);
}

#[test]
fn a_second_run_started_while_one_is_rendering_is_refused() {
    let dir = Fixture::empty();
    let accounts = dir.join("accounts.jsonl");
    let keys = write_intent_accounts(&accounts, 300);
    let out = dir.join("out");
    let args = spawn_args(&accounts, &out, "1");
    let mut first = spawn_run(&args, &dir.join("first.log"));
    let started = Instant::now();
    while count_pdfs(&out) == 0 {
        assert!(
            first.try_wait().expect("poll").is_none(),
            "the first run ended before rendering"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no PDF after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = missive(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let first_still_running = first.try_wait().expect("poll").is_none();
    let status = first.wait().expect("wait for the first run");
    assert!(status.success(), "the first run failed: {status}");
    if first_still_running {
        second.expect_code(2);
        assert!(
            second.stderr.contains("another missive run is using"),
            "{}",
            second.stderr
        );
    } else {
        eprintln!("the first run finished before the second could test the lock");
    }
    let ledger = open_ledger(&out.join("missive.db"));
    let runs = ledger.runs().expect("runs");
    assert_eq!(runs.len(), 1, "only the first run is recorded: {runs:?}");
    assert_eq!(
        ledger
            .letters_of_run(1, Some(LetterState::Rendered))
            .expect("letters")
            .len(),
        keys.len()
    );
}
