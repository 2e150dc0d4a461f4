#!/usr/bin/env python3
"""Runs a command and records what it cost: measure.py OUT CMD [ARG...]

Writes to OUT, one "key value" a line, what the kernel accounted to the command's process (and
the children it reaped) when it exited: rchar (bytes it read through read(2) and the like, from
/proc/PID/io, read before the process is reaped), cpu_ms (user + system CPU time) and maxrss_kb
(peak resident memory). Exits with the command's status (128 + N for signal N). No wall-clock
time is measured: tests assert on work done, never on how long it took.
"""
import os
import subprocess
import sys


def main():
    out, cmd = sys.argv[1], sys.argv[2:]
    p = subprocess.Popen(cmd)
    # WNOWAIT: the process stays a zombie, whose /proc/PID/io still holds its final counts.
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
    io = {}
    with open("/proc/%d/io" % p.pid) as f:
        for line in f:
            k, v = line.split(":")
            io[k.strip()] = int(v)
    _, status, ru = os.wait4(p.pid, 0)
    with open(out, "w") as f:
        f.write("rchar %d\n" % io["rchar"])
        f.write("cpu_ms %d\n" % int((ru.ru_utime + ru.ru_stime) * 1000))
        f.write("maxrss_kb %d\n" % ru.ru_maxrss)
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
