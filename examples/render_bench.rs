//! Renders N copies of a one-page notice on a pool of J threads and prints letters/s;
//! also writes the first letter to `OUT.pdf` when given, to look at.
//!
//! `cargo run --release --example render_bench -- [N=500] [J=2] [OUT.pdf]`, from the
//! crate root (it reads `fonts/` and `tests/fixtures/render/lib/`). Measure peak RSS with
//! `/usr/bin/time -v`.

use std::path::PathBuf;
use std::time::Instant;

use missive::render::{LetterSource, Renderer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);
    let threads: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);
    let out = args.next().map(PathBuf::from);

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let start = Instant::now();
    let renderer = Renderer::new(&root.join("fonts"), &root.join("tests/fixtures/render/lib"))?;
    eprintln!(
        "renderer ready in {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    let date = chrono::NaiveDate::from_ymd_opt(2025, 3, 14).ok_or("bad date")?;
    let jobs: Vec<LetterSource> = (0..n)
        .map(|i| LetterSource {
            main: letter(
                &format!("José Núñez-O’Brien {i}"),
                &format!("{}.{:02}", 100 + i, i % 100),
            ),
            date,
            title: format!("Notice of Refund Offset {i}"),
            author: "State Department of Revenue".into(),
            lang: "en".into(),
        })
        .collect();

    // Render in batches of 100 and drop each batch's PDFs, as the pipeline writes
    // each one out: peak RSS then measures the renderer, not the held output.
    let start = Instant::now();
    let (mut bytes, mut errors) = (0, 0);
    for (b, batch) in jobs.chunks(100).enumerate() {
        for (i, result) in renderer
            .render_many(batch, threads)?
            .into_iter()
            .enumerate()
        {
            match result {
                Ok(pdf) => {
                    bytes += pdf.bytes.len();
                    if let (0, 0, Some(out)) = (b, i, &out) {
                        std::fs::write(out, &pdf.bytes)?;
                        eprintln!("wrote {}", out.display());
                    }
                }
                Err(err) => {
                    errors += 1;
                    eprintln!("error: {err}");
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} letters ({errors} failed) on {threads} threads in {secs:.2} s: {:.1} letters/s, \
         mean {:.1} KiB/letter",
        n as f64 / secs,
        bytes as f64 / n as f64 / 1024.0
    );
    Ok(())
}

fn letter(name: &str, amount: &str) -> String {
    format!(
        r#"#import "/lib/base.typ": *
#set text(lang: "en")
#show: notice

#grid(
  columns: (1fr, 1fr),
  address("{name}", ("12 Elm St", "Springfield, ST 00000")),
  align(right)[Notice date: #datetime.today().display("[month repr:long] [day], [year]")],
)

= Notice of Refund Offset

Dear {name},

Your state income tax refund was applied to a debt you owe, as §~12-3 of the
Revenue Code allows. The amounts are below – “offset” means the part we kept.

#table(
  columns: (2fr, 1fr),
  align: (left, right),
  table.header([*Item*], [*Amount*]),
  [Refund due], money("{amount}"),
  [Offset to child support], money("{amount}"),
  [Refund paid], money("0.00"),
)

_If you disagree, write to us within 30 days._ *Keep this notice.*
"#
    )
}
