//! Assembly tests on real letters: sample accounts (English and Spanish, one and two
//! pages) plus intents to offset long enough for three pages and more, rendered once per
//! test process by the library's own renderer, then assembled and read back with lopdf,
//! poppler, qpdf and (when installed) the `pdfua` and `outloud` checkers.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use lopdf::{Document, Object, ObjectId};
use serde_json::Value;

use super::*;
use crate::compose::Composer;
use crate::config::{BUILT_IN, Config};
use crate::decide::DecideContext;
use crate::produce::{ProduceError, Producer};

/// A rendered letter: file name, bytes, pages.
struct Rendered {
    file: String,
    bytes: Vec<u8>,
    pages: usize,
}

/// Sample letters and long intents to offset, rendered once.
fn rendered() -> &'static [Rendered] {
    static LETTERS: OnceLock<Vec<Rendered>> = OnceLock::new();
    LETTERS.get_or_init(render_letters)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn renderer() -> &'static Renderer {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    RENDERER.get_or_init(|| {
        Renderer::new(&root().join("fonts"), &root().join("templates/typst")).expect("renderer")
    })
}

fn render_letters() -> Vec<Rendered> {
    let dir = tempfile::tempdir().expect("temp");
    let accounts = dir.path().join("accounts");
    std::fs::create_dir_all(&accounts).expect("dir");
    for name in [
        "01-ito-basic.json",
        "07-offset-federal-joint-excess-refund.json",
        "31-es-ito-basic.json",
        "32-es-offset-federal-joint-excess-refund.json",
    ] {
        std::fs::copy(
            root().join("samples/accounts").join(name),
            accounts.join(name),
        )
        .expect("copy");
    }
    // Many liabilities make long letters, some with an odd number of pages.
    let base: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("samples/accounts/01-ito-basic.json"))
            .expect("sample"),
    )
    .expect("json");
    for count in [9, 24, 34] {
        let mut account = base.clone();
        account["account_id"] = format!("CT-LONG-{count}").into();
        let template = account["liabilities"][0].clone();
        let liabilities: Vec<Value> = (0..count)
            .map(|i| {
                let mut l = template.clone();
                l["id"] = format!("L{i}").into();
                l["period"] = format!("{}", 2019 + i % 5).into();
                l
            })
            .collect();
        account["liabilities"] = liabilities.into();
        std::fs::write(
            accounts.join(format!("long-{count}.json")),
            serde_json::to_vec(&account).expect("json"),
        )
        .expect("write");
    }
    let config = Config::parse(BUILT_IN).expect("config");
    let calendar = config.holiday_calendar();
    let date = crate::load::parse_iso_date("2026-12-01").expect("date");
    let ctx = DecideContext {
        as_of: date,
        mail_date: date,
        policy: &config.policy,
        calendar: &calendar,
    };
    let mut by_id = HashMap::new();
    let plan = crate::plan::plan_batch(
        crate::load::records(&accounts).expect("accounts"),
        &HashMap::new(),
        &ctx,
        |p| {
            by_id.insert(p.account.account_id.clone(), p.account.clone());
        },
    );
    let composer = Composer::load(&root().join("templates"), &config).expect("templates");
    let producer = Producer {
        composer: &composer,
        renderer: renderer(),
        author: config.agency.name.clone(),
        jobs: 2,
        keep_replaced: false,
        chunk: 64,
    };
    let out = dir.path().join("out");
    let summary = producer
        .produce(&plan.letters, &by_id, &out, None, |_, _| {
            Ok::<(), ProduceError>(())
        })
        .expect("produce");
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    summary
        .letters
        .iter()
        .map(|l| Rendered {
            file: l.file.clone(),
            bytes: std::fs::read(out.join(&l.file)).expect("pdf"),
            pages: l.pages,
        })
        .collect()
}

/// A mix in print order: two pages, three, one, Spanish one and two pages, three, one.
fn mix() -> Vec<&'static Rendered> {
    let letters = rendered();
    let pick = |pred: &dyn Fn(&Rendered) -> bool, what: &str| {
        letters
            .iter()
            .find(|l| pred(l))
            .unwrap_or_else(|| panic!("no letter: {what}"))
    };
    let spanish = |l: &Rendered| l.file.starts_with("CT-000103");
    vec![
        pick(&|l| l.pages == 2 && !spanish(l), "2 pages"),
        pick(&|l| l.pages >= 3 && l.pages % 2 == 1, "3+ odd pages"),
        pick(&|l| l.pages == 1 && !spanish(l), "1 page"),
        pick(&|l| l.pages == 1 && spanish(l), "Spanish, 1 page"),
        pick(&|l| l.pages == 2 && spanish(l), "Spanish, 2 pages"),
        pick(
            &|l| l.pages % 2 == 1 && l.file.starts_with("CT-LONG-34"),
            "another odd",
        ),
        pick(&|l| l.pages == 1 && l.file.contains("refund"), "a refund"),
    ]
}

/// Writes `letters` into `dir` and returns their paths, in order.
fn files(dir: &Path, letters: &[&Rendered]) -> Vec<PathBuf> {
    letters
        .iter()
        .map(|l| {
            let path = dir.join(&l.file);
            std::fs::write(&path, &l.bytes).expect("write");
            path
        })
        .collect()
}

fn info() -> BatchInfo {
    BatchInfo {
        title: "First-class batch 1 of run 7".to_owned(),
        author: "Connecticut Department of Revenue Services".to_owned(),
        lang: "en".to_owned(),
        date: crate::load::parse_iso_date("2026-12-01").expect("date"),
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

fn text(pdf: &Path, first: usize, last: usize) -> String {
    let out = Command::new("pdftotext")
        .args(["-layout", "-f", &first.to_string(), "-l", &last.to_string()])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext");
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a checker that must pass: `qpdf --check`, `pdfua check`, `outloud`.
fn passes(tool: &str, args: &[&str], pdf: &Path) {
    let out = Command::new(tool)
        .args(args)
        .arg(pdf)
        .output()
        .expect("checker");
    assert!(
        out.status.success(),
        "{tool} {args:?} failed on {}:\n{}\n{}",
        pdf.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn deref<'a>(doc: &'a Document, object: &'a Object) -> &'a Object {
    match object {
        Object::Reference(id) => doc.get_object(*id).expect("object"),
        other => other,
    }
}

/// The mix assembled into `batch.pdf` in a fresh directory.
struct MixBatch {
    dir: tempfile::TempDir,
    letters: Vec<&'static Rendered>,
    paths: Vec<PathBuf>,
    batch: PathBuf,
    done: Assembled,
}

fn assembled_mix() -> MixBatch {
    let dir = tempfile::tempdir().expect("temp");
    let letters = mix();
    let paths = files(dir.path(), &letters);
    let batch = dir.path().join("batch.pdf");
    let done = Assembler::new(renderer())
        .assemble_file(&info(), &paths, &batch)
        .expect("assembled");
    MixBatch {
        dir,
        letters,
        paths,
        batch,
        done,
    }
}

#[test]
fn letters_are_copied_whole_in_order_with_blank_back_pages() {
    let MixBatch {
        dir,
        letters,
        paths,
        batch,
        done,
    } = assembled_mix();

    let expected: Vec<u32> = letters
        .iter()
        .map(|l| (l.pages + l.pages % 2) as u32)
        .collect();
    assert_eq!(done.letter_pages, expected);
    assert_eq!(done.pages, expected.iter().sum::<u32>());
    let bytes = std::fs::read(&batch).expect("batch");
    assert_eq!(done.bytes, bytes.len() as u64);
    assert_eq!(done.sha256, hex(&Sha256::digest(&bytes)));
    assert!(!dir.path().join(".batch.pdf.tmp").exists());

    let doc = Document::load_mem(&bytes).expect("lopdf reads the batch");
    assert_eq!(doc.get_pages().len() as u32, done.pages);
    // Each letter page paints exactly what the archival page paints: the same bytes.
    let contents = |doc: &Document, page: ObjectId| {
        let page = doc.get_dictionary(page).expect("page");
        let stream = deref(doc, page.get(b"Contents").expect("contents"));
        stream.as_stream().expect("one stream").content.clone()
    };
    let batch_pages: Vec<ObjectId> = doc.get_pages().into_values().collect();
    let mut at = 0;
    for letter in &letters {
        let own = Document::load_mem(&letter.bytes).expect("letter");
        for (i, page) in own.get_pages().into_values().enumerate() {
            assert!(
                contents(&own, page) == contents(&doc, batch_pages[at + i]),
                "{} page {}: contents differ",
                letter.file,
                i + 1
            );
        }
        at += letter.pages + letter.pages % 2;
    }
    if have("pdfinfo") {
        let out = Command::new("pdfinfo")
            .arg(&batch)
            .output()
            .expect("pdfinfo");
        let info = String::from_utf8_lossy(&out.stdout);
        assert!(
            info.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["Pages:", &done.pages.to_string()]),
            "{info}"
        );
    }
    if have("pdftotext") {
        let mut page = 1;
        for (letter, path) in letters.iter().zip(&paths) {
            let own = text(path, 1, letter.pages);
            let in_batch = text(&batch, page, page + letter.pages - 1);
            assert_eq!(in_batch, own, "{}: text differs in the batch", letter.file);
            page += letter.pages;
            if letter.pages % 2 == 1 {
                let blank = text(&batch, page, page);
                let spanish = letter.file.starts_with("CT-000103");
                let words = if spanish {
                    "Esta página se dejó en blanco intencionalmente"
                } else {
                    "This page intentionally left blank"
                };
                assert_eq!(blank.trim(), words, "{}: back page", letter.file);
                page += 1;
            }
        }
        assert_eq!(page - 1, done.pages as usize);
    }
}

#[test]
fn the_batch_is_one_pdfa_and_pdfua_document() {
    let MixBatch {
        dir: _dir,
        letters,
        batch,
        ..
    } = assembled_mix();
    let bytes = std::fs::read(&batch).expect("batch");
    assert!(bytes.starts_with(b"%PDF-1.7\n%\x80\x80\x80\x80\n"));
    let doc = Document::load_mem(&bytes).expect("lopdf");
    assert!(doc.xref_recovery.is_none());
    let catalog = doc.catalog().expect("catalog");
    let xmp = deref(&doc, catalog.get(b"Metadata").expect("Metadata"))
        .as_stream()
        .expect("XMP")
        .content
        .clone();
    let xmp = String::from_utf8(xmp).expect("utf-8");
    for needle in [
        "<pdfaid:part>2</pdfaid:part>",
        "<pdfaid:conformance>B</pdfaid:conformance>",
        "<pdfuaid:part>1</pdfuaid:part>",
        "First-class batch 1 of run 7",
        "<xmp:CreateDate>2026-12-01T00:00:00+00:00</xmp:CreateDate>",
    ] {
        assert!(xmp.contains(needle), "XMP lacks {needle}: {xmp}");
    }
    assert_eq!(
        bytes.windows(14).filter(|w| w == b"/Type/Metadata").count(),
        1
    );
    let intents = deref(&doc, catalog.get(b"OutputIntents").expect("intents"))
        .as_array()
        .expect("array");
    assert_eq!(intents.len(), 1);
    let mark = deref(&doc, catalog.get(b"MarkInfo").expect("MarkInfo"))
        .as_dict()
        .expect("dict");
    assert_eq!(
        mark.get(b"Marked").and_then(Object::as_bool).ok(),
        Some(true)
    );
    assert_eq!(
        catalog.get(b"Lang").and_then(Object::as_str).ok(),
        Some(&b"en"[..])
    );
    let prefs = deref(&doc, catalog.get(b"ViewerPreferences").expect("prefs"))
        .as_dict()
        .expect("dict");
    assert_eq!(
        prefs.get(b"DisplayDocTitle").and_then(Object::as_bool).ok(),
        Some(true)
    );
    assert_eq!(
        doc.trailer
            .get(b"ID")
            .and_then(Object::as_array)
            .map(Vec::len)
            .ok(),
        Some(2)
    );

    // One structure tree: a top element per letter, the Spanish ones in Spanish.
    let tree = deref(&doc, catalog.get(b"StructTreeRoot").expect("tree"))
        .as_dict()
        .expect("dict");
    let tops = tree.get(b"K").and_then(Object::as_array).expect("K");
    assert_eq!(tops.len(), letters.len());
    for (top, letter) in tops.iter().zip(&letters) {
        let top = deref(&doc, top).as_dict().expect("element");
        let lang = top.get(b"Lang").and_then(Object::as_str).expect("Lang");
        let spanish = letter.file.starts_with("CT-000103");
        assert_eq!(lang, if spanish { &b"es-US"[..] } else { &b"en"[..] });
    }
    // Every page's and annotation's parent tree key is its own and in the tree.
    let mut keys = BTreeSet::new();
    let mut blanks = 0;
    for page_id in doc.get_pages().values() {
        let page = doc.get_dictionary(*page_id).expect("page");
        match page.get(b"StructParents").and_then(Object::as_i64) {
            Ok(key) => assert!(keys.insert(key), "key {key} twice"),
            Err(_) => blanks += 1,
        }
        if let Ok(annots) = page.get(b"Annots").and_then(Object::as_array) {
            for annot in annots {
                let annot = deref(&doc, annot).as_dict().expect("annot");
                let key = annot
                    .get(b"StructParent")
                    .and_then(Object::as_i64)
                    .expect("key");
                assert!(keys.insert(key), "key {key} twice");
            }
        }
    }
    assert_eq!(blanks, letters.iter().filter(|l| l.pages % 2 == 1).count());
    // A blank page holds an artifact only: nothing tagged, so no structure to miss.
    for page_id in doc.get_pages().values() {
        let page = doc.get_dictionary(*page_id).expect("page");
        if !page.has(b"StructParents") {
            let contents = deref(&doc, page.get(b"Contents").expect("contents"))
                .as_stream()
                .expect("stream")
                .decompressed_content()
                .expect("inflates");
            let contents = String::from_utf8_lossy(&contents);
            assert!(!contents.contains("/MCID"), "{contents}");
            assert!(contents.contains("/Artifact"), "{contents}");
        }
    }
    let next = tree
        .get(b"ParentTreeNextKey")
        .and_then(Object::as_i64)
        .expect("next");
    assert!(keys.iter().all(|k| *k < next));

    if have("qpdf") {
        passes("qpdf", &["--check"], &batch);
    }
    let required = std::env::var_os("MISSIVE_REQUIRE_VALIDATORS").is_some();
    for (tool, args) in [
        ("pdfua", &["check"][..]),
        // TAG-002: the page footer is an artifact on purpose (see tests/render.rs).
        ("outloud", &["--skip", "TAG-002", "--no-info", "-q"][..]),
    ] {
        let found = Command::new(tool).arg("--help").output().is_ok();
        assert!(
            found || !required,
            "`{tool}` is required here but not installed"
        );
        if found {
            passes(tool, args, &batch);
        }
    }
}

#[test]
fn the_same_letters_give_the_same_bytes() {
    let dir = tempfile::tempdir().expect("temp");
    let paths = files(dir.path(), &mix());
    let assembler = Assembler::new(renderer());
    let mut first = Vec::new();
    let a = assembler
        .assemble(&info(), &paths, &mut first)
        .expect("first");
    // A fresh assembler renders its blank pages again: still the same bytes.
    let mut second = Vec::new();
    let b = Assembler::new(renderer())
        .assemble(&info(), &paths, &mut second)
        .expect("second");
    assert_eq!(a, b);
    assert!(first == second, "the bytes differ");
    // Another title is another document.
    let mut other = Vec::new();
    let titled = BatchInfo {
        title: "First-class batch 2 of run 7".to_owned(),
        ..info()
    };
    assembler
        .assemble(&titled, &paths, &mut other)
        .expect("other");
    assert_ne!(first, other);
}

#[test]
fn identical_streams_are_written_once() {
    let dir = tempfile::tempdir().expect("temp");
    let letter = mix()[0];
    let paths = files(dir.path(), &[letter]);
    let twice = [paths[0].clone(), paths[0].clone()];
    let mut out = Vec::new();
    let done = Assembler::new(renderer())
        .assemble(&info(), &twice, &mut out)
        .expect("assembled");
    assert_eq!(done.pages as usize, 2 * letter.pages);
    // Everything without references (fonts, the ICC profile, ToUnicode maps) is shared.
    assert!(done.shared_streams >= 3, "{done:?}");
    assert!(
        done.bytes < 2 * letter.bytes.len() as u64 - done.shared_bytes / 2,
        "{done:?}"
    );
}

#[test]
fn the_quick_reader_reads_letters_as_lopdf_does() {
    for letter in rendered() {
        parse::tests::same_as_lopdf(&letter.bytes);
    }
    let assembler = Assembler::new(renderer());
    for lang in ["en", "es"] {
        let blank = assembler.blank(lang, info().date).expect("blank page");
        parse::tests::same_as_lopdf(&blank);
    }
}

#[test]
fn objects_are_written_as_lopdf_writes_them() {
    for letter in rendered() {
        let doc = Document::load_mem(&letter.bytes).expect("lopdf");
        for object in doc.objects.values() {
            serialize::tests::same_as_lopdf(object);
        }
    }
}

#[test]
fn a_bad_letter_is_named() {
    let dir = tempfile::tempdir().expect("temp");
    let mut paths = files(dir.path(), &mix()[..2]);
    let assembler = Assembler::new(renderer());
    let fails = |paths: &[PathBuf]| {
        let err = assembler
            .assemble(&info(), paths, Vec::new())
            .expect_err("must fail");
        let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        (err, chain)
    };

    // Truncated.
    let bad = dir.path().join("truncated.pdf");
    let bytes = &rendered()[0].bytes;
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).expect("write");
    paths.push(bad.clone());
    let (err, chain) = fails(&paths);
    assert!(
        matches!(
            err,
            AssembleError::Parse { .. } | AssembleError::Letter { .. }
        ),
        "{chain}"
    );
    assert!(chain.contains("truncated.pdf"), "{chain}");

    // Not a PDF at all.
    std::fs::write(&bad, b"hello").expect("write");
    let (_, chain) = fails(&paths);
    assert!(chain.contains("truncated.pdf"), "{chain}");

    // Missing.
    let missing = dir.path().join("missing.pdf");
    *paths.last_mut().expect("last") = missing;
    let (err, chain) = fails(&paths);
    assert!(matches!(err, AssembleError::Read { .. }), "{chain}");
    assert!(chain.contains("missing.pdf"), "{chain}");

    // A catalog entry a batch cannot merge.
    let mut doc = Document::load_mem(bytes).expect("lopdf");
    let root = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .expect("root");
    doc.get_dictionary_mut(root)
        .expect("catalog")
        .set("PageLabels", Object::Null);
    let labelled = dir.path().join("labelled.pdf");
    doc.save(&labelled).expect("save");
    *paths.last_mut().expect("last") = labelled;
    let (err, chain) = fails(&paths);
    assert!(matches!(err, AssembleError::Letter { .. }), "{chain}");
    assert!(
        chain.contains("labelled.pdf") && chain.contains("/PageLabels"),
        "{chain}"
    );

    // Nothing to assemble.
    let none: [PathBuf; 0] = [];
    assert!(matches!(
        assembler.assemble(&info(), &none, Vec::new()),
        Err(AssembleError::Empty)
    ));
}

#[test]
fn a_failed_assembly_leaves_no_file() {
    let dir = tempfile::tempdir().expect("temp");
    let mut paths = files(dir.path(), &mix()[..1]);
    paths.push(dir.path().join("missing.pdf"));
    let batch = dir.path().join("batch.pdf");
    assert!(
        Assembler::new(renderer())
            .assemble_file(&info(), &paths, &batch)
            .is_err()
    );
    assert!(!batch.exists());
    assert!(!dir.path().join(".batch.pdf.tmp").exists());
}

#[test]
fn language_tags_pick_the_blank_page_words() {
    assert_eq!(primary_subtag("es-US"), "es");
    assert_eq!(primary_subtag("EN"), "en");
    assert_eq!(primary_subtag(""), "en");
}
