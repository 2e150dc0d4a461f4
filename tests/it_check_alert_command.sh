#!/usr/bin/env bash
# alert_command: `check --new` runs it once per new alert, directly (never through a shell), with
# the alert in RELAYWATCH_* variables and as one JSON object on stdin; an alert whose command
# failed is retried by the next run and one that succeeded is never sent again; an account named
# like a shell command reaches the program as data; a run killed after the command ran and before
# it recorded that sends it again (at least once), and a command that hangs is killed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_alerts.sh"
db_migrated check_alert_command

# The alert program: records each call (environment and stdin) in its own directory, fails
# while $T/fail exists, hangs while $T/hang exists. Its arguments come from ingest.conf.
mkdir "$T/calls"
cat >"$T/alert.sh" <<'EOF'
#!/bin/sh
d=$(mktemp -d "$1/call.XXXXXX") || exit 1
printf '%s\n' "$2" "$3" >"$d/args"
env | grep '^RELAYWATCH_' | sort >"$d/env"
cat >"$d/stdin"
echo "alert script output: $RELAYWATCH_RULE"
[ ! -e "$1/../hang" ] || exec sleep 600
[ ! -e "$1/../fail" ] || { echo "failing on purpose" >&2; exit 1; }
touch "$d/ok"
EOF
chmod 755 "$T/alert.sh"
printf '%s\n' "alert_command = $T/alert.sh $T/calls two;words \$(id)" "alert_timeout = 5s" \
	>"$T/ingest.conf"
chmod 600 "$T/ingest.conf"
calls() { find "$T/calls" -mindepth 1 -maxdepth 1 -type d | wc -l; }
oks() { find "$T/calls" -name ok | wc -l; }

# Background traffic, judged once: nothing to send.
feed background --start $((now - 3 * 3600)) --end $((now - 60)) --accounts 6
rc=$(new "$T/run0")
[[ $rc == 0 && $(calls) == 0 ]] || die "a clean run: exit $rc, $(calls) calls"

# An account named like a shell command: two alerts (relay_domains, relay_ips), two calls.
evil="x\$(touch $T/pwned)\`touch $T/pwned2\`@evil.test"
feed relay --auth "$evil" --start "$H" --end "$now" --count 300 --nets 35 --domains 250
touch "$T/fail"
rc=$(new "$T/run1")
[[ $rc == 2 ]] || { cat "$T/run1" "$T/run1.err" >&2; die "the burst: exit $rc, want 2"; }
[[ $(wc -l <"$T/run1") == 2 && $(calls) == 2 && $(oks) == 0 ]] ||
	die "the burst: $(wc -l <"$T/run1") alerts, $(calls) calls, $(oks) succeeded (want 2, 2, 0)"
grep -q 'alert_command: .*alert.sh exited with status 1' "$T/run1.err" ||
	{ cat "$T/run1.err" >&2; die "the failure is not reported on stderr"; }
grep -q 'alert_command: failing on purpose' "$T/run1.err" ||
	die "the command's own words are not logged"
[[ ! -e $T/pwned && ! -e $T/pwned2 ]] || die "the account name was run as shell"

# Still failing: nothing new, the two are tried again and fail: UNKNOWN.
rc=$(new "$T/run2")
[[ $rc == 3 && $(calls) == 4 && $(oks) == 0 ]] || {
	cat "$T/run2" "$T/run2.err" >&2
	die "retry while failing: exit $rc, $(calls) calls (want 3, 4)"
}
grep -q '^RELAYWATCH UNKNOWN - alert_command failed' "$T/run2" || die "run2: $(cat "$T/run2")"

# Mended: each alert is sent once, then never again.
rm "$T/fail"
rc=$(new "$T/run3")
[[ $rc == 0 && ! -s $T/run3 && $(calls) == 6 && $(oks) == 2 ]] || {
	cat "$T/run3" "$T/run3.err" >&2
	die "retry after mending: exit $rc, $(calls) calls, $(oks) ok (want 0, 6, 2)"
}
rc=$(new "$T/run4")
[[ $rc == 0 && ! -s $T/run4 && $(calls) == 6 ]] ||
	die "a run after all was sent: exit $rc, $(calls) calls"
[[ ! -e $T/pwned && ! -e $T/pwned2 ]] || die "the account name was run as shell"

# What the program got, in a successful call: its arguments as words, the alert as data.
d=$(dirname "$(find "$T/calls" -name ok | head -n 1)")
[[ $(cat "$d/args") == "two;words"$'\n''$(id)' ]] || die "arguments: $(cat "$d/args")"
esc_evil=$(printf '%s' "$evil" | sed 's/ /\\x20/g')
python3 - "$d" "$evil" "$esc_evil" <<'PY' || die "the alert's environment or JSON is wrong"
import json, sys
d, evil, esc = sys.argv[1:]
env = dict(l.split("=", 1) for l in open(d + "/env").read().splitlines())
alert = json.loads(open(d + "/stdin").read())
assert env["RELAYWATCH_SUBJECT"] == esc, env
assert env["RELAYWATCH_HOST"] == "mx1" and env["RELAYWATCH_SUBJECT_KIND"] == "account", env
assert env["RELAYWATCH_STATUS"] == "CRITICAL" == alert["status"], env
assert env["RELAYWATCH_RULE"] == alert["rule"] and alert["rule"] in ("relay_domains", "relay_ips")
assert alert["account"] == evil and alert["host"] == "mx1", alert
assert env["RELAYWATCH_VALUE"] == str(alert["value"]) and alert["value"] in (250, 35), alert
threshold = "200" if alert["rule"] == "relay_domains" else "30"
assert env["RELAYWATCH_THRESHOLD"] == str(alert["threshold"]) == threshold
# RELAYWATCH_START is the time of the alert's line: the JSON's without the seconds.
start = alert["start"] if len(alert["start"]) == 10 else alert["start"][:16] + "Z"
assert env["RELAYWATCH_PERIOD"] == alert["period"] and env["RELAYWATCH_START"] == start
assert env["RELAYWATCH_LINE"].startswith("CRITICAL %s host=mx1 account=%s " % (alert["rule"], esc))
assert "RELAYWATCH_CRASH" not in env
PY

# Killed after the command ran, before that was recorded: the next run sends it again (at least
# once); nothing is lost.
hr=$((H - 3600))
feed denied --ip 203.0.113.66 --start "$hr" --end $((hr + 3000)) --count 1100
new_killed check-new-command "$T/crash.out"
[[ $(calls) == 7 && $(oks) == 3 ]] ||
	die "kill after the command: $(calls) calls, $(oks) succeeded (want 7, 3)"
rc=$(new "$T/run5")
[[ $rc == 0 && $(calls) == 8 && $(oks) == 4 ]] ||
	die "after the kill: exit $rc, $(calls) calls (want 0, 8)"
rc=$(new "$T/run6")
[[ $(calls) == 8 ]] || die "sent again after it was recorded"

# A command that hangs is killed at alert_timeout, and tried again by the next run.
touch "$T/hang"
feed denied --ip 203.0.113.67 --start "$hr" --end $((hr + 3000)) --count 1100
rc=$(new "$T/run7")
[[ $rc == 2 && $(calls) == 9 && $(oks) == 4 ]] || die "a hanging command: exit $rc, $(calls) calls"
grep -q 'did not finish within 5000 ms: killed' "$T/run7.err" ||
	{ cat "$T/run7.err" >&2; die "no timeout message"; }
rm "$T/hang"
rc=$(new "$T/run8")
[[ $rc == 0 && $(calls) == 10 && $(oks) == 5 ]] || die "after the hang: exit $rc, $(calls) calls"

# scripts/alert-mail.example, through a stand-in for sendmail that keeps the message.
mkdir "$T/mail"
printf '#!/bin/sh\n[ "$*" = "-t -oi" ] || exit 64\ncat >"%s/mail/msg"\n' "$T" >"$T/sendmail"
chmod 755 "$T/sendmail"
printf '%s\n' "alert_command = $RW_SRC/scripts/alert-mail.example ops@example.org" >"$T/ingest.conf"
feed denied --ip "203.0.113.9" --start "$hr" --end $((hr + 3000)) --count 1300
rc=0
SENDMAIL=$T/sendmail ingest check --new -c "$T/ingest.conf" --defaults-file="$MYCNF" \
	>"$T/run9" 2>"$T/run9.err" || rc=$?
[[ $rc == 2 && -s $T/mail/msg ]] ||
	{ cat "$T/run9.err" >&2; die "alert-mail.example: exit $rc, no mail"; }
grep -qx 'To: ops@example.org' "$T/mail/msg" &&
	grep -qx 'Subject: \[relaywatch\] CRITICAL denied 203.0.113.9 on mx1' "$T/mail/msg" &&
	grep -qxF "$(cat "$T/run9")" "$T/mail/msg" ||
	{ cat "$T/mail/msg" >&2; die "alert-mail.example wrote a wrong mail"; }
exit 0
