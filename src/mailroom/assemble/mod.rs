//! Print batches assembled from the letters' own archival PDFs, without typesetting again.
//!
//! [`Assembler::assemble`] reads the letters' PDF/A-2b + PDF/UA-1 files in print order,
//! one at a time, and streams their pages into ONE print-stream PDF: every object a page,
//! the structure tree or the outline reaches is copied at object level and renumbered; a
//! letter with an odd page count is followed by a blank back page that says "This page
//! intentionally left blank" (Typst renders that page once per language per process, in
//! the batch page style of `letter.typ`; each padding page reuses its contents and
//! resources). Identical streams without references (the ICC profile, a font subset two
//! letters happen to share) are written once.
//!
//! # Invariants
//! - Every letter starts on an odd (front) page; the batch has exactly the letters' pages
//!   plus one blank page per odd letter, in the order given.
//! - Only one letter's parsed objects are held at a time; what stays for the whole batch
//!   is small per letter (its page numbers, parent tree entries, structure ids).
//! - The same inputs, title, author, language and date give the same bytes.
//! - The result keeps what a PDF/A-2b + PDF/UA-1 letter has: one XMP packet (title given
//!   by the caller, `pdfaid` part 2 conformance B, `pdfuaid` part 1, dates from the mail
//!   date), the letters' output intent (all letters must have the same ICC profile),
//!   `/MarkInfo /Marked true`, `/Lang`, `/ViewerPreferences /DisplayDocTitle true`, and
//!   one structure tree whose kids are each letter's top element (with the letter's
//!   `/Lang`, so a Spanish letter in an English batch is still read as Spanish).
//!   Parent tree keys, `/StructParents` and `/StructParent` move past the letters before;
//!   structure ids (`/IDTree`, `/ID`, table `/Headers`) and class names get a prefix per
//!   letter (`L3-`). Each letter gets one outline item (its document title, at its first
//!   page) holding its own outline. A catalog entry not listed in `letter.rs` (named
//!   destinations, page labels, forms) is an error naming the letter, never dropped.

mod copy;
mod letter;
mod output;
mod parse;
mod serialize;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;
use lopdf::{Dictionary, Object, Stream, StringFormat};
use sha2::{Digest, Sha256};

use crate::config::hex;
use crate::render::{LetterSource, RenderError, Renderer};

use self::copy::{Copier, bad};
use self::letter::{Copied, Outline, Targets};
use self::output::{PdfOut, Xmp, text_string, write_tree};

/// A batch could not be assembled. Nothing under the batch's name is complete then.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// No letters were given.
    #[error("a batch needs at least one letter")]
    Empty,
    /// A letter's file on disk is not the file the ledger recorded for it (another process
    /// replaced it after it was recorded): the batch would print other pages than recorded.
    #[error(
        "letter file `{}` is not the file the ledger recorded for it (sha256 {found}, recorded {recorded}); nothing was printed from it",
        path.display()
    )]
    NotAsRecorded {
        /// The letter's file.
        path: PathBuf,
        /// The hash of what is on disk.
        found: String,
        /// The hash the ledger recorded.
        recorded: String,
    },
    /// A letter's file could not be read.
    #[error("failed to read letter `{path}`")]
    Read {
        /// The letter's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A letter's file is not a PDF lopdf reads without repairs.
    #[error("letter `{path}` is not a readable PDF")]
    Parse {
        /// The letter's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: lopdf::Error,
    },
    /// A letter's PDF lacks something a batch needs, or has something it cannot merge.
    #[error("letter `{path}`: {what}")]
    Letter {
        /// The letter's file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Typst could not render the blank back page.
    #[error("the blank back page ({lang}) could not be rendered")]
    Blank {
        /// Its language.
        lang: String,
        /// Why.
        #[source]
        source: RenderError,
    },
    /// The rendered blank back page is not what a padding page must be.
    #[error("the blank back page ({lang}): {what}")]
    BlankPage {
        /// Its language.
        lang: String,
        /// What is wrong.
        what: String,
    },
    /// Writing the batch failed.
    #[error("failed to write the batch")]
    Write(#[source] std::io::Error),
    /// Writing the batch file (or renaming it into place) failed.
    #[error("failed to write `{path}`")]
    WriteFile {
        /// The batch file (or its temporary name).
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What the batch document says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// Its title (PDF/UA requires one), e.g. "Certified batch 1 of run 7".
    pub title: String,
    /// Its author (the agency); empty for none.
    pub author: String,
    /// Its document language, e.g. `en`; each letter keeps its own on its structure.
    pub lang: String,
    /// The mail date: creation and modification date, at midnight UTC.
    pub date: NaiveDate,
}

/// What was assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// Pages in the batch.
    pub pages: u32,
    /// Pages of each letter in the batch, its blank back page included (even), in order.
    pub letter_pages: Vec<u32>,
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 of the bytes written, in hex.
    pub sha256: String,
    /// Streams written once and shared instead of copied again.
    pub shared_streams: usize,
    /// Bytes that sharing saved.
    pub shared_bytes: u64,
}

/// Assembles print batches; renders the blank back page once per language and keeps it.
///
/// `Send + Sync`: one assembler can serve several threads.
#[derive(Debug)]
pub struct Assembler {
    renderer: Renderer,
    /// The rendered blank back page per language (primary subtag), as a PDF.
    blanks: Mutex<BTreeMap<String, Arc<Vec<u8>>>>,
}

/// The blank back page of a batch: the batch page style of `letter.typ`, whose foreground
/// says the page is blank on purpose in the language of the letter it ends. Typst tags a
/// page foreground as content; here the same notice is marked a pagination artifact, so
/// the page needs no structure element.
fn blank_source(lang: &str) -> String {
    format!(
        "#import \"/lib/letter.typ\": batch-setup, blank-notice, letter-lang\n\
         #show: batch-setup\n\
         #set page(foreground: pdf.artifact(kind: \"pagination-other\", blank-notice))\n\
         #letter-lang.update({})\n",
        crate::compose::filters::typst_string(lang)
    )
}

impl Assembler {
    /// An assembler whose blank back pages `renderer` renders (with the project's layout
    /// library mounted at `/lib/`).
    pub fn new(renderer: &Renderer) -> Self {
        Self {
            renderer: renderer.clone(),
            blanks: Mutex::new(BTreeMap::new()),
        }
    }

    /// The blank back page for `lang` (a primary subtag), rendered on first use.
    fn blank(&self, lang: &str, date: NaiveDate) -> Result<Arc<Vec<u8>>, AssembleError> {
        let mut blanks = self.blanks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pdf) = blanks.get(lang) {
            return Ok(pdf.clone());
        }
        let job = LetterSource {
            main: blank_source(lang),
            // The page's own date never reaches the batch: only its contents are copied.
            date,
            title: "This page intentionally left blank".to_owned(),
            author: String::new(),
            lang: lang.to_owned(),
        };
        let pdf = self
            .renderer
            .render_pdf(&job)
            .map_err(|source| AssembleError::Blank {
                lang: lang.to_owned(),
                source,
            })?;
        let pdf = Arc::new(pdf.bytes);
        blanks.insert(lang.to_owned(), pdf.clone());
        Ok(pdf)
    }

    /// Assembles `letters` (paths of archival PDFs, in print order) into one PDF written
    /// to `writer` (buffered here; pass `&mut file` to keep the file).
    pub fn assemble<W: Write>(
        &self,
        info: &BatchInfo,
        letters: &[impl AsRef<Path>],
        writer: W,
    ) -> Result<Assembled, AssembleError> {
        self.assemble_checked(info, letters, &[], writer)
    }

    /// Like [`Assembler::assemble`], refusing ([`AssembleError::NotAsRecorded`]) a letter
    /// whose bytes do not hash to `expected[i]` (when given): the batch prints exactly the
    /// files the ledger recorded.
    pub fn assemble_checked<W: Write>(
        &self,
        info: &BatchInfo,
        letters: &[impl AsRef<Path>],
        expected: &[Option<String>],
        writer: W,
    ) -> Result<Assembled, AssembleError> {
        if letters.is_empty() {
            return Err(AssembleError::Empty);
        }
        let mut out = PdfOut::new(writer).map_err(AssembleError::Write)?;
        let catalog = out.reserve();
        let pages_root = out.reserve();
        let struct_root = out.reserve();
        let outlines = out.reserve();
        let mut batch = Batch::default();
        for (i, path) in letters.iter().enumerate() {
            let path = path.as_ref();
            let bytes = std::fs::read(path).map_err(|source| AssembleError::Read {
                path: path.to_owned(),
                source,
            })?;
            if let Some(Some(recorded)) = expected.get(i) {
                let found = hex(&Sha256::digest(&bytes));
                if &found != recorded {
                    return Err(AssembleError::NotAsRecorded {
                        path: path.to_owned(),
                        found,
                        recorded: recorded.clone(),
                    });
                }
            }
            let doc = copy::load(path, &bytes)?;
            drop(bytes);
            let item = out.reserve();
            let targets = Targets {
                pages: pages_root,
                struct_parent: struct_root,
                outline: item,
            };
            let prefix = format!("L{}-", i + 1);
            let first = batch.output_intents.is_none();
            let copied = Copier::new(path, doc).copy(
                &mut out,
                targets,
                batch.next_key,
                prefix.as_bytes(),
                first,
            )?;
            let lang = copied.lang.clone().unwrap_or_else(|| info.lang.clone());
            let page_count = copied.pages.len();
            batch.add(path, item, copied)?;
            if page_count % 2 == 1 {
                let primary = primary_subtag(&lang);
                let page = match batch.blank_pages.get(&primary) {
                    Some(page) => page.clone(),
                    None => {
                        let pdf = self.blank(&primary, info.date)?;
                        let page = copy_blank(&mut out, pages_root, &primary, &pdf)?;
                        batch.blank_pages.insert(primary, page.clone());
                        page
                    }
                };
                let mut page = page;
                page.set("Parent", Object::Reference((pages_root, 0)));
                let number = out.reserve();
                out.write(number, &mut Object::Dictionary(page))
                    .map_err(AssembleError::Write)?;
                batch.pages.push(number);
            }
            batch
                .letter_pages
                .push(u32::try_from(page_count + page_count % 2).unwrap_or(u32::MAX));
        }
        let shared = out.deduped;
        let finished = batch
            .finish(out, info, [catalog, pages_root, struct_root, outlines])
            .map_err(AssembleError::Write)?;
        Ok(Assembled {
            pages: batch.letter_pages.iter().sum(),
            letter_pages: batch.letter_pages,
            bytes: finished.bytes,
            sha256: hex(&finished.sha256),
            shared_streams: shared.0,
            shared_bytes: shared.1,
        })
    }

    /// Like [`Assembler::assemble`], into the file at `path`: written under a temporary
    /// name beside it, synced, then renamed, so a file under `path` is always complete.
    pub fn assemble_file(
        &self,
        info: &BatchInfo,
        letters: &[impl AsRef<Path>],
        path: &Path,
    ) -> Result<Assembled, AssembleError> {
        self.assemble_file_checked(info, letters, &[], path)
    }

    /// [`Assembler::assemble_file`] with [`Assembler::assemble_checked`]'s check: nothing
    /// is left under `path` when a letter's file is not the one recorded.
    pub fn assemble_file_checked(
        &self,
        info: &BatchInfo,
        letters: &[impl AsRef<Path>],
        expected: &[Option<String>],
        path: &Path,
    ) -> Result<Assembled, AssembleError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = path.with_file_name(format!(".{name}.tmp"));
        let fail = |path: &Path| {
            let path = path.to_owned();
            move |source| AssembleError::WriteFile { path, source }
        };
        let mut file = std::fs::File::create(&temp).map_err(fail(&temp))?;
        let assembled = match self.assemble_checked(info, letters, expected, &mut file) {
            Ok(assembled) => assembled,
            Err(err) => {
                drop(file);
                // The partial file is useless; failing to remove it changes nothing.
                let _ = std::fs::remove_file(&temp);
                return Err(err);
            }
        };
        file.sync_all().map_err(fail(&temp))?;
        drop(file);
        std::fs::rename(&temp, path).map_err(fail(path))?;
        Ok(assembled)
    }
}

/// `es` of `es-US`, lower case; `en` for an empty tag.
fn primary_subtag(lang: &str) -> String {
    let primary = lang.split(['-', '_']).next().unwrap_or_default();
    if primary.is_empty() {
        "en".to_owned()
    } else {
        primary.to_ascii_lowercase()
    }
}

/// Copies the blank back page's contents into the batch; returns its page dictionary.
fn copy_blank<W: Write>(
    out: &mut PdfOut<W>,
    pages_root: u32,
    lang: &str,
    pdf: &[u8],
) -> Result<Dictionary, AssembleError> {
    let path = Path::new("blank back page");
    let as_blank = |err: AssembleError| match err {
        AssembleError::Letter { what, .. } => AssembleError::BlankPage {
            lang: lang.to_owned(),
            what,
        },
        AssembleError::Parse { source, .. } => AssembleError::BlankPage {
            lang: lang.to_owned(),
            what: source.to_string(),
        },
        other => other,
    };
    let doc = copy::load(path, pdf).map_err(as_blank)?;
    Copier::new(path, doc)
        .copy_bare_page(out, pages_root)
        .map_err(as_blank)
}

/// The batch so far: what stays from each letter until the end.
#[derive(Default)]
struct Batch {
    pages: Vec<u32>,
    letter_pages: Vec<u32>,
    tops: Vec<u32>,
    parent_tree: Vec<(i64, Object)>,
    next_key: i64,
    ids: Vec<(Vec<u8>, Object)>,
    role_map: BTreeMap<Vec<u8>, Object>,
    class_map: Vec<(Vec<u8>, Object)>,
    /// Per letter: its outline item, its title, first page and own outline.
    outline: Vec<(u32, Option<Object>, u32, Option<Outline>)>,
    output_intents: Option<Object>,
    profile: Option<[u8; 32]>,
    /// The blank back page's dictionary per language, once copied.
    blank_pages: BTreeMap<String, Dictionary>,
}

impl Batch {
    /// Takes in what a letter brought.
    fn add(&mut self, path: &Path, item: u32, copied: Copied) -> Result<(), AssembleError> {
        match (&self.profile, copied.profile) {
            (None, profile) => self.profile = profile,
            (Some(ours), Some(theirs)) if *ours == theirs => {}
            _ => {
                return Err(bad(
                    path,
                    "its output intent's ICC profile differs from the first letter's",
                ));
            }
        }
        if self.output_intents.is_none() {
            self.output_intents = copied.output_intents;
        }
        for (role, standard) in copied.role_map {
            match self.role_map.get(&role) {
                Some(ours) if *ours != standard => {
                    return Err(bad(
                        path,
                        format!(
                            "its role map sends /{} elsewhere than an earlier letter's",
                            String::from_utf8_lossy(&role)
                        ),
                    ));
                }
                _ => {
                    self.role_map.insert(role, standard);
                }
            }
        }
        let first_page = copied.pages.first().copied().unwrap_or(0);
        self.outline
            .push((item, copied.title, first_page, copied.outline));
        self.pages.extend(&copied.pages);
        self.tops.extend(&copied.tops);
        self.parent_tree.extend(copied.parent_tree);
        self.next_key = self.next_key.max(copied.next_key);
        self.ids.extend(copied.ids);
        self.class_map.extend(copied.class_map);
        Ok(())
    }

    /// Writes the batch-level objects and the trailer.
    fn finish<W: Write>(
        &mut self,
        mut out: PdfOut<W>,
        info: &BatchInfo,
        [catalog, pages_root, struct_root, outlines]: [u32; 4],
    ) -> std::io::Result<output::Finished> {
        let r = |n: u32| Object::Reference((n, 0));
        let mut pages = Dictionary::new();
        pages.set("Type", Object::Name(b"Pages".to_vec()));
        pages.set("Count", self.pages.len() as i64);
        pages.set(
            "Kids",
            Object::Array(self.pages.iter().map(|&p| r(p)).collect()),
        );
        out.write(pages_root, &mut Object::Dictionary(pages))?;

        let mut tree = Dictionary::new();
        tree.set("Type", Object::Name(b"StructTreeRoot".to_vec()));
        tree.set(
            "K",
            Object::Array(self.tops.iter().map(|&t| r(t)).collect()),
        );
        let nums = std::mem::take(&mut self.parent_tree)
            .into_iter()
            .map(|(k, v)| (Object::Integer(k), v))
            .collect();
        tree.set("ParentTree", r(write_tree(&mut out, "Nums", nums)?));
        tree.set("ParentTreeNextKey", self.next_key);
        if !self.ids.is_empty() {
            let mut ids = std::mem::take(&mut self.ids);
            ids.sort_by(|a, b| a.0.cmp(&b.0));
            let names = ids
                .into_iter()
                .map(|(k, v)| (Object::String(k, StringFormat::Literal), v))
                .collect();
            tree.set("IDTree", r(write_tree(&mut out, "Names", names)?));
        }
        if !self.role_map.is_empty() {
            let map = std::mem::take(&mut self.role_map);
            tree.set("RoleMap", Object::Dictionary(map.into_iter().collect()));
        }
        if !self.class_map.is_empty() {
            let map = std::mem::take(&mut self.class_map);
            tree.set("ClassMap", Object::Dictionary(map.into_iter().collect()));
        }
        out.write(struct_root, &mut Object::Dictionary(tree))?;

        self.write_outline(&mut out, outlines)?;

        let document_id: [u8; 16] = {
            let mut hash = Sha256::new();
            for part in [&info.title, &info.author, &info.lang] {
                hash.update((part.len() as u64).to_le_bytes());
                hash.update(part.as_bytes());
            }
            hash.update(info.date.to_string().as_bytes());
            let digest = hash.finalize();
            let mut id = [0; 16];
            id.copy_from_slice(&digest[..16]);
            id
        };
        let instance = {
            // What the batch is made of: its letters' structure and page numbers.
            let mut hash = Sha256::new();
            hash.update(document_id);
            for pages in &self.letter_pages {
                hash.update(pages.to_le_bytes());
            }
            hash.update((self.pages.len() as u64).to_le_bytes());
            hex(&hash.finalize()[..16])
        };
        let date = info.date.to_string();
        let xmp = Xmp {
            title: &info.title,
            author: &info.author,
            lang: &info.lang,
            date: &date,
            pages: self.pages.len(),
            document_id: &format!("uuid:{}", hex(&document_id)),
            instance_id: &format!("uuid:{instance}"),
        }
        .packet();
        let mut meta = Dictionary::new();
        meta.set("Type", Object::Name(b"Metadata".to_vec()));
        meta.set("Subtype", Object::Name(b"XML".to_vec()));
        let metadata = out.reserve();
        out.write(
            metadata,
            &mut Object::Stream(Stream::new(meta, xmp.into_bytes())),
        )?;

        let pdf_date = Object::string_literal(format!("D:{}000000Z", date.replace('-', "")));
        let mut doc_info = Dictionary::new();
        doc_info.set("Title", text_string(&info.title));
        if !info.author.trim().is_empty() {
            doc_info.set("Author", text_string(&info.author));
        }
        doc_info.set("Creator", Object::string_literal("missive"));
        doc_info.set("CreationDate", pdf_date.clone());
        doc_info.set("ModDate", pdf_date);
        let info_number = out.reserve();
        out.write(info_number, &mut Object::Dictionary(doc_info))?;

        let mut root = Dictionary::new();
        root.set("Type", Object::Name(b"Catalog".to_vec()));
        root.set("Pages", r(pages_root));
        root.set("Metadata", r(metadata));
        root.set("Outlines", r(outlines));
        if let Some(intents) = self.output_intents.take() {
            root.set("OutputIntents", intents);
        }
        root.set("StructTreeRoot", r(struct_root));
        let mut mark = Dictionary::new();
        mark.set("Marked", true);
        mark.set("Suspects", false);
        root.set("MarkInfo", Object::Dictionary(mark));
        root.set("Lang", Object::string_literal(info.lang.as_str()));
        let mut prefs = Dictionary::new();
        prefs.set("Direction", Object::Name(b"L2R".to_vec()));
        prefs.set("DisplayDocTitle", true);
        root.set("ViewerPreferences", Object::Dictionary(prefs));
        out.write(catalog, &mut Object::Dictionary(root))?;
        out.finish(catalog, info_number, document_id)
    }

    /// The batch outline: one closed item per letter (its title, at its first page)
    /// holding the letter's own outline.
    fn write_outline<W: Write>(&mut self, out: &mut PdfOut<W>, root: u32) -> std::io::Result<()> {
        let r = |n: u32| Object::Reference((n, 0));
        let items = std::mem::take(&mut self.outline);
        for (i, (item, title, first_page, own)) in items.iter().enumerate() {
            let mut dict = Dictionary::new();
            let title = title
                .clone()
                .unwrap_or_else(|| text_string(&format!("Letter {}", i + 1)));
            dict.set("Title", title);
            dict.set("Parent", r(root));
            if let Some((prev, ..)) = i.checked_sub(1).and_then(|p| items.get(p)) {
                dict.set("Prev", r(*prev));
            }
            if let Some((next, ..)) = items.get(i + 1) {
                dict.set("Next", r(*next));
            }
            if let Some(own) = own {
                dict.set("First", r(own.first));
                dict.set("Last", r(own.last));
                // Closed: minus the items that opening it shows.
                dict.set("Count", -own.count.abs().max(1));
            }
            dict.set(
                "Dest",
                Object::Array(vec![r(*first_page), Object::Name(b"Fit".to_vec())]),
            );
            out.write(*item, &mut Object::Dictionary(dict))?;
        }
        let mut dict = Dictionary::new();
        dict.set("Type", Object::Name(b"Outlines".to_vec()));
        if let (Some(first), Some(last)) = (items.first(), items.last()) {
            dict.set("First", r(first.0));
            dict.set("Last", r(last.0));
            dict.set("Count", items.len() as i64);
        }
        out.write(root, &mut Object::Dictionary(dict))
    }
}

#[cfg(test)]
mod tests;
