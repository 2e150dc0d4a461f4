#!/usr/bin/env bash
# `check` (the stateless plugin) and `check --new` (the alert ledger) on data written around the
# real clock: a clean day is OK in both modes; a burst in the current, incomplete hour is flagged
# at once by both; a second --new reports nothing; a burst ingested late for an hour five hours
# ago is reported by the next --new with that hour, and a level reached later is a new alert;
# concurrent --new runs report each alert once in total; a run killed before or after it
# recorded its alerts loses none. alert_command is tested in it_check_alert_command.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_alerts.sh"
db_migrated check_new
conf() { # conf LINE...: $T/ingest.conf (mode 600)
	printf '%s\n' "$@" >"$T/ingest.conf"
	chmod 600 "$T/ingest.conf"
}
conf "# defaults"
plugin() { # plugin ARGS: the exit status; output in $T/plugin.out
	local rc=0
	ingest check -c "$T/ingest.conf" --defaults-file="$MYCNF" "$@" >"$T/plugin.out" \
		2>"$T/plugin.err" || rc=$?
	echo "$rc"
}
want_lines() { # want_lines FILE LINE...: FILE holds exactly these lines, in any order
	local f=$1
	shift
	printf '%s\n' "$@" | LC_ALL=C sort >"$T/want"
	LC_ALL=C sort "$f" >"$T/got"
	cmp -s "$T/want" "$T/got" ||
		{ diff "$T/want" "$T/got" >&2; die "$f: not the alerts expected"; }
}

# A clean day: 26 hours of ordinary traffic up to a minute ago (roaming accounts included).
feed background --start $((now - 26 * 3600)) --end $((now - 60)) --accounts 12
rc=$(plugin)
[[ $rc == 0 ]] || { cat "$T/plugin.out" >&2; die "check on a clean day: exit $rc, want 0"; }
grep -q '^RELAYWATCH OK - no alerts, 1 host fresh | ' "$T/plugin.out" ||
	die "$(cat "$T/plugin.out")"
rc=$(new "$T/new0")
[[ $rc == 0 && ! -s $T/new0 ]] || {
	cat "$T/new0" "$T/new0.err" >&2
	die "check --new on a clean day: exit $rc, want 0 and silence"
}
# The same traffic under the old rule (distinct addresses, not networks) would have warned.
roam=$(db_query "SELECT MAX(c) FROM (SELECT COUNT(DISTINCT remote_ip) c FROM relay_hourly
	WHERE hour_utc >= '$(date -u -d "@$((H - 23 * 3600))" '+%F %T')' GROUP BY auth_user) t")
((roam >= 10)) || die "the background traffic does not roam enough to test relay_ips ($roam)"

# A burst in the current, incomplete hour: 600 recipients to 300 domains from 40 networks.
# The plugin shows it at once, and so does --new.
feed relay --auth thief@example.org --start "$H" --end "$now" --count 600 --nets 40 \
	--domains 300
thief="host=mx1 account=thief@example.org"
burst=(
	"WARNING relay_rcpt $thief value=600 threshold=500 hour=$(iso "$H")"
	"CRITICAL relay_domains $thief value=300 threshold=200 hour=$(iso "$H")"
	"CRITICAL relay_ips $thief value=40 threshold=30 day=$(date -u -d "@$H" +%F)"
)
rc=$(plugin)
[[ $rc == 2 ]] || { cat "$T/plugin.out" >&2; die "check after the burst: exit $rc, want 2"; }
for l in "${burst[@]}"; do
	# the plugin judges the daily rule over the 24 hourly rows that end with this one
	if [[ $l == *relay_ips* ]]; then
		d=$((H - 23 * 3600))
		if ((d % 86400 == 0)); then
			l="${l% day=*} day=$(date -u -d "@$d" +%F)"
		else
			l="${l% day=*} day=$(iso "$d")"
		fi
	fi
	grep -qxF "$l" "$T/plugin.out" ||
		{ cat "$T/plugin.out" >&2; die "check does not show: $l"; }
done
rc=$(new "$T/new1")
[[ $rc == 2 ]] ||
	{ cat "$T/new1" "$T/new1.err" >&2; die "check --new after the burst: exit $rc, want 2"; }
want_lines "$T/new1" "${burst[@]}"

# Nothing new: nothing printed, exit 0; the plugin still shows the burst (it is stateless).
rc=$(new "$T/new2")
[[ $rc == 0 && ! -s $T/new2 ]] ||
	{ cat "$T/new2" >&2; die "a second --new: exit $rc, want 0 and silence"; }
[[ $(plugin) == 2 ]] || die "the plugin forgot the burst"

# Late data: an hour five hours ago, judged long ago, receives a relay probe now.
late=$((H - 5 * 3600))
feed denied --ip 203.0.113.66 --start "$late" --end $((late + 3000)) --count 1500
feed denied --ip 203.0.113.77 --start "$late" --end $((late + 3000)) --count 150
rc=$(new "$T/new3")
[[ $rc == 2 ]] ||
	{ cat "$T/new3" "$T/new3.err" >&2; die "--new after the late chunk: exit $rc, want 2"; }
want_lines "$T/new3" \
	"CRITICAL denied host=mx1 ip=203.0.113.66 value=1500 threshold=1000 hour=$(iso "$late")" \
	"WARNING denied host=mx1 ip=203.0.113.77 value=150 threshold=100 hour=$(iso "$late")"
# More of the same hour: .66 grows within its level (nothing new), .77 becomes critical (new).
feed denied --ip 203.0.113.66 --start $((late + 3000)) --end $((late + 3500)) --count 100
feed denied --ip 203.0.113.77 --start $((late + 3000)) --end $((late + 3500)) --count 900
rc=$(new "$T/new4")
[[ $rc == 2 ]] ||
	{ cat "$T/new4" "$T/new4.err" >&2; die "--new after more late data: exit $rc, want 2"; }
want_lines "$T/new4" \
	"CRITICAL denied host=mx1 ip=203.0.113.77 value=1050 threshold=1000 hour=$(iso "$late")"
# A warning alone exits 1.
feed denied --ip 203.0.113.88 --start $((late - 3600)) --end $((late - 100)) --count 120
rc=$(new "$T/new5")
[[ $rc == 1 ]] || { cat "$T/new5" >&2; die "--new with one new warning: exit $rc, want 1"; }
hour=$(iso "$((late - 3600))")
want_lines "$T/new5" "WARNING denied host=mx1 ip=203.0.113.88 value=120 threshold=100 hour=$hour"

# --format json: one JSON object per new alert and line, the exact account.
feed relay --auth 'a|b c@example.org' --start $((late - 7200)) --end $((late - 3700)) \
	--count 120 --sender others
rc=0
ingest check --new --format json -c "$T/ingest.conf" --defaults-file="$MYCNF" >"$T/new6" || rc=$?
[[ $rc == 2 ]] || { cat "$T/new6" >&2; die "--new --format json: exit $rc, want 2"; }
json_start=$(date -u -d "@$((late - 7200))" +%Y-%m-%dT%H:%M:%SZ)
python3 - "$T/new6" "$json_start" <<'PY' || die "--new --format json printed $(cat "$T/new6")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
a = json.loads(lines[0])
assert a == {"status": "CRITICAL", "rule": "sender_mismatch", "host": "mx1",
             "account": "a|b c@example.org", "value": 120, "threshold": 100, "period": "hour",
             "start": sys.argv[2]}, a
PY
# In text, the '|' and the space of the account are escaped (Nagios cuts a line at '|').
rc=$(plugin --since "$(date -u -d "@$((late - 7200))" '+%F %H:%M')" \
	--until "$(date -u -d "@$((late - 3600))" '+%F %H:%M')")
grep -qF 'account=a\x7cb\x20c@example.org ' "$T/plugin.out" ||
	{ cat "$T/plugin.out" >&2; die "the '|' of an account reached check's line"; }
[[ $(tr -cd '|' <"$T/plugin.out") == "|" ]] || die "a raw '|' besides the performance data's"

# Concurrent runs: four at once, three times over, each round with new alerts; every alert is
# printed by exactly one of them.
for round in 1 2 3; do
	hr=$((H - (5 + round) * 3600 - 86400))
	want=()
	hour=$(iso "$hr")
	for ip in 11 12 13 14 15 16; do
		addr=198.51.100.$round$ip
		feed denied --ip "$addr" --start "$hr" --end $((hr + 3000)) --count 1000
		want+=("CRITICAL denied host=mx1 ip=$addr value=1000 threshold=1000 hour=$hour")
	done
	pids=()
	for k in 1 2 3 4; do
		new "$T/conc$round.$k" >"$T/conc$round.$k.rc" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p"
	done
	for k in 1 2 3 4; do
		rc=$(cat "$T/conc$round.$k.rc")
		[[ $rc == 0 || $rc == 2 ]] ||
			{ cat "$T/conc$round.$k.err" >&2; die "a concurrent --new exited $rc"; }
	done
	cat "$T/conc$round".[1-4] >"$T/conc$round"
	want_lines "$T/conc$round" "${want[@]}"
done

# Killed after printing, before recording: the next run reports the same alerts again (at
# least once across a crash; never lost).
crash_round() { # POINT WANT_AGAIN(yes|no) HOUR_OFFSET
	local point=$1 again=$2 hr=$((H - $3 * 3600 - 2 * 86400)) rc
	feed denied --ip 192.0.2.99 --start "$hr" --end $((hr + 3000)) --count 1200
	local l="CRITICAL denied host=mx1 ip=192.0.2.99 value=1200 threshold=1000 hour=$(iso "$hr")"
	new_killed "$point" "$T/crash.out"
	grep -qxF "$l" "$T/crash.out" || die "the killed run did not print its alert before $point"
	rc=$(new "$T/after")
	if [[ $again == yes ]]; then
		[[ $rc == 2 ]] || die "after a kill at $point: exit $rc, want 2 (the alert again)"
		want_lines "$T/after" "$l"
	else
		[[ $rc == 0 && ! -s $T/after ]] ||
			die "after a kill at $point: exit $rc, want 0 and silence"
	fi
	[[ $(db_query "SELECT COUNT(*) FROM alerts WHERE subject = '192.0.2.99'
		AND period = '$(date -u -d "@$hr" '+%F %T')'") == 1 ]] ||
		die "after a kill at $point the ledger does not hold the alert once"
	[[ $(db_query "SELECT COUNT(*) FROM chunks WHERE judged = 0") == 0 ]] ||
		die "after a kill at $point and a rerun, chunks are left unjudged"
}
crash_round check-new-printed yes 1
crash_round check-new-recorded no 2

# A host whose only lines are two days old, ingested now: stale, reported once here, and (below)
# never again after a purge, though its alert's period is older than the cutoff.
lines --host mx9 background --start $((now - 50 * 3600)) --end $((now - 49 * 3600)) --accounts 2 \
	>"$T/mx9.log"
ingest backfill --defaults-file="$MYCNF" --host mx9 "$T/mx9.log" >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; die "backfill of mx9 failed"; }
rc=$(new "$T/mx9.out")
[[ $rc == 2 ]] && grep -q '^CRITICAL stale host=mx9 ' "$T/mx9.out" ||
	{ cat "$T/mx9.out" >&2; die "mx9's old lines: exit $rc, want a new CRITICAL stale alert"; }

# Retention: purge takes the alerts of hours before its cutoff (the concurrent rounds' were more
# than a day ago), and keeps the newer ones.
before=$(db_query "SELECT COUNT(*) FROM alerts")
ingest purge --older-than 1d --defaults-file="$MYCNF" || die "purge failed"
[[ $(db_query "SELECT COUNT(*) FROM alerts") == $((before - 18 - 2)) ]] ||
	die "purge did not take exactly the alerts older than a day ($before before)"
[[ $(db_query "SELECT COUNT(*) FROM alerts WHERE subject = 'thief@example.org'") == 3 ]] ||
	die "purge took the current hour's alerts"
# Nothing purged comes back: a stale alert is about a host's newest line, which may be older
# than the cutoff while its chunks stay in the ledger (old logs ingested lately).
rc=$(new "$T/after-purge")
[[ $rc == 0 && ! -s $T/after-purge ]] ||
	{ cat "$T/after-purge" >&2; die "after purge, check --new reported again (exit $rc)"; }

# An upgrade from schema version 1 (before the ledger): the chunks already there count as judged,
# so the first --new reports what arrives from then on, not the whole history.
db_migrated check_new_upgrade
old=$((H - 30 * 3600))
feed denied --ip 192.0.2.77 --start "$old" --end $((old + 3000)) --count 1500
feed background --start $((now - 3600)) --end $((now - 60)) --accounts 4
db_query "DROP TABLE alerts; ALTER TABLE chunks DROP INDEX judged, DROP COLUMN judged;
	UPDATE schema_version SET version = 1"
ingest migrate --defaults-file="$MYCNF" || die "the upgrade to the ledger failed"
[[ $(db_query "SELECT COUNT(*) FROM chunks WHERE judged = 1") == 2 ]] ||
	die "the upgrade did not count the chunk already there as judged"
rc=$(new "$T/upgrade1")
[[ $rc == 0 && ! -s $T/upgrade1 ]] ||
	{ cat "$T/upgrade1" >&2; die "the first --new after the upgrade reported history"; }
feed denied --ip 192.0.2.78 --start $((old + 7200)) --end $((old + 9000)) --count 1500
rc=$(new "$T/upgrade2")
[[ $rc == 2 ]] || die "--new after the upgrade: exit $rc, want 2"
hour=$(iso "$((old + 7200))")
want_lines "$T/upgrade2" \
	"CRITICAL denied host=mx1 ip=192.0.2.78 value=1500 threshold=1000 hour=$hour"

# --new takes no window and no host; an empty ledger is UNKNOWN.
rc=0
ingest check --new --since 2h --defaults-file="$MYCNF" >"$T/out" 2>&1 || rc=$?
[[ $rc == 3 ]] || die "--new --since: exit $rc, want 3"
db_migrated check_new_empty
rc=$(new "$T/empty")
[[ $rc == 3 ]] && grep -q '^RELAYWATCH UNKNOWN - no chunk in the ledger yet' "$T/empty" ||
	{ cat "$T/empty" >&2; die "--new on an empty ledger: exit $rc, want 3"; }
exit 0
