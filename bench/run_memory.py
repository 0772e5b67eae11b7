#!/usr/bin/env python3
"""Peak RSS of the nightly `run` from 1k to 100k letters (issue 15: <= 250 MiB and flat).

For each N, generates the synthetic accounts (`gen_accounts.py`), then runs each binary
given (`run --jobs 2 --batch-size 500`, approval gate off) one after the other on them,
sampling its resident memory every `--every` seconds; prints one row per run with the
peak (the kernel's `ru_maxrss` of the process) and the resident memory sampled at a
quarter, half and three quarters of its wall time, so where memory grows is visible.
Output directories are deleted after each run (a 100k run writes about 9 GB).
"""
import argparse
import datetime
import glob
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run_vs_render import commands, gate_off_config, generate_accounts, load  # noqa: E402


def rss_mib(pid):
    """The process's resident memory now, in MiB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def sampled_run(cmd, every):
    """Runs cmd, sampling its RSS: (exit code, wall s, peak RSS MiB, [(t, MiB)])."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        rss = rss_mib(child.pid)
        if rss is not None:
            samples.append((time.perf_counter() - start, rss))
        time.sleep(every)
    wall = time.perf_counter() - start
    return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss / 1024, samples


def at(samples, t):
    """The sample nearest after time t."""
    later = [rss for when, rss in samples if when >= t]
    return later[0] if later else (samples[-1][1] if samples else 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, nargs="+")
    parser.add_argument("--letters", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--timeline", help="write every sample (binary, N, s, MiB) to this CSV")
    args = parser.parse_args()
    root = os.path.dirname(HERE)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"load average {load()}")
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        config = gate_off_config(root, tmp)
        for letters in args.letters:
            accounts = generate_accounts(tmp, letters)
            for binary in args.binary:
                out = os.path.join(tmp, "out")
                cmd = commands(binary, config, accounts, out, root, args.batch_size)
                cmd = cmd[f"run --batch-size {args.batch_size}"]
                os.sync()
                code, wall, peak, samples = sampled_run(cmd, args.every)
                if code not in (0, 1):
                    sys.exit(f"{binary} exited {code} at N={letters}")
                pdfs = len(glob.glob(os.path.join(out, "*.pdf")))
                batches = len(glob.glob(os.path.join(out, "batches", "*-[0-9]*.pdf")))
                quarter = [at(samples, wall * q) for q in (0.25, 0.5, 0.75)]
                rows.append((binary, letters, pdfs, batches, wall, peak, quarter))
                if args.timeline:
                    with open(args.timeline, "a", encoding="utf-8") as timeline:
                        for when, rss in samples:
                            timeline.write(f"{binary},{letters},{when:.2f},{rss:.1f}\n")
                print(f"{binary} N={letters}: {pdfs} letters, {wall:.1f} s, peak {peak:.0f} MiB",
                      flush=True)
                subprocess.run(["rm", "-rf", out], check=True)
    print(f"load average after: {load()}")
    print()
    print("| binary | N (asked) | letters | batches | wall (s) | peak RSS (MiB) "
          "| RSS at 1/4, 1/2, 3/4 of the run (MiB) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for binary, n, pdfs, batches, wall, peak, quarter in rows:
        marks = ", ".join(f"{q:.0f}" for q in quarter)
        print(f"| `{os.path.basename(binary)}` | {n} | {pdfs} | {batches} | {wall:.1f} "
              f"| {peak:.0f} | {marks} |")


if __name__ == "__main__":
    main()
