#!/usr/bin/env python3
"""bots_proc — CPU and memory of a few processes over a time window.

Usage: bench/bots_proc.py --seconds S NAME=PID[+PID...] [NAME=PID[+PID...] ...]

Several PIDs joined by + are one NAME (e.g. a PostgreSQL cluster's
processes): their figures are summed. Reads /proc/PID/stat (utime + stime, in clock ticks) at the start and at the
end of S seconds, and /proc/PID/status (VmRSS) every second. Prints one line
per process:

  NAME cpu_pct=P cpu_s=C rss_mb=R rss_max_mb=M threads=T fds=F

cpu_pct = (utime + stime delta) / wall time x 100 (100 = one core busy);
rss_mb at the end; rss_max_mb the largest sampled; threads and open fds at
the end. A process that exits meanwhile is reported as gone.
"""

import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total


def status(pids):
    rss = threads = 0
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads += int(line.split()[1])
    return rss, threads


def main(argv):
    if len(argv) < 4 or argv[1] != "--seconds":
        print(__doc__)
        return 2
    seconds = float(argv[2])
    procs = [(a.split("=", 1)[0], [int(p) for p in a.split("=", 1)[1].split("+")])
             for a in argv[3:]]
    t0 = time.monotonic()
    start = {}
    rss_max = {}
    for name, pid in procs:
        try:
            start[name] = cpu_ticks(pid)
            rss_max[name] = status(pid)[0]
        except OSError:
            start[name] = None
    while time.monotonic() - t0 < seconds:
        time.sleep(min(1.0, max(0.0, seconds - (time.monotonic() - t0))))
        for name, pid in procs:
            try:
                rss_max[name] = max(rss_max.get(name, 0), status(pid)[0])
            except OSError:
                pass
    wall = time.monotonic() - t0
    for name, pid in procs:
        try:
            ticks = cpu_ticks(pid)
            rss, threads = status(pid)
            fds = sum(len(os.listdir("/proc/%d/fd" % p)) for p in pid)
        except OSError:
            print("%s gone" % name)
            continue
        if start[name] is None:
            print("%s gone" % name)
            continue
        cpu = (ticks - start[name]) / TICK
        print("%s cpu_pct=%.1f cpu_s=%.2f rss_mb=%.1f rss_max_mb=%.1f threads=%d fds=%d"
              % (name, 100.0 * cpu / wall, cpu, rss / 1024.0, rss_max[name] / 1024.0, threads, fds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
