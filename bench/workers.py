#!/usr/bin/env python3
"""`run` on PostgreSQL against SQLite, and worker processes against one process (issue 16).

Issue 16's benchmark, in one invocation on the same accounts (bench/gen_accounts.py), the
approval gate off, `run --batch-size 500 --allow-past-mail-date` each time into a fresh
output directory (and, on PostgreSQL, a fresh database):

    sqlite             run --jobs 2                         the default ledger, one process
    sqlite w1 j1       run --jobs 1 --workers 1             coordinator + 1 worker, 1 thread each
    pg                 run --jobs 2 --ledger URL            one process on PostgreSQL
    pg w1 j1           run --jobs 1 --workers 1 --ledger    2 rendering processes = 2 threads
    pg w2 j1           run --jobs 1 --workers 2 --ledger    3 rendering processes = 3 threads

(`--workers N` starts N worker processes besides the coordinator, which renders too; on
2 cores `--jobs 1` keeps the threads at or just above the cores.) The variants alternate
within each of --repeat rounds (A B C … A B C …) because the machine is shared and noisy;
the ratio to SQLite is taken within each round and its median reported.

Reported per variant: letters (PDFs written), best and median wall, letters/s (best),
CPU seconds per letter of the process tree (user + system of `run` and the workers it
waited for), the PostgreSQL server's CPU per letter (postmaster and its backends, from
/proc), peak RSS of the largest process, the ratio to SQLite, and from the ledger's own
timestamps when the first and last chunk were recorded rendered and when the run finished
(before, during and after rendering; the coordinator alone works before and after). For
PostgreSQL it also prints what `pg_stat_statements` saw in the last run (statements, calls per letter, mean
execution time), the time of one round trip on localhost (`pgbench`, `SELECT 1`), and with
--strace the requests `run` sends to the server, before, during and after rendering.

Unless --pg-url names a server (its user must create databases and `pg_stat_statements`
should be loaded), a throwaway server is started (initdb + pg_ctl in a temporary directory
on a free port, as `postgres` when running as root, fsync on as in production) and stopped
at the end.

    python3 bench/workers.py --binary target/release/missive --letters 2000 --repeat 3
"""
import argparse
import datetime
import glob
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from measure import measure_cpu  # noqa: E402

LETTERS_PER_ACCOUNT = 1.06

VARIANTS = {
    "sqlite": (False, ["--jobs", "2"]),
    "sqlite w1 j1": (False, ["--jobs", "1", "--workers", "1"]),
    "pg": (True, ["--jobs", "2"]),
    "pg w1 j1": (True, ["--jobs", "1", "--workers", "1"]),
    "pg w2 j1": (True, ["--jobs", "1", "--workers", "2"]),
}


def pg_bin():
    """The directory of initdb/pg_ctl/psql/pgbench: PATH, else Debian's newest."""
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(os.path.realpath(found))
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not dirs:
        sys.exit("no PostgreSQL programs (initdb, pg_ctl): install postgresql or pass --pg-url")
    return dirs[-1]


class Server:
    """A throwaway PostgreSQL server in a temporary directory, or one --pg-url names."""

    def __init__(self, url=None):
        self.bin = pg_bin()
        self.dir = None
        self.stats = False  # pg_stat_statements answers
        if url:
            self.admin = url
            self.host, self.port, self.user = parse(url)
            return
        self.dir = tempfile.mkdtemp(prefix="missive-bench-pg-")
        self.run_as = []
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres", self.dir], check=True)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.dir, "data")
        self.tool("initdb", "-D", data, "-U", "missive", "--auth=trust", "-E", "UTF8")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.host, self.user = "127.0.0.1", "missive"
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c shared_preload_libraries=pg_stat_statements -c max_connections=50")
        self.tool("pg_ctl", "-D", data, "-o", options, "-l", os.path.join(self.dir, "log"),
                  "-w", "start")
        self.admin = f"postgres://missive@127.0.0.1:{self.port}/postgres"

    def tool(self, name, *args):
        subprocess.run([*self.run_as, os.path.join(self.bin, name), *args], check=True,
                       stdout=subprocess.DEVNULL)

    def stop(self):
        if self.dir:
            self.tool("pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "fast", "-w", "stop")
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql, db="postgres"):
        out = subprocess.run(
            [os.path.join(self.bin, "psql"), "-h", self.host, "-p", str(self.port), "-U",
             self.user, "-d", db, "-At", "-F", "\t", "-c", sql],
            capture_output=True, text=True, check=True)
        return [line.split("\t") for line in out.stdout.splitlines() if line]

    def fresh_db(self, name):
        self.psql(f'DROP DATABASE IF EXISTS "{name}"')
        self.psql(f'CREATE DATABASE "{name}"')
        base = self.admin.rsplit("/", 1)[0]
        return f"{base}/{name}"

    def cpu_seconds(self):
        """CPU of the postmaster, the backends it reaped and those still alive (s), or None
        for a server this script did not start."""
        if not self.dir:
            return None
        pid = int(open(os.path.join(self.dir, "data", "postmaster.pid")).readline())
        tick = os.sysconf("SC_CLK_TCK")
        fields = proc_stat(pid)
        total = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        for path in glob.glob("/proc/[0-9]*/stat"):
            child = proc_stat_path(path)
            if child and int(child[1]) == pid:
                total += int(child[11]) + int(child[12])
        return total / tick

    def round_trip_ms(self):
        """Mean latency (ms) of one `SELECT 1` over a prepared statement: one round trip,
        one connection, 3 s."""
        script = os.path.join(tempfile.mkdtemp(prefix="missive-bench-rtt-"), "rtt.sql")
        open(script, "w").write("\\set k 1\nSELECT :k;\n")
        out = subprocess.run(
            [os.path.join(self.bin, "pgbench"), "-n", "-h", self.host, "-p", str(self.port),
             "-U", self.user, "-M", "prepared", "-f", script, "-T", "3", "postgres"],
            capture_output=True, text=True, check=True).stdout
        shutil.rmtree(os.path.dirname(script), ignore_errors=True)
        line = next(x for x in out.splitlines() if x.startswith("latency average"))
        return float(line.split("=")[1].split()[0])


def parse(url):
    rest = url.split("://", 1)[1].split("/", 1)[0]
    user, hostport = rest.split("@", 1) if "@" in rest else ("postgres", rest)
    host, port = hostport.rsplit(":", 1) if ":" in hostport else (hostport, "5432")
    return host, int(port), user


def proc_stat(pid):
    return proc_stat_path(f"/proc/{pid}/stat")


def proc_stat_path(path):
    """Fields 3.. of /proc/PID/stat (after the command name), so index 1 is the ppid and
    11..14 utime, stime, cutime, cstime; None when the process is gone."""
    try:
        text = open(path).read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def statements(server, db):
    """pg_stat_statements' rows of database db: (calls, total ms, query)."""
    rows = server.psql(
        "SELECT calls, total_exec_time, regexp_replace(query, '\\s+', ' ', 'g') "
        "FROM pg_stat_statements WHERE dbid = "
        f"(SELECT oid FROM pg_database WHERE datname = '{db}') ORDER BY calls DESC")
    return [(int(c), float(t), q) for c, t, q in rows]


PHASES_SQL = """SELECT r.started_at, r.finished_at,
    (SELECT max(at) FROM events WHERE run_id = r.id AND to_state = 'planned'),
    (SELECT min(at) FROM events WHERE run_id = r.id AND to_state = 'rendered'),
    (SELECT max(at) FROM events WHERE run_id = r.id AND to_state = 'rendered'),
    (SELECT count(DISTINCT at) FROM events WHERE run_id = r.id AND to_state = 'rendered')
  FROM runs r ORDER BY r.id DESC LIMIT 1"""


def phases(row):
    """Seconds from the run's start (as recorded) to: the last letter planned, the first
    and last chunk recorded rendered, the run finished; and the chunks recorded."""
    stamps = [datetime.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in row[:5]]
    start = stamps[0]
    at = {name: (stamps[i] - start).total_seconds()
          for name, i in (("planned", 2), ("first", 3), ("last", 4), ("finished", 1))}
    at["chunks"] = int(row[5])
    return at


def sqlite_phases(out):
    import sqlite3
    with sqlite3.connect(f"file:{os.path.join(out, 'missive.db')}?mode=ro", uri=True) as conn:
        return phases(conn.execute(PHASES_SQL).fetchone())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--letters", type=int, nargs="+", default=[2000])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--pg-url", help="an existing server's admin URL (no throwaway one)")
    parser.add_argument("--statements", type=int, default=25, help="pg_stat_statements rows shown")
    parser.add_argument("--strace", action="store_true",
                        help="also run `pg` once under strace, counting the requests it sends")
    args = parser.parse_args()
    root = os.path.dirname(HERE)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"load average {os.getloadavg()[0]:.1f}")
    server = Server(args.pg_url) if any(VARIANTS[v][0] for v in args.variants) else None
    try:
        if server:
            server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            try:
                server.psql("SELECT count(*) FROM pg_stat_statements")
                server.stats = True
            except subprocess.CalledProcessError:
                print("pg_stat_statements is not loaded on this server: no statement counts")
            version = server.psql("SHOW server_version")[0][0]
            fsync = server.psql("SHOW fsync")[0][0]
            print(f"PostgreSQL {version} on {server.host}:{server.port}, fsync {fsync}")
            rtt = server.round_trip_ms()
            print(f"one round trip on localhost (pgbench -M prepared, SELECT 1, 1 connection): "
                  f"{rtt:.3f} ms")
        with tempfile.TemporaryDirectory() as tmp:
            bench(args, root, tmp, server)
    finally:
        if server:
            server.stop()


def bench(args, root, tmp, server):
    shipped = open(os.path.join(root, "missive.toml"), encoding="utf-8").read()
    config = os.path.join(tmp, "missive.toml")
    open(config, "w", encoding="utf-8").write(
        shipped.replace("require_approval = true", "require_approval = false"))
    assets = ["--templates", os.path.join(root, "templates"), "--fonts", os.path.join(root, "fonts")]
    for letters in args.letters:
        accounts = os.path.join(tmp, f"accounts-{letters}.jsonl")
        subprocess.run([sys.executable, os.path.join(HERE, "gen_accounts.py"), "--count",
                        str(int(letters / LETTERS_PER_ACCOUNT) + 1), "--out", accounts], check=True)
        results = {v: [] for v in args.variants}
        last_statements = None
        for i in range(args.repeat):
            for name in args.variants:
                on_pg, extra = VARIANTS[name]
                out = os.path.join(tmp, f"out-{letters}-{i}-{name.replace(' ', '-')}")
                cmd = [args.binary, "--config", config, "run", "--accounts", accounts,
                       "--as-of", "2026-12-01", "--out", out, *assets, "--allow-past-mail-date",
                       "--batch-size", str(args.batch_size), "--quiet", *extra]
                db = None
                if on_pg:
                    db = f"bench_{letters}_{i}_{name.replace(' ', '_')}"
                    cmd += ["--ledger", server.fresh_db(db)]
                    if server.stats:
                        server.psql("SELECT pg_stat_statements_reset()")
                db_cpu = server.cpu_seconds() if on_pg else None
                code, wall, rss, cpu = measure_cpu(cmd)
                if on_pg and db_cpu is not None:
                    subprocess.run(["sleep", "0.3"])  # the run's backends exit
                    db_cpu = server.cpu_seconds() - db_cpu
                # run exits 1 when a letter or account needs a person (bad data in the
                # synthetic mix). Anything else is a failure.
                if code not in (0, 1):
                    sys.exit(f"{name} exited {code}: {' '.join(cmd)}")
                pdfs = len(glob.glob(os.path.join(out, "*.pdf")))
                batches = len(glob.glob(os.path.join(out, "batches", "*-[0-9]*.pdf")))
                at = phases(server.psql(PHASES_SQL, db)[0]) if on_pg else sqlite_phases(out)
                results[name].append((wall, pdfs, cpu, rss, db_cpu, batches, at))
                print(f"  round {i + 1} {name}: {pdfs} letters, {batches} batches, {wall:.2f} s, "
                      f"cpu {cpu:.1f} s" + (f", server cpu {db_cpu:.1f} s" if db_cpu else "")
                      + f"; from the run's start: planned {at['planned']:.2f} s, first chunk "
                      f"{at['first']:.2f} s, last chunk {at['last']:.2f} s ({at['chunks']} "
                      f"chunks), finished {at['finished']:.2f} s", flush=True)
                if on_pg and name == "pg" and server.stats:
                    last_statements = (statements(server, db), pdfs)
                if on_pg:
                    server.psql(f'DROP DATABASE "{db}"')
                subprocess.run(["rm", "-rf", out], check=True)
        report(letters, args, results)
        if args.strace and server and not shutil.which("strace"):
            print("\nskipped: --strace: no `strace` on PATH")
        elif args.strace and server:
            count_requests(args, server, letters, tmp, config, accounts, assets)
        if last_statements:
            print_statements(*last_statements, args.statements)
        print_phases(results)


def count_requests(args, server, letters, tmp, config, accounts, assets):
    """Runs `pg` once under strace: each sendto on the ledger's socket is one message batch
    to the server (the synchronous driver sends a request and reads its answer; a dropped
    statement's Close goes out on its own). The first and last claim (`WITH claimable`)
    split the run into before rendering (plan, pieces, payloads), rendering, and after."""
    out = os.path.join(tmp, f"out-{letters}-strace")
    db = f"bench_{letters}_strace"
    trace = os.path.join(tmp, "strace.txt")
    cmd = ["strace", "-f", "-qq", "-e", "trace=sendto", "-s", "64", "-o", trace, args.binary,
           "--config", config, "run", "--accounts", accounts, "--as-of", "2026-12-01", "--out",
           out, *assets, "--allow-past-mail-date", "--batch-size", str(args.batch_size),
           "--quiet", "--jobs", "2", "--ledger", server.fresh_db(db)]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sends = [line for line in open(trace) if "sendto(" in line]
    claims = [i for i, line in enumerate(sends) if "WITH claimable" in line]
    at = phases(server.psql(PHASES_SQL, db)[0])
    pdfs = len(glob.glob(os.path.join(out, "*.pdf")))
    before, during = claims[0], claims[-1] - claims[0] + 1
    after = len(sends) - before - during
    print()
    print(f"strace, `pg`: {len(sends)} sends to the server for {pdfs} letters "
          f"({len(sends) / pdfs:.1f} a letter); before the first claim {before} "
          f"({before / pdfs:.1f} a letter), from the first to the last claim {during} "
          f"({during / pdfs:.1f} a letter, {len(claims)} claims, {during / max(at['chunks'], 1):.0f} "
          f"a chunk of {at['chunks']}), after {after} ({after / pdfs:.1f} a letter)")
    server.psql(f'DROP DATABASE "{db}"')
    subprocess.run(["rm", "-rf", out], check=True)


def report(letters, args, results):
    base = results.get("sqlite")
    print()
    print(f"N = {letters} (asked), {args.repeat} rounds, batches of {args.batch_size}")
    print()
    print("| variant | letters | batches | wall best (s) | wall median (s) | letters/s (best) "
          "| CPU ms/letter (run) | CPU ms/letter (server) | peak RSS (MiB) | ratio to sqlite |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        walls = [r[0] for r in rows]
        pdfs = rows[0][1]
        best = min(rows, key=lambda r: r[0])
        cpu = statistics.median(r[2] for r in rows) / pdfs * 1000
        dbs = [r[4] for r in rows if r[4] is not None]
        db = f"{statistics.median(dbs) / pdfs * 1000:.2f}" if dbs else ""
        rss = max(r[3] for r in rows) / 1024
        ratio = ""
        if base:
            # Letters/s relative to SQLite's in the same round, median over rounds.
            ratio = f"{statistics.median(b[0] / r[0] for b, r in zip(base, rows)):.2f}"
        print(f"| `{name}` | {pdfs} | {best[5]} | {best[0]:.2f} | {statistics.median(walls):.2f} "
              f"| {pdfs / best[0]:.0f} | {cpu:.2f} | {db} | {rss:.0f} | {ratio} |")


def print_phases(results):
    print()
    print("Where the time goes (medians, seconds from the run's start as the ledger recorded "
          "it; a chunk's rendered events carry the time it was recorded):")
    print()
    print("| variant | → first chunk recorded | → last chunk recorded "
          "| → finished (batches, Treasury) | chunks | s per chunk (all processes) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rows in results.items():
        med = {k: statistics.median(r[6][k] for r in rows)
               for k in ("planned", "first", "last", "finished", "chunks")}
        # Chunks after the first, over the time between the first and the last recorded.
        per_chunk = (f"{(med['last'] - med['first']) / (med['chunks'] - 1):.2f}"
                     if med["chunks"] > 1 else "")
        print(f"| `{name}` | {med['first']:.2f} | {med['last']:.2f} "
              f"| {med['finished']:.2f} | {med['chunks']:.0f} | {per_chunk} |")


def print_statements(rows, letters, shown):
    print()
    print(f"pg_stat_statements, last `pg` run ({letters} letters): "
          f"{sum(r[0] for r in rows)} statements, {sum(r[1] for r in rows):.0f} ms executing")
    print()
    print("| calls | per letter | mean ms | statement |")
    print("|---:|---:|---:|---|")
    for calls, total, query in rows[:shown]:
        print(f"| {calls} | {calls / letters:.2f} | {total / calls:.3f} | `{query[:110]}` |")


if __name__ == "__main__":
    main()
