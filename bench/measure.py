"""Shared by the bench scripts: run one command, return (exit code, wall s, peak RSS KiB)."""
import subprocess
import sys


def measure(cmd):
    """Runs cmd in a fresh Python child so RUSAGE_CHILDREN measures only that run."""
    probe = (
        "import resource,subprocess,sys,time;"
        "t=time.perf_counter();"
        "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
        "w=time.perf_counter()-t;"
        "print(r.returncode,w,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
    code, wall, rss_kib = out.stdout.split()
    return int(code), float(wall), int(rss_kib)
