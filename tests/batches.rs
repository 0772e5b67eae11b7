//! Mailroom print batches from the outside: `missive run` on the samples (plus letters
//! long enough to need a blank back page), read back with poppler and lopdf.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{missive_in, root};
use serde_json::Value;

/// The shipped configuration with the approval gate off: these tests are about batches,
/// not approvals.
fn gate_off_config() -> PathBuf {
    common::gate_off_config("batches-tests").to_owned()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

/// The samples plus intent-to-offset letters with many liabilities (some of them have an
/// odd page count), in a temporary directory.
fn accounts(dir: &Path) -> PathBuf {
    let accounts = dir.join("accounts");
    std::fs::create_dir_all(&accounts).expect("dir");
    for entry in std::fs::read_dir(root().join("samples/accounts")).expect("samples") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), accounts.join(entry.file_name())).expect("copy");
    }
    let base: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("samples/accounts/01-ito-basic.json"))
            .expect("sample"),
    )
    .expect("json");
    for (n, count) in [(1, 9), (2, 14), (3, 19), (4, 24)] {
        let mut account = base.clone();
        account["account_id"] = format!("CT-LONG-{n}").into();
        // No ZIP+4 on one of them: a 5-digit routing code.
        account["address"]["zip"] = if n == 1 { "06001" } else { "06002-1234" }.into();
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
            accounts.join(format!("long-{n}.json")),
            serde_json::to_vec(&account).expect("json"),
        )
        .expect("write");
    }
    accounts
}

fn run(dir: &Path, config: &Path, extra: &[&str]) -> common::Run {
    let accounts = accounts(dir);
    let mut args = vec![
        "--config".to_owned(),
        config.display().to_string(),
        "run".to_owned(),
        "--accounts".to_owned(),
        accounts.display().to_string(),
        "--as-of".to_owned(),
        "2026-12-01".to_owned(),
        "--out".to_owned(),
        dir.join("out").display().to_string(),
        "--allow-past-mail-date".to_owned(),
        "--jobs".to_owned(),
        "2".to_owned(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    missive_in(root(), &args)
}

fn csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    lines
        .map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn pdfinfo_pages(pdf: &Path) -> usize {
    let out = Command::new("pdfinfo").arg(pdf).output().expect("pdfinfo");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("page count")
}

/// Rows of `page` of `pdf` at 100 dpi with ink between x0 and x1 inches (grayscale, < 128).
fn inked_rows(pdf: &Path, page: usize, x0: f64, x1: f64) -> Vec<f64> {
    let dpi = 100.0;
    let (w, h, pixels) = gray_page(pdf, page, 100, None);
    let (c0, c1) = ((x0 * dpi) as usize, (x1 * dpi) as usize);
    (0..h)
        .filter(|y| (c0..c1).any(|x| pixels[y * w + x] < 128))
        .map(|y| y as f64 / dpi)
        .collect()
}

/// One page in gray at `dpi` (or the part `crop`: x, y, width, height in pixels) as
/// (width, height, one byte per pixel), read from `pdftoppm`'s PGM.
fn gray_page(
    pdf: &Path,
    page: usize,
    dpi: u32,
    crop: Option<[usize; 4]>,
) -> (usize, usize, Vec<u8>) {
    let page = page.to_string();
    let mut command = Command::new("pdftoppm");
    command.args(["-gray", "-r", &dpi.to_string(), "-f", &page, "-l", &page]);
    if let Some([x, y, w, h]) = crop {
        for (flag, value) in [("-x", x), ("-y", y), ("-W", w), ("-H", h)] {
            command.args([flag, &value.to_string()]);
        }
    }
    let data = command.arg(pdf).output().expect("pdftoppm").stdout;
    // PGM: "P5\nW H\n255\n" then bytes.
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        let start = at;
        while !data[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..at]).into_owned());
        at += 1;
    }
    let (w, h): (usize, usize) = (fields[1].parse().expect("w"), fields[2].parse().expect("h"));
    (w, h, data[at..].to_vec())
}

/// Reads the Intelligent Mail barcode printed at the bottom of page `page`'s recipient
/// window back from its pixels (600 dpi): each bar's ink against the barcode's full
/// height says whether it has an ascender and a descender (`F`, `A`, `D`, `T`).
fn printed_barcode(pdf: &Path, page: usize) -> String {
    let dpi = 600.0;
    let crop = [0.875, 2.25, 3.75, 0.875].map(|inches: f64| (inches * dpi) as usize);
    let (w, h, pixels) = gray_page(pdf, page, 600, Some(crop));
    let ink = |x: usize, y: usize| pixels[y * w + x] < 128;
    // The barcode is the lowest band of rows with ink in the window.
    let rows: Vec<usize> = (0..h).filter(|&y| (0..w).any(|x| ink(x, y))).collect();
    let bottom = *rows.last().expect("ink in the window");
    let mut top = bottom;
    while top > 0 && rows.contains(&(top - 1)) {
        top -= 1;
    }
    let inked = |x: usize| (top..=bottom).any(|y| ink(x, y));
    let mut bars = String::new();
    let mut x = 0;
    while x < w {
        if !inked(x) {
            x += 1;
            continue;
        }
        let start = x;
        while x < w && inked(x) {
            x += 1;
        }
        let ys: Vec<usize> = (top..=bottom)
            .filter(|&y| (start..x).any(|c| ink(c, y)))
            .collect();
        let tall = (bottom - top) as f64;
        let ascender = ((ys[0] - top) as f64) < tall * 0.15;
        let descender = ((bottom - ys[ys.len() - 1]) as f64) < tall * 0.15;
        bars.push(match (ascender, descender) {
            (true, true) => 'F',
            (true, false) => 'A',
            (false, true) => 'D',
            (false, false) => 'T',
        });
    }
    bars
}

#[test]
fn batches_reconcile_with_their_pdfs() {
    let dir = tempfile::tempdir().expect("temp");
    let r = run(dir.path(), &gate_off_config(), &["--batch-size", "6"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let batches = dir.path().join("out/batches");
    let control: Value = serde_json::from_str(
        &std::fs::read_to_string(batches.join("1-control.json")).expect("control.json"),
    )
    .expect("json");
    let list = control["batches"].as_array().expect("batches");
    let config: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("missive.toml")).expect("config"))
            .expect("toml");
    let mail = &config["mail"];
    assert!(list.len() >= 4, "{control}");
    let mut class_pages: HashMap<String, u64> = HashMap::new();
    let mut saw_padding = false;
    let mut saw_zip5 = false;
    for batch in list {
        let name = batch["name"].as_str().expect("name");
        let class = batch["mail_class"].as_str().expect("class");
        let pdf = batches.join(batch["file"].as_str().expect("file"));
        let pages = batch["pages"].as_u64().expect("pages");
        // The page count is the PDF's own, read back two ways.
        let doc = lopdf::Document::load(&pdf).expect("lopdf");
        assert_eq!(doc.get_pages().len() as u64, pages, "{name}");
        if have("pdfinfo") {
            assert_eq!(pdfinfo_pages(&pdf) as u64, pages, "{name}");
        }
        assert_eq!(batch["sheets"].as_u64(), Some(pages / 2), "{name}");
        // One compile, exported as PDF/A-2b + PDF/UA-1 with its own title.
        let bytes = std::fs::read(&pdf).expect("pdf");
        let raw = String::from_utf8_lossy(&bytes);
        assert!(
            raw.contains("pdfaid:part") && raw.contains("pdfuaid:part"),
            "{name}"
        );
        if Command::new("qpdf").arg("--version").output().is_ok() {
            let check = Command::new("qpdf")
                .arg("--check")
                .arg(&pdf)
                .output()
                .expect("qpdf");
            assert!(check.status.success(), "{name}: qpdf --check failed");
        }
        let rows = csv(&batches.join(format!("{name}.manifest.csv")));
        assert_eq!(rows.len() as u64, batch["pieces"].as_u64().expect("pieces"));
        assert!(rows.len() <= 6, "{name}: batch size");
        // Every letter even; together they are the PDF.
        let mut sum = 0;
        let mut due = 0.0;
        let mut zips = Vec::new();
        for row in &rows {
            let p: u64 = row["pages"].parse().expect("pages");
            assert!(p > 0 && p.is_multiple_of(2), "{name}: {row:?}");
            sum += p;
            due += row["amount_due"].parse::<f64>().unwrap_or(0.0);
            zips.push((row["zip"].replace('-', ""), row["account"].clone()));
            let imb = &row["imb"];
            assert_eq!(imb.len(), 65);
            assert!(imb.chars().all(|c| "FADT".contains(c)), "{imb}");
            if class == "certified" {
                let article = &row["article_number"];
                assert_eq!(article.len(), 20);
                assert!(missive::mailroom::article::is_valid(article), "{article}");
            } else {
                assert!(row["article_number"].is_empty());
            }
            // The IMb is the encoding of this piece's tracking code and its ZIP (5
            // digits) or ZIP+4 (9 digits) routing code.
            let serial: u64 = row["imb_serial"].parse().expect("serial");
            let service = if class == "certified" {
                &mail["service_type_certified"]
            } else {
                &mail["service_type_first_class"]
            };
            let tracking = missive::mailroom::imb::tracking_code(
                mail["barcode_id"].as_str().expect("id"),
                service.as_str().expect("stid"),
                mail["mailer_id"].as_str().expect("mid"),
                &format!("{serial:09}"),
            )
            .expect("tracking");
            let routing = row["zip"].replace('-', "");
            assert_eq!(
                missive::mailroom::imb::encode(&tracking, &routing).as_deref(),
                Ok(imb.as_str()),
                "{name}: {row:?}"
            );
            if row["zip"].len() == 5 {
                saw_zip5 = true;
            }
        }
        assert_eq!(sum, pages, "{name}");
        let stated: f64 = batch["amount_due"]
            .as_str()
            .expect("due")
            .parse()
            .expect("num");
        assert!((stated - due).abs() < 0.005, "{name}: {stated} vs {due}");
        let mut sorted = zips.clone();
        sorted.sort();
        assert_eq!(zips, sorted, "{name}: not in ZIP order");
        *class_pages.entry(class.to_owned()).or_default() += pages;
        if have("pdftotext") {
            let out = Command::new("pdftotext")
                .arg(&pdf)
                .arg("-")
                .output()
                .expect("pdftotext");
            let text = String::from_utf8_lossy(&out.stdout);
            saw_padding |= text.contains("This page intentionally left blank")
                || text.contains("Esta página se dejó en blanco intencionalmente");
            // "Page N of M" ("Página N de M" in a Spanish letter) restarts per letter: one
            // run 1..=M per letter, M its own pages (the blank back page has no number).
            let text = text.replace("Página ", "Page ");
            let numbers: Vec<(u64, u64)> = text
                .split("Page ")
                .skip(1)
                .filter_map(|rest| {
                    let mut words = rest.split_whitespace();
                    let n = words.next()?.parse().ok()?;
                    matches!(words.next()?, "of" | "de").then_some(())?;
                    Some((n, words.next()?.parse().ok()?))
                })
                .collect();
            let mut runs: Vec<u64> = Vec::new();
            for (n, m) in numbers {
                if n == 1 {
                    runs.push(m);
                }
                assert!(n >= 1 && n <= m, "{name}: Page {n} of {m}");
                assert_eq!(runs.last(), Some(&m), "{name}: Page {n} of {m}");
            }
            assert_eq!(
                runs.len(),
                rows.len(),
                "{name}: letters numbered on their own"
            );
            for (m, row) in runs.iter().zip(&rows) {
                let pages: u64 = row["pages"].parse().expect("pages");
                assert!(*m == pages || *m + 1 == pages, "{name}: {m} of {pages}");
            }
        }
        if class == "certified" {
            let book = csv(&batches.join(format!("{name}.mailing-book.csv")));
            assert_eq!(book.len(), rows.len());
            assert!(batches.join(format!("{name}.mailing-book.pdf")).is_file());
        }
    }
    assert!(saw_zip5, "no letter with a 5-digit ZIP");
    for (class, pages) in class_pages {
        assert_eq!(control["classes"][&class]["pages"].as_u64(), Some(pages));
    }
    if have("pdftotext") {
        assert!(saw_padding, "no letter needed a blank back page");
    }
}

/// Page 1 of the first certified batch: article number and barcode inside the recipient
/// window's content area (x 0.875–4.625in, y 2.25–3.125in), nothing else below it until
/// the body; the barcode read back from the printed pixels is the manifest's, there and on
/// every letter of the first first-class batch.
#[test]
fn barcode_and_article_number_sit_in_the_window() {
    if !have("pdftoppm") || !have("pdftotext") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let r = run(dir.path(), &gate_off_config(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pdf = dir.path().join("out/batches/1-certified-1.pdf");
    let rows = csv(&dir.path().join("out/batches/1-certified-1.manifest.csv"));
    let mut page = 1;
    for row in &rows {
        let ink = inked_rows(&pdf, page, 0.9, 4.6);
        let window: Vec<f64> = ink
            .iter()
            .copied()
            .filter(|y| *y >= 2.0 && *y < 3.35)
            .collect();
        assert!(!window.is_empty());
        let (top, bottom) = (window[0], window[window.len() - 1]);
        assert!(
            top >= 2.24 && bottom <= 3.125,
            "{}: ink from {top} to {bottom}in",
            row["key"]
        );
        let out = Command::new("pdftotext")
            .args(["-f", &page.to_string(), "-l", &page.to_string(), "-layout"])
            .arg(&pdf)
            .arg("-")
            .output()
            .expect("pdftotext");
        let text = String::from_utf8_lossy(&out.stdout);
        let grouped = missive::mailroom::article::grouped(&row["article_number"]);
        assert!(text.contains(&format!("No. {grouped}")), "{text}");
        // The bars printed are the manifest's (the ones the mailroom's encoder made).
        assert_eq!(printed_barcode(&pdf, page), row["imb"], "{}", row["key"]);
        page += row["pages"].parse::<usize>().expect("pages");
    }
    // A first-class piece carries its barcode the same way (and no article number).
    let pdf = dir.path().join("out/batches/1-first_class-1.pdf");
    let rows = csv(&dir.path().join("out/batches/1-first_class-1.manifest.csv"));
    assert!(!rows.is_empty());
    let mut page = 1;
    for row in &rows {
        assert_eq!(printed_barcode(&pdf, page), row["imb"], "{}", row["key"]);
        page += row["pages"].parse::<usize>().expect("pages");
    }
}

/// A range too short is an error before any batch is written; fixing the configuration
/// and resuming the run batches its letters; `release` marks them.
#[test]
fn an_exhausted_range_writes_no_batch_and_resume_batches() {
    let dir = tempfile::tempdir().expect("temp");
    let config = std::fs::read_to_string(gate_off_config()).expect("config");
    let short = dir.path().join("short.toml");
    std::fs::write(
        &short,
        config.replace("certified_last = 99999999", "certified_last = 3"),
    )
    .expect("write");
    let r = run(dir.path(), &short, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("range is exhausted"), "{}", r.stderr);
    let batches = dir.path().join("out/batches");
    let written = std::fs::read_dir(&batches).map(|d| d.count()).unwrap_or(0);
    assert_eq!(written, 0, "a batch file was written");

    let ledger = dir.path().join("out/missive.db");
    let resume = missive_in(
        root(),
        &[
            "--config",
            gate_off_config().to_str().expect("path"),
            "run",
            "--resume",
            "1",
            "--ledger",
            ledger.to_str().expect("path"),
            "--allow-past-mail-date",
        ],
    );
    assert_eq!(resume.code, 0, "{}", resume.stderr);
    assert!(
        batches.join("1-certified-1.pdf").is_file(),
        "{}",
        resume.stderr
    );
    let released = missive_in(
        root(),
        &[
            "release",
            "1-certified-1",
            "--ledger",
            ledger.to_str().expect("path"),
        ],
    );
    assert_eq!(released.code, 0, "{}", released.stderr);
    let control: Value = serde_json::from_str(
        &std::fs::read_to_string(batches.join("1-control.json")).expect("control"),
    )
    .expect("json");
    assert_eq!(control["batches"][0]["state"], "released");
    let history = missive_in(
        root(),
        &[
            "history",
            "CT-0001001",
            "--ledger",
            ledger.to_str().expect("path"),
        ],
    );
    assert!(history.stdout.contains("released"), "{}", history.stdout);
}

/// `n` accounts owing one liability each (one certified intent to offset per account), as
/// JSON Lines.
fn many_accounts(path: &Path, n: usize) {
    let base: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("samples/accounts/01-ito-basic.json"))
            .expect("sample"),
    )
    .expect("json");
    let mut text = String::new();
    for i in 0..n {
        let mut account = base.clone();
        account["account_id"] = format!("CT-8{i:06}").into();
        account["taxpayer"]["name"] = format!("Batch Kill Payer {i}").into();
        text.push_str(&serde_json::to_string(&account).expect("json"));
        text.push('\n');
    }
    std::fs::write(path, text).expect("write accounts");
}

/// Rendered letters recorded in the ledger (read-only, so polling changes nothing).
fn rendered_count(ledger: &Path) -> i64 {
    if !ledger.exists() {
        return 0;
    }
    rusqlite::Connection::open_with_flags(ledger, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM letters WHERE state = 'rendered'",
                [],
                |r| r.get(0),
            )
        })
        .unwrap_or(0)
}

/// A run SIGKILLed after some letters were rendered (so they are in no batch), then ONE
/// plain rerun of the same command (no `--resume`): every rendered print letter ends in
/// exactly one batch, whatever run rendered it.
#[test]
fn one_plain_rerun_after_a_kill_batches_every_rendered_letter() {
    let dir = tempfile::tempdir().expect("temp");
    let accounts = dir.path().join("accounts.jsonl");
    many_accounts(&accounts, 600);
    let out = dir.path().join("out");
    let ledger = out.join("missive.db");
    let args: Vec<String> = [
        "--config",
        gate_off_config().to_str().expect("path"),
        "run",
        "--accounts",
        accounts.to_str().expect("path"),
        "--out",
        out.to_str().expect("path"),
        "--as-of",
        "2026-12-01",
        "--allow-past-mail-date",
        "--jobs",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let mut first = Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(&args)
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the first run");
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = first.try_wait().expect("poll") {
            panic!("the first run ended ({status}) before any letter was rendered and killed");
        }
        if rendered_count(&ledger) > 0 {
            first.kill().expect("SIGKILL");
            first.wait().expect("reap");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "nothing rendered in 5 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let killed_rendered = rendered_count(&ledger);
    assert!(killed_rendered > 0 && killed_rendered < 600);

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rerun = missive_in(root(), &args);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert!(!rerun.stderr.contains("in no batch"), "{}", rerun.stderr);

    let opened = missive::ledger::SqliteLedger::open(&ledger).expect("ledger");
    use missive::ledger::BatchLog as _;
    assert_eq!(
        opened.unbatched_letters().expect("unbatched"),
        Vec::new(),
        "rendered print letters left outside a batch"
    );
    // Every letter in exactly one manifest, and every manifest row's PDF is the letter's.
    let mut in_batches: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(out.join("batches")).expect("batches") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".manifest.csv") {
            in_batches.extend(csv(&path).into_iter().map(|row| row["key"].clone()));
        }
    }
    in_batches.sort();
    let before = in_batches.len();
    in_batches.dedup();
    assert_eq!(before, in_batches.len(), "a letter is in two batches");
    assert_eq!(in_batches.len(), 600, "every letter is in a batch");
    // The killed run's letters are batched under that run's own name.
    assert!(
        out.join("batches/1-certified-1.pdf").is_file(),
        "{}",
        rerun.stderr
    );
}

/// Text of page `page` of `pdf` (pdftotext).
fn page_text(pdf: &Path, page: usize) -> String {
    let page = page.to_string();
    let out = Command::new("pdftotext")
        .args(["-f", &page, "-l", &page, "-layout"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Letters rendered by a version of missive that allocated mail pieces only when batching
/// (their files carry no barcode or article number): the batch prints a copy rendered
/// with the pieces' marks, leaves the archival files as they are, and no copy behind.
#[test]
fn letters_rendered_without_marks_are_batched_from_a_marked_print_copy() {
    if !have("pdftotext") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp");
    let r = run(dir.path(), &gate_off_config(), &["--no-batches"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = dir.path().join("out");
    let ledger = out.join("missive.db");
    // What an earlier version left: rendered print letters without a piece, files unmarked.
    let changed = rusqlite::Connection::open(&ledger)
        .and_then(|c| {
            c.execute(
                "UPDATE letters SET piece_id = NULL, marked_piece_id = NULL",
                [],
            )
        })
        .expect("forget the pieces");
    assert!(changed > 0);
    let archival: HashMap<String, Vec<u8>> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect();

    let r = run(dir.path(), &gate_off_config(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let batches = out.join("batches");
    let pdf = batches.join("1-certified-1.pdf");
    let rows = csv(&batches.join("1-certified-1.manifest.csv"));
    assert!(!rows.is_empty());
    let mut page = 1;
    for row in &rows {
        let grouped = missive::mailroom::article::grouped(&row["article_number"]);
        let text = page_text(&pdf, page);
        assert!(text.contains(&format!("No. {grouped}")), "{text}");
        page += row["pages"].parse::<usize>().expect("pages");
    }
    // The archival files are untouched (the second run rendered nothing).
    for (name, bytes) in &archival {
        assert_eq!(
            std::fs::read(out.join(name)).expect("archival"),
            *bytes,
            "{name} changed"
        );
    }
    let left: Vec<String> = std::fs::read_dir(&batches)
        .expect("batches")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "print copies left behind");
}

/// A letter's file replaced on disk after it was recorded (a late process writing an older
/// render over it) is never printed: the batch refuses it naming the file and both hashes,
/// writes no batch, and the letter's recorded file stays what the ledger says.
#[test]
fn a_letter_file_that_is_not_the_recorded_one_is_never_printed() {
    let dir = tempfile::tempdir().expect("temp");
    let r = run(dir.path(), &gate_off_config(), &["--no-batches"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = dir.path().join("out");
    let mut pdfs: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    pdfs.sort();
    assert!(pdfs.len() >= 2);
    // Another letter's bytes under the first letter's name.
    let victim = &pdfs[0];
    std::fs::copy(&pdfs[1], victim).expect("replace a letter's file");

    // The run finishes (exit 1: letters left unbatched, named), printing nothing.
    let r = run(dir.path(), &gate_off_config(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let name = victim.file_name().expect("name").to_string_lossy();
    assert!(
        r.stderr.contains(&*name) && r.stderr.contains("is not the file the ledger recorded"),
        "{}",
        r.stderr
    );
    let batches = out.join("batches");
    let written: Vec<String> = std::fs::read_dir(&batches)
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".pdf"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !written
            .iter()
            .any(|n| n.contains("certified") || n.contains("first")),
        "no batch printed from a replaced file: {written:?}"
    );
}

/// Batches are written two at a time but recorded one by one in order: when one fails (a
/// letter's file replaced on disk), the batches before it stand, recorded with their
/// files, and no batch after it is recorded or leaves a file under its name, whether the
/// failed one was the first or the second of the two written together.
#[test]
fn a_failed_batch_leaves_exactly_the_recorded_batches_before_it() {
    use missive::ledger::{BatchLog as _, LetterStore as _};
    // Print order, from a run with one letter a batch.
    let order = tempfile::tempdir().expect("temp");
    let r = run(order.path(), &gate_off_config(), &["--batch-size", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let key_of = |seq: u32| {
        let rows = csv(&order
            .path()
            .join(format!("out/batches/1-certified-{seq}.manifest.csv")));
        serde_json::from_value::<missive::letter::LetterKey>(rows[0]["key"].clone().into())
            .expect("key")
    };
    // Batch 1 fails while batch 2 is written beside it; then batch 2 fails beside batch 1.
    for failing in [1, 2] {
        let dir = tempfile::tempdir().expect("temp");
        let r = run(dir.path(), &gate_off_config(), &["--no-batches"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let out = dir.path().join("out");
        let ledger = missive::ledger::SqliteLedger::open(&out.join("missive.db")).expect("ledger");
        let file = |key| {
            let record = ledger.letter(&key).expect("read").expect("letter");
            out.join(record.file.expect("file"))
        };
        let (victim, other) = (file(key_of(failing)), file(key_of(3 - failing)));
        std::fs::copy(&other, &victim).expect("replace a letter's file");

        let r = run(dir.path(), &gate_off_config(), &["--batch-size", "1"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("is not the file the ledger recorded"),
            "{}",
            r.stderr
        );
        let names: Vec<String> = ledger
            .batches_of_run(1)
            .expect("batches")
            .into_iter()
            .map(|b| b.name)
            .collect();
        let before: Vec<String> = (1..failing)
            .map(|seq| format!("1-certified-{seq}"))
            .collect();
        assert_eq!(names, before, "recorded: the batches before the failed one");
        let mut on_disk: Vec<String> = std::fs::read_dir(out.join("batches"))
            .expect("batches")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .map(|n| n.split('.').next().unwrap_or_default().to_owned())
            .collect();
        on_disk.sort();
        on_disk.dedup();
        assert_eq!(
            on_disk, before,
            "files under a batch's name that is not recorded"
        );
    }
}
