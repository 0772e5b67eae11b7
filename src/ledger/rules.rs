//! The ledger's rules that do not depend on where it is stored: what planning, rendering,
//! moving, releasing and allocating do to a letter, and the notes its events carry. Every
//! backend decides with these functions and stores the outcome, so the backends cannot
//! drift apart (the contract tests check the outcome).

use std::collections::HashMap;

use super::{
    LedgerError, LetterRecord, LetterState, MailPiece, PieceRanges, PieceRequest, PlannedLetter,
    RenderedFile, TreasuryRecord, allowed_moves, notice_of,
};
use crate::account::{Notice, TopReferral};
use crate::letter::{LetterKey, MailClass};

/// What planning one letter does, given the letter as recorded (state, run, data hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Planned {
    /// Inserted (`None`) or moved to planned from this state: record an event with this
    /// detail, and take the letter's new data, clearing its file.
    Changed(Option<LetterState>, String),
    /// Already planned in this run with the same data: nothing to do.
    Unchanged,
    /// Counts as sent: left alone, and not planned in this run.
    Skipped,
}

/// Decides what planning `letter` in `run_id` does to the letter as recorded.
pub(super) fn plan_change(
    current: Option<(LetterState, i64, &str)>,
    run_id: i64,
    letter: &PlannedLetter,
) -> Planned {
    let Some((state, old_run, old_data)) = current else {
        return Planned::Changed(None, format!("planned by run {run_id}"));
    };
    if state.counts_as_sent() {
        return Planned::Skipped;
    }
    let data_changed = old_data != letter.data_sha256;
    if state == LetterState::Planned && old_run == run_id && !data_changed {
        return Planned::Unchanged;
    }
    let mut detail = if state == LetterState::Planned && old_run == run_id {
        format!("planned again by run {run_id}")
    } else if state == LetterState::Planned {
        format!("planned again by run {run_id} (was planned by run {old_run})")
    } else {
        format!("reissued by run {run_id} after {state}")
    };
    if data_changed {
        detail.push_str(&format!(
            "; letter data changed (data sha256 {old_data} → {})",
            letter.data_sha256
        ));
    }
    Planned::Changed(Some(state), detail)
}

/// What recording one rendered file does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RenderOutcome {
    /// Moves from planned to rendered.
    Done,
    /// Already rendered to this very file: nothing to do.
    AlreadyRendered,
    /// In this state, which may not become rendered.
    Refused(LetterState),
    /// Planned, but with other data (or another payload) than the file was composed from:
    /// the letter was planned again after the file's composer read it.
    Stale {
        /// The hash the file was made from.
        rendered: String,
        /// The hash the letter is planned with now.
        planned: String,
    },
    /// Planned in another run than the one recording it (a worker of an interrupted run).
    OtherRun(i64),
    /// Not in the ledger.
    Unknown,
}

/// The letter as recorded, as [`render_change`] weighs it.
#[derive(Debug, Clone)]
pub(super) struct RenderTarget {
    /// Its state.
    pub state: LetterState,
    /// Its file, if rendered.
    pub file: Option<String>,
    /// That file's hash.
    pub file_sha256: Option<String>,
    /// The plan hash of its data.
    pub data_sha256: String,
    /// The run it is planned (or was rendered) in.
    pub run_id: i64,
    /// The hash of its current payload in that run, if it has one.
    pub payload_sha256: Option<String>,
}

/// Decides what recording `file` for run `run_id` does to the letter as recorded (`None`:
/// not in the ledger). Only a letter planned in that run whose data (and, for a file made
/// from a payload, whose current payload) is the file's becomes rendered.
pub(super) fn render_change(
    current: Option<RenderTarget>,
    run_id: i64,
    file: &RenderedFile,
) -> RenderOutcome {
    let Some(current) = current else {
        return RenderOutcome::Unknown;
    };
    let stale = |rendered: &str, planned: &str| RenderOutcome::Stale {
        rendered: rendered.to_owned(),
        planned: planned.to_owned(),
    };
    match current.state {
        LetterState::Planned if current.run_id != run_id => RenderOutcome::OtherRun(current.run_id),
        LetterState::Planned if current.data_sha256 != file.data_sha256 => {
            stale(&file.data_sha256, &current.data_sha256)
        }
        LetterState::Planned => match (&file.payload_sha256, current.payload_sha256.as_deref()) {
            (Some(made_from), current_payload) if current_payload != Some(made_from.as_str()) => {
                stale(made_from, current_payload.unwrap_or("none (withdrawn)"))
            }
            _ => RenderOutcome::Done,
        },
        LetterState::Rendered
            if current.file.as_deref() == Some(file.file.as_str())
                && current.file_sha256.as_deref() == Some(file.file_sha256.as_str()) =>
        {
            RenderOutcome::AlreadyRendered
        }
        other => RenderOutcome::Refused(other),
    }
}

/// The error of a render outcome that fails the chunk, if it does; `run_id` is the run
/// recording it.
pub(super) fn render_refusal(
    outcome: RenderOutcome,
    key: &LetterKey,
    run_id: i64,
) -> Option<LedgerError> {
    match outcome {
        RenderOutcome::Stale { rendered, planned } => Some(LedgerError::StaleData {
            key: key.clone(),
            rendered,
            planned,
        }),
        RenderOutcome::OtherRun(planned_in) => Some(LedgerError::NotThisRun {
            key: key.clone(),
            run_id,
            planned_in,
        }),
        RenderOutcome::Done | RenderOutcome::AlreadyRendered => None,
        RenderOutcome::Refused(state) => Some(LedgerError::NotPlanned {
            key: key.clone(),
            state,
        }),
        RenderOutcome::Unknown => Some(LedgerError::UnknownLetter { key: key.clone() }),
    }
}

/// The note of a `rendered` event: the file and template on record.
pub(super) fn rendered_detail(run_id: i64, file: &RenderedFile) -> String {
    format!(
        "rendered by run {run_id}: file {} (sha256 {}, {} pages), template {} (sha256 {})",
        file.file, file.file_sha256, file.pages, file.template, file.template_sha256
    )
}

/// Whether a letter in `from` moves to `to`: `Ok(false)` for the same state (no change, no
/// event), `Ok(true)` for an allowed move, [`LedgerError::Transition`] otherwise.
pub(super) fn check_move(
    key: &LetterKey,
    from: LetterState,
    to: LetterState,
) -> Result<bool, LedgerError> {
    if from == to {
        return Ok(false);
    }
    if !from.can_move_to(to) {
        return Err(LedgerError::Transition {
            key: key.clone(),
            from,
            to,
            allowed: allowed_moves(from),
        });
    }
    Ok(true)
}

/// The note of a letter's `released` event.
pub(super) fn release_note(batch: &str, piece: &MailPiece, detail: &str) -> String {
    format!(
        "released in batch {batch} (piece {}, IMb serial {}{}){}{detail}",
        piece.sequence.unwrap_or_default(),
        piece.imb_serial,
        piece
            .article_number
            .as_deref()
            .map(|a| format!(", article {a}"))
            .unwrap_or_default(),
        if detail.is_empty() { "" } else { ": " },
    )
}

/// The note of a letter email's `sending` event.
pub(super) fn sending_detail(to_address: &str, message_id: &str) -> String {
    format!("sending by email to {to_address}, Message-ID {message_id}")
}

/// Why an email left `sending` becomes `uncertain`.
pub(super) const INTERRUPTED_SEND: &str =
    "a send was interrupted before the server's reply was recorded";

/// The last error of a pending email cancelled because its letter no longer goes by email.
pub(super) const NO_LONGER_EMAIL: &str = "the letter no longer goes by email";

/// The note of the event a person's verdict on an email copy leaves on its intent to
/// offset (whose state does not change).
pub(super) fn copy_verdict_detail(detail: &str) -> String {
    format!("email copy: {detail}")
}

/// Why a reviewer name is refused, if it is.
pub(super) fn reviewer_problem(reviewer: &str) -> Option<&'static str> {
    if reviewer.trim().is_empty() {
        Some("the reviewer's name is blank")
    } else if reviewer.chars().count() > 200 {
        Some("the reviewer's name is longer than 200 characters")
    } else if reviewer.chars().any(char::is_control) {
        Some("the reviewer's name contains control characters")
    } else {
        None
    }
}

/// Whether a letter's open piece still serves `request`: same mail class and routing code
/// (a letter planned again with another address or class gets a new piece).
pub(super) fn piece_fits(piece: &MailPiece, request: &PieceRequest) -> bool {
    piece.mail_class == request.mail_class && piece.routing_code == request.routing_code
}

/// The next number of a counter whose last given number is `last`, within `range`, and
/// how many are left from it.
pub(super) fn next_in(last: Option<u64>, range: (u64, u64)) -> (u64, u64) {
    let next = last.map_or(range.0, |l| (l + 1).max(range.0));
    let left = if next > range.1 {
        0
    } else {
        range.1 - next + 1
    };
    (next, left)
}

/// Refuses an allocation of new pieces for `new` that needs more serials or article
/// numbers than are left: nothing is allocated then.
pub(super) fn check_ranges(
    new: &[&PieceRequest],
    serials_left: u64,
    articles_left: u64,
    ranges: PieceRanges,
) -> Result<(), LedgerError> {
    let certified = new
        .iter()
        .filter(|r| r.mail_class == MailClass::Certified)
        .count() as u64;
    if (new.len() as u64) > serials_left {
        return Err(LedgerError::RangeExhausted {
            what: "IMb serial",
            key: "serial_last",
            needed: new.len() as u64,
            left: serials_left,
            last: ranges.serial.1,
        });
    }
    if certified > articles_left {
        return Err(LedgerError::RangeExhausted {
            what: "certified article number",
            key: "certified_last",
            needed: certified,
            left: articles_left,
            last: ranges.article.1,
        });
    }
    Ok(())
}

/// The notices decide sees, by account, from the letters that count as sent or were
/// returned (in the order given).
pub(super) fn notices_by_account<'a>(
    letters: impl IntoIterator<Item = &'a LetterRecord>,
) -> Result<HashMap<String, Vec<Notice>>, LedgerError> {
    let mut notices: HashMap<String, Vec<Notice>> = HashMap::new();
    for letter in letters {
        if let Some(notice) = notice_of(letter)? {
            notices
                .entry(letter.account_id.clone())
                .or_default()
                .push(notice);
        }
    }
    Ok(notices)
}

/// What TOP holds per referral (notice + liabilities), by account: the latest of the
/// `records` (oldest first) for each, its amount zero after a delete.
pub(super) fn holdings(records: Vec<TreasuryRecord>) -> HashMap<String, Vec<TopReferral>> {
    let mut latest: HashMap<(LetterKey, Vec<String>), (TreasuryRecord, chrono::NaiveDate)> =
        HashMap::new();
    for record in records {
        let a = &record.action;
        let key = (a.notice_key.clone(), a.liability_ids.clone());
        let first_on = latest
            .get(&key)
            .map_or(record.at.date_naive(), |(_, on)| *on);
        latest.insert(key, (record, first_on));
    }
    let mut out: HashMap<String, Vec<TopReferral>> = HashMap::new();
    for ((notice_key, liability_ids), (record, referred_on)) in latest {
        out.entry(record.action.account_id.clone())
            .or_default()
            .push(TopReferral {
                notice_key,
                liability_ids,
                referred_on,
                amount: record.action.amount_after,
                updated_on: (record.action.action != "add").then(|| record.at.date_naive()),
            });
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| {
            (&a.notice_key, &a.liability_ids).cmp(&(&b.notice_key, &b.liability_ids))
        });
    }
    out
}
