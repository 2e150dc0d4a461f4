#!/usr/bin/env bash
# `report` over the planted incidents of tests/it_check_plant.py: the numbers are the ones the
# logs hold (worked out by the planting script), the text, TSV, JSON and HTML outputs agree on
# every cell, the anomalies are check's alerts, text fits 80 columns, --output replaces its file
# whole, and a --host that is not a plain name changes nothing but the filter.
. "$(dirname "$0")/lib.sh"
need_env RW_MYCNF RW_SRC
db_migrated report_formats

python3 "$RW_SRC/tests/it_check_plant.py" "$T" || die "the planting script failed"
for h in mx1 mx2 mx3; do
	ingest backfill --defaults-file="$MYCNF" --host "$h" "$T/$h.log" >"$T/out" 2>&1 ||
		{ cat "$T/out" >&2; die "backfill of $h failed"; }
done
printf 'check_sender_allow = newsletter@example.org\n' >"$T/ingest.conf"
chmod 600 "$T/ingest.conf"

args=(--defaults-file="$MYCNF" -c "$T/ingest.conf" --since 2024-03-10 --until 2024-03-11)
for fmt in text tsv json html; do
	ingest report "${args[@]}" --format "$fmt" >"$T/report.$fmt" 2>"$T/err" ||
		{ cat "$T/err" >&2; die "report --format $fmt failed"; }
	[[ ! -s $T/err ]] || { cat "$T/err" >&2; die "report --format $fmt wrote to stderr"; }
done
ingest check "${args[@]}" --format json >"$T/check.json" || [[ $? == 2 ]] || die "check failed"

python3 - "$T" <<'EOF' || die "the formats disagree"
import html.parser, json, re, sys

d = sys.argv[1]
exp = json.load(open(d + "/expect.json"))
rep = json.load(open(d + "/report.json"))
chk = json.load(open(d + "/check.json"))
fails = []


def check(cond, what):
    if not cond:
        fails.append(what)


# 1. The JSON numbers are the logs' numbers.
t = rep["totals"]
check(t["events"] == exp["events"], "events %d != %d" % (t["events"], exp["events"]))
check(t["relaying_rcpt"] == exp["relaying_rcpt"], "relayed")
check(t["rejected_relaying"] == exp["rejected_relaying"], "rejected relaying")
accts = {a["account"]: a for a in rep["accounts"]}
check(len(accts) == len(exp["accounts"]), "account count")
for name, a in exp["accounts"].items():
    got = accts.get(name)
    check(got is not None and all(got[k] == v for k, v in a.items()),
          "account %s: %s != %s" % (name, got, a))
order = [a["recipients"] for a in rep["accounts"]]
check(order == sorted(order, reverse=True), "accounts not sorted by recipients")
for row in rep["denied_sources"]:
    check(exp["denied"].get(row["remote_ip"]) == row["attempts"], "denied %s" % row)
check(rep["denied_sources"][0]["remote_ip"] == "203.0.113.66", "top denied source")
check(sum(r["total"] for r in rep["events_by_period"]) == exp["events"], "period sum")
check(len(rep["events_by_period"]) == 24 and rep["report"]["period"] == "hour", "24 hours")
check(sum(h["relaying_rcpt"] for h in rep["hourly"]) == exp["relaying_rcpt"], "hourly sum")
check(sum(r["n"] for r in rep["events_by_type"]) == exp["events"], "type sum")
hosts = {h["host"]: h for h in rep["hosts"]}
check(hosts["mx3"]["status"] == "CRITICAL" and hosts["mx1"]["status"] == "OK", "host status")
check(hosts["mx3"]["age"] == [a for a in exp["alerts"] if a["rule"] == "stale"][0]["value"],
      "mx3 age")
flags = {a["account"]: a["flag"] for a in rep["accounts"]}
check(flags["carol@example.org"] == "CRITICAL" and flags["steady@example.org"] == "WARNING"
      and flags["newsletter@example.org"] == "OK" and flags["alice@example.org"] == "OK",
      "account flags %s" % flags)

# 2. The anomalies are check's alerts.
def akey(a, subj):
    return (a["status"], a["rule"], a["host"], subj, a["value"], a["threshold"])
ca = sorted(akey(a, a.get("account", a.get("ip", a["host"]))) for a in chk["alerts"])
ra = sorted(akey(a, a["subject"]) for a in rep["anomalies"])
check(ca == ra, "anomalies differ from check:\n%s\n%s" % (ca, ra))
check(t["alerts"] == len(chk["alerts"]) == len(exp["alerts"]), "alert count")


# Cells as each format prints them, from the JSON value.
def text_cell(col, v):
    if v is None:
        return "-"
    if col in ("start", "period", "newest"):
        return v[:10] if len(v) == 10 else v[:10] + " " + v[11:16]
    if col == "unknown_pct":
        return "%.1f%%" % v
    if col == "status":
        return {"OK": "OK", "WARNING": "WARN", "CRITICAL": "CRIT"}[v]
    if col == "age":
        return None  # human form, checked through TSV/JSON
    return str(v)


def tsv_cell(col, v):
    if v is None:
        return ""
    if col in ("start", "period", "newest"):
        return v[:10] if len(v) == 10 else v[:10] + " " + v[11:16]
    if col == "unknown_pct":
        return "%.1f" % v
    return str(v)


sections = ["anomalies", "events_by_period", "events_by_type", "accounts", "ip_relays",
            "denied_sources", "denied_domains", "inbound", "hosts"]

# 3. TSV: the same rows, cell for cell.
tsv = {}
heads = {}
for line in open(d + "/report.tsv").read().splitlines():
    f = line.split("\t")
    if f[0].startswith("#"):
        heads[f[0][1:]] = f[1:]
    else:
        tsv.setdefault(f[0], []).append(f[1:])
check(tsv["totals"][0][:3] == [str(t["events"]), str(t["relaying_rcpt"]),
                               str(t["rejected_relaying"])], "tsv totals")
for s in sections:
    rows = rep[s]
    got = tsv.get(s, [])
    check(len(got) == len(rows), "tsv %s: %d rows, json %d" % (s, len(got), len(rows)))
    for r, g in zip(rows, got):
        want = [tsv_cell(k, v) for k, v in r.items()]
        check(g == want, "tsv %s row %s != %s" % (s, g, want))
        check(heads[s] == list(r.keys()), "tsv %s header %s" % (s, heads[s]))

# 4. Text: every row of every section is a line with the same cells in order; 80 columns.
text = open(d + "/report.text").read()
tlines = text.splitlines()
check(max(map(len, tlines)) <= 79, "text wider than 79 columns")
check("events %d, relayed %d, rejected relaying %d, alerts %d" %
      (t["events"], t["relaying_rcpt"], t["rejected_relaying"], t["alerts"]) in text,
      "text totals")
for s in sections:
    for r in rep[s]:
        cells = [text_cell(k, v) for k, v in r.items() if k != "flag"]
        # text cuts long strings to their column ("steady@example..."); age is in words
        pat = r"\s+".join(r"\S+" if c is None else
                          "(?:%s|%s\\S*\\.\\.\\.)" % (re.escape(c), re.escape(c[:12]))
                          if isinstance(r.get(k), str) else re.escape(c)
                          for (k, c) in zip([k for k in r if k != "flag"], cells))
        if s in ("accounts", "denied_sources"):
            pat = "^[!* ] " + pat
        check(any(re.search(pat, l) for l in tlines), "text %s: no line for %s" % (s, cells))


# 5. HTML: the tables hold the same cells (text, as a browser shows it).
class Tables(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.cur, self.cell, self.cards, self.card = {}, None, None, {}, None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.cur = self.tables.setdefault(a.get("id"), [])
        elif tag == "tr" and self.cur is not None:
            self.cur.append({"class": a.get("class", ""), "cells": {}})
        elif tag == "td" and self.cur is not None:
            self.cell = a["data-col"]
            self.cur[-1]["cells"][self.cell] = ""
        elif tag == "div" and "card" in a.get("class", ""):
            self.card = a.get("id")
    def handle_endtag(self, tag):
        if tag == "table":
            self.cur = None
        elif tag == "td":
            self.cell = None
        elif tag == "div":
            self.card = None
    def handle_data(self, data):
        if self.cell is not None:
            self.cur[-1]["cells"][self.cell] += data
        elif self.card is not None and self.card not in self.cards:
            self.cards[self.card] = data


p = Tables()
p.feed(open(d + "/report.html").read())
check(p.cards.get("card-events") == str(t["events"]), "html events card %s" % p.cards)
check(p.cards.get("card-relayed") == str(t["relaying_rcpt"]), "html relayed card")
check(p.cards.get("card-alerts") == str(t["alerts"]), "html alerts card")
for s in sections:
    rows = [r for r in p.tables.get(s, []) if r["cells"]]
    check(len(rows) == len(rep[s]), "html %s: %d rows, json %d" % (s, len(rows), len(rep[s])))
    for r, h in zip(rep[s], rows):
        for k, v in r.items():
            if k == "flag":
                want = {"OK": "", "WARNING": "warn", "CRITICAL": "crit"}[v]
                check(h["class"] == want, "html %s row class %s for %s" % (s, h["class"], v))
                continue
            want = text_cell(k, v)
            if k == "status":
                want = v
            if want is not None:
                check(h["cells"].get(k) == want, "html %s.%s %r != %r" %
                      (s, k, h["cells"].get(k), want))
crit_rows = sum(1 for r in p.tables["anomalies"] if r["class"] == "crit")
check(crit_rows == t["critical"], "html highlights %d critical anomalies" % crit_rows)

if fails:
    print("\n".join(fails[:30]), file=sys.stderr)
    sys.exit(1)
EOF

# --output writes the whole file under its name and leaves no temporary behind.
echo stale >"$T/out.html"
ingest report "${args[@]}" --format html --output "$T/out.html" >"$T/stdout" 2>&1 ||
	{ cat "$T/stdout" >&2; die "report --output failed"; }
[[ ! -s $T/stdout ]] || die "report --output printed something"
cmp -s <(sed '/generated/d' "$T/out.html") <(sed '/generated/d' "$T/report.html") ||
	die "--output differs from stdout"
[[ $(ls "$T" | grep -c '^out\.html\.') == 0 ]] || die "--output left a temporary file"

# --host selects one server; a quoted name is a name, not SQL.
ingest report "${args[@]}" --host mx3 --format json >"$T/mx3.json" || die "report --host mx3 failed"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert [h["host"] for h in r["hosts"]] == ["mx3"], r["hosts"]
assert [h["host"] for h in r["inbound"]] == ["mx3"], r["inbound"]
assert r["report"]["host"] == "mx3"
' "$T/mx3.json" || die "--host mx3 shows other hosts"
ingest report "${args[@]}" --host "x' OR 1=1 -- " --format json >"$T/none.json" 2>"$T/err" ||
	{ cat "$T/err" >&2; die "report with a quoted --host failed"; }
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["totals"]["events"] == 0 and r["hosts"] == [] and r["report"]["ledger_empty"], r["totals"]
' "$T/none.json" || die "a quoted --host matched rows"

# A week reads per day; usage errors exit 2, an unreachable database 3.
ingest report "${args[@]}" --since 2024-03-04 --format json >"$T/week.json" ||
	die "week report failed"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["report"]["period"] == "day" and len(r["events_by_period"]) == 7, r["events_by_period"]
assert len(r["hourly"]) == 7 * 24
' "$T/week.json" || die "a week is not reported per day"
rc=0
ingest report --format pdf 2>/dev/null || rc=$?
[[ $rc == 2 ]] || die "a bad --format gave exit $rc, want 2"
rc=0
ingest report --since yesterday 2>/dev/null || rc=$?
[[ $rc == 2 ]] || die "a bad --since gave exit $rc, want 2"
(
	umask 077
	printf '[client]\nsocket=%s\nhost=localhost\nuser=nobody\n' "$T/no-such.sock" >"$T/down.cnf"
)
rc=0
ingest report --defaults-file="$T/down.cnf" -c "$T/ingest.conf" >/dev/null 2>&1 || rc=$?
[[ $rc == 3 ]] || die "an unreachable database gave exit $rc, want 3"
exit 0
