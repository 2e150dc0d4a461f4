#!/usr/bin/env python3
"""Checks a drop directory filled by relaywatch-ship against the content that was logged.

Usage: ship_verify.py DROP_DIR REF... [--partial REF:BYTES]...

Each REF is a file holding the whole content one log file ever had (its identity: the SHA-256 of
its first line with the '\n'). Every chunk in DROP_DIR must be a byte range of one REF, its
manifest must match (length, lines, sha256, chunk name), and the ranges of each REF must tile it
exactly: each byte shipped exactly once, nothing missing. A pack (HOST_FPR16_START-ENDpN, with
"part = FPR16 OFFSET LENGTH" lines) holds byte ranges of several REFs, one after the other.
--partial REF:BYTES expects only the first BYTES bytes of REF to have been shipped (a live file
whose tail is not complete yet).
Leftover temporary uploads (dot files) are errors too unless --allow-temp is given.
Prints one line per problem and exits 1 if there is any.
"""
import gzip
import hashlib
import os
import sys


def fail(problems, msg):
    problems.append(msg)


def main(argv):
    drop = argv[1]
    refs = {}
    partial = {}
    allow_temp = False
    args = argv[2:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--partial":
            name, n = args[i + 1].rsplit(":", 1)
            partial[name] = int(n)
            i += 2
            continue
        if a == "--allow-temp":
            allow_temp = True
            i += 1
            continue
        with open(a, "rb") as f:
            data = f.read()
        nl = data.find(b"\n")
        first = data[: nl + 1] if nl >= 0 else data
        fpr = hashlib.sha256(first).hexdigest()
        refs[fpr[:16]] = (a, data)
        i += 1

    problems = []
    ranges = {k: [] for k in refs}
    names = sorted(os.listdir(drop))
    for name in names:
        if name.startswith("."):
            if not allow_temp:
                fail(problems, "leftover temporary file %s" % name)
            continue
        if name.endswith(".gz"):
            if name[:-3] + ".manifest" not in names:
                # A chunk whose manifest was not renamed yet must be completed by a rerun.
                fail(problems, "%s has no manifest" % name)
            continue
        if not name.endswith(".manifest"):
            fail(problems, "unexpected file %s" % name)
            continue
        base = name[: -len(".manifest")]
        m = {}
        parts = []
        with open(os.path.join(drop, name), encoding="ascii") as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition(" = ")
                if k == "part":
                    p16, po, pl = v.split(" ")
                    parts.append((p16, int(po), int(pl)))
                else:
                    m[k] = v
        try:
            host, fpr16, rng = base.rsplit("_", 2)
            npack = None
            if "p" in rng:
                rng, npack = rng.split("p")
                npack = int(npack)
            start, end = (int(x) for x in rng.split("-"))
        except ValueError:
            fail(problems, "%s: name not HOST_FPR16_START-END[pN]" % name)
            continue
        if npack is None:
            parts = [(fpr16, start, end - start)]
        elif npack != len(parts) or parts[0][:2] != (fpr16, start):
            fail(problems, "%s: pack name and parts differ" % name)
            continue
        if any(p[0] not in refs for p in parts):
            fail(problems, "%s: no reference file with fingerprint %s" % (name, fpr16))
            continue
        ref, data = refs[fpr16]
        try:
            with gzip.open(os.path.join(drop, base + ".gz"), "rb") as g:
                content = g.read()
        except (OSError, EOFError) as e:
            fail(problems, "%s.gz: %s" % (base, e))
            continue
        want = b"".join(refs[p][1][o : o + n] for p, o, n in parts)
        lines = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
        checks = [
            (content == want, "content differs from %s[%d:%d]" % (ref, start, end)),
            (m.get("chunk") == base + ".gz", "manifest chunk name"),
            (m.get("offset") == str(start), "manifest offset"),
            (m.get("length") == str(end - start), "manifest length"),
            (m.get("lines") == str(lines),
             "manifest lines %s, content has %d" % (m.get("lines"), lines)),
            (m.get("sha256") == hashlib.sha256(content).hexdigest(), "manifest sha256"),
            (m.get("version") == "1", "manifest version"),
        ]
        for ok, what in checks:
            if not ok:
                fail(problems, "%s: %s" % (name, what))
        for p, o, n in parts:
            ranges[p].append((o, o + n, name))

    for fpr16, (ref, data) in refs.items():
        want_end = partial.get(ref, len(data))
        pos = 0
        for start, end, name in sorted(ranges[fpr16]):
            if start > pos:
                fail(problems, "%s: bytes %d-%d never shipped" % (ref, pos, start))
            elif start < pos:
                fail(problems, "%s: bytes %d-%d shipped twice (again in %s)"
                     % (ref, start, min(pos, end), name))
            pos = max(pos, end)
        if pos < want_end:
            fail(problems, "%s: bytes %d-%d never shipped" % (ref, pos, want_end))
        elif pos > want_end:
            fail(problems, "%s: shipped up to %d, expected only %d" % (ref, pos, want_end))

    for p in problems:
        print("ship_verify: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
