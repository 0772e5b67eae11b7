//! The letter catalogue: kinds, variants, channels and the key that names a letter forever.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A kind of letter in the v1 catalogue. The derived order (alphabetical, which is also the
/// catalogue order) is the order letters of one account are listed in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum LetterKind {
    /// Notice of Intent to Offset: 60 days to pay or request a review before referral.
    IntentToOffset,
    /// A federal or state refund was offset.
    OffsetNotice,
    /// Money is being returned: an excess offset or a late return that proved no tax due.
    Refund,
    /// The decision on a taxpayer's request for review.
    ReviewOutcome,
}

impl LetterKind {
    /// Every kind, in catalogue order.
    pub const ALL: [LetterKind; 4] = [
        LetterKind::IntentToOffset,
        LetterKind::OffsetNotice,
        LetterKind::Refund,
        LetterKind::ReviewOutcome,
    ];

    /// The snake_case name used in keys, JSON and template file names.
    pub fn as_str(self) -> &'static str {
        match self {
            LetterKind::IntentToOffset => "intent_to_offset",
            LetterKind::OffsetNotice => "offset_notice",
            LetterKind::Refund => "refund",
            LetterKind::ReviewOutcome => "review_outcome",
        }
    }

    /// The variants of this kind, in catalogue order (none for intent to offset).
    pub fn variants(self) -> &'static [Variant] {
        match self {
            LetterKind::IntentToOffset => &[],
            LetterKind::OffsetNotice => &[Variant::Federal, Variant::State],
            LetterKind::Refund => &[Variant::ExcessOffset, Variant::LateReturn],
            LetterKind::ReviewOutcome => &[Variant::Upheld, Variant::Reduced, Variant::Reversed],
        }
    }

    /// The kind with this snake_case name (`intent_to_offset`), if any.
    pub fn from_name(name: &str) -> Option<LetterKind> {
        LetterKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for LetterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The variant of a kind; intent to offset has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Offset notice: a federal refund applied to this agency's debt.
    Federal,
    /// Offset notice: this state's refund withheld for another agency.
    State,
    /// Refund: a federal offset that exceeded the balance.
    ExcessOffset,
    /// Refund: a late-filed return proved no tax was due.
    LateReturn,
    /// Review outcome: the debt stands.
    Upheld,
    /// Review outcome: the debt stands at a lower amount.
    Reduced,
    /// Review outcome: the debt is withdrawn.
    Reversed,
}

impl Variant {
    /// The snake_case name used in JSON and template names.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Federal => "federal",
            Variant::State => "state",
            Variant::ExcessOffset => "excess_offset",
            Variant::LateReturn => "late_return",
            Variant::Upheld => "upheld",
            Variant::Reduced => "reduced",
            Variant::Reversed => "reversed",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a letter reaches the taxpayer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Printed and mailed.
    Print,
    /// Sent by email to a consenting taxpayer.
    Email,
}

impl Channel {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Print => "print",
            Channel::Email => "email",
        }
    }
}

/// The postal class of a printed letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailClass {
    /// Certified mail with return receipt (every intent to offset).
    Certified,
    /// First-class mail.
    FirstClass,
}

impl MailClass {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MailClass::Certified => "certified",
            MailClass::FirstClass => "first_class",
        }
    }
}

/// The key that names a letter uniquely and forever: `ACCOUNT/KIND/SUBJECT`.
///
/// SUBJECT is the liability ids sorted in plain string order and joined by `+` (intent to
/// offset), or the offset, late-return or review id. A reissue keeps the key, so a rerun
/// can always tell what was already produced or sent. Ids never contain `/` or `+` (the
/// loader refuses them), so a key can always be split back apart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LetterKey(String);

impl LetterKey {
    /// The key of a letter of `kind` about `subject` (an id, or ids joined by `+`).
    pub fn new(account_id: &str, kind: LetterKind, subject: &str) -> LetterKey {
        LetterKey(format!("{account_id}/{}/{subject}", kind.as_str()))
    }

    /// The key of an intent to offset covering these liabilities (sorted here).
    pub fn intent_to_offset<S: AsRef<str>>(account_id: &str, liability_ids: &[S]) -> LetterKey {
        let mut ids: Vec<&str> = liability_ids.iter().map(AsRef::as_ref).collect();
        ids.sort_unstable();
        LetterKey::new(account_id, LetterKind::IntentToOffset, &ids.join("+"))
    }

    /// A key as typed by a person or read back from storage (`ACCOUNT/KIND/SUBJECT`);
    /// not checked: a key that names no letter simply finds nothing.
    pub fn from_text(text: &str) -> LetterKey {
        LetterKey(text.trim().to_owned())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A file-name-safe form of the key (`/` replaced by `_`), for output files. A key
    /// longer than [`MAX_FILE_STEM`] bytes (four 64-character liability ids) is cut to a
    /// readable prefix followed by `~` and the first 16 hex digits of the key's SHA-256,
    /// so every name fits a file system's 255-byte limit with room for suffixes
    /// (`.<sha256 prefix>.pdf` of a kept copy, `.tmp`). The ledger and `render.json`
    /// record the name used.
    pub fn file_stem(&self) -> String {
        use sha2::{Digest, Sha256};
        let stem = self.0.replace('/', "_");
        if stem.len() <= MAX_FILE_STEM {
            return stem;
        }
        let hash = crate::config::hex(&Sha256::digest(self.0.as_bytes()));
        let mut cut = MAX_FILE_STEM - 17;
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}~{}", &stem[..cut], &hash[..16])
    }
}

/// Longest file stem (in bytes) a letter key is written under as it is.
pub const MAX_FILE_STEM: usize = 100;

impl fmt::Display for LetterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_keys_sort_ids_in_plain_string_order() {
        let key = LetterKey::intent_to_offset("CT-1", &["L2", "L10", "L1"]);
        assert_eq!(key.as_str(), "CT-1/intent_to_offset/L1+L10+L2");
        assert_eq!(key.file_stem(), "CT-1_intent_to_offset_L1+L10+L2");
    }

    #[test]
    fn long_keys_get_a_bounded_file_stem_with_a_hash() {
        let ids: Vec<String> = (0..4).map(|i| format!("{i}{}", "x".repeat(63))).collect();
        let key = LetterKey::intent_to_offset("CT-1", &ids);
        let stem = key.file_stem();
        assert_eq!(stem.len(), MAX_FILE_STEM);
        assert!(stem.starts_with("CT-1_intent_to_offset_0xxx"), "{stem}");
        let other = LetterKey::intent_to_offset("CT-2", &ids);
        assert_ne!(other.file_stem(), stem, "different keys, different names");
        // Multi-byte characters are never cut in half.
        let wide = LetterKey::new("CT-1", LetterKind::Refund, &"é".repeat(80));
        assert!(wide.file_stem().len() <= MAX_FILE_STEM);
    }

    #[test]
    fn kinds_order_as_the_catalogue() {
        let mut kinds = LetterKind::ALL;
        kinds.reverse();
        kinds.sort();
        assert_eq!(kinds, LetterKind::ALL);
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            names, sorted,
            "kind order must equal the order of their names"
        );
    }
}
