#!/usr/bin/env python3
"""Two (or more) builds of `run --batch-size 500` (and with --render, `render`), alternating.

The same synthetic accounts (bench/gen_accounts.py) for every binary; each command runs in
a fresh directory after a `sync`; wall, user+system CPU and peak RSS per run, then walls,
median and best per binary. Round 0's output directories are kept under --keep (NAME-run,
NAME-render) so the files can be compared byte for byte (`cmp`). Compare only within one
invocation: the machine's load moves between invocations.

    python3 bench/run_ab.py --letters 10000 --rounds 3 --render \
        main=/tmp/missive-main new=target/release/missive
"""
import argparse, os, subprocess, sys, tempfile, glob, statistics, hashlib
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from measure import measure_cpu

def load():
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())

p = argparse.ArgumentParser()
p.add_argument("--letters", type=int, default=10000)
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--render", action="store_true")
p.add_argument("--keep", default="ab-keep", help="where round 0's outputs stay")
p.add_argument("bins", nargs="+", help="NAME=BINARY")
a = p.parse_args()
bins = [b.split("=", 1) for b in a.bins]
tmp = tempfile.mkdtemp()
shipped = open(os.path.join(ROOT, "missive.toml")).read()
config = os.path.join(tmp, "missive.toml")
open(config, "w").write(shipped.replace("require_approval = true", "require_approval = false"))
accounts = os.path.join(tmp, "accounts.jsonl")
subprocess.run([sys.executable, os.path.join(ROOT, "bench/gen_accounts.py"), "--count",
                str(int(a.letters / 1.06) + 1), "--out", accounts], check=True)
assets = ["--templates", os.path.join(ROOT, "templates"), "--fonts", os.path.join(ROOT, "fonts")]
print(f"load before: {load()}", flush=True)
res = {}
os.makedirs(a.keep, exist_ok=True)
for r in range(a.rounds):
    for name, binary in bins:
        cmds = {"run": [binary, "--config", config, "run", "--accounts", accounts, "--as-of", "2026-12-01",
                        "--jobs", "2", "--allow-past-mail-date", "--batch-size", "500", *assets]}
        if a.render:
            cmds["render"] = [binary, "--config", config, "render", "--accounts", accounts,
                              "--as-of", "2026-12-01", "--jobs", "2", *assets]
        for what, cmd in cmds.items():
            out = os.path.join(tmp, f"{name}-{what}-{r}")
            cmd = cmd + ["--out", out]
            os.sync()
            code, wall, rss, cpu = measure_cpu(cmd)
            pdfs = len(glob.glob(os.path.join(out, "*.pdf")))
            res.setdefault((name, what), []).append((wall, rss / 1024, cpu, pdfs))
            print(f"round {r} {name} {what}: exit {code} wall {wall:.2f} s cpu {cpu:.1f} s rss {rss/1024:.0f} MiB pdfs {pdfs} load {load()}", flush=True)
            if r == 0:
                dst = os.path.join(a.keep, f"{name}-{what}")
                subprocess.run(["rm", "-rf", dst]); subprocess.run(["mv", out, dst], check=True)
            else:
                subprocess.run(["rm", "-rf", out], check=True)
print(f"load after: {load()}")
for (name, what), v in res.items():
    walls = [x[0] for x in v]
    print(f"{name} {what}: walls {' '.join(f'{w:.2f}' for w in walls)} median {statistics.median(walls):.2f} best {min(walls):.2f}; cpu median {statistics.median([x[2] for x in v]):.1f}; rss max {max(x[1] for x in v):.0f}; pdfs {v[0][3]}")
subprocess.run(["rm", "-rf", tmp])
