//! Letter and run states, the allowed changes between them, and what decide sees of a letter.

use std::fmt;

use serde::Serialize;

use super::{LedgerError, LetterRecord};
use crate::account::Notice;
use crate::letter::{LetterKind, Variant};

/// A letter's state. Stored as the snake_case string ([`LetterState::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LetterState {
    /// Due, recorded by a run, not yet rendered.
    Planned,
    /// Its file is complete on disk.
    Rendered,
    /// The print was handed to the mailroom.
    Released,
    /// An email is being sent (the outcome is not known yet).
    Sending,
    /// The email was accepted for delivery.
    Sent,
    /// Rendering or sending failed; it may be planned again.
    Failed,
    /// A send was attempted and its outcome is unknown: resend only deliberately.
    Uncertain,
    /// It came back undeliverable; it covers nothing and may be reissued.
    Returned,
    /// Pulled (by the mailroom or an operator); it may be reissued.
    Cancelled,
}

impl LetterState {
    /// Every state, in lifecycle order.
    pub const ALL: [LetterState; 9] = [
        LetterState::Planned,
        LetterState::Rendered,
        LetterState::Released,
        LetterState::Sending,
        LetterState::Sent,
        LetterState::Failed,
        LetterState::Uncertain,
        LetterState::Returned,
        LetterState::Cancelled,
    ];

    /// The snake_case name stored in the ledger and printed by `history`.
    pub fn as_str(self) -> &'static str {
        match self {
            LetterState::Planned => "planned",
            LetterState::Rendered => "rendered",
            LetterState::Released => "released",
            LetterState::Sending => "sending",
            LetterState::Sent => "sent",
            LetterState::Failed => "failed",
            LetterState::Uncertain => "uncertain",
            LetterState::Returned => "returned",
            LetterState::Cancelled => "cancelled",
        }
    }

    /// The state named `text` (as [`LetterState::as_str`] writes it), if any.
    pub fn parse(text: &str) -> Option<Self> {
        LetterState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Produced or delivered: counts as a notice for decide (rendered, released, sending,
    /// sent, uncertain), so the letter is never produced again under its key.
    pub fn counts_as_sent(self) -> bool {
        matches!(
            self,
            LetterState::Rendered
                | LetterState::Released
                | LetterState::Sending
                | LetterState::Sent
                | LetterState::Uncertain
        )
    }

    /// A letter in this state may be planned again (a reissue keeps its key).
    pub fn can_replan(self) -> bool {
        matches!(
            self,
            LetterState::Planned
                | LetterState::Failed
                | LetterState::Returned
                | LetterState::Cancelled
        )
    }

    /// True when a letter may move from `self` to `to` (see the module docs). A move to
    /// the same state is not a change and is not listed here.
    pub fn can_move_to(self, to: LetterState) -> bool {
        use LetterState::*;
        match self {
            Planned => matches!(to, Rendered | Failed | Cancelled),
            Rendered => matches!(to, Released | Sending | Failed | Cancelled | Returned),
            Released => matches!(to, Returned | Cancelled),
            Sending => matches!(to, Sent | Uncertain | Failed | Rendered),
            Uncertain => matches!(to, Sending | Sent | Failed),
            Failed => matches!(to, Planned | Cancelled),
            Sent => matches!(to, Returned),
            Returned | Cancelled => matches!(to, Planned),
        }
    }
}

impl fmt::Display for LetterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run stands. Stored as the snake_case string ([`RunStatus::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started and not finished (or its process died and no run has started since).
    Running,
    /// Completed; every letter it planned reached a final outcome for the run.
    Finished,
    /// Found still `running` when a later run began: its process died.
    Interrupted,
    /// Stopped by an error.
    Failed,
}

impl RunStatus {
    /// The snake_case name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }

    /// The status named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        [
            RunStatus::Running,
            RunStatus::Finished,
            RunStatus::Interrupted,
            RunStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The notice decide sees for a recorded letter: kind, mailed_on = letter_date, subject
/// from kind + variant + subject (intent_to_offset → `Liabilities`, offset_notice →
/// `Offset`, refund excess_offset → `Offset`, refund late_return → `LateReturn`,
/// review_outcome → `Review`), undeliverable when `returned`. `None` for a letter that is
/// not a notice (planned, failed, cancelled).
pub fn notice_of(letter: &LetterRecord) -> Result<Option<Notice>, LedgerError> {
    use crate::account::NoticeSubject;
    if !(letter.state.counts_as_sent() || letter.state == LetterState::Returned) {
        return Ok(None);
    }
    let id = letter.subject.clone();
    let subject = match (letter.kind, letter.variant) {
        (LetterKind::IntentToOffset, _) => {
            NoticeSubject::Liabilities(letter.subject.split('+').map(str::to_owned).collect())
        }
        (LetterKind::OffsetNotice, _) => NoticeSubject::Offset(id),
        (LetterKind::Refund, Some(Variant::ExcessOffset)) => NoticeSubject::Offset(id),
        (LetterKind::Refund, Some(Variant::LateReturn)) => NoticeSubject::LateReturn(id),
        (LetterKind::ReviewOutcome, _) => NoticeSubject::Review(id),
        (LetterKind::Refund, other) => {
            return Err(LedgerError::BadNotice {
                key: letter.key.clone(),
                reason: format!(
                    "a refund needs the variant excess_offset or late_return, not {}",
                    other.map_or("none", Variant::as_str)
                ),
            });
        }
    };
    Ok(Some(Notice {
        kind: letter.kind,
        mailed_on: letter.letter_date,
        subject,
        undeliverable: letter.state == LetterState::Returned,
    }))
}

/// The states a letter in `from` may move to, for messages ("rendered, failed or cancelled").
pub fn allowed_moves(from: LetterState) -> String {
    let names: Vec<&str> = LetterState::ALL
        .into_iter()
        .filter(|to| from.can_move_to(*to))
        .map(LetterState::as_str)
        .collect();
    match names.split_last() {
        None => "nothing else".to_owned(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}
