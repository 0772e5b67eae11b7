"""Shared by the bench scripts: run one command, return (exit code, wall s, peak RSS KiB)."""
import subprocess
import sys


def measure_cpu(cmd):
    """Runs cmd in a fresh Python child so RUSAGE_CHILDREN measures only that run and the
    processes it waited for (a run's workers): (exit code, wall s, peak RSS KiB of the
    largest process, user + system CPU s of the whole tree)."""
    probe = (
        "import resource,subprocess,sys,time;"
        "t=time.perf_counter();"
        "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL);"
        "w=time.perf_counter()-t;"
        "u=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(r.returncode,w,u.ru_maxrss,u.ru_utime+u.ru_stime)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
    code, wall, rss_kib, cpu = out.stdout.split()
    return int(code), float(wall), int(rss_kib), float(cpu)


def measure(cmd):
    """As measure_cpu, without the CPU time."""
    code, wall, rss_kib, _ = measure_cpu(cmd)
    return code, wall, rss_kib
