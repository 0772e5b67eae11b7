#!/usr/bin/env python3
"""Email throughput: `missive send` of N messages to a local SMTP sink (aiosmtpd, discarding).

Generates accounts that all consent to email (bench/gen_accounts.py, then every account
given an address and electronic_delivery), renders them with `missive run` (not timed),
starts tests/smtp/server.py --mode discard on a loopback port, and times `missive send`:
wall time, messages/s and peak RSS. Every message carries its PDF (attach_pdf = true), and
each one is marked sending and sent in the ledger (SQLite, synchronous = FULL).

    python3 bench/send.py --binary target/release/missive --messages 10000 \\
        --python ~/.cache/missive-venv/bin/python3
"""
import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from measure import measure  # noqa: E402

LETTERS_PER_ACCOUNT = 1.06


def config_text(root, port, pool, rate):
    shipped = open(os.path.join(root, "missive.toml")).read().split("\n[email]")[0]
    # The approval gate is for production runs; the benchmark measures sending.
    shipped = shipped.replace("require_approval = true", "require_approval = false")
    return shipped + f"""
[email]
from = "Connecticut DRS <notices@po.state.ct.us>"
reply_to = "drs@po.state.ct.us"
attach_pdf = true
view_url = "https://portal.ct.gov/DRS/myconnect"
host = "127.0.0.1"
port = {port}
tls = "none"
password_env = "MISSIVE_SMTP_PASSWORD"
pool_size = {pool}
rate_per_second = {rate}
max_retries = 3
retry_backoff_ms = 100
timeout_seconds = 30
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--python", default=sys.executable, help="a Python with aiosmtpd")
    parser.add_argument("--pool", type=int, nargs="+", default=[4])
    parser.add_argument("--rate", type=float, default=100000.0)
    args = parser.parse_args()
    root = os.path.dirname(HERE)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.jsonl")
        count = int(args.messages / LETTERS_PER_ACCOUNT) + 1
        subprocess.run([sys.executable, os.path.join(HERE, "gen_accounts.py"), "--count", str(count), "--out", raw], check=True)
        accounts = os.path.join(tmp, "accounts.jsonl")
        with open(raw) as src, open(accounts, "w") as dst:
            for line in src:
                if line.strip():
                    a = json.loads(line)
                    a["email"] = f"{a['account_id'].lower()}@example.org"
                    a["electronic_delivery"] = True
                    dst.write(json.dumps(a) + "\n")
        server = subprocess.Popen([args.python, os.path.join(root, "tests/smtp/server.py"), "--dir", os.path.join(tmp, "sink"), "--mode", "discard"], stdout=subprocess.PIPE, text=True)
        try:
            port = int(server.stdout.readline().split()[1])
            rows = []
            for pool in args.pool:
                out = os.path.join(tmp, f"out-{pool}")
                config = os.path.join(tmp, f"config-{pool}.toml")
                with open(config, "w") as f:
                    f.write(config_text(root, port, pool, args.rate))
                common = [args.binary, "--config", config]
                subprocess.run([*common, "run", "--accounts", accounts, "--as-of", "2026-12-01", "--out", out, "--allow-past-mail-date",
                                "--templates", os.path.join(root, "templates"), "--fonts", os.path.join(root, "fonts")],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                db = os.path.join(out, "missive.db")
                queued = sqlite3.connect(db).execute("SELECT count(*) FROM emails WHERE state = 'pending'").fetchone()[0]
                code, wall, rss = measure([*common, "send", "--ledger", db])
                sent = sqlite3.connect(db).execute("SELECT count(*) FROM emails WHERE state = 'sent'").fetchone()[0]
                if code != 0 or sent != queued:
                    sys.exit(f"send exited {code}: {sent} of {queued} sent")
                rows.append((pool, sent, wall, sent / wall, rss / 1024))
            print()
            print("| pool_size | messages | wall (s) | messages/s | peak RSS (MiB) |")
            print("|---:|---:|---:|---:|---:|")
            for pool, sent, wall, rate, rss in rows:
                print(f"| {pool} | {sent} | {wall:.2f} | {rate:.0f} | {rss:.1f} |")
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
