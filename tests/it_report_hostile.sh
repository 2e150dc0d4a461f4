#!/usr/bin/env bash
# Log lines whose client-chosen fields carry markup, quotes, SQL, terminal escapes, a bidi
# override, NUL and bytes that are not UTF-8: every format of `report` and `check` stays well
# formed, and none of those bytes reaches the reader raw.
. "$(dirname "$0")/lib.sh"
need_env RW_MYCNF
db_migrated report_hostile

python3 - "$T/hostile.log" <<'EOF'
import sys
base = 1710075600  # 2024-03-10 13:00 UTC
auth = [b"<script>alert(1)</script>@evil.example", b"a\"b'c&d@x.example",
        b"esc\x1b[31mred@x.example", b"rlo\xe2\x80\xaegro.elpmaxe@x.example",
        b"bad\xff\xfeutf8@x.example", b"nul\x00byte@x.example", b"tab\there@x.example",
        b"c1\xc2\x9bcsi@x.example"]
sender = b"'; DROP TABLE chunks; --@x.example"
lines = []
for i in range(2100):
    a = auth[i % len(auth)] if i < 100 else auth[0]
    lines.append(b"Mar 10 13:00:00 mx<marquee>1 smtp: %d.000000 CHKUSER relaying rcpt: "
                 b"from <%s:%s:> "
                 b"remote <h:unknown:192.0.2.%d> rcpt <u%d@\xff\x1b[2J%d.example> "
                 b": client allowed to relay" % (base + i, sender, a, i % 50, i, i % 250))
for i in range(1200):
    lines.append(b"Mar 10 13:30:00 mx<marquee>1 smtp-mx: %d.000000 CHKUSER rejected relaying: from "
                 b"<x@y::> remote <h\x1b]0;title\x07:unknown:203.0.113.9> rcpt "
                 b"<v@<img src=x onerror=alert(1)>%d.example> : client not allowed to relay"
                 % (base + 1800, i % 3))
open(sys.argv[1], "wb").write(b"\n".join(lines) + b"\n")
EOF
ingest backfill --defaults-file="$MYCNF" --host "mx<marquee>1" "$T/hostile.log" >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; die "backfill failed"; }
printf '# empty\n' >"$T/ingest.conf"
chmod 600 "$T/ingest.conf"
args=(--defaults-file="$MYCNF" -c "$T/ingest.conf" --since 2024-03-10 --until 2024-03-11)
for fmt in text tsv json html; do
	ingest report "${args[@]}" --format "$fmt" >"$T/report.$fmt" 2>"$T/err" ||
		{ cat "$T/err" >&2; die "report --format $fmt failed"; }
done
rc=0
ingest check "${args[@]}" >"$T/check.text" 2>"$T/err" || rc=$?
[[ $rc == 2 ]] || { cat "$T/check.text" "$T/err" >&2; die "check exit $rc, want 2"; }
ingest check "${args[@]}" --format json >"$T/check.json" 2>>"$T/err" || true

python3 - "$T" <<'EOF' || die "a hostile byte got through"
import html.parser, json, re, sys
d = sys.argv[1]
fails = []
def check(cond, what):
    if not cond:
        fails.append(what)

# Text and check's lines: printable ASCII and newlines only.
for name in ("report.text", "check.text"):
    raw = open(d + "/" + name, "rb").read()
    bad = sorted({b for b in raw if not (32 <= b < 127 or b == 10)})
    check(not bad, "%s holds raw bytes %s" % (name, bad))

# JSON: strict parse, and the values come back as the (lossy only for bad UTF-8) strings.
rep = json.load(open(d + "/report.json"), strict=True)
chk = json.load(open(d + "/check.json"), strict=True)
accts = {a["account"] for a in rep["accounts"]}
check("<script>alert(1)</script>@evil.example" in accts, "script account lost: %s" % accts)
check("a\"b'c&d@x.example" in accts, "quote account lost")
check("esc\x1b[31mred@x.example" in accts, "ESC account lost")
check("nul\x00byte@x.example" in accts, "NUL account lost")
check("bad\ufffd\ufffdutf8@x.example" in accts, "bad UTF-8 not U+FFFD")
raw = open(d + "/report.json", "rb").read()
check(b"\x1b" not in raw and b"\x00" not in raw and b"\xe2\x80\xae" not in raw
      and b"\xff" not in raw and b"\xc2\x9b" not in raw, "raw control bytes in JSON")
check(any(a["rule"] == "relay_rcpt" and a["host"] == "mx<marquee>1" for a in chk["alerts"]),
      "check JSON lost the hostile host")

# TSV: the header's number of fields on every row, escapes instead of raw bytes.
heads = {}
raw = open(d + "/report.tsv", "rb").read()
check(b"\x1b" not in raw and b"\r" not in raw and b"\xff" not in raw and b"\x00" not in raw,
      "raw control bytes in TSV")
for line in raw.decode("utf-8").split("\n")[:-1]:
    f = line.split("\t")
    if f[0].startswith("#"):
        heads[f[0][1:]] = len(f)
    else:
        check(len(f) == heads[f[0]], "TSV row with %d fields: %r" % (len(f), line))
check("esc\\x1b[31mred@x.example" in raw.decode(), "TSV does not show ESC as \\x1b")
check("tab\\there@x.example" in raw.decode(), "TSV does not show a tab as \\t")

# HTML: valid UTF-8, no element from the data, the markup shown as text.
raw = open(d + "/report.html", "rb").read()
text = raw.decode("utf-8")
check(b"\x1b" not in raw and b"\x00" not in raw and b"\xe2\x80\xae" not in raw
      and b"\xc2\x9b" not in raw, "raw control bytes in HTML")
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.data = set(), []
    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for k, v in attrs:
            check(not k.startswith("on"), "event handler attribute %s" % k)
    def handle_data(self, data):
        self.data.append(data)
p = P()
p.feed(text)
check("script" not in p.tags and "img" not in p.tags and "marquee" not in p.tags,
      "elements from the data: %s" % p.tags)
alltext = "".join(p.data)
check("<script>alert(1)</script>@evil.example" in alltext, "the script account is not shown")
check("<img src=x onerror=alert(1)>" in alltext, "the img domain is not shown")
check("mx<marquee>1" in alltext, "the host is not shown")
if fails:
    print("\n".join(f for f in fails if f), file=sys.stderr)
    sys.exit(1)
EOF
exit 0
