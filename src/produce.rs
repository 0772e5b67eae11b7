//! Producing a plan's letters as PDF files: compose → render → write, in chunks.
//!
//! Letters are composed one at a time (fast) and rendered a chunk at a time on the
//! renderer's threads, so memory holds one chunk of PDFs, not the batch. Each file is
//! written to a temporary name and renamed into place, so a file under its final name is
//! always complete. A letter that fails (template error, Typst error, a file that cannot
//! be written) is reported with its key and reason; the others are still written. Only a
//! full disk, a read-only file system or an exhausted quota stops production.
//!
//! This is orchestration, not a stage: it drives compose and render and writes files, for
//! `render` and for the run's **produce** step ([`crate::runner`]), which records each
//! chunk in the ledger through `on_chunk`. It never touches the ledger itself.

mod stream;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::compose::{Composer, MailMarks};
use crate::config::hex;
use crate::decide::DueLetter;
use crate::letter::LetterKey;
use crate::render::{LetterSource, Renderer};

pub use stream::{StreamedSummary, SummaryStream};

/// Letters per chunk for `render`: enough to keep every thread busy, few enough that the
/// PDFs held in memory stay small (≈ 3 MB).
pub const RENDER_CHUNK: usize = 64;

/// Letters per chunk for `run`. A run commits the ledger once per chunk, and each commit
/// waits for an fsync (~5 ms here): 256 keeps that under 2% of a run's time
/// (docs/performance.md) for ≈ 13 MB of PDFs held in memory.
pub const RUN_CHUNK: usize = 256;

/// The output directory could not be used: nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// Creating the directory or writing a file failed.
    #[error("failed to write `{path}`")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No render thread could be started.
    #[error("failed to start rendering")]
    Render(#[source] crate::render::RenderError),
    /// The thread that renders a run's chunks beside the ledger's could not be started.
    #[error("failed to start the render thread")]
    StartThread(#[source] std::io::Error),
    /// That thread stopped before it rendered every chunk handed to it (a bug).
    #[error("the render thread stopped before rendering every chunk")]
    RenderThread,
    /// The summary could not be formatted as JSON.
    #[error("failed to format the summary `{name}`")]
    Summary {
        /// The summary file's name.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// One PDF written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenLetter {
    /// The letter's key.
    pub key: LetterKey,
    /// File name inside the output directory.
    pub file: String,
    /// Number of pages.
    pub pages: usize,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Template that composed it.
    pub template: String,
    /// Content hash of that template (with its layout and partials).
    pub template_sha256: String,
}

/// A letter that could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedLetter {
    /// The letter's key.
    pub key: LetterKey,
    /// Why, in one line.
    pub message: String,
}

/// What a production run did; written as `render.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProduceSummary {
    /// Every PDF written, in plan order.
    pub letters: Vec<WrittenLetter>,
    /// Every letter that failed, with its reason.
    pub failed: Vec<FailedLetter>,
}

/// Everything needed to turn letters into files.
pub struct Producer<'a> {
    /// Loaded templates.
    pub composer: &'a Composer,
    /// Loaded fonts and layout.
    pub renderer: &'a Renderer,
    /// Author written into each PDF (the agency).
    pub author: String,
    /// Render threads.
    pub jobs: usize,
    /// Keep a different earlier file under the same name (a reissue replacing the copy
    /// that was mailed and came back) as `<name>.<sha256 prefix>.pdf` instead of
    /// replacing it: what was mailed stays on record.
    pub keep_replaced: bool,
    /// Letters composed and rendered per chunk ([`RENDER_CHUNK`], [`RUN_CHUNK`]).
    pub chunk: usize,
}

impl Producer<'_> {
    /// Writes one PDF per letter into `out_dir` (created if needed), plus a summary of what
    /// was written and what failed as `out_dir/summary_file` (none when `None`: a run writes
    /// its summary from the ledger instead).
    /// `accounts` must hold every letter's account. After each chunk's files are complete
    /// on disk, `on_chunk` sees what that chunk wrote and what failed (the run records them
    /// in the ledger there); an error from it stops production.
    pub fn produce<E: From<ProduceError>>(
        &self,
        letters: &[DueLetter],
        accounts: &HashMap<String, Account>,
        out_dir: &Path,
        summary_file: Option<&str>,
        on_chunk: impl FnMut(&[WrittenLetter], &[FailedLetter]) -> Result<(), E>,
    ) -> Result<ProduceSummary, E> {
        self.produce_marked(letters, accounts, |_| None, out_dir, summary_file, on_chunk)
    }

    /// Like [`Producer::produce`], composing each letter with the mail marks `marks` gives
    /// it (its IMb and article number: the run's print letters), so that its file is the
    /// printed letter; a letter without marks is composed as `render` composes it.
    pub fn produce_marked<'m, E: From<ProduceError>>(
        &self,
        letters: &[DueLetter],
        accounts: &HashMap<String, Account>,
        marks: impl Fn(&LetterKey) -> Option<&'m MailMarks>,
        out_dir: &Path,
        summary_file: Option<&str>,
        mut on_chunk: impl FnMut(&[WrittenLetter], &[FailedLetter]) -> Result<(), E>,
    ) -> Result<ProduceSummary, E> {
        create_out_dir(out_dir)?;
        let mut summary = ProduceSummary::default();
        for chunk in letters.chunks(self.chunk.max(1)) {
            let (written_before, failed_before) = (summary.letters.len(), summary.failed.len());
            let outcome = self.produce_chunk(chunk, accounts, &marks, out_dir)?;
            summary.letters.extend(outcome.written);
            summary.failed.extend(outcome.failed);
            on_chunk(
                &summary.letters[written_before..],
                &summary.failed[failed_before..],
            )?;
        }
        if let Some(name) = summary_file {
            let mut json =
                serde_json::to_vec_pretty(&summary).map_err(|source| ProduceError::Summary {
                    name: name.to_owned(),
                    source,
                })?;
            json.push(b'\n');
            write_atomically(&out_dir.join(name), &json)?;
        }
        Ok(summary)
    }

    /// Composes, renders and writes one chunk of letters. Failures come in the order they
    /// are known: the letters that could not be composed (the first `compose_failed`),
    /// then those that did not render or could not be written.
    fn produce_chunk<'m>(
        &self,
        chunk: &[DueLetter],
        accounts: &HashMap<String, Account>,
        marks: &impl Fn(&LetterKey) -> Option<&'m MailMarks>,
        out_dir: &Path,
    ) -> Result<ChunkOutcome, ProduceError> {
        let composed = self.compose_chunk(chunk, accounts, marks, out_dir)?;
        let rendered = self.render_chunk(composed)?;
        self.write_chunk(rendered, out_dir)
    }

    /// Composes one chunk of letters (the first step of [`Producer::produce_chunk`]): the
    /// letters that could not be composed are failed at once (an earlier file of theirs
    /// removed), the others wait to be rendered.
    pub(crate) fn compose_chunk<'m>(
        &self,
        chunk: &[DueLetter],
        accounts: &HashMap<String, Account>,
        marks: &impl Fn(&LetterKey) -> Option<&'m MailMarks>,
        out_dir: &Path,
    ) -> Result<ComposedChunk, ProduceError> {
        let mut failed = Vec::new();
        let mut jobs = Vec::with_capacity(chunk.len());
        let mut composed = Vec::with_capacity(chunk.len());
        for letter in chunk {
            let Some(account) = accounts.get(&letter.account_id) else {
                failed.push(FailedLetter {
                    key: letter.key.clone(),
                    message: "its account is not loaded".to_owned(),
                });
                continue;
            };
            match self
                .composer
                .compose_piece(account, letter, marks(&letter.key))
            {
                Ok(c) => {
                    // The source and title go to the renderer; writing the file needs
                    // only the key and the template.
                    jobs.push(LetterSource {
                        main: c.source,
                        date: c.date,
                        title: c.title,
                        author: self.author.clone(),
                        lang: c.lang,
                    });
                    composed.push(ToWrite {
                        key: c.key,
                        template: c.template,
                        template_sha256: c.template_sha256,
                    });
                }
                Err(err) => {
                    let file = format!("{}.pdf", letter.key.file_stem());
                    let message = match remove_stale(out_dir, &file) {
                        Ok(()) => err.to_string(),
                        Err(write) => format!("{err}; {}", letter_write_error(write)?),
                    };
                    failed.push(FailedLetter {
                        key: letter.key.clone(),
                        message,
                    });
                }
            }
        }
        Ok(ComposedChunk {
            jobs,
            composed,
            failed,
        })
    }

    /// Renders a composed chunk on the renderer's threads (the second step of
    /// [`Producer::produce_chunk`]); nothing is written yet.
    pub(crate) fn render_chunk(&self, chunk: ComposedChunk) -> Result<RenderedChunk, ProduceError> {
        let ComposedChunk {
            jobs,
            composed,
            failed,
        } = chunk;
        let results = self
            .renderer
            .render_many(&jobs, self.jobs)
            .map_err(ProduceError::Render)?;
        Ok(RenderedChunk {
            composed,
            results,
            failed,
        })
    }

    /// Writes a rendered chunk's files, each under a temporary name renamed into place
    /// (the last step of [`Producer::produce_chunk`]): when this returns, every file of
    /// `outcome.written` is complete on disk.
    pub(crate) fn write_chunk(
        &self,
        chunk: RenderedChunk,
        out_dir: &Path,
    ) -> Result<ChunkOutcome, ProduceError> {
        let RenderedChunk {
            composed,
            results,
            failed,
        } = chunk;
        let mut outcome = ChunkOutcome {
            compose_failed: failed.len(),
            failed,
            ..ChunkOutcome::default()
        };
        for (c, result) in composed.into_iter().zip(results) {
            let file = format!("{}.pdf", c.key.file_stem());
            match result {
                Ok(pdf) => {
                    let path = out_dir.join(&file);
                    let written = if self.keep_replaced {
                        keep_if_different(&path, &pdf.bytes)
                    } else {
                        Ok(())
                    }
                    .and_then(|()| write_atomically(&path, &pdf.bytes));
                    if let Err(err) = written {
                        outcome.failed.push(FailedLetter {
                            key: c.key,
                            message: letter_write_error(err)?,
                        });
                        continue;
                    }
                    let digest: [u8; 32] = Sha256::digest(&pdf.bytes).into();
                    outcome.written.push(WrittenLetter {
                        key: c.key,
                        file,
                        pages: pdf.pages,
                        sha256: hex(&digest),
                        template: c.template,
                        template_sha256: c.template_sha256,
                    });
                    outcome.digests.push(digest);
                }
                Err(err) => {
                    let mut message = one_line(&err.to_string());
                    if let Err(write) = remove_stale(out_dir, &file) {
                        message = format!("{message}; {}", letter_write_error(write)?);
                    }
                    outcome.failed.push(FailedLetter {
                        key: c.key,
                        message,
                    });
                }
            }
        }
        Ok(outcome)
    }
}

/// A chunk composed, waiting to be rendered ([`Producer::compose_chunk`]).
pub(crate) struct ComposedChunk {
    /// What the renderer renders, in the order of `composed`.
    jobs: Vec<LetterSource>,
    composed: Vec<ToWrite>,
    /// The letters that could not be composed.
    failed: Vec<FailedLetter>,
}

/// A chunk rendered, waiting to be written ([`Producer::render_chunk`]).
pub(crate) struct RenderedChunk {
    composed: Vec<ToWrite>,
    /// One result per letter of `composed`, in its order.
    results: Vec<Result<crate::render::RenderedPdf, crate::render::RenderError>>,
    /// The letters that could not be composed.
    failed: Vec<FailedLetter>,
}

/// What writing a rendered letter's file needs of its composition.
struct ToWrite {
    key: LetterKey,
    template: String,
    template_sha256: String,
}

/// What one chunk wrote and what failed (see [`Producer::produce_chunk`]).
#[derive(Default)]
pub(crate) struct ChunkOutcome {
    /// The letters whose files are complete on disk, in the chunk's order.
    pub(crate) written: Vec<WrittenLetter>,
    /// Each written file's SHA-256, as `written`'s `sha256` spells it.
    digests: Vec<[u8; 32]>,
    /// The letters that failed: those that could not be composed first.
    pub(crate) failed: Vec<FailedLetter>,
    /// How many of `failed` (the first ones) could not be composed.
    compose_failed: usize,
}

/// Creates the output directory.
fn create_out_dir(out_dir: &Path) -> Result<(), ProduceError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ProduceError::Write {
        path: out_dir.to_owned(),
        source,
    })
}

/// A write error of one letter's file as that letter's failure message, or the error
/// itself when it is the whole output's (disk full, read-only file system, quota): then
/// every letter would fail the same way and production stops.
fn letter_write_error(err: ProduceError) -> Result<String, ProduceError> {
    use std::io::ErrorKind;
    match &err {
        ProduceError::Write { path, source }
            if !matches!(
                source.kind(),
                ErrorKind::StorageFull | ErrorKind::ReadOnlyFilesystem | ErrorKind::QuotaExceeded
            ) =>
        {
            Ok(format!("failed to write `{}`: {source}", path.display()))
        }
        _ => Err(err),
    }
}

/// Renames an existing, different file at `path` to `<stem>.<first 12 hex of its
/// sha256>.pdf`, so a new version never destroys one that was mailed. Identical bytes
/// (a letter re-rendered after a crash) are left to be replaced by themselves.
fn keep_if_different(path: &Path, new_bytes: &[u8]) -> Result<(), ProduceError> {
    let old = match std::fs::read(path) {
        Ok(old) => old,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ProduceError::Write {
                path: path.to_owned(),
                source,
            });
        }
    };
    if old == new_bytes {
        return Ok(());
    }
    let sha = hex(&Sha256::digest(&old));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kept = path.with_file_name(format!("{stem}.{}.pdf", &sha[..12]));
    std::fs::rename(path, &kept).map_err(|source| ProduceError::Write { path: kept, source })
}

/// Removes a PDF an earlier run left for a letter that failed now, so the directory never
/// holds a file for a letter this run could not produce.
fn remove_stale(out_dir: &Path, file: &str) -> Result<(), ProduceError> {
    let path = out_dir.join(file);
    match std::fs::remove_file(&path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(ProduceError::Write { path, source: err })
        }
        _ => Ok(()),
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it into place,
/// so a file under its final name is always complete: a write killed half-way leaves only
/// the temporary file.
///
/// The temporary name is fixed (`.<name>.tmp`, no random part) so that a temporary file
/// left by a killed run is taken over and renamed by the next write of the same file
/// instead of piling up. Several processes may write the same file at once (a worker whose
/// lease ran out and the one that took its letters over): each holds an OS lock on the
/// temporary file (`flock`, released when a process dies, even by SIGKILL) from truncating
/// it to renaming it, so writers of one path take turns, and a writer that waited checks
/// the temporary file is still the one it locked (the one before may have renamed it into
/// place) before it writes. Its permissions are those `File::create` gives (0666 less the
/// umask). A failed write or sync removes the temporary file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ProduceError> {
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// [`write_atomically`] for contents written piece by piece: `fill` writes them to the
/// temporary file (a summary too big to hold whole in memory).
pub fn write_atomically_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), ProduceError> {
    let fail = |source| ProduceError::Write {
        path: path.to_owned(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp_path = dir.join(format!(".{name}.tmp"));
    let mut temp = loop {
        // No truncation on open: another writer may be filling it right now.
        let temp = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&temp_path)
            .map_err(fail)?;
        temp.lock().map_err(fail)?;
        if still_at(&temp, &temp_path).map_err(fail)? {
            break temp;
        }
    };
    let written = (|| {
        temp.set_len(0)?;
        fill(&mut temp)?;
        temp.sync_all()?;
        std::fs::rename(&temp_path, path)
    })();
    if let Err(source) = written {
        // Best effort: the write already failed and says why.
        let _ = std::fs::remove_file(&temp_path);
        return Err(fail(source));
    }
    Ok(())
}

/// True when `path` is still the file `file` has open (not renamed away or replaced).
fn still_at(file: &std::fs::File, path: &Path) -> std::io::Result<bool> {
    let on_disk = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata()?;
        Ok(open.dev() == on_disk.dev() && open.ino() == on_disk.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (file, on_disk);
        Ok(true)
    }
}

fn one_line(text: &str) -> String {
    text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.pdf");
        write_atomically(&path, b"one").expect("first write");
        write_atomically(&path, b"two").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["a.pdf"]);
    }

    #[test]
    fn write_atomically_takes_over_a_temporary_file_a_killed_run_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stale = dir.path().join(".a.pdf.tmp");
        std::fs::write(&stale, b"half a file").expect("stale temp");
        let path = dir.path().join("a.pdf");
        write_atomically(&path, b"whole").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"whole");
        assert!(
            !stale.exists(),
            "the stale temporary file was renamed into place"
        );
    }

    #[test]
    fn write_atomically_names_the_file_when_it_fails() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("missing").join("a.pdf");
        let err = write_atomically(&path, b"x").expect_err("no such directory");
        assert!(matches!(err, ProduceError::Write { path: p, .. } if p == path));
    }

    #[test]
    fn concurrent_writers_of_one_file_take_turns_and_leave_it_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.pdf");
        let bytes: Vec<u8> = (0..200_000u32).flat_map(u32::to_le_bytes).collect();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        write_atomically(&path, &bytes).expect("write");
                        let read = std::fs::read(&path).expect("read");
                        assert!(read == bytes, "a reader sees the whole file");
                    }
                });
            }
        });
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["a.pdf"]);
    }

    #[cfg(unix)]
    #[test]
    fn write_atomically_gives_the_permissions_file_create_gives() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let created = dir.path().join("created");
        std::fs::File::create(&created).expect("create");
        let path = dir.path().join("a.pdf");
        write_atomically(&path, b"x").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode();
        assert_eq!(mode(&path), mode(&created));
    }
}
