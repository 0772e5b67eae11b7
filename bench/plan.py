#!/usr/bin/env python3
"""Benchmarks `missive plan` on synthetic accounts and prints a Markdown table.

For each N it generates N accounts (bench/gen_accounts.py), runs the release binary
`plan --format json` with stdout discarded, and reports wall time, accounts/s and the
child's peak RSS (getrusage). Build first: `cargo build --release`.

    python3 bench/plan.py --binary target/release/missive --counts 10000 100000
"""
import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from measure import measure  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--counts", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per N; the best is reported")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print()
    print("| accounts | best wall (s) | accounts/s | peak RSS (MiB) | input (MiB) |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.counts:
            path = os.path.join(tmp, f"accounts-{n}.jsonl")
            subprocess.run([sys.executable, os.path.join(HERE, "gen_accounts.py"), "--count", str(n), "--out", path], check=True)
            runs = [measure([args.binary, "plan", "--accounts", path, "--as-of", "2026-12-01", "--format", "json"])
                    for _ in range(args.repeat)]
            for code, _, _ in runs:
                if code != 0:
                    sys.exit(f"plan exited {code} on {n} accounts")
            wall = min(r[1] for r in runs)
            rss = max(r[2] for r in runs) / 1024
            size = os.path.getsize(path) / 2**20
            print(f"| {n} | {wall:.3f} | {n / wall:,.0f} | {rss:.1f} | {size:.1f} |")


if __name__ == "__main__":
    main()
