#!/usr/bin/env bash
# The stats server's side of the SFTP link failing under relaywatch-ship, on a private sshd of
# this test (stopping the shared one would disturb the other tests): sshd stopped; sshd
# restarted while a chunk is half uploaded (the shipper is frozen with SIGSTOP at that moment,
# so the fault lands there every time); sshd killed mid-upload and still down for the next run;
# the drop directory full (a small tmpfs) and read-only. Each time: the documented exit status (3
# when the shipper cannot connect, 1 "chunks failed, the next run retries" once it has) and a clear
# error line, no chunk the ingester could take half-written, and after the fault a run of ship +
# ingest counts every line exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF
db_migrated fault_ssh
fault_sshd_start "$T/srv"

drop=$SSH_ROOT/drop
mkdir -p "$drop" "$T/logs"
log=$T/logs/maillog
: >"$log"
faults=0
expects=()

conf() { # FILE REMOTE_DIR [KEY=VALUE...]
	local file=$1 dir=$2 kv
	shift 2
	(
		umask 077
		{
			echo "host = 127.0.0.1"
			echo "port = $SSH_PORT"
			echo "user = root"
			echo "identity = $SSH_KEY"
			echo "known_hosts = $SSH_KNOWN_HOSTS"
			echo "remote_dir = $dir"
			echo "state_dir = $T/state"
			echo "hostname = mx1"
			echo "connect_timeout = 5"
			echo "timeout = 20"
			for kv in "$@"; do
				echo "${kv%%=*} = ${kv#*=}"
			done
			echo "source = $log syslog"
		} >"$file"
	)
}
conf "$T/ship.conf" "$drop"

seed=950
grow() { # LINES: the log grows by a generated piece, which must be counted in the end
	seed=$((seed + 1))
	gen --lines "$1" --seed "$seed" --host mx1 --service smtp,smtp-mx --malformed 2 \
		--start $((1390973534 + seed * 7200)) --out "$T/piece-$seed" --expect "$T/e-$seed"
	cat "$T/piece-$seed" >>"$log"
	expects+=("$T/e-$seed")
}

ship_rc() { # CONF OUT: runs the shipper, prints its exit status
	local rc=0
	"$SHIP" --config "$1" >"$2" 2>&1 || rc=$?
	echo "$rc"
}

# The ingester never sees a half-written chunk: whatever the shipper left, a run over the drop
# directory finds nothing to quarantine and the views never exceed the generator's counts.
nothing_half() { # DIR WHAT
	local rc=0 checked lost double
	ingest run --defaults-file="$MYCNF" --incoming "$1" >"$T/out.run" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out.run" "$2: run over what the shipper left"
	merge_expect "$T/want" "${expects[@]}"
	dump_views "$T/now"
	read -r checked lost double < <(fault__lost_double "$T/want" "$T/now")
	((double == 0)) || die "$2: $double CHKUSER lines counted twice"
}

# After the fault: ship and drain, everything counted exactly once.
recovered() { # CONF DIR WHAT
	local rc
	rc=$(ship_rc "$1" "$T/out")
	expect_status 0 "$rc" "$T/out" "$3: relaywatch-ship once the server is back"
	rc=0
	ingest run --defaults-file="$MYCNF" --incoming "$2" >"$T/out" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out" "$3: run once the server is back"
	merge_expect "$T/want" "${expects[@]}"
	exact "$T/want" "$3: after the recovery"
}

upload_in_flight() {
	[[ -n $(find "$1" -maxdepth 1 -name '.*.gz.tmp' -size +0 2>/dev/null) ]]
}

# freeze_mid_upload CONF DIR: starts the shipper and stops it (SIGSTOP) while a chunk is half
# uploaded; sets $pid. A shipper that finished before it could be caught is run again with more
# to ship (at most three times).
freeze_mid_upload() {
	local try
	for try in 1 2 3; do
		grow 250000
		"$SHIP" --config "$1" >"$T/out" 2>&1 &
		pid=$!
		on_exit "kill_child $pid"
		while kill -0 "$pid" 2>/dev/null && ! upload_in_flight "$2"; do
			sleep 0.01
		done
		if kill_child "$pid" STOP && upload_in_flight "$2"; then
			return 0
		fi
		kill_child "$pid" CONT || true
		wait "$pid" || die "relaywatch-ship failed before it could be frozen mid-upload"
	done
	die "relaywatch-ship was never caught in the middle of an upload"
}

# 1. sshd stopped: exit 3, one line, the state untouched; the next run ships everything.
grow 20000
fault_sshd stop
rc=$(ship_rc "$T/ship.conf" "$T/out")
faults=$((faults + 1))
expect_status 3 "$rc" "$T/out" "relaywatch-ship with sshd stopped"
one_problem "$T/out" "relaywatch-ship with sshd stopped"
[[ ! -e $T/state/state ]] || die "sshd stopped: a state was recorded"
fault_sshd start || die "sshd did not start again"
recovered "$T/ship.conf" "$drop" "sshd stopped"

# 2. sshd restarted while a chunk is half uploaded. The shipper was frozen with a chunk's temporary
# file on the server, so it had connected and logged in: the lost connection fails chunks (exit 1,
# the next run retries them), never "could not connect" (3, given only before the first upload).
freeze_mid_upload "$T/ship.conf" "$drop"
fault_sshd stop
fault_sshd start || die "sshd did not start again"
kill -CONT "$pid"
rc=0
wait "$pid" || rc=$?
faults=$((faults + 1))
expect_status 1 "$rc" "$T/out" "relaywatch-ship with sshd restarted mid-upload"
one_problem "$T/out" "sshd restarted mid-upload"
nothing_half "$drop" "sshd restarted mid-upload"
recovered "$T/ship.conf" "$drop" "sshd restarted mid-upload"

# 3. sshd killed mid-upload, and still down for the next run. As in 2 the run had connected before
# it was frozen: exit 1; the next run cannot connect: exit 3.
freeze_mid_upload "$T/ship.conf" "$drop"
fault_sshd kill
kill -CONT "$pid"
rc=0
wait "$pid" || rc=$?
faults=$((faults + 1))
expect_status 1 "$rc" "$T/out" "relaywatch-ship with sshd killed mid-upload"
one_problem "$T/out" "sshd killed mid-upload"
rc=$(ship_rc "$T/ship.conf" "$T/out")
expect_status 3 "$rc" "$T/out" "relaywatch-ship while sshd is still down"
nothing_half "$drop" "sshd killed mid-upload"
fault_sshd start || die "sshd did not start again"
recovered "$T/ship.conf" "$drop" "sshd killed mid-upload"

# 4. The drop directory full: a 2 MB tmpfs, filled up. Nothing half-written may be taken. The
# server is up, so the failed uploads are failed chunks: exit 1.
full=$SSH_ROOT/full
mkdir -p "$full"
mount -t tmpfs -o size=2m,mode=0755 relaywatch-fault "$full" ||
	die "cannot mount a tmpfs for the disk-full case (the suite runs as root)"
on_exit "umount -l '$full'"
head -c 3M /dev/zero >"$full/filler" 2>/dev/null || true
# The same log, state and host: only the drop directory changes.
conf "$T/ship-full.conf" "$full"
grow 30000
rc=$(ship_rc "$T/ship-full.conf" "$T/out")
faults=$((faults + 1))
expect_status 1 "$rc" "$T/out" "relaywatch-ship with the drop directory full"
problems=$(problem_lines "$T/out" | wc -l)
# One line for the failed upload, one for the count when several chunks failed.
((problems >= 1 && problems <= 2)) ||
	{ cat "$T/out" >&2; die "drop directory full: $problems lines"; }
echo "error lines (drop directory full): $(problem_lines "$T/out")"
nothing_half "$full" "drop directory full"
rm -f "$full/filler"
recovered "$T/ship-full.conf" "$full" "drop directory full"
[[ -z $(find "$full" -maxdepth 1 -name '.*') ]] || die "drop directory full: temporary files left"

# 5. The drop directory read-only (the same tmpfs remounted): as in 4, exit 1.
grow 20000
mount -o remount,ro "$full" || die "cannot remount the tmpfs read-only"
rc=$(ship_rc "$T/ship-full.conf" "$T/out")
faults=$((faults + 1))
expect_status 1 "$rc" "$T/out" "relaywatch-ship with the drop directory read-only"
one_problem "$T/out" "drop directory read-only"
mount -o remount,rw "$full" || die "cannot remount the tmpfs read-write"
recovered "$T/ship-full.conf" "$full" "drop directory read-only"

tally server_faults "$faults"
exit 0
