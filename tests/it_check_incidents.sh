#!/usr/bin/env bash
# `check` against three mail servers' logs with planted incidents (tests/it_check_plant.py): every
# incident is flagged with the right value, threshold and hour, the exit code follows the
# monitoring-plugin convention, a clean day raises nothing, and --host, config thresholds, an
# empty ledger and an unreachable database behave.
. "$(dirname "$0")/lib.sh"
need_env RW_MYCNF RW_SRC
db_migrated check_incidents

python3 "$RW_SRC/tests/it_check_plant.py" "$T" || die "the planting script failed"
for h in mx1 mx2 mx3; do
	ingest backfill --defaults-file="$MYCNF" --host "$h" "$T/$h.log" >"$T/out" 2>&1 ||
		{ cat "$T/out" >&2; die "backfill of $h failed"; }
done

conf() { # conf NAME LINE... : an ingester config (mode 600, as CONFIG_SECURE wants)
	local f=$T/$1
	shift
	printf '%s\n' "$@" >"$f"
	chmod 600 "$f"
}
conf allow.conf "check_sender_allow = newsletter@example.org"
check() {
	local rc=0
	ingest check --defaults-file="$MYCNF" "$@" >"$T/check.out" 2>"$T/check.err" || rc=$?
	echo "$rc"
}
day=(--since 2024-03-10 --until 2024-03-11)

# The incident day, as text: status line with performance data, then one line per alert.
rc=$(check -c "$T/allow.conf" "${day[@]}")
[[ $rc == 2 ]] ||
	{ cat "$T/check.out" "$T/check.err" >&2; die "exit $rc on the incident day, want 2"; }
[[ ! -s $T/check.err ]] || { cat "$T/check.err" >&2; die "check wrote to stderr"; }
status='^RELAYWATCH CRITICAL - 10 alerts \(8 critical, 2 warning\) \| relayed=[0-9]+ denied=[0-9]+ '
head -n 1 "$T/check.out" | grep -Eq "$status" ||
	die "bad status line: $(head -n 1 "$T/check.out")"
python3 - "$T/expect.json" "$T/check.out" <<'EOF' || die "the text alerts are not the planted ones"
import json, sys
want = json.load(open(sys.argv[1]))["alerts"]
got = open(sys.argv[2]).read().splitlines()[1:]
lines = set()
for a in want:
    kind = "account" if "account" in a else "ip" if "ip" in a else None
    s = "%s %s host=%s" % (a["status"], a["rule"], a["host"])
    if kind:
        s += " %s=%s" % (kind, a[kind])
    key = "newest" if a["rule"] == "stale" else "day" if a["rule"] == "relay_ips" else "hour"
    # The line's time is the JSON's without the seconds.
    when = a["start"] if len(a["start"]) == 10 else a["start"][:16] + "Z"
    s += " value=%d threshold=%d %s=%s" % (a["value"], a["threshold"], key, when)
    lines.add(s)
if set(got) != lines or len(got) != len(lines):
    print("missing:", sorted(lines - set(got)), "\nunexpected:", sorted(set(got) - lines),
          file=sys.stderr)
    sys.exit(1)
# In check_alerts_sort's order: critical first, then by rule (enum check_rule).
rules = ["relay_rcpt", "relay_domains", "relay_ips", "sender_mismatch", "denied", "baseline",
         "stale"]
order = [(l.split()[0] != "CRITICAL", rules.index(l.split()[1])) for l in got]
if order != sorted(order):
    print("alerts out of order:", *got, sep="\n", file=sys.stderr)
    sys.exit(1)
EOF

# The same as JSON, compared field by field.
rc=$(check -c "$T/allow.conf" "${day[@]}" --format json)
[[ $rc == 2 ]] || die "exit $rc with --format json, want 2"
python3 - "$T/expect.json" "$T/check.out" <<'EOF' || die "the JSON alerts are not the planted ones"
import json, sys
want = json.load(open(sys.argv[1]))["alerts"]
got = json.load(open(sys.argv[2]))
assert got["status"] == "CRITICAL" and got["code"] == 2, got["status"]
assert got["perf"]["alerts"] == len(want), got["perf"]
assert got["perf"]["stale_hosts"] == 1 and got["perf"]["hosts"] == 3, got["perf"]
assert got["perf"]["max_account_rcpt"] == max(a["value"] for a in want if a["rule"] == "relay_rcpt")
assert got["perf"]["max_ip_denied"] == max(a["value"] for a in want if a["rule"] == "denied")
norm = lambda a: json.dumps({k: v for k, v in a.items() if k != "period"}, sort_keys=True)
w = sorted(map(norm, want))
g = sorted(map(norm, got["alerts"]))
if w != g:
    print("missing:", sorted(set(w) - set(g)), "\nunexpected:", sorted(set(g) - set(w)),
          file=sys.stderr)
    sys.exit(1)
EOF

# The performance data's totals are the report's for the same window.
cp "$T/check.out" "$T/check.json"
ingest report --defaults-file="$MYCNF" -c "$T/allow.conf" "${day[@]}" --format json \
	>"$T/report.json" || die "report of the incident day failed"
python3 - "$T/check.json" "$T/report.json" <<'EOF' || die "check's totals differ from the report's"
import json, sys
perf = json.load(open(sys.argv[1]))["perf"]
tot = json.load(open(sys.argv[2]))["totals"]
got = (perf["events"], perf["relayed"], perf["denied"])
want = (tot["events"], tot["relaying_rcpt"], tot["rejected_relaying"])
assert got == want and all(want), (got, want)
EOF

# A clean day: nothing, exit 0; --quiet makes it silent for cron.
rc=$(check -c "$T/allow.conf" --since 2024-03-09 --until 2024-03-10)
[[ $rc == 0 ]] || { cat "$T/check.out" >&2; die "exit $rc on the clean day, want 0"; }
[[ $(wc -l <"$T/check.out") == 1 ]] &&
	grep -q '^RELAYWATCH OK - no alerts, 3 hosts fresh | ' "$T/check.out" ||
	{ cat "$T/check.out" >&2; die "the clean day is not a single OK line"; }
rc=$(check -c "$T/allow.conf" --since 2024-03-09 --until 2024-03-10 --quiet)
[[ $rc == 0 && ! -s $T/check.out && ! -s $T/check.err ]] ||
	die "--quiet on a clean day is not silent (exit $rc)"
rc=$(check -c "$T/allow.conf" --since 2024-03-09 --until 2024-03-10 --quiet --format json)
[[ $rc == 0 && ! -s $T/check.out && ! -s $T/check.err ]] ||
	die "--quiet --format json on a clean day is not silent (exit $rc)"

# Without a window check judges the current hour and the last complete one as of now: the planted
# logs end in 2024, so every host is stale, and nothing else is in that hour.
rc=$(check -c "$T/allow.conf")
[[ $rc == 2 ]] || { cat "$T/check.out" >&2; die "exit $rc for the current hour, want 2"; }
[[ $(grep -c '^CRITICAL stale host=mx[123] ' "$T/check.out") == 3 &&
	$(wc -l <"$T/check.out") == 4 ]] ||
	{ cat "$T/check.out" >&2; die "the current hour does not show three stale hosts"; }

# One host: only its alerts.
rc=$(check -c "$T/allow.conf" "${day[@]}" --host mx2)
[[ $rc == 2 ]] || die "exit $rc for --host mx2, want 2"
[[ $(tail -n +2 "$T/check.out" | grep -c ' host=mx2 ') == 4 && $(wc -l <"$T/check.out") == 5 ]] ||
	{ cat "$T/check.out" >&2; die "--host mx2 does not show exactly mx2's four alerts"; }
rc=$(check -c "$T/allow.conf" --since 2024-03-09 --until 2024-03-10 --host mx3)
[[ $rc == 0 ]] || { cat "$T/check.out" >&2; die "mx3 was fresh on 2024-03-09 (exit $rc)"; }

# A --host that tries to break out of the SQL literal is just a name nobody has.
rc=$(check -c "$T/allow.conf" "${day[@]}" --host "mx1' OR '1'='1")
[[ $rc == 3 ]] ||
	{ cat "$T/check.out" "$T/check.err" >&2; die "exit $rc for an unknown host, want 3"; }
grep -q '^RELAYWATCH UNKNOWN - no chunk from this host' "$T/check.out" ||
	die "unknown host: $(cat "$T/check.out")"
[[ ! -s $T/check.err ]] || { cat "$T/check.err" >&2; die "the quoted --host reached SQL"; }

# Without the allow-list the newsletter account sends as another address: WARNING (25 <= 60 < 100).
conf empty.conf "# nothing"
check -c "$T/empty.conf" "${day[@]}" >/dev/null
newsletter='WARNING sender_mismatch host=mx2 account=newsletter@example.org value=60 threshold=25'
grep -qx "$newsletter hour=2024-03-10T15:00Z" "$T/check.out" || {
	cat "$T/check.out" >&2
	die "the newsletter account is not flagged without the allow-list"
}

# Thresholds from the config file: a higher crit makes carol's burst a WARNING, off disables.
conf rules.conf "check_sender_allow = newsletter@example.org" "check_relay_rcpt_crit = 3000" \
	"check_stale_crit = off" "check_stale_warn = 30d" "check_baseline_warn = off" \
	"check_baseline_crit = off"
rc=$(check -c "$T/rules.conf" "${day[@]}")
[[ $rc == 2 ]] || die "exit $rc with rules.conf, want 2"
grep -q '^WARNING relay_rcpt host=mx1 account=carol@example.org value=[0-9]* threshold=500 ' \
	"$T/check.out" ||
	{ cat "$T/check.out" >&2; die "check_relay_rcpt_crit = 3000 was not applied"; }
! grep -q ' stale \| baseline ' "$T/check.out" ||
	{ cat "$T/check.out" >&2; die "rules switched off still fire"; }
conf bad.conf "check_relay_rcpt_warn = lots"
rc=$(check -c "$T/bad.conf" "${day[@]}")
[[ $rc == 3 ]] || die "exit $rc with a bad config value, want 3 (UNKNOWN)"
grep -q 'bad.conf:1: ' "$T/check.err" ||
	{ cat "$T/check.err" >&2; die "no file:line for a bad value"; }

# An empty ledger cannot be judged: UNKNOWN, as is an unreachable database.
db_migrated check_incidents_empty
rc=$(check -c "$T/allow.conf" "${day[@]}")
[[ $rc == 3 ]] && grep -q '^RELAYWATCH UNKNOWN - no chunk in the ledger yet' "$T/check.out" ||
	{ cat "$T/check.out" >&2; die "an empty ledger gave exit $rc, want 3"; }
(
	umask 077
	printf '[client]\nsocket=%s\nport=1\nhost=localhost\nuser=nobody\n' "$T/no-such.sock" \
		>"$T/down.cnf"
)
rc=0
ingest check --defaults-file="$T/down.cnf" -c "$T/allow.conf" >"$T/check.out" 2>"$T/check.err" ||
	rc=$?
[[ $rc == 3 ]] && grep -q '^RELAYWATCH UNKNOWN - database unreachable' "$T/check.out" || {
	cat "$T/check.out" "$T/check.err" >&2
	die "an unreachable database gave exit $rc, want 3"
}
rc=0
ingest check --format yaml >"$T/check.out" 2>&1 || rc=$?
[[ $rc == 3 ]] || die "a usage error gave exit $rc, want 3 (UNKNOWN)"
exit 0
