//! The work queue's records: what a worker needs to render a planned letter (its payload)
//! and the claims that share a run's letters between processes.
//!
//! Invariants every backend keeps: a payload belongs to one letter key and one run;
//! recording a payload replaces the key's earlier one and clears its claim; withdrawing a
//! run's payloads except those of the letters it plans now removes those of its letters
//! still `planned` (a resumed run that no longer plans a letter never has it rendered; a
//! letter already rendered keeps the payload its file was made from, which the batch step
//! reads back). A letter can be claimed only while it is still
//! `planned` in the payload's run, that run is `running`, the payload was made from the
//! letter's data as planned now (`data_sha256`), and no unexpired claim holds it; a claim
//! lasts until its lease runs out by the backend's clock, after which the letter is
//! claimable again. `record_rendered` with a payload's hash refuses a file made from any
//! other payload than the letter's current one. Claims need no cleanup: a letter that
//! leaves `planned` is no longer claimable.

use sha2::{Digest, Sha256};

use crate::letter::LetterKey;

/// What a worker needs to render one planned letter: opaque text to the ledger (the runner
/// writes and reads it), with the plan hash of the letter data it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterPayload {
    /// The letter's key.
    pub key: LetterKey,
    /// The payload (the runner's JSON).
    pub payload: String,
    /// The plan hash of the data it carries: the letter is claimable only while the ledger
    /// plans it with this data.
    pub data_sha256: String,
}

/// A letter a worker claimed: its key and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedLetter {
    /// The letter's key.
    pub key: LetterKey,
    /// Its payload as recorded.
    pub payload: String,
    /// The payload's hash ([`payload_sha256`]): recording the file with it proves the file
    /// was made from the letter's current payload.
    pub payload_sha256: String,
    /// The plan hash the letter is planned with, read in the claim's transaction: the
    /// payload's letter must hash to it.
    pub data_sha256: String,
}

/// The SHA-256 (hex) of a payload's text, as the ledger stores it beside the payload.
pub fn payload_sha256(payload: &str) -> String {
    Sha256::digest(payload.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How much of a run's work is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkLeft {
    /// Letters of the run still `planned` that have a payload of the run (letters planned
    /// in the run whose payload was withdrawn are nobody's work).
    pub planned: usize,
    /// Of those, how many are under an unexpired claim.
    pub claimed: usize,
    /// Payloads recorded for the run, whatever their letters' state: none means its record
    /// step has not happened yet (a worker waits rather than leaving).
    pub recorded: usize,
}
