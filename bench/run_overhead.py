#!/usr/bin/env python3
"""Ledger overhead: `missive run` against plain `missive render` on the same accounts.

Both render every planned letter; `run` also records each letter in the SQLite ledger
(planned in one transaction, rendered per chunk, events), writes referrals.csv and takes
the run lock. The approval gate is off and `run --no-batches` leaves print batches out, so
the difference is the ledger. Each command runs --repeat times into fresh directories; the best wall
time of each is compared.

    python3 bench/run_overhead.py --binary target/release/missive --letters 10000
"""
import argparse
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
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    root = os.path.dirname(HERE)
    tmpdir = tempfile.mkdtemp()
    # The ledger is what is measured: no approval gate, no print batches.
    shipped = open(os.path.join(root, "missive.toml"), encoding="utf-8").read()
    config = os.path.join(tmpdir, "missive.toml")
    open(config, "w", encoding="utf-8").write(shipped.replace("require_approval = true", "require_approval = false"))
    common = ["--config", config]
    assets = ["--templates", os.path.join(root, "templates"), "--fonts", os.path.join(root, "fonts")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        accounts = os.path.join(tmp, "accounts.jsonl")
        count = int(args.letters / LETTERS_PER_ACCOUNT) + 1
        subprocess.run([sys.executable, os.path.join(HERE, "gen_accounts.py"), "--count", str(count), "--out", accounts], check=True)
        best = {}
        for name in ["render", "run"]:
            for i in range(args.repeat):
                out = os.path.join(tmp, f"{name}-{i}")
                cmd = [args.binary, *common, name, "--accounts", accounts, "--as-of", "2026-12-01", "--out", out, *assets]
                if name == "run":
                    cmd += ["--allow-past-mail-date", "--no-batches"]
                code, wall, rss = measure(cmd)
                if code != 0:
                    sys.exit(f"{name} exited {code}")
                best[name] = min(best.get(name, (1e9, 0)), (wall, rss))
        print()
        print(f"| command | letters | best wall (s) | peak RSS (MiB) |")
        print("|---|---:|---:|---:|")
        for name in ["render", "run"]:
            wall, rss = best[name]
            print(f"| {name} | ~{args.letters} | {wall:.2f} | {rss / 1024:.1f} |")
        overhead = 100 * (best["run"][0] - best["render"][0]) / best["render"][0]
        print(f"\nledger overhead: {overhead:+.1f}% of wall time")


if __name__ == "__main__":
    main()
