//! The run log.

use super::{Backend, intent, start};
use crate::ledger::*;

pub(super) fn beginning_a_run_interrupts_a_stale_running_one<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
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

pub(super) fn a_failed_run_keeps_its_reason_and_may_be_resumed<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    let run = start(&mut ledger);
    ledger.fail_run(run.id, "disk full").expect("fail");
    let failed = ledger.run(run.id).expect("read").expect("run");
    assert_eq!(
        (failed.status, failed.failure.as_deref()),
        (RunStatus::Failed, Some("disk full"))
    );
    assert!(failed.finished_at.is_some());
    let resumed = ledger.resume_run(run.id).expect("resume");
    assert_eq!(
        (resumed.status, resumed.finished_at),
        (RunStatus::Running, None)
    );
    assert_eq!(
        resumed.failure.as_deref(),
        Some("disk full"),
        "kept for history"
    );
    assert_eq!(ledger.runs().expect("runs"), [resumed]);
    assert!(matches!(
        ledger.fail_run(99, "x"),
        Err(LedgerError::UnknownRun { run_id: 99 })
    ));
    assert!(matches!(
        ledger.resume_run(99),
        Err(LedgerError::UnknownRun { run_id: 99 })
    ));
}
