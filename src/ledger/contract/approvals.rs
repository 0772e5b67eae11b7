//! Template approvals.

use super::{Backend, new_approval};
use crate::ledger::*;

pub(super) fn approvals_cover_exactly_one_version_and_survive_reopening<L: Backend>() {
    let (home, mut ledger) = L::fresh();
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
    let ledger = L::reopen(&home, ledger);
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

pub(super) fn approvals_need_a_reviewer<L: Backend>() {
    let (_home, mut ledger) = L::fresh();
    for bad in ["", "   ", "a\nb"] {
        let err = ledger
            .record_approval(&new_approval("aaaa", bad))
            .expect_err("refused");
        assert!(matches!(err, LedgerError::BadApproval { .. }), "{err}");
    }
}
