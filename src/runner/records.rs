//! What the run records in the ledger, made from the stages' values.
//!
//! The ledger owns its types and imports no stage; the orchestrator, which knows both,
//! converts here: a due letter into the ledger's planned letter, a written PDF into a
//! rendered file, the plan's referrals and Treasury updates into Treasury actions.
//! Nothing here writes anything.

use std::collections::HashMap;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::config::hex;
use crate::decide::{DueLetter, Referral, TreasuryUpdate};
use crate::ledger::{PlannedLetter, RenderedFile, TreasuryAction};
use crate::letter::LetterKey;
use crate::money::Money;
use crate::produce::WrittenLetter;

/// A value could not be made into its ledger record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The plan entry of a letter could not be serialized to hash it.
    #[error("failed to hash the plan entry of `{key}`")]
    PlanHash {
        /// The letter.
        key: LetterKey,
        /// Why serializing failed.
        #[source]
        source: serde_json::Error,
    },
    /// A letter's payload (what a worker renders it from) could not be serialized.
    #[error("failed to write the payload of `{key}` for the ledger")]
    Payload {
        /// The letter.
        key: LetterKey,
        /// Why serializing failed.
        #[source]
        source: serde_json::Error,
    },
}

/// SHA-256 of the letter's plan JSON (what `plan --format json` prints for it): the ledger
/// keeps it so a changed letter under the same key is visible.
pub(crate) fn plan_sha256(due: &DueLetter) -> Result<String, RecordError> {
    let json = serde_json::to_vec(due).map_err(|source| RecordError::PlanHash {
        key: due.key.clone(),
        source,
    })?;
    Ok(hex(&Sha256::digest(&json)))
}

/// The ledger's view of a due letter.
pub(crate) fn planned_letter(due: &DueLetter) -> Result<PlannedLetter, RecordError> {
    Ok(PlannedLetter {
        key: due.key.clone(),
        account_id: due.account_id.clone(),
        kind: due.kind,
        variant: due.variant,
        channel: due.channel,
        mail_class: due.mail_class,
        letter_date: due.letter_date,
        deadline: due.deadline,
        liability_ids: due.liability_ids.clone(),
        subject: due.subject.clone(),
        data_sha256: plan_sha256(due)?,
    })
}

/// The file a letter was written to, as the ledger records it; `marks` is the mail piece
/// whose IMb and article number it was composed with, if any, and `data_sha256` the plan
/// hash of the letter data it was composed from and `payload_sha256` the hash of the
/// payload it was made from.
pub(crate) fn rendered_file(
    written: &WrittenLetter,
    marks: Option<i64>,
    data_sha256: String,
    payload_sha256: Option<String>,
) -> RenderedFile {
    RenderedFile {
        key: written.key.clone(),
        file: written.file.clone(),
        file_sha256: written.sha256.clone(),
        // A PDF of more than four billion pages is not a letter; the count saturates.
        pages: u32::try_from(written.pages).unwrap_or(u32::MAX),
        template: written.template.clone(),
        template_sha256: written.template_sha256.clone(),
        marks,
        data_sha256,
        payload_sha256,
    }
}

/// Referrals and Treasury updates as the actions a run records; `debtors` gives
/// each account's name and TIN's last four. Also returns each added referral's deadline.
pub(crate) fn treasury_actions(
    referrals: &[Referral],
    updates: &[TreasuryUpdate],
    debtors: &HashMap<String, (String, String)>,
) -> (Vec<TreasuryAction>, HashMap<LetterKey, NaiveDate>) {
    let debtor = |account: &str| {
        debtors
            .get(account)
            .map_or(("", ""), |(name, tin)| (name.as_str(), tin.as_str()))
    };
    let mut actions = Vec::new();
    let mut deadlines = HashMap::new();
    for r in referrals {
        let (name, tin) = debtor(&r.account_id);
        actions.push(treasury_add(r, name, tin));
        deadlines.insert(r.notice_key.clone(), r.deadline_passed);
    }
    for u in updates {
        let (name, tin) = debtor(&u.account_id);
        actions.push(treasury_update(u, name, tin));
    }
    (actions, deadlines)
}

/// The Treasury action that adds a referral this run makes.
pub(crate) fn treasury_add(
    referral: &Referral,
    debtor_name: &str,
    tin_last4: &str,
) -> TreasuryAction {
    TreasuryAction {
        action: "add".to_owned(),
        account_id: referral.account_id.clone(),
        notice_key: referral.notice_key.clone(),
        liability_ids: referral.liability_ids.clone(),
        amount_before: Money::ZERO,
        amount_after: referral.amount,
        reason: "deadline_passed".to_owned(),
        debtor_name: debtor_name.to_owned(),
        tin_last4: tin_last4.to_owned(),
        why: format!(
            "deadline {} of the notice passed; referable balance {}",
            referral.deadline_passed,
            referral.amount.dollars()
        ),
    }
}

/// The Treasury action (decrease or delete) of an update this run sends.
pub(crate) fn treasury_update(
    update: &TreasuryUpdate,
    debtor_name: &str,
    tin_last4: &str,
) -> TreasuryAction {
    TreasuryAction {
        action: update.action.as_str().to_owned(),
        account_id: update.account_id.clone(),
        notice_key: update.notice_key.clone(),
        liability_ids: update.liability_ids.clone(),
        amount_before: update.amount_before,
        amount_after: update.amount_after,
        reason: update.reason.as_str().to_owned(),
        debtor_name: debtor_name.to_owned(),
        tin_last4: tin_last4.to_owned(),
        why: update.why.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{UpdateAction, UpdateReason};

    fn money(text: &str) -> Money {
        Money::parse(text).expect("amount")
    }

    #[test]
    fn referrals_and_updates_become_the_actions_the_treasury_file_carries() {
        let referral = Referral {
            account_id: "CT-1".to_owned(),
            liability_ids: vec!["L1".to_owned(), "L2".to_owned()],
            amount: money("1040.00"),
            notice_key: LetterKey::intent_to_offset("CT-1", &["L1", "L2"]),
            deadline_passed: "2026-07-31".parse().expect("date"),
        };
        let add = treasury_add(&referral, "Ann Lee", "1234");
        assert_eq!(
            (
                add.action.as_str(),
                add.reason.as_str(),
                add.amount_before,
                add.amount_after
            ),
            ("add", "deadline_passed", Money::ZERO, money("1040.00"))
        );
        assert_eq!(add.dollars(), money("1040.00"));
        assert_eq!(
            add.why,
            "deadline 2026-07-31 of the notice passed; referable balance $1,040.00"
        );
        let update = TreasuryUpdate {
            account_id: "CT-1".to_owned(),
            notice_key: referral.notice_key.clone(),
            action: UpdateAction::Decrease,
            reason: UpdateReason::Reduced,
            amount_before: money("1040.00"),
            amount_after: money("960.00"),
            liability_ids: referral.liability_ids.clone(),
            why: "payments".to_owned(),
        };
        let down = treasury_update(&update, "Ann Lee", "1234");
        assert_eq!(
            (
                down.action.as_str(),
                down.reason.as_str(),
                down.why.as_str()
            ),
            ("decrease", UpdateReason::Reduced.as_str(), "payments")
        );
        assert_eq!(down.dollars(), money("80.00"));
        assert_eq!(
            (down.debtor_name.as_str(), down.tin_last4.as_str()),
            ("Ann Lee", "1234")
        );
    }
}
