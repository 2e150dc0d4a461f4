#!/usr/bin/env python3
"""A mail server's logger for the real-machinery tests (tests/it_machinery_*.sh).

Writes the lines of a relaywatch-gen log, one write(2) per line, while the real log programs
rotate what it writes and relaywatch-ship reads it:

  producer.py --from LOG --to PATH [--ack FILE] ...
      appends to PATH (O_APPEND, as syslogd does: after copytruncate's truncate the next line
      lands at the new end, not at the old offset). On SIGHUP it reopens PATH, as syslogd does
      after logrotate's postrotate, and then creates FILE, so that a postrotate script can wait
      until the old file is no longer written (logrotate compresses it right after postrotate).
  producer.py --from LOG --stdout [--strip-header]
      writes to stdout: a pipe into multilog, or into logger (--strip-header drops the syslog
      header "Mon DD HH:MM:SS host tag: " that rsyslogd writes again itself).

  --gate FILE --gate-bytes B
      never more than B bytes beyond the count FILE holds: the bytes this producer had written
      when the last successful relaywatch-ship run began (tests/lib_machinery.sh writes it).
      multilog and logrotate delete old files on their own schedule; the shipper must keep up
      with them (README, "Shipping"), and the gate makes that hold on a loaded machine instead
      of depending on its speed.
  --batch N --pause S
      a pause of S seconds after every N lines: the writes go on for a while, so that rotations
      and shipper runs fall among them.
  --done FILE
      at the end, "LINES BYTES" written, into FILE (through a rename).
  --progress FILE
      after every batch, and whenever it waits at the gate, "LINES BYTES" written so far, into
      FILE (through a rename): the test rotates at fixed points of the producer's progress,
      whatever the machine's speed, and the shipper's loop reads the bytes for the gate.
  --stop FILE
      with --to: after the last line, go on answering SIGHUPs until FILE exists (a rotation
      that began before the end still gets its reopen).
"""
import argparse
import os
import re
import signal
import sys
import time

HEADER = re.compile(rb"^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [^ ]+ [^ :]+: ")


def gate_bytes(path):
    try:
        with open(path, "rb") as f:
            return int(f.read().strip() or b"0")
    except (OSError, ValueError):
        return 0


def publish(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--from", dest="src", required=True)
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--to")
    out.add_argument("--stdout", action="store_true")
    p.add_argument("--ack")
    p.add_argument("--strip-header", action="store_true")
    p.add_argument("--gate")
    p.add_argument("--gate-bytes", type=int, default=0)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--pause", type=float, default=0.0)
    p.add_argument("--done")
    p.add_argument("--stop")
    p.add_argument("--progress")
    a = p.parse_args()

    with open(a.src, "rb") as f:
        lines = f.read().splitlines(keepends=True)

    hup = [False]

    def on_hup(signum, frame):
        hup[0] = True

    def open_out():
        return os.open(a.to, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    if a.to:
        signal.signal(signal.SIGHUP, on_hup)
        fd = open_out()
    else:
        fd = sys.stdout.fileno()

    def reopen_if_asked(fd):
        if hup[0]:
            hup[0] = False
            os.close(fd)
            fd = open_out()
            if a.ack:
                with open(a.ack, "w"):
                    pass
        return fd

    written = nbytes = 0
    for line in lines:
        if a.strip_header:
            line = HEADER.sub(b"", line, count=1)
        if a.gate and nbytes + len(line) > gate_bytes(a.gate) + a.gate_bytes:
            if a.progress:
                publish(a.progress, "%d %d\n" % (written, nbytes))
            while nbytes + len(line) > gate_bytes(a.gate) + a.gate_bytes:
                if a.to:
                    fd = reopen_if_asked(fd)
                time.sleep(0.02)
        if a.to:
            fd = reopen_if_asked(fd)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        written += 1
        nbytes += len(line)
        if written % a.batch == 0 and a.progress:
            publish(a.progress, "%d %d\n" % (written, nbytes))
        if a.pause and written % a.batch == 0:
            end = time.monotonic() + a.pause
            while time.monotonic() < end:
                if a.to:
                    fd = reopen_if_asked(fd)
                time.sleep(min(0.01, a.pause))
    if a.progress:
        publish(a.progress, "%d %d\n" % (written, nbytes))
    if a.done:
        publish(a.done, "%d %d\n" % (written, nbytes))
    # A rotation may still be under way: its postrotate waits for the answer to its SIGHUP.
    if a.to:
        while a.stop and not os.path.exists(a.stop):
            fd = reopen_if_asked(fd)
            time.sleep(0.02)
        os.close(fd)

if __name__ == "__main__":
    main()
