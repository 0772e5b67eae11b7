#!/usr/bin/env python3
"""Print batches: `missive run` (which renders every letter AND builds the mailroom's
batches) against plain `missive render` on the same synthetic accounts.

Reports wall time, letters/s and the child's peak RSS of each, and for `run` the batches
it wrote (from control.json). Batch time is roughly run minus render (run also records the
ledger, whose overhead bench/run_overhead.py measures on its own).

    python3 bench/batches.py --binary target/release/missive --letters 10000
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

LETTERS_PER_ACCOUNT = 1.06


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--letters", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    root = os.path.dirname(HERE)
    common = ["--config", os.path.join(root, "missive.toml")]
    assets = ["--templates", os.path.join(root, "templates"), "--fonts", os.path.join(root, "fonts"),
              "--jobs", str(args.jobs)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; --jobs {args.jobs}")
    with tempfile.TemporaryDirectory() as tmp:
        accounts = os.path.join(tmp, "accounts.jsonl")
        count = int(args.letters / LETTERS_PER_ACCOUNT) + 1
        subprocess.run([sys.executable, os.path.join(HERE, "gen_accounts.py"), "--count", str(count),
                        "--out", accounts], check=True)
        rows = []
        for name in ["render", "run"]:
            out = os.path.join(tmp, name)
            cmd = [args.binary, *common, name, "--accounts", accounts, "--as-of", "2026-12-01", "--out", out, *assets]
            if name == "run":
                cmd += ["--allow-past-mail-date", "--batch-size", str(args.batch_size)]
            code, wall, rss = measure(cmd)
            if code not in (0, 1):
                sys.exit(f"{name} exited {code}")
            if name == "render":
                letters = len(json.load(open(os.path.join(out, "render.json")))["letters"])
                rows.append((name, letters, wall, rss, ""))
            else:
                runs = [f for f in os.listdir(out) if f.startswith("run-")]
                letters = len(json.load(open(os.path.join(out, runs[0])))["letters"])
                control = json.load(open(os.path.join(out, "batches", "1-control.json")))
                t = control["total"]
                rows.append((name, letters, wall, rss,
                             f"{t['batches']} batches, {t['pieces']} pieces, {t['pages']} pages"))
        print()
        print("| command | letters | wall (s) | letters/s | peak RSS (MiB) | batches |")
        print("|---|---:|---:|---:|---:|---|")
        for name, letters, wall, rss, note in rows:
            print(f"| {name} | {letters} | {wall:.1f} | {letters / wall:.0f} | {rss / 1024:.1f} | {note} |")


if __name__ == "__main__":
    main()
