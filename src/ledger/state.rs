//! Letter, run, email and batch states, the allowed changes of a letter's state, and what
//! decide sees of a letter. These are the rules every backend shares.

use std::fmt;

use serde::Serialize;

use super::{LedgerError, LetterRecord};
use crate::account::Notice;
use crate::letter::{LetterKind, Variant};

/// A state (or role) stored in the ledger by its snake_case name: the enum with `ALL`,
/// `as_str`, `parse`, `Display` (the name) and `Serialize` (the name), one definition for
/// every state so they read and store alike.
macro_rules! stored_names {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// What a value is called in messages (`letter state`).
            pub const WHAT: &'static str = $what;

            /// The snake_case name stored in the ledger and printed.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value named `text` (as [`Self::as_str`] writes it), if any.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_names! {
    /// A letter's state. Stored as the snake_case string ([`LetterState::as_str`]).
    LetterState, "letter state" {
        /// Due, recorded by a run, not yet rendered.
        Planned => "planned",
        /// Its file is complete on disk.
        Rendered => "rendered",
        /// The print was handed to the mailroom.
        Released => "released",
        /// An email is being sent (the outcome is not known yet).
        Sending => "sending",
        /// The email was accepted for delivery.
        Sent => "sent",
        /// Rendering or sending failed; it may be planned again.
        Failed => "failed",
        /// A send was attempted and its outcome is unknown: resend only deliberately.
        Uncertain => "uncertain",
        /// It came back undeliverable; it covers nothing and may be reissued.
        Returned => "returned",
        /// Pulled (by the mailroom or an operator); it may be reissued.
        Cancelled => "cancelled",
    }
}

impl LetterState {
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

stored_names! {
    /// Where a run stands. Stored as the snake_case string ([`RunStatus::as_str`]).
    RunStatus, "run status" {
        /// Started and not finished (or its process died and no run has started since).
        Running => "running",
        /// Completed; every letter it planned reached a final outcome for the run.
        Finished => "finished",
        /// Found still `running` when a later run began: its process died.
        Interrupted => "interrupted",
        /// Stopped by an error.
        Failed => "failed",
    }
}

stored_names! {
    /// Where an email stands (its own once-only state; for role `letter` it moves together
    /// with the letter's). Stored as the snake_case string ([`EmailState::as_str`]).
    EmailState, "email state" {
        /// Composed, waiting to be sent.
        Pending => "pending",
        /// Its SMTP transaction started (committed before it did); outcome not known yet.
        Sending => "sending",
        /// The server accepted it.
        Sent => "sent",
        /// Nobody knows whether it arrived: never resent automatically.
        Uncertain => "uncertain",
        /// Refused for good (or marked failed by a person): never resent.
        Failed => "failed",
        /// Its letter no longer goes by email.
        Cancelled => "cancelled",
    }
}

impl EmailState {
    /// True while an SMTP transaction may be under way or its outcome is unknown: such an
    /// email is never replaced when its letter is planned again.
    pub fn is_in_flight(self) -> bool {
        matches!(self, EmailState::Sending | EmailState::Uncertain)
    }
}

stored_names! {
    /// Whose email it is. Stored as the snake_case string ([`EmailRole::as_str`]).
    EmailRole, "email role" {
        /// The letter itself goes by email (its channel is email).
        Letter => "letter",
        /// An email copy of an intent to offset; the letter itself goes by certified mail.
        Copy => "copy",
    }
}

stored_names! {
    /// Where a print batch stands. Stored as the snake_case string ([`BatchState::as_str`]).
    BatchState, "batch state" {
        /// Its file is complete and recorded, not yet handed to the mailroom.
        Written => "written",
        /// The operator released it: its letters are `released`.
        Released => "released",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_the_transitions_are_the_documented_ones() {
        use LetterState::*;
        for s in LetterState::ALL {
            assert_eq!(LetterState::parse(s.as_str()), Some(s));
            assert!(!s.can_move_to(s), "{s} → {s} is no change");
        }
        assert_eq!(LetterState::parse("mailed"), None);
        let sent: Vec<LetterState> = LetterState::ALL
            .into_iter()
            .filter(|s| s.counts_as_sent())
            .collect();
        assert_eq!(sent, [Rendered, Released, Sending, Sent, Uncertain]);
        let moves: Vec<(LetterState, Vec<LetterState>)> = LetterState::ALL
            .into_iter()
            .map(|from| {
                let to = LetterState::ALL
                    .into_iter()
                    .filter(|to| from.can_move_to(*to))
                    .collect();
                (from, to)
            })
            .collect();
        let expected = vec![
            (Planned, vec![Rendered, Failed, Cancelled]),
            (
                Rendered,
                vec![Released, Sending, Failed, Returned, Cancelled],
            ),
            (Released, vec![Returned, Cancelled]),
            (Sending, vec![Rendered, Sent, Failed, Uncertain]),
            (Sent, vec![Returned]),
            (Failed, vec![Planned, Cancelled]),
            (Uncertain, vec![Sending, Sent, Failed]),
            (Returned, vec![Planned]),
            (Cancelled, vec![Planned]),
        ];
        assert_eq!(moves, expected);
        assert_eq!(allowed_moves(Released), "returned or cancelled");
    }
}
