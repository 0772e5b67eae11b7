//! Accounts a run cannot read twice: it plans them once to record the letters and once to
//! store what rendering each needs, so a pipe is refused before anything is recorded.

use std::process::Command;

use missive::ledger::prelude::*;

use crate::common::Fixture;
use crate::common::files::utf8;
use crate::common::ledger::open_ledger;
use crate::{AS_OF, run_cmd};

#[test]
fn accounts_from_a_named_pipe_are_refused_before_anything_is_recorded() {
    let dir = Fixture::empty();
    let fifo = dir.join("accounts.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo failed");
    let out = dir.join("out");
    let run = run_cmd(utf8(&fifo), &out, &["--as-of", AS_OF]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is neither a regular file nor a directory")
            && run.stderr.contains("accounts.jsonl"),
        "{}",
        run.stderr
    );
    let ledger = open_ledger(&out.join("missive.db"));
    let runs = ledger.runs().expect("runs");
    assert!(
        runs.iter().all(|r| ledger
            .letters_of_run(r.id, None)
            .expect("letters")
            .is_empty()),
        "no letter recorded"
    );
}
