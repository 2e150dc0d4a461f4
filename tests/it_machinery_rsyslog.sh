#!/usr/bin/env bash
# rsyslogd and logger, as a Debian 12 mail server logs: a producer writes the generator's lines
# (their syslog header stripped: rsyslogd writes its own) into `logger -u SOCKET -t smtp-mx -p
# mail.info`, which sends them to a private rsyslogd (its own config, pid file and work
# directory, started with -n in the background) listening on that imuxsock socket and writing
# mail.* to maillog in RSYSLOG_TraditionalFileFormat, Debian 12's default ("Dec  1 22:12:00 mail1
# smtp-mx: 1390973534.385247 CHKUSER …"). Meanwhile relaywatch-ship and `relaywatch-ingest run`
# run in loops and logrotate rotates maillog five times as Debian's /etc/logrotate.d/rsyslog does
# (rotate 4, create, compress, delaycompress, postrotate SIGHUP to rsyslogd, which reopens on
# its own time: lines still land in maillog.1 after the rename). Every view equals the
# generator's counts exactly: the splogger stamp gives each line its hour, rsyslogd's header the
# host and service.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
. "$(dirname "$0")/lib_machinery.sh"
db_migrated machinery_rsyslog

lines=12000
rotations=5
log=$LOGS/maillog
rs=$T/rsyslog
mkdir -p "$rs"
gen --lines "$lines" --seed 1401 --format syslog --host mail1 --service smtp-mx --malformed 2 \
	--out "$T/a.log" --expect "$T/want"
gate=$(machinery_gate_bytes "$(stat -c %s "$T/a.log")" "$rotations")
ship_conf "$T/ship.conf" <<<"source = $log syslog"

# No rate limit (imuxsock's default would drop a burst) and room for the longest line; the
# system socket is left alone.
cat >"$rs/rsyslog.conf" <<EOF2
global(workDirectory="$rs" localHostName="mail1" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$rs/log.sock" RateLimit.Interval="0")
module(load="builtin:omfile" Template="RSYSLOG_TraditionalFileFormat")
mail.*	action(type="omfile" file="$log")
EOF2
rsyslogd -N1 -f "$rs/rsyslog.conf" >"$T/out" 2>&1 || { cat "$T/out" >&2; die "bad rsyslog.conf"; }
rsyslogd -n -f "$rs/rsyslog.conf" -i "$rs/rsyslogd.pid" >"$rs/rsyslogd.out" 2>&1 &
rsyslogd=$!
on_exit "kill_child $rsyslogd TERM; wait $rsyslogd"
wait_for "rsyslogd's socket" test -S "$rs/log.sock"

cat >"$T/logrotate.conf" <<EOF2
$log {
	rotate 4
	create
	compress
	delaycompress
	missingok
	notifempty
	postrotate
		kill -HUP $rsyslogd
	endscript
}
EOF2
chmod 644 "$T/logrotate.conf"

mkfifo "$T/pipe"
logger -u "$rs/log.sock" --socket-errors=on -t smtp-mx -p mail.info --size 65536 \
	<"$T/pipe" 2>"$T/logger.err" &
logger=$!
on_exit "kill_child $logger TERM"
machinery_loops_start "$T/ship.conf"
# shellcheck disable=SC2046 # (the options are words without spaces)
python3 "$PRODUCER" --from "$T/a.log" --stdout --strip-header $(machinery_producer_args a "$gate") \
	--batch 20 --pause 0.002 --done "$T/done" >"$T/pipe" &
producer=$!
on_exit "kill_child $producer TERM"
machinery_rotate_at a "$lines" "$rotations" \
	logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf"
wait "$producer" || die "the producer failed"
wait "$logger" || { cat "$T/logger.err" >&2; die "logger failed"; }
# rsyslogd writes in the order it received: once the last line is in maillog, all are.
last=$(tail -n 1 "$T/a.log" | sed -E 's/^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [^ ]+ [^ :]+: //')
wait_for "rsyslogd to write the last line" grep -qF -- "$last" "$log"
kill_child "$rsyslogd" TERM
wait "$rsyslogd" || die "rsyslogd failed: $(cat "$rs/rsyslogd.out")"
machinery_finish "$T/ship.conf"
ls -l "$LOGS"
head -n 2 "$log"
exact "$T/want" "rsyslogd + logger + logrotate under live writes"
