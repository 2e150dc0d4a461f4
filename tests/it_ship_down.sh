#!/usr/bin/env bash
# relaywatch-ship when the stats server's sshd is down: exit 3 with one line, no chunk and no
# plan recorded, nothing lost; once sshd is back the next run ships everything, exactly once.
# A server that accepts the connection but never answers ends the run after `timeout`.
# Uses its own sshd so that stopping it disturbs no other test.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

own_sshd_prepare
log=$LOGS/maillog
ship_conf "$T/ship.conf" "port=$OWN_PORT" "known_hosts=$OWN/known_hosts" connect_timeout=5 <<EOF2
source = $log syslog
EOF2
gen_lines A 1 100 >"$REF/A"
head -c "$(gen_lines A 1 60 | wc -c)" "$REF/A" >"$log"

ship_rc 3 --config "$T/ship.conf"
(($(wc -l <"$T/err") == 1)) || die "expected one line, got: $(cat "$T/err")"
grep -q "cannot connect to 127.0.0.1 port $OWN_PORT" "$T/err" ||
	die "unclear error: $(cat "$T/err")"
[[ $(chunks) == 0 ]] || die "chunks appeared without a server"
[[ ! -e $STATE/state ]] || die "a plan was recorded although nothing could be shipped"

# Still down while the log grows.
gen_lines A 61 100 >>"$log"
ship_rc 3 --config "$T/ship.conf"

# sshd comes back.
own_sshd_start
ship_ok --config "$T/ship.conf"
verify "$REF/A"

# Down again after a successful run: the plan of the failed run is not kept, the next one ships
# the growth exactly once.
own_sshd_stop
gen_lines A 101 150 >>"$REF/A"
gen_lines A 101 150 >>"$log"
ship_rc 3 --config "$T/ship.conf"
own_sshd_start
ship_ok --config "$T/ship.conf"
verify "$REF/A"

# A server that accepts the connection but never answers (stopped): the session timeout ends
# the run with one line, exit 3, and the run after it ships.
ship_conf "$T/stall.conf" "port=$OWN_PORT" "known_hosts=$OWN/known_hosts" timeout=2 <<EOF2
source = $log syslog
EOF2
kill -STOP "$OWN_PID"
gen_lines A 151 160 >>"$REF/A"
gen_lines A 151 160 >>"$log"
ship_rc 3 --config "$T/stall.conf"
kill -CONT "$OWN_PID"
(($(wc -l <"$T/err") == 1)) || die "expected one line for a stalled server, got: $(cat "$T/err")"
ship_ok --config "$T/ship.conf"
verify "$REF/A"
