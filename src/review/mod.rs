//! Legal review: what reviewers look at before a template may be used, and the rules a run
//! and `missive check` apply.
//!
//! - [`LetterType`]: a kind with an optional variant (`refund/late_return`), what
//!   `preview` and `serve` show;
//! - [`Samples`]: the sample accounts (`samples/accounts`) planned at [`sample_as_of`], so
//!   every letter type can be shown with a real account;
//! - [`ApprovalState`]: whether the exact template version on disk is approved in the
//!   ledger, never was, or changed since its last approval;
//! - [`vars`]: the variables a template uses; [`lint`]: required facts and readability;
//!   [`diff`]: a text diff between an approved version and the current one.
//!
//! Approval is of an exact content hash ([`crate::compose::Composer::template_hashes`]:
//! template + partials + layout), so approving one version never covers another.

pub mod diff;
pub mod facts;
pub mod legibilidad;
pub mod lint;
pub mod text;
pub mod vars;

use std::fmt;
use std::path::Path;

use chrono::NaiveDate;

use crate::account::Account;
use crate::config::Config;
use crate::decide::{AccountDecision, DecideContext, DueLetter};
use crate::ledger::{Approval, ApprovalLog, LedgerError};
use crate::letter::{LetterKind, Variant};
use crate::load::{self, SourceError};
use crate::plan::{PlanError, PriorNotices, plan_batch};

/// The as-of date the bundled samples are planned at (they are written for it).
pub fn sample_as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default()
}

/// Review could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// `KIND[/VARIANT]` names no letter type.
    #[error("`{text}` is not a letter type; known: {known}")]
    UnknownType {
        /// What was given.
        text: String,
        /// Every letter type, comma-separated.
        known: String,
    },
    /// The sample accounts could not be read.
    #[error("failed to read sample accounts")]
    Source(#[from] SourceError),
    /// No sample account plans a letter of this type.
    #[error("no account in `{accounts}` has a `{letter_type}` letter at as-of {as_of}{detail}")]
    NoSample {
        /// The letter type.
        letter_type: LetterType,
        /// Where the accounts were read.
        accounts: String,
        /// The as-of date used.
        as_of: NaiveDate,
        /// What they do have, for the message.
        detail: String,
    },
}

/// A kind of letter with an optional variant: what a reviewer looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LetterType {
    /// The kind (one template per kind).
    pub kind: LetterKind,
    /// The variant; `None` means any variant of the kind.
    pub variant: Option<Variant>,
}

impl LetterType {
    /// Every kind and variant, in catalogue order (a kind without variants once).
    pub fn all() -> Vec<LetterType> {
        LetterKind::ALL
            .into_iter()
            .flat_map(|kind| {
                let variants: Vec<Option<Variant>> = if kind.variants().is_empty() {
                    vec![None]
                } else {
                    kind.variants().iter().copied().map(Some).collect()
                };
                variants
                    .into_iter()
                    .map(move |variant| LetterType { kind, variant })
            })
            .collect()
    }

    /// Parses `KIND` or `KIND/VARIANT` (`offset_notice/federal`).
    pub fn parse(text: &str) -> Result<LetterType, ReviewError> {
        let unknown = || ReviewError::UnknownType {
            text: text.to_owned(),
            known: LetterType::all()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        let (kind, variant) = match text.trim().split_once('/') {
            Some((kind, variant)) => (kind, Some(variant)),
            None => (text.trim(), None),
        };
        let kind = LetterKind::from_name(kind).ok_or_else(unknown)?;
        let variant = match variant {
            None => None,
            Some(name) => Some(
                kind.variants()
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == name)
                    .ok_or_else(unknown)?,
            ),
        };
        Ok(LetterType { kind, variant })
    }

    /// Whether `letter` is of this type.
    pub fn matches(&self, letter: &DueLetter) -> bool {
        letter.kind == self.kind && self.variant.is_none_or(|v| letter.variant == Some(v))
    }

    /// The template that writes it.
    pub fn template(&self) -> String {
        crate::compose::template_name(self.kind)
    }
}

impl fmt::Display for LetterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.variant {
            Some(variant) => write!(f, "{}/{}", self.kind, variant),
            None => write!(f, "{}", self.kind),
        }
    }
}

/// One planned letter of a sample account.
#[derive(Debug, Clone)]
pub struct SampleLetter {
    /// The account's file.
    pub source: String,
    /// The account.
    pub account: Account,
    /// The letter.
    pub letter: DueLetter,
}

/// Sample accounts, planned: every letter they produce, in input order.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    /// Every planned letter, accounts in input (file) order, each account's letters in
    /// plan order.
    pub letters: Vec<SampleLetter>,
    /// Every planned account with its whole decision (letters, referrals, held
    /// referrals), in input order: what the letter-facts check holds letters against.
    pub decisions: Vec<(Account, AccountDecision)>,
    /// Accounts or letters that could not be planned.
    pub errors: Vec<PlanError>,
    /// Where the accounts were read.
    pub accounts: String,
    /// The as-of date used.
    pub as_of: NaiveDate,
}

impl Samples {
    /// Reads and plans the accounts at `path` (a directory, `.jsonl` or one `.json` file)
    /// at `as_of`, with no prior notices, mail date the next business day.
    pub fn load(path: &Path, config: &Config, as_of: NaiveDate) -> Result<Samples, ReviewError> {
        let calendar = config.holiday_calendar();
        let ctx = DecideContext {
            as_of,
            mail_date: calendar.next_business_day_on_or_after(as_of),
            policy: &config.policy,
            calendar: &calendar,
        };
        let mut letters = Vec::new();
        let mut decisions = Vec::new();
        let plan = plan_batch(load::records(path)?, &PriorNotices::new(), &ctx, |p| {
            decisions.push((p.account.clone(), p.decision.clone()));
            for letter in &p.decision.letters {
                letters.push(SampleLetter {
                    source: p.source.clone(),
                    account: p.account.clone(),
                    letter: letter.clone(),
                });
            }
        });
        Ok(Samples {
            letters,
            decisions,
            errors: plan.errors,
            accounts: path.display().to_string(),
            as_of,
        })
    }

    /// Every sample letter of this type, in input order.
    pub fn of_type(&self, letter_type: LetterType) -> impl Iterator<Item = &SampleLetter> {
        self.letters
            .iter()
            .filter(move |s| letter_type.matches(&s.letter))
    }

    /// The letter of this type of account `account_id`, or (without one) the first
    /// account's that has one.
    pub fn pick(
        &self,
        letter_type: LetterType,
        account_id: Option<&str>,
    ) -> Result<&SampleLetter, ReviewError> {
        let mut candidates = self
            .of_type(letter_type)
            .filter(|s| account_id.is_none_or(|id| s.account.account_id == id));
        candidates.next().ok_or_else(|| {
            let has: Vec<String> = self
                .letters
                .iter()
                .filter(|s| account_id.is_none_or(|id| s.account.account_id == id))
                .map(|s| s.letter.key.to_string())
                .collect();
            let detail = match (account_id, has.is_empty()) {
                (Some(id), true) => format!(" (account `{id}` has no letters there)"),
                (Some(id), false) => format!(" (account `{id}` has: {})", has.join(", ")),
                (None, _) => String::new(),
            };
            ReviewError::NoSample {
                letter_type,
                accounts: self.accounts.clone(),
                as_of: self.as_of,
                detail,
            }
        })
    }
}

/// Where a template version stands with the reviewers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalState {
    /// This exact version is approved (the latest approval of it).
    Approved(Approval),
    /// No version of the template was ever approved.
    NotApproved,
    /// An earlier version was approved (the latest such approval), this one is not.
    Changed(Approval),
}

impl ApprovalState {
    /// Looks up the state of `template` at content hash `sha256`.
    pub fn of(
        ledger: &dyn ApprovalLog,
        template: &str,
        sha256: &str,
    ) -> Result<ApprovalState, LedgerError> {
        if let Some(approval) = ledger.approval_of(template, sha256)? {
            return Ok(ApprovalState::Approved(approval));
        }
        Ok(match ledger.approvals(Some(template))?.pop() {
            Some(last) => ApprovalState::Changed(last),
            None => ApprovalState::NotApproved,
        })
    }

    /// A short label: `approved`, `not approved`, `not approved: changed since approval`.
    pub fn label(&self) -> &'static str {
        match self {
            ApprovalState::Approved(_) => "approved",
            ApprovalState::NotApproved => "not approved",
            ApprovalState::Changed(_) => "not approved: changed since approval",
        }
    }

    /// The last approval of any version, if any (to diff against).
    pub fn last_approval(&self) -> Option<&Approval> {
        match self {
            ApprovalState::Approved(a) | ApprovalState::Changed(a) => Some(a),
            ApprovalState::NotApproved => None,
        }
    }
}

/// The first 12 hex digits of a content hash, as messages show it.
pub fn short_hash(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_types_parse_and_print() {
        assert_eq!(LetterType::all().len(), 8);
        for t in LetterType::all() {
            assert_eq!(LetterType::parse(&t.to_string()).expect("round trip"), t);
        }
        let t = LetterType::parse("refund").expect("kind alone");
        assert_eq!(t.variant, None);
        assert!(LetterType::parse("refund/federal").is_err());
        let err = LetterType::parse("<script>").expect_err("unknown");
        assert!(err.to_string().contains("review_outcome/reversed"), "{err}");
    }

    #[test]
    fn every_sample_type_has_a_sample() {
        let config = Config::parse(crate::config::BUILT_IN).expect("config");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/accounts");
        let samples = Samples::load(&dir, &config, sample_as_of()).expect("samples");
        assert!(samples.errors.is_empty(), "{:?}", samples.errors);
        for t in LetterType::all() {
            let s = samples.pick(t, None).expect("a sample");
            assert!(t.matches(&s.letter));
            let again = samples.pick(t, Some(&s.account.account_id)).expect("by id");
            assert_eq!(again.letter.key, s.letter.key);
        }
        let err = samples
            .pick(LetterType::parse("refund").expect("t"), Some("nobody"))
            .expect_err("no such account");
        assert!(err.to_string().contains("nobody"), "{err}");
    }
}
