//! Planning's index of the account ids already planned, to refuse duplicates: one arena
//! of ids and sources, a table from each id's hash to its last entry, and a chain per hash.
//!
//! Invariants: an id is found exactly when it was added (hashes only narrow the search;
//! ids are compared in full), and memory is about 40 bytes an account plus its id and
//! source, with no allocation per account (a map of two `String`s per account took about
//! 150 bytes).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// No entry: the end of a chain.
const NONE: u32 = u32::MAX;

/// The ids planned so far, each with the source it was loaded from.
#[derive(Default)]
pub(super) struct SeenIds<S = RandomState> {
    /// Every id followed by its source.
    text: String,
    /// Per entry: where its id starts, the id's length, the source's length, and the
    /// previous entry with the same hash (or [`NONE`]).
    entries: Vec<[u32; 4]>,
    /// An id's hash → its newest entry.
    heads: HashMap<u64, u32>,
    /// Ids noted past the arena's 4 GiB or 4 billion entries, kept plainly: an id is never
    /// left out (a duplicate left unnoticed would be planned twice).
    overflow: HashMap<String, String>,
    hasher: S,
}

impl<S: BuildHasher> SeenIds<S> {
    /// The source `id` was first loaded from, if it was.
    pub(super) fn source_of(&self, id: &str) -> Option<&str> {
        if let Some(source) = self.overflow.get(id) {
            return Some(source);
        }
        let mut at = *self.heads.get(&self.hasher.hash_one(id))?;
        while at != NONE {
            let [start, id_len, source_len, previous] = *self.entries.get(at as usize)?;
            let (start, id_end) = (start as usize, (start + id_len) as usize);
            if self.text.get(start..id_end) == Some(id) {
                return self.text.get(id_end..id_end + source_len as usize);
            }
            at = previous;
        }
        None
    }

    /// Notes that `id` (not yet seen) was loaded from `source`. Past 4 GiB of ids and
    /// sources or 4 billion accounts, the id goes into a plain map instead.
    pub(super) fn insert(&mut self, id: &str, source: &str) {
        let (Ok(start), Ok(id_len), Ok(source_len), Ok(index)) = (
            u32::try_from(self.text.len()),
            u32::try_from(id.len()),
            u32::try_from(source.len()),
            u32::try_from(self.entries.len()),
        ) else {
            self.overflow.insert(id.to_owned(), source.to_owned());
            return;
        };
        let fits = id_len
            .checked_add(source_len)
            .and_then(|len| start.checked_add(len))
            .is_some();
        if index == NONE || !fits {
            self.overflow.insert(id.to_owned(), source.to_owned());
            return;
        }
        self.text.push_str(id);
        self.text.push_str(source);
        let previous = self
            .heads
            .insert(self.hasher.hash_one(id), index)
            .unwrap_or(NONE);
        self.entries.push([start, id_len, source_len, previous]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_found_with_its_first_source_and_only_when_added() {
        let mut seen: SeenIds = SeenIds::default();
        assert_eq!(seen.source_of("A"), None);
        seen.insert("A", "a.jsonl:1");
        seen.insert("AB", "a.jsonl:2");
        seen.insert("", "a.jsonl:3");
        assert_eq!(seen.source_of("A"), Some("a.jsonl:1"));
        assert_eq!(seen.source_of("AB"), Some("a.jsonl:2"));
        assert_eq!(seen.source_of(""), Some("a.jsonl:3"));
        assert_eq!(seen.source_of("B"), None);
        assert_eq!(seen.source_of("Aa"), None);
    }

    /// A hasher that gives every id the same hash.
    #[derive(Default)]
    struct Colliding;

    impl BuildHasher for Colliding {
        type Hasher = Constant;
        fn build_hasher(&self) -> Constant {
            Constant
        }
    }

    struct Constant;

    impl std::hash::Hasher for Constant {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }

    /// Ids whose hashes collide share a chain and are still told apart.
    #[test]
    fn ids_with_the_same_hash_are_told_apart() {
        let mut seen = SeenIds::<Colliding>::default();
        seen.insert("X", "x:1");
        seen.insert("Y", "y:1");
        seen.insert("Z", "z:1");
        assert_eq!(seen.heads.len(), 1);
        assert_eq!(seen.source_of("X"), Some("x:1"));
        assert_eq!(seen.source_of("Y"), Some("y:1"));
        assert_eq!(seen.source_of("Z"), Some("z:1"));
        assert_eq!(seen.source_of("W"), None);
    }
}
