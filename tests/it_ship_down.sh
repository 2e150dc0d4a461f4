#!/usr/bin/env bash
# relaywatch-ship when the stats server's sshd is down: exit 3 with one line, no chunk and no
# plan recorded, nothing lost; once sshd is back the next run ships everything, exactly once.
# Uses its own sshd (a copy of the private one's config on another port) so that stopping it
# disturbs no other test.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
need_env RW_SERVERS_DIR

port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
log=$LOGS/maillog
kh=$T/known_hosts
echo "[127.0.0.1]:$port $(cut -d' ' -f2,3 "$RW_SSH_KNOWN_HOSTS")" >"$kh"
ship_conf "$T/ship.conf" "port=$port" "known_hosts=$kh" connect_timeout=5 <<EOF2
source = $log syslog
EOF2
gen_lines A 1 100 >"$REF/A"
head -c "$(gen_lines A 1 60 | wc -c)" "$REF/A" >"$log"

ship_rc 3 --config "$T/ship.conf"
(($(wc -l <"$T/err") == 1)) || die "expected one line, got: $(cat "$T/err")"
grep -q "cannot connect to 127.0.0.1 port $port" "$T/err" || die "unclear error: $(cat "$T/err")"
[[ $(chunks) == 0 ]] || die "chunks appeared without a server"
[[ ! -e $STATE/state ]] || die "a plan was recorded although nothing could be shipped"

# Still down while the log grows.
gen_lines A 61 100 >>"$log"
ship_rc 3 --config "$T/ship.conf"

# sshd comes back.
sed -e "s/^Port .*/Port $port/" -e "s|^PidFile .*|PidFile $T/sshd-own.pid|" \
	"$RW_SERVERS_DIR/ssh/sshd_config" >"$T/sshd_config"
sshd_pid=
on_exit '[[ -n $sshd_pid ]] && kill "$sshd_pid" 2>/dev/null && wait "$sshd_pid" 2>/dev/null'
start_sshd() {
	local i
	/usr/sbin/sshd -D -f "$T/sshd_config" -E "$T/sshd.log" </dev/null &
	sshd_pid=$!
	for ((i = 0; i < 300; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "$sshd_pid" 2>/dev/null || die "sshd did not start: $(cat "$T/sshd.log")"
		sleep 0.1
	done
	die "sshd did not listen within 30 s"
}
stop_sshd() {
	kill "$sshd_pid"
	wait "$sshd_pid" 2>/dev/null || true
	sshd_pid=
}
start_sshd
ship_ok --config "$T/ship.conf"
verify "$REF/A"

# Down again after a successful run: the plan of the failed run is not kept, the next one ships
# the growth exactly once.
stop_sshd
gen_lines A 101 150 >>"$REF/A"
gen_lines A 101 150 >>"$log"
ship_rc 3 --config "$T/ship.conf"
start_sshd
ship_ok --config "$T/ship.conf"
verify "$REF/A"

# A server that accepts the connection but never answers (stopped): the session timeout ends
# the run with one line, exit 3, and the run after it ships.
ship_conf "$T/stall.conf" "port=$port" "known_hosts=$kh" timeout=2 <<EOF2
source = $log syslog
EOF2
kill -STOP "$sshd_pid"
gen_lines A 151 160 >>"$REF/A"
gen_lines A 151 160 >>"$log"
ship_rc 3 --config "$T/stall.conf"
kill -CONT "$sshd_pid"
(($(wc -l <"$T/err") == 1)) || die "expected one line for a stalled server, got: $(cat "$T/err")"
ship_ok --config "$T/ship.conf"
verify "$REF/A"
