//! The work queue's records: what a worker needs to render a planned letter (its payload)
//! and the claims that share a run's letters between processes.
//!
//! Invariants every backend keeps: a payload belongs to one letter key and one run, and
//! recording it again replaces it and clears its claim; only a letter still `planned` in
//! the payload's run can be claimed, and only while it has no unexpired claim; a claim
//! lasts until its lease runs out by the backend's clock, after which the letter is
//! claimable again. Claims need no cleanup: a letter that leaves `planned` is no longer
//! claimable, and a letter planned again in a later run is claimable only once that run
//! records its payload (which clears the old claim).

use crate::letter::LetterKey;

/// What a worker needs to render one planned letter: opaque text to the ledger (the runner
/// writes and reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterPayload {
    /// The letter's key.
    pub key: LetterKey,
    /// The payload (the runner's JSON).
    pub payload: String,
}

/// A letter a worker claimed: its key and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedLetter {
    /// The letter's key.
    pub key: LetterKey,
    /// Its payload as recorded.
    pub payload: String,
}

/// How much of a run's work is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkLeft {
    /// Letters of the run still `planned`.
    pub planned: usize,
    /// Of those, how many are under an unexpired claim.
    pub claimed: usize,
    /// Payloads recorded for the run, whatever their letters' state: none means its record
    /// step has not happened yet (a worker waits rather than leaving).
    pub recorded: usize,
}
