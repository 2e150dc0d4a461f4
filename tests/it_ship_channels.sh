#!/usr/bin/env bash
# SFTP channels ("parallel"): the first is opened before the run, the others by the upload thread
# while the first chunks are being compressed. A server that allows fewer sessions than asked
# (sshd's MaxSessions) costs only speed: the run uses the channels it got, says so with
# --verbose, and every byte is shipped exactly once. -vv's count of the channels used shows
# that the run opened them all (a run that quietly kept to one would pass otherwise). A server
# that stops answering while the shipper compresses leaves it at most 4 upload buffers. Uses its
# own sshd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

own_sshd_prepare
grep -q '^MaxSessions ' "$OWN/sshd_config" || die "the test sshd_config has no MaxSessions line"
sed -i 's/^MaxSessions .*/MaxSessions 2/' "$OWN/sshd_config"
own_sshd_start
log=$LOGS/maillog
ship_conf "$T/ship.conf" "port=$OWN_PORT" "known_hosts=$OWN/known_hosts" max_chunk=64k \
	parallel=4 <<EOF2
source = $log syslog
EOF2
gen_lines A 1 6000 >"$REF/A"
cp "$REF/A" "$log"
ship_rc 0 --config "$T/ship.conf" --verbose --verbose
grep -q 'using 2 SFTP channels instead of 4' "$T/err" ||
	die "the refused channels were not reported: $(cat "$T/err")"
grep -q ' 2 SFTP channel(s), ' "$T/err" ||
	die "the run did not upload on 2 channels: $(cat "$T/err")"
(($(chunks) > 8)) || die "expected more chunks than channels, got $(chunks)"
verify "$REF/A"

# All four allowed: no word about channels, and the rest of the log exactly once.
own_sshd_stop
sed -i 's/^MaxSessions .*/MaxSessions 50/' "$OWN/sshd_config"
own_sshd_start
gen_lines A 6001 9000 >>"$REF/A"
gen_lines A 6001 9000 >>"$log"
ship_rc 0 --config "$T/ship.conf" --verbose --verbose
if grep -q 'SFTP channels' "$T/err"; then
	die "channels reported missing: $(cat "$T/err")"
fi
grep -q ' 4 SFTP channel(s), ' "$T/err" ||
	die "the run did not upload on 4 channels: $(cat "$T/err")"
verify "$REF/A"

# The producer ahead of the uploads: the server's sessions stopped (SIGSTOP) while the shipper
# compresses 12 MB of barely compressible lines. It fills the upload buffers there are, then
# waits for one: at most 4 of 1 MB (the memory bound; 6 raised the peak RSS to 14-15.7 MB of the
# 16 MB in the README). Once the sessions go on, every byte is shipped exactly once.
sessions() { # the processes serving the own sshd's connections
	local pending=("$OWN_PID") p c
	while ((${#pending[@]} > 0)); do
		p=${pending[0]}
		pending=("${pending[@]:1}")
		for c in $(ps -o pid= --ppid "$p"); do
			echo "$c"
			pending+=("$c")
		done
	done
}
# The shipper's main thread, the producer, asleep (not merely unscheduled: that is "R") with the
# process's CPU time unchanged, five looks in a row: it waits for an upload buffer.
producer_waits() {
	local i same=0 st cpu last=
	for ((i = 0; i < 100 && same < 5; i++)); do
		sleep 0.2
		st=$(cat "/proc/$SHIP_PID/stat") ||
			die "the shipper ended while its server was stopped"
		read -r -a st <<<"${st##*) }"
		cpu=$((st[11] + st[12]))
		if [[ ${st[0]} == S && $cpu == "$last" ]]; then
			same=$((same + 1))
		else
			same=0
		fi
		last=$cpu
	done
	((same == 5)) || die "the shipper never waited for an upload buffer"
}
head -c 9M /dev/urandom | base64 >"$REF/B"
cp "$REF/B" "$LOGS/bulk"
ship_conf "$T/bulk.conf" "port=$OWN_PORT" "known_hosts=$OWN/known_hosts" max_chunk=2M \
	parallel=4 "state_dir=$T/bulk.state" <<EOF2
source = $LOGS/bulk syslog
EOF2
ship_paused ship-deflate:1 --config "$T/bulk.conf" --verbose --verbose
stopped=$(sessions | tr '\n' ' ')
[[ -n $stopped ]] || die "the shipper's connection has no session process to stop"
# shellcheck disable=SC2086
kill -STOP $stopped
on_exit "kill -CONT $stopped 2>/dev/null"
kill -CONT "$SHIP_PID"
producer_waits
# shellcheck disable=SC2086
kill -CONT $stopped
rc=0
wait "$SHIP_PID" || rc=$?
((rc == 0)) || { cat "$T/err" >&2; die "the run whose server was stopped exited $rc"; }
grep -q ' 4 upload buffer(s) of 1024 kB' "$T/err" ||
	die "expected the producer to hold 4 upload buffers: $(grep 'upload buffer' "$T/err")"
verify "$REF/A" "$REF/B"
