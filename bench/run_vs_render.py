#!/usr/bin/env python3
"""The nightly run against plain rendering: `render --jobs 2` and `run --batch-size 500`.

Issue 15's targets, in one invocation on the same accounts (bench/gen_accounts.py): `run`
(plan, ledger, every letter rendered once with its marks, print batches assembled from the
letters' files, Treasury file) at >= 0.9x `render`'s letters/s, and at most 250 MiB peak
RSS, flat from 1k to 10k (and 100k) letters. The approval gate is off; letters/s counts
the PDFs each command wrote. The two commands alternate (render, run, render, run, ...)
--repeat times, each into a fresh directory, so a change in the machine's load touches
both; the best and the median letters/s of each are reported, with the largest peak RSS,
and the load average before and after (the ratio means something only within one
invocation).

    python3 bench/run_vs_render.py --binary target/release/missive --letters 1000 10000
"""
import argparse
import datetime
import glob
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from measure import measure  # noqa: E402

LETTERS_PER_ACCOUNT = 1.06


def commands(binary, config, accounts, out, root, batch_size):
    """The two commands, by name."""
    assets = ["--templates", os.path.join(root, "templates"), "--fonts", os.path.join(root, "fonts")]
    common = [binary, "--config", config]
    base = ["--accounts", accounts, "--as-of", "2026-12-01", "--out", out, *assets]
    return {
        "render --jobs 2": [*common, "render", *base, "--jobs", "2"],
        f"run --batch-size {batch_size}": [
            *common, "run", *base, "--jobs", "2", "--allow-past-mail-date",
            "--batch-size", str(batch_size),
        ],
    }


def gate_off_config(root, tmp):
    """The shipped configuration with the approval gate off, written into tmp: its path."""
    shipped = open(os.path.join(root, "missive.toml"), encoding="utf-8").read()
    config = os.path.join(tmp, "missive.toml")
    open(config, "w", encoding="utf-8").write(
        shipped.replace("require_approval = true", "require_approval = false"))
    return config


def generate_accounts(tmp, letters):
    """Synthetic accounts for about `letters` letters, written into tmp: their path."""
    accounts = os.path.join(tmp, f"accounts-{letters}.jsonl")
    count = int(letters / LETTERS_PER_ACCOUNT) + 1
    subprocess.run([sys.executable, os.path.join(HERE, "gen_accounts.py"), "--count",
                    str(count), "--out", accounts], check=True)
    return accounts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--letters", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2,
                        help="render/run pairs per N (alternating); default 2")
    args = parser.parse_args()
    root = os.path.dirname(HERE)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"{datetime.date.today()}; load average {load()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        config = gate_off_config(root, tmp)
        for letters in args.letters:
            accounts = generate_accounts(tmp, letters)
            runs = {}
            for i in range(args.repeat):
                for name, cmd in commands(args.binary, config, accounts, "", root,
                                          args.batch_size).items():
                    out = os.path.join(tmp, f"{letters}-{i}-{name.split()[0]}")
                    cmd[cmd.index("--out") + 1] = out
                    # Each command starts with no other command's files waiting to be
                    # written back: `run` fsyncs its ledger, which on ext4 (data=ordered)
                    # waits for every dirty page, so a render's 450 MB just written would
                    # be charged to the run after it.
                    os.sync()
                    code, wall, rss = measure(cmd)
                    # run exits 1 when a letter or account needs a person (bad data in
                    # the synthetic mix); render likewise. Anything else is a failure.
                    if code not in (0, 1):
                        sys.exit(f"{name} exited {code}")
                    pdfs = len(glob.glob(os.path.join(out, "*.pdf")))
                    batches = len(glob.glob(os.path.join(out, "batches", "*-[0-9]*.pdf")))
                    runs.setdefault(name, []).append((pdfs, wall, rss, batches))
                    subprocess.run(["rm", "-rf", out], check=True)
            for name, measured in runs.items():
                pdfs, _, _, batches = measured[0]
                speeds = sorted(p / w for p, w, _, _ in measured)
                rss = max(r for _, _, r, _ in measured)
                wall = min(w for _, w, _, _ in measured)
                rows.append((name, letters, pdfs, batches, wall, speeds[-1],
                             statistics.median(speeds), rss / 1024))
    print(f"load average after: {load()}")
    print()
    print("| command | N | letters | batches | best wall (s) | letters/s best | letters/s median "
          "| peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, pdfs, batches, wall, best, median, rss in rows:
        print(f"| `{name}` | {n} | {pdfs} | {batches} | {wall:.1f} | {best:.0f} | {median:.0f} "
              f"| {rss:.0f} |")
    print()
    for n in args.letters:
        by = {r[0].split()[0]: r for r in rows if r[1] == n}
        best = by["run"][5] / by["render"][5]
        median = by["run"][6] / by["render"][6]
        print(f"N={n}: run / render letters/s = {best:.2f} (best), {median:.2f} (median)")


def load():
    """The 1, 5 and 15 minute load averages, as text."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())

if __name__ == "__main__":
    main()
