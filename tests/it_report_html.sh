#!/usr/bin/env bash
# The HTML report of the planted incidents (tests/it_check_plant.py) in a real headless Chromium:
# it renders without console or Content-Security-Policy errors, the DOM holds the expected
# numbers and highlights, and a phone-sized screenshot is taken (kept as
# $RW_BUILD/meson-logs/report-phone.png). Exits 77 (skip) only when Chromium cannot be installed.
. "$(dirname "$0")/lib.sh"
need_env RW_MYCNF RW_SRC

browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
			>"$T/apt.log" 2>&1 || tail -n 5 "$T/apt.log" >&2
	fi
	browser=$(command -v chromium || command -v chromium-browser || true)
	[[ -n $browser ]] || { echo "chromium cannot be installed: skipping" >&2; exit 77; }
fi

db_migrated report_html
python3 "$RW_SRC/tests/it_check_plant.py" "$T" || die "the planting script failed"
for h in mx1 mx2 mx3; do
	ingest backfill --defaults-file="$MYCNF" --host "$h" "$T/$h.log" >"$T/out" 2>&1 ||
		{ cat "$T/out" >&2; die "backfill of $h failed"; }
done
printf 'check_sender_allow = newsletter@example.org\n' >"$T/ingest.conf"
chmod 600 "$T/ingest.conf"
ingest report --defaults-file="$MYCNF" -c "$T/ingest.conf" --since 2024-03-10 --until 2024-03-11 \
	--format html --output "$T/report.html" || die "report --format html failed"
! grep -Eq 'https?:|//[a-z]|src=|@import|url\(' "$T/report.html" ||
	die "the report refers to something outside itself"

chrome() {
	timeout 120 "$browser" --headless --no-sandbox --disable-gpu \
		--disable-background-networking \
		--disable-component-update --disable-sync --no-first-run --disable-extensions \
		--user-data-dir="$(mktemp -d "$T/profile.XXXXXX")" --enable-logging=stderr --v=0 \
		"$@"
}
chrome --dump-dom "file://$T/report.html" >"$T/dom.html" 2>"$T/chrome.log" ||
	{ tail -n 20 "$T/chrome.log" >&2; die "chromium --dump-dom failed"; }
chrome --hide-scrollbars --window-size=390,2400 --screenshot="$T/phone.png" \
	"file://$T/report.html" >/dev/null 2>>"$T/chrome.log" ||
	{ tail -n 20 "$T/chrome.log" >&2; die "chromium --screenshot failed"; }
if grep -E 'Refused to|Uncaught|CONSOLE\(|Failed to load' "$T/chrome.log" >&2; then
	die "the page raised errors in Chromium"
fi
[[ $(head -c 8 "$T/phone.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
	die "the screenshot is not a PNG"
[[ $(stat -c %s "$T/phone.png") -gt 20000 ]] || die "the screenshot is nearly empty"
mkdir -p "$RW_BUILD/meson-logs" && cp "$T/phone.png" "$RW_BUILD/meson-logs/report-phone.png" || true

python3 - "$T" <<'EOF' || die "the rendered page lacks the expected numbers"
import html.parser, json, sys
d = sys.argv[1]
exp = json.load(open(d + "/expect.json"))
dom = open(d + "/dom.html").read()


class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.ids, self.rows, self.rects, self.cur_id = [], {}, {}, {}, None
        self.table = None
        self.in_td = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids[a["id"]] = ""
            self.cur_id = a["id"]
        if tag == "table":
            self.table = a.get("id")
            self.rows[self.table] = []
        elif tag == "tr" and self.table:
            self.rows[self.table].append([a.get("class", ""), {}])
        elif tag == "td" and self.table:
            self.in_td = a.get("data-col")
            self.rows[self.table][-1][1][self.in_td] = ""
        elif tag == "rect":
            self.rects[self.cur_id] = self.rects.get(self.cur_id, 0) + 1

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None
        elif tag == "td":
            self.in_td = None

    def handle_data(self, data):
        if self.in_td:
            self.rows[self.table][-1][1][self.in_td] += data
        elif self.cur_id and self.cur_id.startswith("card-") and not self.ids[self.cur_id]:
            self.ids[self.cur_id] = data.strip()


p = P()
p.feed(dom)
fails = []
def check(c, what):
    if not c:
        fails.append(what)

check(p.ids.get("card-alerts") == str(len(exp["alerts"])),
      "alerts card %r" % p.ids.get("card-alerts"))
check(p.ids.get("card-events") == str(exp["events"]), "events card")
check(p.ids.get("card-relayed") == str(exp["relaying_rcpt"]), "relayed card")
check(p.ids.get("card-denied") == str(exp["rejected_relaying"]), "denied card")
anom = [r for r in p.rows.get("anomalies", []) if r[1]]
check(len(anom) == len(exp["alerts"]), "%d anomaly rows" % len(anom))
check(sum(1 for r in anom if r[0] == "crit") == sum(1 for a in exp["alerts"]
                                                  if a["status"] == "CRITICAL"), "crit rows")
acc = {r[1]["account"]: r for r in p.rows.get("accounts", []) if r[1]}
carol = acc.get("carol@example.org")
check(carol and carol[1]["recipients"] == str(exp["accounts"]["carol@example.org"]["recipients"])
      and carol[0] == "crit", "carol's row %r" % (carol,))
app = acc.get("app@example.org")
check(app and app[1]["foreign_sender"] == "150", "app's foreign senders %r" % (app,))
den = [r for r in p.rows.get("denied_sources", []) if r[1]]
check(den and den[0][1]["remote_ip"] == "203.0.113.66" and den[0][1]["attempts"] == "1500"
      and den[0][0] == "crit", "top denied source %r" % (den[:1],))
hosts = {r[1]["host"]: r for r in p.rows.get("hosts", []) if r[1]}
check(hosts.get("mx3", [""])[0] == "crit", "mx3 not highlighted")
check(p.rects.get("chart-volume", 0) >= 24,
      "volume chart has %d bars" % p.rects.get("chart-volume", 0))
check(p.rects.get("chart-accounts", 0) == 10, "accounts chart bars")
check(p.rects.get("chart-denied", 0) == 10, "denied chart bars")
if fails:
    print("\n".join(fails), file=sys.stderr)
    sys.exit(1)
EOF
exit 0
