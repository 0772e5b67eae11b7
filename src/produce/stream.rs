//! `render`'s production, streamed: letters arrive a chunk of accounts at a time, in input
//! order, and are produced at once; the summary (`render.json`) is written at the end in
//! the plan's order, byte for byte what [`Producer::produce`] writes for the whole plan.
//!
//! Invariants: memory does not grow with the letters. Each letter's summary entry (key,
//! kind, pages, SHA-256, the index of its template) is appended to an anonymous spill file
//! in the output directory (unlinked, so nothing is left behind), a chunk at a time in
//! the plan's order. When the chunks arrive in the plan's order too (accounts in id order,
//! as generated and directory inputs are), the summary is written by reading the spill
//! once; otherwise the entries are read back and sorted in memory (then memory grows by
//! about 100 bytes a letter, as it always did). A failed letter is kept whole in memory
//! (failures are few). Failures are listed as `produce` lists them: in chunks of
//! [`Producer::chunk`] letters of the plan's order, those that could not be composed first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

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

/// The outcomes of the letters produced so far, spilled to disk until the summary is
/// written.
pub struct SummaryStream {
    /// Where the spill file lives (named in its errors).
    dir: PathBuf,
    spill: BufWriter<File>,
    /// Entries spilled so far.
    count: usize,
    /// The last entry spilled, to tell whether chunks keep coming in the plan's order.
    last: Option<(LetterKind, LetterKey)>,
    /// Every chunk so far followed the previous one in the plan's order.
    in_order: bool,
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
        pages: u32,
        sha256: [u8; 32],
        template: u32,
    },
    /// Index into [`SummaryStream::failures`].
    Failed(u32),
}

struct Failure {
    letter: FailedLetter,
    /// It could not be composed (listed before its chunk's other failures).
    composing: bool,
    /// Its place among all the entries in the plan's order.
    position: usize,
}

impl SummaryStream {
    /// Creates the output directory (so a run without letters still has its summary's
    /// place), the spill file in it, and an empty summary.
    pub fn create(out_dir: &Path) -> Result<SummaryStream, ProduceError> {
        create_out_dir(out_dir)?;
        let spill = tempfile::tempfile_in(out_dir).map_err(|source| ProduceError::Write {
            path: out_dir.to_owned(),
            source,
        })?;
        Ok(SummaryStream {
            dir: out_dir.to_owned(),
            spill: BufWriter::new(spill),
            count: 0,
            last: None,
            in_order: true,
            failures: Vec::new(),
            templates: Vec::new(),
        })
    }

    fn spill_error(&self, source: std::io::Error) -> ProduceError {
        ProduceError::Write {
            path: self.dir.clone(),
            source,
        }
    }

    /// Notes a chunk's outcomes; `kind_of` gives the kind of each of its letters.
    fn note(
        &mut self,
        outcome: ChunkOutcome,
        kind_of: impl Fn(&LetterKey) -> Option<LetterKind>,
    ) -> Result<(), ProduceError> {
        let mut entries = Vec::with_capacity(outcome.written.len() + outcome.failed.len());
        for (written, sha256) in outcome.written.into_iter().zip(outcome.digests) {
            let Some(kind) = kind_of(&written.key) else {
                continue;
            };
            let template = self.template_index(written.template, written.template_sha256);
            entries.push(Entry {
                key: written.key,
                kind,
                outcome: Outcome::Written {
                    pages: u32::try_from(written.pages).unwrap_or(u32::MAX),
                    sha256,
                    template,
                },
            });
        }
        for (i, letter) in outcome.failed.into_iter().enumerate() {
            let Some(kind) = kind_of(&letter.key) else {
                continue;
            };
            entries.push(Entry {
                key: letter.key.clone(),
                kind,
                outcome: Outcome::Failed(self.failures.len() as u32),
            });
            self.failures.push(Failure {
                letter,
                composing: i < outcome.compose_failed,
                position: 0,
            });
        }
        entries.sort_by(|a, b| plan_order(a).cmp(&plan_order(b)));
        if let (Some(first), Some((kind, key))) = (entries.first(), &self.last)
            && plan_order(first) < plan_order_of(*kind, key)
        {
            self.in_order = false;
        }
        for entry in &entries {
            if let Outcome::Failed(index) = entry.outcome {
                self.failures[index as usize].position = self.count;
            }
            write_entry(&mut self.spill, entry).map_err(|err| self.spill_error(err))?;
            self.count += 1;
        }
        if let Some(last) = entries.pop() {
            self.last = Some((last.kind, last.key));
        }
        Ok(())
    }

    fn template_index(&mut self, name: String, sha256: String) -> u32 {
        let index = match self
            .templates
            .iter()
            .position(|(n, s)| *n == name && *s == sha256)
        {
            Some(index) => index,
            None => {
                self.templates.push((name, sha256));
                self.templates.len() - 1
            }
        };
        index as u32
    }

    /// The spilled entries in the plan's order: read as they are when every chunk came in
    /// order, else read whole and sorted (the failures' positions set again).
    fn entries(&mut self) -> std::io::Result<Entries> {
        self.spill.flush()?;
        let file = self.spill.get_mut();
        file.rewind()?;
        let mut reader = BufReader::new(file.try_clone()?);
        if self.in_order {
            return Ok(Entries::Spilled(reader));
        }
        let mut all = Vec::with_capacity(self.count);
        while let Some(entry) = read_entry(&mut reader)? {
            all.push(entry);
        }
        all.sort_by(|a, b| plan_order(a).cmp(&plan_order(b)));
        for (position, entry) in all.iter().enumerate() {
            if let Outcome::Failed(index) = entry.outcome {
                self.failures[index as usize].position = position;
            }
        }
        Ok(Entries::Sorted(all.into_iter()))
    }

    /// Writes the summary to `path` in the plan's order (letters by account id, kind,
    /// key), with failures in chunks of `chunk` letters as [`Producer::produce`] lists
    /// them, and says what was done.
    pub fn write(mut self, path: &Path, chunk: usize) -> Result<StreamedSummary, ProduceError> {
        let entries = self.entries().map_err(|err| self.spill_error(err))?;
        let mut order: Vec<(usize, bool, usize, usize)> = self
            .failures
            .iter()
            .enumerate()
            .map(|(index, f)| (f.position / chunk.max(1), !f.composing, f.position, index))
            .collect();
        order.sort_unstable();
        let failed: Vec<FailedLetter> = order
            .iter()
            .map(|&(_, _, _, index)| self.failures[index].letter.clone())
            .collect();
        let view = SummaryView {
            letters: WrittenView {
                stream: &self,
                entries: RefCell::new(entries),
                read_error: RefCell::new(None),
            },
            failed: &failed,
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut format_error = None;
        let written = write_atomically_with(path, |file| {
            let mut out = BufWriter::new(file);
            if let Err(err) = serde_json::to_writer_pretty(&mut out, &view) {
                let io = std::io::Error::other(err.to_string());
                format_error = Some(err);
                return Err(io);
            }
            out.write_all(b"\n")?;
            out.flush()
        });
        if let Some(err) = view.letters.read_error.take() {
            return Err(self.spill_error(err));
        }
        written.map_err(|err| match format_error {
            Some(source) if !source.is_io() => ProduceError::Summary { name, source },
            _ => err,
        })?;
        Ok(StreamedSummary {
            letters: self.count - failed.len(),
            failed,
        })
    }

    /// The summary entry of a written letter.
    fn written(&self, entry: Entry) -> Option<WrittenLetter> {
        let Outcome::Written {
            pages,
            sha256,
            template,
        } = entry.outcome
        else {
            return None;
        };
        let (name, name_sha256) = self.templates.get(template as usize)?;
        Some(WrittenLetter {
            file: format!("{}.pdf", entry.key.file_stem()),
            key: entry.key,
            pages: pages as usize,
            sha256: hex(&sha256),
            template: name.clone(),
            template_sha256: name_sha256.clone(),
        })
    }
}

/// The entries in the plan's order, from the spill file or sorted in memory.
enum Entries {
    Spilled(BufReader<File>),
    Sorted(std::vec::IntoIter<Entry>),
}

impl Entries {
    fn next_entry(&mut self) -> std::io::Result<Option<Entry>> {
        match self {
            Entries::Spilled(reader) => read_entry(reader),
            Entries::Sorted(entries) => Ok(entries.next()),
        }
    }
}

/// Appends an entry to the spill: key length (u32) and bytes, kind, then pages, digest
/// and template index of a written letter or the index of a failure.
fn write_entry(out: &mut impl Write, entry: &Entry) -> std::io::Result<()> {
    let key = entry.key.as_str().as_bytes();
    let len = u32::try_from(key.len()).map_err(std::io::Error::other)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(key)?;
    let kind = LetterKind::ALL
        .iter()
        .position(|k| *k == entry.kind)
        .unwrap_or_default() as u8;
    match &entry.outcome {
        Outcome::Written {
            pages,
            sha256,
            template,
        } => {
            out.write_all(&[kind, 0])?;
            out.write_all(&pages.to_le_bytes())?;
            out.write_all(sha256)?;
            out.write_all(&template.to_le_bytes())
        }
        Outcome::Failed(index) => {
            out.write_all(&[kind, 1])?;
            out.write_all(&index.to_le_bytes())
        }
    }
}

/// Reads the next entry [`write_entry`] wrote, or `None` at the end of the spill.
fn read_entry(input: &mut impl Read) -> std::io::Result<Option<Entry>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let mut key = vec![0u8; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut key)?;
    let key = String::from_utf8(key).map_err(std::io::Error::other)?;
    let mut head = [0u8; 2];
    input.read_exact(&mut head)?;
    let kind = *LetterKind::ALL
        .get(usize::from(head[0]))
        .ok_or_else(|| std::io::Error::other("a spilled summary entry has no kind"))?;
    let mut word = [0u8; 4];
    let outcome = if head[1] == 0 {
        input.read_exact(&mut word)?;
        let pages = u32::from_le_bytes(word);
        let mut sha256 = [0u8; 32];
        input.read_exact(&mut sha256)?;
        input.read_exact(&mut word)?;
        Outcome::Written {
            pages,
            sha256,
            template: u32::from_le_bytes(word),
        }
    } else {
        input.read_exact(&mut word)?;
        Outcome::Failed(u32::from_le_bytes(word))
    };
    Ok(Some(Entry {
        key: LetterKey::from_text(&key),
        kind,
        outcome,
    }))
}

/// A letter's place in the plan's order: account id (the key up to its first `/`; ids
/// never contain one), kind, key.
fn plan_order(entry: &Entry) -> (&str, LetterKind, &LetterKey) {
    plan_order_of(entry.kind, &entry.key)
}

fn plan_order_of(kind: LetterKind, key: &LetterKey) -> (&str, LetterKind, &LetterKey) {
    let text = key.as_str();
    let account = text.split_once('/').map_or(text, |(account, _)| account);
    (account, kind, key)
}

/// [`super::ProduceSummary`] as it serializes, built from the stream's entries.
#[derive(Serialize)]
struct SummaryView<'a> {
    letters: WrittenView<'a>,
    failed: &'a [FailedLetter],
}

/// The written letters in the plan's order, read and serialized one at a time; a read
/// error stops the serializer and is kept for the caller.
struct WrittenView<'a> {
    stream: &'a SummaryStream,
    entries: RefCell<Entries>,
    read_error: RefCell<Option<std::io::Error>>,
}

impl Serialize for WrittenView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = serializer.serialize_seq(None)?;
        let mut read = 0;
        loop {
            let next = self.entries.borrow_mut().next_entry();
            match next {
                Ok(Some(entry)) => {
                    read += 1;
                    if let Some(letter) = self.stream.written(entry) {
                        seq.serialize_element(&letter)?;
                    }
                }
                // A spill cut short would leave letters out of `render.json` unnoticed.
                Ok(None) if read != self.stream.count => {
                    let err = std::io::Error::other(format!(
                        "the spilled summary holds {read} entries, {} were written to it",
                        self.stream.count
                    ));
                    let message = err.to_string();
                    *self.read_error.borrow_mut() = Some(err);
                    return Err(S::Error::custom(message));
                }
                Ok(None) => break,
                Err(err) => {
                    let message = err.to_string();
                    *self.read_error.borrow_mut() = Some(err);
                    return Err(S::Error::custom(message));
                }
            }
        }
        seq.end()
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
            summary.note(outcome, |key| kinds.get(key).copied())?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
