#!/usr/bin/env python3
"""Where the nightly `run`'s time goes: wall time and CPU time of each of its phases.

Runs `run --jobs 2 --batch-size 500` (approval gate off) on synthetic accounts for about
N letters, sampling the process's user + system CPU time (/proc/PID/stat) every 0.1 s,
and splits the run at the first and last letter file written and the last batch file
written (their modification times): before rendering (planning, recording, pieces,
payloads, and the first chunk's render), rendering, the batch step, and the end (Treasury
file, run summary). Each phase's CPU seconds over its wall seconds says how many of the
cores it kept busy: on 2 cores, a phase below 2 leaves time on the table, and a phase at
2 can only get shorter by doing less work. Several binaries run one after the other on
the same accounts, so they meet the same machine.

    python3 bench/run_phases.py --letters 10000 main=target/release/missive new=/tmp/missive
"""
import argparse
import glob
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run_vs_render import commands, gate_off_config, generate_accounts, load  # noqa: E402


def cpu_seconds(pid, ticks):
    """User + system CPU seconds of the process so far (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / ticks


def phases(cmd, out):
    """Runs cmd (writing into out) and returns [(phase, wall s, CPU s)] and its exit code."""
    ticks = os.sysconf("SC_CLK_TCK")
    start = time.time()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples = [(0.0, 0.0)]
    while process.poll() is None:
        cpu = cpu_seconds(process.pid, ticks)
        if cpu is not None:
            samples.append((time.time() - start, cpu))
        time.sleep(0.1)
    end = time.time() - start
    stderr = process.stderr.read().decode(errors="replace")
    if process.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {process.returncode}:\n{stderr}")
    letters = sorted(os.path.getmtime(p) - start for p in glob.glob(os.path.join(out, "*.pdf")))
    batches = sorted(os.path.getmtime(p) - start
                     for p in glob.glob(os.path.join(out, "batches", "*")))
    marks = [("before rendering", 0.0), ("rendering", letters[0]), ("batch step", letters[-1]),
             ("end", batches[-1] if batches else letters[-1]), (None, end)]

    def cpu_at(t):
        return max((c for s, c in samples if s <= t), default=0.0)

    rows = []
    for (name, t0), (_, t1) in zip(marks, marks[1:]):
        rows.append((name, t1 - t0, cpu_at(t1) - cpu_at(t0)))
    return rows, len(letters)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=10000)
    parser.add_argument("binaries", nargs="+", help="NAME=PATH, run in this order")
    args = parser.parse_args()
    root = os.path.dirname(HERE)
    tmp = tempfile.mkdtemp()
    config = gate_off_config(root, tmp)
    accounts = generate_accounts(tmp, args.letters)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"load average {load()}")
    print()
    print("| binary | N | letters | phase | wall (s) | CPU (s) | cores busy |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for named in args.binaries:
        name, binary = named.split("=", 1)
        out = os.path.join(tmp, "out")
        shutil.rmtree(out, ignore_errors=True)
        cmd = commands(binary, config, accounts, out, root, 500)["run --batch-size 500"]
        rows, letters = phases(cmd, out)
        total_wall = sum(w for _, w, _ in rows)
        total_cpu = sum(c for _, _, c in rows)
        for phase, wall, cpu in rows + [("whole run", total_wall, total_cpu)]:
            busy = cpu / wall if wall > 0 else 0.0
            print(f"| {name} | {args.letters} | {letters} | {phase} | {wall:.2f} | {cpu:.2f} "
                  f"| {busy:.2f} |")
        shutil.rmtree(out, ignore_errors=True)
    print()
    print(f"load average after: {load()}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
