//! `render`'s production, streamed: letters arrive a chunk of accounts at a time, in input
//! order, and are produced at once; the summary (`render.json`) is written at the end in
//! the plan's order, byte for byte what [`Producer::produce`] writes for the whole plan.
//!
//! Invariants: of a written letter only what its summary entry needs is kept (key, kind,
//! pages, SHA-256 as bytes, the index of its template), about 100 bytes, so memory grows
//! by that, not by the letters and accounts; a failed letter is kept whole (failures are
//! few). Failures are listed as `produce` lists them: in chunks of [`Producer::chunk`]
//! letters of the plan's order, those that could not be composed first.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde::{Serialize, Serializer};

use super::{
    ChunkOutcome, FailedLetter, ProduceError, Producer, WrittenLetter, create_out_dir,
    write_atomically_with,
};
use crate::account::Account;
use crate::config::hex;
use crate::decide::DueLetter;
use crate::letter::{LetterKey, LetterKind};

/// What a streamed production did, once its summary is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamedSummary {
    /// How many PDFs were written.
    pub letters: usize,
    /// Every letter that failed, in the summary's order.
    pub failed: Vec<FailedLetter>,
}

/// The outcomes of the letters produced so far, kept small until the summary is written.
pub struct SummaryStream {
    entries: Vec<Entry>,
    failures: Vec<Failure>,
    /// Template name and content hash, by the index entries hold.
    templates: Vec<(String, String)>,
}

/// One letter's outcome.
struct Entry {
    key: LetterKey,
    kind: LetterKind,
    outcome: Outcome,
}

enum Outcome {
    Written {
        pages: usize,
        sha256: [u8; 32],
        template: usize,
    },
    /// Index into [`SummaryStream::failures`].
    Failed(usize),
}

struct Failure {
    letter: FailedLetter,
    /// It could not be composed (listed before its chunk's other failures).
    composing: bool,
}

impl SummaryStream {
    /// Creates the output directory (so a run without letters still has its summary's
    /// place) and an empty summary.
    pub fn create(out_dir: &Path) -> Result<SummaryStream, ProduceError> {
        create_out_dir(out_dir)?;
        Ok(SummaryStream {
            entries: Vec::new(),
            failures: Vec::new(),
            templates: Vec::new(),
        })
    }

    /// Notes a chunk's outcomes; `kind_of` gives the kind of each of its letters.
    fn note(&mut self, outcome: ChunkOutcome, kind_of: impl Fn(&LetterKey) -> Option<LetterKind>) {
        for (written, sha256) in outcome.written.into_iter().zip(outcome.digests) {
            let Some(kind) = kind_of(&written.key) else {
                continue;
            };
            let template = self.template_index(written.template, written.template_sha256);
            self.entries.push(Entry {
                key: written.key,
                kind,
                outcome: Outcome::Written {
                    pages: written.pages,
                    sha256,
                    template,
                },
            });
        }
        for (i, letter) in outcome.failed.into_iter().enumerate() {
            let Some(kind) = kind_of(&letter.key) else {
                continue;
            };
            self.entries.push(Entry {
                key: letter.key.clone(),
                kind,
                outcome: Outcome::Failed(self.failures.len()),
            });
            self.failures.push(Failure {
                letter,
                composing: i < outcome.compose_failed,
            });
        }
    }

    fn template_index(&mut self, name: String, sha256: String) -> usize {
        match self
            .templates
            .iter()
            .position(|(n, s)| *n == name && *s == sha256)
        {
            Some(index) => index,
            None => {
                self.templates.push((name, sha256));
                self.templates.len() - 1
            }
        }
    }

    /// Writes the summary to `path` in the plan's order (letters by account id, kind,
    /// key), with failures in chunks of `chunk` letters as [`Producer::produce`] lists
    /// them, and says what was done.
    pub fn write(mut self, path: &Path, chunk: usize) -> Result<StreamedSummary, ProduceError> {
        self.entries
            .sort_by(|a, b| plan_order(a).cmp(&plan_order(b)));
        let mut order: Vec<(usize, bool, usize, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(position, entry)| match entry.outcome {
                Outcome::Failed(index) => Some((
                    position / chunk.max(1),
                    !self.failures[index].composing,
                    position,
                    index,
                )),
                Outcome::Written { .. } => None,
            })
            .collect();
        order.sort_unstable();
        let failed: Vec<FailedLetter> = order
            .iter()
            .map(|&(_, _, _, index)| self.failures[index].letter.clone())
            .collect();
        let view = SummaryView {
            letters: WrittenView(&self),
            failed: &failed,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut format_error = None;
        write_atomically_with(path, |file| {
            let mut out = std::io::BufWriter::new(file);
            if let Err(err) = serde_json::to_writer_pretty(&mut out, &view) {
                let io = std::io::Error::other(err.to_string());
                format_error = Some(err);
                return Err(io);
            }
            out.write_all(b"\n")?;
            out.flush()
        })
        .map_err(|err| match format_error {
            Some(source) if !source.is_io() => ProduceError::Summary { name, source },
            _ => err,
        })?;
        Ok(StreamedSummary {
            letters: self.entries.len() - failed.len(),
            failed,
        })
    }

    /// The summary entry of a written letter.
    fn written(&self, entry: &Entry) -> Option<WrittenLetter> {
        let Outcome::Written {
            pages,
            sha256,
            template,
        } = entry.outcome
        else {
            return None;
        };
        let (name, name_sha256) = self.templates.get(template)?;
        Some(WrittenLetter {
            key: entry.key.clone(),
            file: format!("{}.pdf", entry.key.file_stem()),
            pages,
            sha256: hex(&sha256),
            template: name.clone(),
            template_sha256: name_sha256.clone(),
        })
    }
}

/// A letter's place in the plan's order: account id (the key up to its first `/`; ids
/// never contain one), kind, key.
fn plan_order(entry: &Entry) -> (&str, LetterKind, &LetterKey) {
    let key = entry.key.as_str();
    let account = key.split_once('/').map_or(key, |(account, _)| account);
    (account, entry.kind, &entry.key)
}

/// [`super::ProduceSummary`] as it serializes, built from the stream's entries.
#[derive(Serialize)]
struct SummaryView<'a> {
    letters: WrittenView<'a>,
    failed: &'a [FailedLetter],
}

/// The written letters of a sorted stream, serialized one at a time.
struct WrittenView<'a>(&'a SummaryStream);

impl Serialize for WrittenView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.entries.iter().filter_map(|e| self.0.written(e)))
    }
}

impl Producer<'_> {
    /// Produces `letters` (their accounts in `accounts`) into `out_dir` a chunk at a time,
    /// as [`Producer::produce`] does, and notes each letter's outcome in `summary` instead
    /// of returning it; `done` sees how many letters each chunk finished.
    pub fn produce_streamed(
        &self,
        letters: &[DueLetter],
        accounts: &HashMap<String, Account>,
        out_dir: &Path,
        summary: &mut SummaryStream,
        mut done: impl FnMut(usize),
    ) -> Result<(), ProduceError> {
        for chunk in letters.chunks(self.chunk.max(1)) {
            let outcome = self.produce_chunk(chunk, accounts, &|_| None, out_dir)?;
            done(outcome.written.len() + outcome.failed.len());
            let kinds: HashMap<&LetterKey, LetterKind> =
                chunk.iter().map(|l| (&l.key, l.kind)).collect();
            summary.note(outcome, |key| kinds.get(key).copied());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::produce::ProduceSummary;

    fn written(key: &str, template: &str) -> (WrittenLetter, [u8; 32]) {
        let digest = [key.len() as u8; 32];
        let key = LetterKey::from_text(key);
        let letter = WrittenLetter {
            file: format!("{}.pdf", key.file_stem()),
            key,
            pages: 2,
            sha256: hex(&digest),
            template: template.to_owned(),
            template_sha256: format!("sha-of-{template}"),
        };
        (letter, digest)
    }

    fn failed(key: &str, message: &str) -> FailedLetter {
        FailedLetter {
            key: LetterKey::from_text(key),
            message: message.to_owned(),
        }
    }

    fn kind_of(key: &LetterKey) -> Option<LetterKind> {
        let kind = key.as_str().split('/').nth(1)?;
        [
            LetterKind::IntentToOffset,
            LetterKind::OffsetNotice,
            LetterKind::Refund,
            LetterKind::ReviewOutcome,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }

    /// Accounts arrive out of order, failures of both stages mixed: the file is what
    /// `produce` writes for the letters in plan order, in chunks of 2.
    #[test]
    fn the_streamed_summary_is_the_planned_order_summary_byte_for_byte() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut stream = SummaryStream::create(dir.path()).expect("stream");
        let (b1, b1d) = written("B/intent_to_offset/L1", "intent");
        let (b2, b2d) = written("B/refund/F1", "refund");
        stream.note(
            ChunkOutcome {
                written: vec![b1.clone(), b2.clone()],
                digests: vec![b1d, b2d],
                failed: vec![failed("B/review_outcome/R1", "no case number")],
                compose_failed: 1,
            },
            kind_of,
        );
        let (a1, a1d) = written("A/offset_notice/O1", "offset");
        stream.note(
            ChunkOutcome {
                written: vec![a1.clone()],
                digests: vec![a1d],
                failed: vec![
                    failed("A/intent_to_offset/L1", "no such template"),
                    failed("A/refund/F1", "typst said no"),
                ],
                compose_failed: 1,
            },
            kind_of,
        );
        let path = dir.path().join("render.json");
        let summary = stream.write(&path, 2).expect("written");
        // Plan order: A/intent(composing), A/offset, | A/refund(render), B/intent, |
        // B/refund, B/review(composing); failures by chunk, composing first.
        let want = ProduceSummary {
            letters: vec![a1, b1, b2],
            failed: vec![
                failed("A/intent_to_offset/L1", "no such template"),
                failed("A/refund/F1", "typst said no"),
                failed("B/review_outcome/R1", "no case number"),
            ],
        };
        let mut json = serde_json::to_vec_pretty(&want).expect("json");
        json.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&std::fs::read(&path).expect("read")),
            String::from_utf8_lossy(&json)
        );
        assert_eq!(summary.letters, 3);
        assert_eq!(summary.failed, want.failed);
    }

    /// Within a chunk the letters that could not be composed come first, as in `produce`.
    #[test]
    fn a_chunks_composing_failures_come_before_its_rendering_failures() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut stream = SummaryStream::create(dir.path()).expect("stream");
        stream.note(
            ChunkOutcome {
                failed: vec![
                    failed("A/refund/F1", "composing"),
                    failed("A/intent_to_offset/L1", "rendering"),
                ],
                compose_failed: 1,
                ..ChunkOutcome::default()
            },
            kind_of,
        );
        let summary = stream
            .write(&dir.path().join("s.json"), 64)
            .expect("written");
        let keys: Vec<&str> = summary.failed.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["A/refund/F1", "A/intent_to_offset/L1"]);
        let empty = SummaryStream::create(dir.path()).expect("stream");
        let path = dir.path().join("empty.json");
        empty.write(&path, 64).expect("written");
        let mut json = serde_json::to_vec_pretty(&ProduceSummary::default()).expect("json");
        json.push(b'\n');
        assert_eq!(std::fs::read(&path).expect("read"), json);
    }
}
