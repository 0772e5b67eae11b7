#!/usr/bin/env python3
"""Print batches assembled from the archival PDFs (mailroom::assemble) against rendering them.

For each N it generates synthetic accounts for about N letters (bench/gen_accounts.py),
renders them with `missive render`, then assembles every rendered letter into batches of
--batch-size with the `assemble_batch` example (no Typst compile, except the blank back
page once per language). Reports wall time, letters/s and the child's peak RSS of each,
assembly time as a share of render time, and what `run` would reach if batching cost only
the assembly (render + assemble, one after the other). Build both first:

    cargo build --release --bin missive --example assemble_batch
    python3 bench/assemble.py --binary target/release/missive \\
        --example target/release/examples/assemble_batch --letters 500 1000
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from measure import measure  # noqa: E402

LETTERS_PER_ACCOUNT = 1.06


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--example", required=True, help="the built assemble_batch example")
    parser.add_argument("--letters", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--check", action="store_true", help="qpdf --check the first batch")
    args = parser.parse_args()
    root = os.path.dirname(HERE)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"render --jobs {args.jobs}; assembly on one thread; batch size {args.batch_size}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.letters:
            accounts = os.path.join(tmp, f"accounts-{n}.jsonl")
            count = int(n / LETTERS_PER_ACCOUNT) + 1
            subprocess.run([sys.executable, os.path.join(HERE, "gen_accounts.py"), "--count", str(count),
                            "--out", accounts], check=True)
            letters_dir = os.path.join(tmp, f"letters-{n}")
            code, r_wall, r_rss = measure([
                args.binary, "--config", os.path.join(root, "missive.toml"), "render",
                "--accounts", accounts, "--as-of", "2026-12-01", "--out", letters_dir,
                "--jobs", str(args.jobs), "--templates", os.path.join(root, "templates"),
                "--fonts", os.path.join(root, "fonts")])
            if code not in (0, 1):
                sys.exit(f"render exited {code} on {n} letters")
            summary = json.load(open(os.path.join(letters_dir, "render.json")))
            letters = len(summary["letters"])
            pages = Counter(l["pages"] for l in summary["letters"])
            batches_dir = os.path.join(tmp, f"batches-{n}")
            # The example reads fonts/ and templates/ relative to the crate it was built in.
            code, a_wall, a_rss = measure([args.example, letters_dir, batches_dir, str(args.batch_size)])
            if code != 0:
                sys.exit(f"assemble_batch exited {code} on {n} letters")
            stats = json.load(open(os.path.join(batches_dir, "assemble.json")))
            if args.check:
                subprocess.run(["qpdf", "--check", os.path.join(batches_dir, "batch-1.pdf")],
                               check=True, stdout=subprocess.DEVNULL)
            rows.append((letters, pages, r_wall, r_rss, a_wall, a_rss, stats))
            shutil.rmtree(letters_dir, ignore_errors=True)
            shutil.rmtree(batches_dir, ignore_errors=True)
    print()
    print("| letters | pages per letter | render (s) | render letters/s | render peak RSS (MiB) "
          "| assemble (s) | assemble letters/s | assemble peak RSS (MiB) | assemble / render "
          "| render + assemble letters/s | batches, pages, MB | streams shared (KB saved) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for letters, pages, r_wall, r_rss, a_wall, a_rss, s in rows:
        mix = ", ".join(f"{p}: {c}" for p, c in sorted(pages.items()))
        print(f"| {letters} | {mix} | {r_wall:.1f} | {letters / r_wall:.0f} | {r_rss / 1024:.0f} "
              f"| {a_wall:.2f} | {letters / a_wall:.0f} | {a_rss / 1024:.0f} | {100 * a_wall / r_wall:.1f}% "
              f"| {letters / (r_wall + a_wall):.0f} ({r_wall / (r_wall + a_wall):.2f}× render) "
              f"| {s['batches']}, {s['pages']}, {s['bytes'] / 1e6:.1f} "
              f"| {s['shared_streams']} ({s['shared_bytes'] // 1024}) |")
    print()
    loops = ", ".join(f"{r[6]['assemble_s']:.2f}" for r in rows)
    print("assemble (s) is the whole process: renderer setup (fonts, the blank back page) included;"
          f" the assembly loop alone took {loops} s.")


if __name__ == "__main__":
    main()
