//! Where the batch step reads each batch's letters from, one batch at a time: the run
//! itself holds only a [`PrintLetter`] per print letter, so a batch's letters and accounts
//! are read when the batch is prepared and dropped once it is written.

use std::collections::HashMap;

use super::BatchError;
use crate::account::Account;
use crate::decide::DueLetter;
use crate::ledger::Ledger;
use crate::letter::LetterKey;
use crate::runner::record::PrintLetter;

/// Where the batch step reads a batch's letters and accounts from, one batch at a time:
/// a run's own letters from the payloads it stored ([`FromPayloads`]), an earlier run's
/// from its plan made again ([`FromPlan`]).
pub(in crate::runner) trait BatchLetters {
    /// The letter and account of each of `letters` (of batch `batch`), in their order.
    fn read(
        &self,
        ledger: &dyn Ledger,
        batch: &str,
        letters: &[&PrintLetter],
    ) -> Result<Vec<(DueLetter, Account)>, BatchError>;
}

/// A run's letters read back from the payloads the run stored for them, each checked
/// against the plan hash it was recorded with.
pub(in crate::runner) struct FromPayloads {
    /// The run.
    pub(in crate::runner) run_id: i64,
}

impl BatchLetters for FromPayloads {
    fn read(
        &self,
        ledger: &dyn Ledger,
        batch: &str,
        letters: &[&PrintLetter],
    ) -> Result<Vec<(DueLetter, Account)>, BatchError> {
        let keys: Vec<LetterKey> = letters.iter().map(|l| l.entry.key.clone()).collect();
        let mut payloads = ledger.payloads_of(self.run_id, &keys)?;
        let check = |key: &LetterKey, why: String| BatchError::Check {
            batch: batch.to_owned(),
            message: format!("letter `{key}`: {why}"),
        };
        letters
            .iter()
            .map(|letter| {
                let key = &letter.entry.key;
                let stored = payloads.remove(key).ok_or_else(|| {
                    check(key, format!("run {} stored no payload for it", self.run_id))
                })?;
                let payload =
                    crate::runner::payload::read_stored(key, &stored.payload, &letter.data_sha256)
                        .map_err(|why| check(key, why))?;
                Ok((payload.letter, payload.account))
            })
            .collect()
    }
}

/// An earlier run's letters from its plan, made again from its accounts and held whole.
pub(in crate::runner) struct FromPlan<'p> {
    /// The plan's letters, by key.
    pub(in crate::runner) letters: HashMap<&'p LetterKey, &'p DueLetter>,
    /// The accounts that have letters.
    pub(in crate::runner) accounts: &'p HashMap<String, Account>,
}

impl BatchLetters for FromPlan<'_> {
    fn read(
        &self,
        _ledger: &dyn Ledger,
        batch: &str,
        letters: &[&PrintLetter],
    ) -> Result<Vec<(DueLetter, Account)>, BatchError> {
        letters
            .iter()
            .map(|letter| {
                let key = &letter.entry.key;
                let due = self.letters.get(key);
                let account = due.and_then(|d| self.accounts.get(&d.account_id));
                match (due, account) {
                    (Some(due), Some(account)) => Ok(((*due).clone(), account.clone())),
                    _ => Err(BatchError::Check {
                        batch: batch.to_owned(),
                        message: format!("letter `{key}` is not in its run's plan"),
                    }),
                }
            })
            .collect()
    }
}
