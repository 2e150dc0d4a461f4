#!/usr/bin/env bash
# Debian's logrotate under live writes. Two producers write without a pause, as syslogd does
# (O_APPEND, reopening on SIGHUP), while relaywatch-ship and `relaywatch-ingest run` run in loops
# and `logrotate -f` (a private config and state file) rotates both logs five times:
#   maillog        create + compress + delaycompress (Debian's rsyslog default): maillog.1 stays
#                  plain for one rotation, then becomes maillog.2.gz, and is deleted after that
#   other/maillog  create + compress, no delaycompress: maillog.1.gz is made right after the
#                  postrotate script, the lines written before the producer reopened included
# The postrotate script sends SIGHUP and waits until the producer has reopened the new file (as
# an admin's script must, or the lines still written to the old file after compression are lost).
# Every view equals the generator's counts exactly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
. "$(dirname "$0")/lib_machinery.sh"
db_migrated machinery_logrotate

lines=16000
rotations=5
mkdir -p "$LOGS/other"
gen --lines "$lines" --seed 1101 --format syslog --host mail1 --service smtp,smtp-mx \
	--malformed 3 --out "$T/a.log" --expect "$T/e-a"
gen --lines "$lines" --seed 1102 --format labelled --host mail2 --service smtp-mx \
	--out "$T/b.log" --expect "$T/e-b"
merge_expect "$T/want" "$T/e-a" "$T/e-b"
gate=$(machinery_gate_bytes "$(stat -c %s "$T/a.log")" "$rotations")

ship_conf "$T/ship.conf" max_chunk=100k <<EOF2
source = $LOGS/maillog syslog
source = $LOGS/other/maillog syslog
EOF2

declare -A pid
for p in a b; do
	to=$LOGS/maillog
	[[ $p == a ]] || to=$LOGS/other/maillog
	# shellcheck disable=SC2046 # (the options are words without spaces)
	python3 "$PRODUCER" --from "$T/$p.log" --to "$to" --ack "$T/ack-$p" \
		$(machinery_producer_args "$p" "$gate") \
		--batch 20 --pause 0.005 --done "$T/done-$p" --stop "$T/stop-producers" &
	pid[$p]=$!
	on_exit "kill_child $! TERM"
done

# logrotate refuses a config that others can write; the postrotate script waits for the
# producer's answer to SIGHUP (bounded: a producer that died fails the test below).
reopen() { # PID ACK
	echo "rm -f '$2'; kill -HUP $1; i=0;" \
		"while [ ! -e '$2' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i + 1)); done"
}
cat >"$T/logrotate.conf" <<EOF2
$LOGS/maillog {
	rotate 2
	create
	compress
	delaycompress
	missingok
	postrotate
		$(reopen "${pid[a]}" "$T/ack-a")
	endscript
}
$LOGS/other/maillog {
	rotate 2
	create
	compress
	missingok
	postrotate
		$(reopen "${pid[b]}" "$T/ack-b")
	endscript
}
EOF2
chmod 644 "$T/logrotate.conf"

rotate() {
	rm -f "$T/ack-a" "$T/ack-b"
	logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf" || return 1
	[[ -e $T/ack-a && -e $T/ack-b ]] || die "a producer did not reopen its log after SIGHUP"
}

machinery_loops_start "$T/ship.conf"
machinery_rotate_at a "$lines" "$rotations" rotate
machinery_wait_progress a "$lines"
machinery_wait_progress b "$lines"
touch "$T/stop-producers"
wait "${pid[a]}" || die "producer a failed"
wait "${pid[b]}" || die "producer b failed"
machinery_finish "$T/ship.conf"
ls -l "$LOGS" "$LOGS/other"
exact "$T/want" "logrotate (create, compress, delaycompress) under live writes"
echo "logrotate rotated both logs $rotations times; $(cat "$T/done-a") and $(cat "$T/done-b")" \
	"(lines bytes) written, every line counted once"
