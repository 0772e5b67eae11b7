#!/usr/bin/env python3
"""Benchmarks `missive render` on synthetic accounts and prints a Markdown table.

For each N it generates enough synthetic accounts (bench/gen_accounts.py) for about N
letters, renders them all with `render --out DIR`, and reports letters/s, ms/letter,
the child's peak RSS and the average PDF size. Build first: `cargo build --release`.

    python3 bench/render.py --binary target/release/missive --letters 1000 10000
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from measure import measure  # noqa: E402
LETTERS_PER_ACCOUNT = 1.06  # measured on the generator's mix at as-of 2026-12-01


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--letters", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    root = os.path.dirname(HERE)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; --jobs {args.jobs}")
    print()
    print("| letters | wall (s) | letters/s | ms/letter | peak RSS (MiB) | bytes/letter |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.letters:
            accounts = os.path.join(tmp, f"accounts-{n}.jsonl")
            count = int(n / LETTERS_PER_ACCOUNT) + 1
            subprocess.run([sys.executable, os.path.join(HERE, "gen_accounts.py"), "--count", str(count), "--out", accounts], check=True)
            out = os.path.join(tmp, f"out-{n}")
            code, wall, rss = measure([args.binary, "--config", os.path.join(root, "missive.toml"), "render",
                                       "--accounts", accounts, "--as-of", "2026-12-01", "--out", out,
                                       "--jobs", str(args.jobs), "--templates", os.path.join(root, "templates"),
                                       "--fonts", os.path.join(root, "fonts")])
            if code != 0:
                sys.exit(f"render exited {code} on {n} letters")
            summary = json.load(open(os.path.join(out, "render.json")))
            written = len(summary["letters"])
            size = sum(os.path.getsize(os.path.join(out, l["file"])) for l in summary["letters"])
            print(f"| {written} | {wall:.1f} | {written / wall:.0f} | {1000 * wall / written:.2f} | {rss / 1024:.1f} | {size // written} |")


if __name__ == "__main__":
    main()
