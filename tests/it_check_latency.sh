#!/usr/bin/env bash
# The shortest path from a line written on the mail server to an alert: a burst written into the
# live log is flagged by `check --new` in the first relaywatch-ship -> relaywatch-ingest run ->
# check --new cycle after it, through the real sshd and MariaDB. Before it, a cycle of ordinary
# traffic (roaming included) raises nothing. The cycle's duration is printed ("latency:" line),
# never asserted: the README's latency figure is the cron interval plus this.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/lib_alerts.sh"
db_migrated check_latency

log=$LOGS/maillog
ship_conf "$T/ship.conf" <<EOF2
source = $log syslog
EOF2
printf '%s\n' "defaults_file = $MYCNF" "incoming = $DROP" "archive = no" >"$T/ingest.conf"
chmod 600 "$T/ingest.conf"
cycle() { # cycle OUT: one ship -> run -> check --new; prints check's exit status
	local rc=0
	ship_ok --config "$T/ship.conf"
	ingest run --quiet -c "$T/ingest.conf" >"$T/run.out" 2>&1 ||
		{ cat "$T/run.out" >&2; die "run failed"; }
	ingest check --new -c "$T/ingest.conf" >"$1" 2>"$1.err" || rc=$?
	echo "$rc"
}

now=$(date +%s)
lines --host mail1.example.org background --start $((now - 3 * 3600)) --end $((now - 30)) \
	--accounts 10 >"$log"
rc=$(cycle "$T/c1")
[[ $rc == 0 && ! -s $T/c1 ]] ||
	{ cat "$T/c1" "$T/c1.err" >&2; die "ordinary traffic: exit $rc, want 0 and silence"; }

# The burst, written now into the live log; its last line not yet complete. All of it in the
# current hour (hour_clock), whose counts the thresholds are set against.
hour_clock
lines --host mail1.example.org relay --auth stolen@example.org --sender others \
	--start "$H" --end "$now" --count 2100 --nets 31 --domains 60 >>"$log"
printf 'Dec  1 00:00:00 mail1.example.org smtp: 1.0 CHKUSER relaying rcpt: from <half' >>"$log"
t0=$(date +%s%N)
rc=$(cycle "$T/c2")
t1=$(date +%s%N)
[[ $rc == 2 ]] || { cat "$T/c2" "$T/c2.err" >&2; die "the burst's cycle: exit $rc, want 2"; }
hour=$(iso "$H")
who="host=mail1.example.org account=stolen@example.org"
for l in \
	"CRITICAL relay_rcpt $who value=2100 threshold=2000 hour=$hour" \
	"WARNING relay_domains $who value=60 threshold=50 hour=$hour" \
	"CRITICAL sender_mismatch $who value=2100 threshold=100 hour=$hour" \
	"CRITICAL relay_ips $who value=31 threshold=30 day=$(date -u -d "@$H" +%F)"; do
	grep -qxF "$l" "$T/c2" || { cat "$T/c2" >&2; die "the burst's cycle does not report: $l"; }
done
echo "latency: one ship -> run -> check --new cycle took $(((t1 - t0) / 1000000)) ms"

# The next cycle has nothing new to say.
rc=$(cycle "$T/c3")
[[ $rc == 0 && ! -s $T/c3 ]] ||
	{ cat "$T/c3" >&2; die "the cycle after the burst: exit $rc, want 0 and silence"; }
exit 0
