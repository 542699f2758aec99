#!/usr/bin/env python3
"""tests/bench/peers.py - strata side by side with the allocators people use.

Runs every workload of tests/bench/workloads.c, plus CPython under
PYTHONMALLOC=malloc (tests/real/workload.py), once per allocator per
repetition: strata (build/host/libstrata.so), glibc malloc (no preload),
jemalloc, mimalloc and tcmalloc (Debian's libjemalloc2, libmimalloc2.0,
libtcmalloc-minimal4), all loaded with LD_PRELOAD.  Runs are interleaved
(repetition -> workload -> allocator, the allocator order rotated each
repetition) so that a noisy moment of the machine hits everyone alike.

Per run: wall time, and peak RSS from wait4()'s rusage.  The table shows
medians; "x" columns are the ratio peer / strata (above 1: strata is
faster or smaller).  Every run's output must carry the same checksum as
every other allocator's for that workload, or the run counts as failed.

Then, for the workloads whose measured loop is the allocator's (all but
sqlite and python), instructions per operation with callgrind (the measured loop only: workloads.c brackets it with
CALLGRIND_ZERO_STATS / CALLGRIND_DUMP_STATS_AT).

    tests/bench/peers.py WORKLOADS_BIN LIBSTRATA [--reps N] [--out FILE]
                        [--only w1,w2] [--no-callgrind] [--before LIB]

--before LIB runs a second libstrata.so (say main's) as one more column of
the same interleaved run: before/after without the machine's drift.

Writes a Markdown report (default build/bench/results.md).  Stdlib only.
"""
import argparse
import datetime
import glob
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = [
    ("glibc", None),
    ("jemalloc", LIBDIR + "/libjemalloc.so.2"),
    ("mimalloc", LIBDIR + "/libmimalloc.so.2"),
    ("tcmalloc", LIBDIR + "/libtcmalloc_minimal.so.4"),
]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYWORK = os.path.join(ROOT, "tests/real/workload.py")

# name -> (description, single-threaded?)
WORKLOADS = {
    "hot": ("small-object hot loop (1000 live, 16..64 B), 20M malloc+free", True),
    "churn": ("random sizes (80% <=128 B .. 0.5% <=256 KiB), 20k live, 5M replaced", True),
    "prodcons": ("2 threads, larson-like: half the blocks freed by the other thread, 8M", False),
    "realloc": ("list-append growth: 2000 arrays to 16..64 KiB x4, 8 arrays to 32 MiB", True),
    "frag": ("1.5M blocks 16..256 B, 90% freed at random, 60k of 300..4000 B", True),
    "large": ("blocks of 5..25 MiB, 20 live, replaced at random, every page written, 1000x", True),
    "pipeline": ("2 threads, producer/consumer: one only allocates (16..512 B), one only frees, 4M", False),
    "larson": ("2 threads, server simulation: arrays of 1000 blocks handed between threads, 40M", False),
    "xthread": ("2 threads, 16 B..16 KiB log-uniform, random lifetimes, 1/3 freed remotely, 4M", False),
    "sqlite": ("sqlite3 CLI, in-memory database of 4 KiB pages: 300k rows, index, update, delete", True),
    "python": ("CPython, PYTHONMALLOC=malloc: dicts, lists, strings (tests/real/workload.py)", True),
}
# callgrind runs of the workloads whose measured loop is the allocator's
# (not sqlite's or CPython's own work); the threaded ones run serialised
# under valgrind, so theirs count instructions, not contention
CALLGRIND_SCALE = {"hot": 0.05, "churn": 0.05, "realloc": 0.25, "frag": 0.1,
                   "large": 0.02, "pipeline": 0.02, "larson": 0.01, "xthread": 0.02}


def command(workload, wbin, scale=None):
    if workload == "python":
        # run the script, then print the peak RSS the way workloads.c does
        code = ("import sys, runpy; sys.argv = [%r, '4']; runpy.run_path(%r, run_name='__main__'); "
                "print([l.split()[1] for l in open('/proc/self/status') "
                "if l.startswith('VmHWM')][0].join(['vmhwm_kib=', '']))") % (
                    PYWORK, PYWORK)
        return [sys.executable, "-S", "-c", code]
    cmd = [wbin, workload]
    if scale is not None:
        cmd.append(str(scale))
    return cmd


def env_for(lib, workload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    if workload == "python":
        env["PYTHONMALLOC"] = "malloc"
    return env


def checksum(workload, out):
    if workload == "python":
        m = re.search(r"checksum ([0-9a-f]+)", out)
    else:
        m = re.search(r"check=(\d+)", out)
    return m.group(1) if m else None


def run_once(workload, wbin, lib):
    """(seconds, peak RSS KiB, checksum, frag RSS KiB or None, output).
    The peak RSS is the program's VmHWM as it prints it: wait4's ru_maxrss
    includes the forking parent's peak (this script's) on Linux."""
    t0 = time.perf_counter()
    p = subprocess.Popen(command(workload, wbin), env=env_for(lib, workload),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        return secs, ru.ru_maxrss, None, None, out
    m = re.search(r"vmhwm_kib=(\d+)", out)
    peak = int(m.group(1)) if m else ru.ru_maxrss
    frag = None
    m = re.search(r"realloc_other=(\d+)", out)
    if m:
        frag = int(m.group(1))
    return secs, peak, checksum(workload, out), frag, out


def callgrind_insns(workload, wbin, lib):
    """Instructions per operation in the measured loop, or None."""
    scale = CALLGRIND_SCALE[workload]
    with tempfile.TemporaryDirectory() as d:
        outf = os.path.join(d, "cg.out")
        env = env_for(lib, workload)
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + outf]
                           + command(workload, wbin, scale), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        m = re.search(r"ops=(\d+)", p.stdout.decode(errors="replace"))
        if p.returncode != 0 or not m:
            return None
        ops = int(m.group(1))
        for f in glob.glob(outf + ".*"):      # the "measured" dump
            text = open(f, errors="replace").read()
            if "measured" not in text:
                continue
            t = re.search(r"^(?:totals|summary):\s*(\d+)", text, re.M)
            if t:
                return int(t.group(1)) / ops
    return None


def fmt_ratio(peer, strata):
    if peer is None or strata is None or strata == 0:
        return "-"
    return "%.2f" % (peer / strata)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workloads_bin")
    ap.add_argument("libstrata")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "3")))
    ap.add_argument("--out", default=os.path.join(ROOT, "build/bench/results.md"))
    ap.add_argument("--only", default="")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--before", default="",
                    help="another libstrata.so (e.g. main's) run as a peer 'before'")
    a = ap.parse_args()

    allocs = [("strata", os.path.abspath(a.libstrata))]
    if a.before:
        allocs.append(("before", os.path.abspath(a.before)))
    missing = []
    for name, lib in PEERS:
        if lib is None or os.path.exists(lib):
            allocs.append((name, lib))
        else:
            missing.append(name)
    names = [n for n, _ in allocs]
    wls = [w for w in WORKLOADS if not a.only or w in a.only.split(",")]

    times = {(w, n): [] for w in wls for n in names}
    rss = {(w, n): [] for w in wls for n in names}
    frag = {(w, n): [] for w in wls for n in names}
    sums = {}
    failures = []
    t_start = time.time()
    for rep in range(a.reps):
        for w in wls:
            order = allocs[rep % len(allocs):] + allocs[:rep % len(allocs)]
            for n, lib in order:
                secs, peak, cs, fr, out = run_once(w, a.workloads_bin, lib)
                ok = cs is not None and sums.setdefault(w, cs) == cs
                if not ok:
                    failures.append("%s under %s: %s" % (w, n, out.strip()[-300:] or "no output"))
                    print("  %-8s %-9s FAILED" % (w, n), flush=True)
                    continue
                times[(w, n)].append(secs)
                rss[(w, n)].append(peak)
                if fr is not None:
                    frag[(w, n)].append(fr)
                print("  rep %d  %-8s %-9s %7.3f s  %8d KiB" % (rep + 1, w, n, secs, peak),
                      flush=True)

    med = lambda v: statistics.median(v) if v else None
    lines = []
    host = platform.node() or "host"
    cpu = ""
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                cpu = l.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines.append("# strata vs peers, %s" % datetime.date.today().isoformat())
    lines.append("")
    lines.append("Machine: %s, %d cores, %s; Linux %s.  %d repetitions, interleaved; "
                 "medians.  Ratios are peer / strata: above 1.00 strata is faster "
                 "(or smaller)." % (cpu or platform.machine(), os.cpu_count() or 0, host,
                                    platform.release(), a.reps))
    lines.append("")
    lines.append("## Wall time (s)")
    lines.append("")
    hdr = "| workload | strata | " + " | ".join("%s | x" % n for n in names[1:]) + " |"
    lines.append(hdr)
    lines.append("|" + "---|" * (2 + 2 * (len(names) - 1)))
    for w in wls:
        s = med(times[(w, "strata")])
        row = "| %s | %s |" % (w, "%.3f" % s if s is not None else "-")
        for n in names[1:]:
            v = med(times[(w, n)])
            row += " %s | %s |" % ("%.3f" % v if v is not None else "-", fmt_ratio(v, s))
        lines.append(row)
    def geomean(n):
        v = [med(times[(w, n)]) for w in wls]
        if not v or any(x is None or x <= 0 for x in v):
            return None
        return math.exp(sum(math.log(x) for x in v) / len(v))
    g = geomean("strata")
    row = "| geometric mean | %s |" % ("%.3f" % g if g else "-")
    for n in names[1:]:
        v = geomean(n)
        row += " %s | %s |" % ("%.3f" % v if v else "-", fmt_ratio(v, g))
    lines.append(row)
    lines.append("")
    lines.append("## Peak RSS (MiB)")
    lines.append("")
    lines.append(hdr)
    lines.append("|" + "---|" * (2 + 2 * (len(names) - 1)))
    for w in wls:
        s = med(rss[(w, "strata")])
        row = "| %s | %s |" % (w, "%.1f" % (s / 1024) if s is not None else "-")
        for n in names[1:]:
            v = med(rss[(w, n)])
            row += " %s | %s |" % ("%.1f" % (v / 1024) if v is not None else "-",
                                   fmt_ratio(v, s))
        lines.append(row)
    if "frag" in wls:
        s = med(frag[("frag", "strata")])
        lines.append("")
        lines.append("Fragmentation (frag, RSS after the last phase, MiB): strata %s; %s" % (
            "%.1f" % (s / 1024) if s else "-",
            ", ".join("%s %s (x %s)" % (n, "%.1f" % (med(frag[("frag", n)]) / 1024)
                                        if frag[("frag", n)] else "-",
                                        fmt_ratio(med(frag[("frag", n)]), s))
                      for n in names[1:])))

    single = [w for w in wls if w in CALLGRIND_SCALE]
    if not a.no_callgrind and single and subprocess.run(
            ["sh", "-c", "command -v valgrind"], stdout=subprocess.DEVNULL).returncode == 0:
        lines.append("")
        lines.append("## Instructions per operation (callgrind, measured loop only)")
        lines.append("")
        lines.append("| workload | " + " | ".join(names) + " |")
        lines.append("|" + "---|" * (1 + len(names)))
        for w in single:
            row = "| %s |" % w
            for n, lib in allocs:
                v = callgrind_insns(w, a.workloads_bin, lib)
                row += " %s |" % ("%.0f" % v if v is not None else "-")
                print("  callgrind %-8s %-9s %s" % (w, n, "%.0f insns/op" % v if v else "-"),
                      flush=True)
            lines.append(row)
        lines.append("")
        lines.append("An operation is one malloc+free pair (hot, churn, large, larson), "
                     "one realloc (realloc) or one malloc or free (frag, pipeline, xthread); "
                     "the workload's own work (random numbers, touching the memory, the "
                     "rings between threads) is included.")

    # the 64 GiB sparse heap: init time, descriptor bytes, resident cost
    def idle_run(lib):
        env = env_for(lib, "idle")
        env["STRATA_STATS"] = "1"
        out = subprocess.run([a.workloads_bin, "idle"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT).stdout.decode(errors="replace")
        m = re.search(r"vmhwm_kib=(\d+)", out)
        return out, int(m.group(1)) if m else 0
    out, with_rss = idle_run(allocs[0][1])
    _, without_rss = idle_run(None)
    m = re.search(r"heap \S+\+(\d+) MiB, init ([0-9.]+) ms.*metadata (\d+) bytes", out)
    if m:
        lines.append("")
        lines.append("Heap: libstrata.so manages a %d GiB MAP_NORESERVE reservation; the PFA "
                     "starts in %s ms with %d MiB of page descriptors reserved, of which a "
                     "program that allocates nothing has %d KiB resident (peak RSS %d KiB "
                     "with strata, %d KiB with glibc)." % (
                         int(m.group(1)) // 1024, m.group(2), int(m.group(3)) >> 20,
                         with_rss - without_rss, with_rss, without_rss))

    lines.append("")
    lines.append("Workloads (tests/bench/workloads.c):")
    lines.append("")
    for w in wls:
        lines.append("- **%s**: %s" % (w, WORKLOADS[w][0]))
    if missing:
        lines.append("")
        lines.append("Not installed, left out: %s." % ", ".join(missing))
    if failures:
        lines.append("")
        lines.append("FAILED runs:")
        for f in failures:
            lines.append("- " + f)
    lines.append("")
    lines.append("(%d s in all)" % (time.time() - t_start))

    report = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(report)
    print()
    print(report)
    print("written to %s" % a.out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
