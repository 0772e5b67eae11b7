//! A letter's payload in the work queue: what the record step stores for each letter it
//! will render (the due letter with the fields the plan JSON leaves out, its account, its
//! mail piece and marks, the template version and fonts the coordinator renders with), so
//! that any process can render it without the accounts file.
//!
//! Invariant: a payload reads back only as the letter the ledger planned ([`read_payload`]
//! checks its key and that its plan entry hashes to the recorded `data_sha256`).

use serde::{Deserialize, Serialize};

use super::records::{RecordError, plan_sha256};
use crate::account::Account;
use crate::compose::MailMarks;
use crate::decide::{DueLetter, Facts, Presentation};
use crate::ledger::{ClaimedLetter, LetterPayload};
use crate::letter::LetterKey;

/// What a worker needs to render one letter, as the ledger stores it (JSON).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Payload {
    /// The due letter (its plan JSON: what `data_sha256` hashes).
    pub(super) letter: DueLetter,
    /// The fields of the due letter the plan JSON leaves out.
    pub(super) subject: String,
    pub(super) facts: Facts,
    pub(super) shown: Presentation,
    /// The letter's account, as composed from.
    pub(super) account: Account,
    /// The mail piece the file carries (print letters with an address) and its marks.
    pub(super) piece: Option<i64>,
    pub(super) marks: Option<MailMarks>,
    /// The version of the letter's template the coordinator planned with: a worker with
    /// another version refuses to render it.
    pub(super) template_sha256: String,
    /// The coordinator's fonts ([`crate::render::Renderer::fonts_sha256`]): a worker with
    /// other fonts refuses to render, since its files could break lines and pages
    /// differently from the coordinator's. Empty in a payload of an older missive, which
    /// did not record it: refused too, rather than the letter failed as unreadable.
    #[serde(default)]
    pub(super) fonts_sha256: String,
}

/// What a payload says the letter is rendered with: its template's version and the fonts.
#[derive(Debug, Clone, Copy)]
pub(super) struct RenderedWith<'a> {
    /// The template version (content hash of template, partials and layout).
    pub(super) template_sha256: &'a str,
    /// The fonts' hash.
    pub(super) fonts_sha256: &'a str,
}

/// The payload of `letter` (of `account`), with its mail piece and marks if it has one and
/// the template version and fonts the coordinator renders with.
pub(super) fn payload_of(
    letter: &DueLetter,
    account: &Account,
    piece: Option<(i64, &MailMarks)>,
    with: RenderedWith<'_>,
) -> Result<LetterPayload, RecordError> {
    let payload = Payload {
        letter: letter.clone(),
        subject: letter.subject.clone(),
        facts: letter.facts.clone(),
        shown: letter.shown.clone(),
        account: account.clone(),
        piece: piece.map(|(id, _)| id),
        marks: piece.map(|(_, marks)| marks.clone()),
        template_sha256: with.template_sha256.to_owned(),
        fonts_sha256: with.fonts_sha256.to_owned(),
    };
    let text = serde_json::to_string(&payload).map_err(|source| RecordError::Payload {
        key: letter.key.clone(),
        source,
    })?;
    Ok(LetterPayload {
        key: letter.key.clone(),
        payload: text,
        data_sha256: plan_sha256(letter)?,
    })
}

/// A claimed letter read back from its payload, checked against the ledger's plan hash.
pub(super) fn read_payload(
    claimed: &ClaimedLetter,
    recorded_sha256: &str,
) -> Result<Payload, String> {
    read_stored(&claimed.key, &claimed.payload, recorded_sha256)
}

/// The payload text stored for letter `key`, read back and checked: it must be that
/// letter, and its plan entry must hash to `recorded_sha256`.
pub(super) fn read_stored(
    key: &LetterKey,
    text: &str,
    recorded_sha256: &str,
) -> Result<Payload, String> {
    let mut payload: Payload = serde_json::from_str(text)
        .map_err(|e| format!("its payload in the ledger cannot be read: {e}"))?;
    if payload.letter.key != *key {
        return Err(format!(
            "its payload in the ledger is the letter `{}`",
            payload.letter.key
        ));
    }
    payload.letter.subject = std::mem::take(&mut payload.subject);
    payload.letter.facts = std::mem::take(&mut payload.facts);
    payload.letter.shown = std::mem::take(&mut payload.shown);
    let sha = plan_sha256(&payload.letter).map_err(|e| e.to_string())?;
    if sha != recorded_sha256 {
        return Err(format!(
            "its payload's plan entry (sha256 {sha}) is not the one the ledger recorded for it ({recorded_sha256})"
        ));
    }
    Ok(payload)
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
