//! Assembles the letters `missive render` wrote into print batches without typesetting
//! them again, and prints one JSON line of measurements; `bench/assemble.py` drives it.
//!
//! `cargo run --release --example assemble_batch -- LETTERS_DIR OUT_DIR [BATCH_SIZE=500]`,
//! from the crate root (it reads `fonts/` and `templates/typst/` for the blank back page).
//! LETTERS_DIR holds the PDFs and `render.json`; batches go to `OUT_DIR/batch-N.pdf`, in
//! `render.json` order, and the measurements also to `OUT_DIR/assemble.json`.

use std::path::PathBuf;
use std::time::Instant;

use missive::mailroom::assemble::{Assembler, BatchInfo};
use missive::render::Renderer;

// The allocator of the `missive` binary, so the measurement is the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let letters_dir = PathBuf::from(args.next().ok_or("LETTERS_DIR missing")?);
    let out_dir = PathBuf::from(args.next().ok_or("OUT_DIR missing")?);
    let size: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let start = Instant::now();
    let renderer = Renderer::new(&root.join("fonts"), &root.join("templates/typst"))?;
    let setup = start.elapsed().as_secs_f64();

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(letters_dir.join("render.json"))?)?;
    let files: Vec<PathBuf> = summary["letters"]
        .as_array()
        .ok_or("render.json has no letters")?
        .iter()
        .filter_map(|l| l["file"].as_str())
        .map(|f| letters_dir.join(f))
        .collect();
    std::fs::create_dir_all(&out_dir)?;

    let assembler = Assembler::new(&renderer);
    let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).ok_or("bad date")?;
    let start = Instant::now();
    let (mut pages, mut bytes, mut shared, mut saved, mut batches) = (0u64, 0u64, 0, 0u64, 0);
    for (i, chunk) in files.chunks(size.max(1)).enumerate() {
        let info = BatchInfo {
            title: format!("First-class batch {} of run 1", i + 1),
            author: "Connecticut Department of Revenue Services".to_owned(),
            lang: "en".to_owned(),
            date,
        };
        let done =
            assembler.assemble_file(&info, chunk, &out_dir.join(format!("batch-{}.pdf", i + 1)))?;
        pages += u64::from(done.pages);
        bytes += done.bytes;
        shared += done.shared_streams;
        saved += done.shared_bytes;
        batches += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "letters": files.len(),
        "batches": batches,
        "pages": pages,
        "bytes": bytes,
        "shared_streams": shared,
        "shared_bytes": saved,
        "setup_s": setup,
        "assemble_s": wall,
    });
    std::fs::write(out_dir.join("assemble.json"), report.to_string())?;
    println!("{report}");
    Ok(())
}
