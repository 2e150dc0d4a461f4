#!/usr/bin/env bash
# Scale-out: N relaywatch-ship processes (different mail servers, syslog and multilog logs that
# grow, leave partial last lines and rotate between runs) upload into one drop directory while M
# `relaywatch-ingest run` processes drain it at once into one MariaDB. At the end every view
# equals the sum of the generator's counts exactly, every chunk was ingested once (the ledger
# has one row per chunk, no chunk left, nothing quarantined), and no process failed. The replays
# MariaDB forced on the ingesters (deadlocks 1213, lock waits 1205) are counted and printed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF
db_migrated fault_concurrency

shippers=${RW_FAULT_SHIPPERS:-6}
ingesters=${RW_FAULT_INGESTERS:-4}
steps=6
lines=24000

# Per mail server: one log in the generator's format, fed to the shipper in $steps pieces cut
# at arbitrary bytes (partial lines), rotated half-way. Even hosts log through syslog, odd ones
# through multilog (host and service then come from the shipper's config).
expects=()
for ((h = 1; h <= shippers; h++)); do
	host=mx$h
	if ((h % 2 == 0)); then
		gen --lines "$lines" --seed $((800 + h)) --format syslog --host "$host" \
			--service smtp,smtp-mx --malformed 4 --start $((1390973534 + h * 600)) \
			--out "$T/full-$h" --expect "$T/e-$h"
		src="source = $LOGS/$host/maillog syslog"
	else
		gen --lines "$lines" --seed $((800 + h)) --format multilog --host "$host" \
			--service smtp-mx --start $((1390973534 + h * 600)) --out "$T/full-$h" \
			--expect "$T/e-$h"
		src="source = $LOGS/$host/ml multilog service=smtp-mx"
	fi
	expects+=("$T/e-$h")
	mkdir -p "$LOGS/$host/ml"
	# The syslog hosts' rotation is Debian's logrotate with `create` (one file kept; the test
	# closes the log at a line end first, as syslogd does before it reopens). multilog rotates
	# its own files: current, finished, becomes @TAI64N.s, done here by hand between runs.
	logrotate_conf "rotate-$h" "$LOGS/$host/maillog" "rotate 1" create
	ship_conf "$T/ship-$h.conf" "hostname=$host" "state_dir=$T/state-$h" max_chunk=200k \
		<<<"$src"
done
merge_expect "$T/want" "${expects[@]}"

# ship_loop H: feeds host H's log piece by piece and ships after each piece; a failed run is
# recorded in $T/failed (the test fails at the end).
ship_loop() {
	local h=$1 host=mx$1 size step upto cur rc
	size=$(stat -c %s "$T/full-$h")
	if ((h % 2 == 0)); then
		cur=$LOGS/$host/maillog
	else
		cur=$LOGS/$host/ml/current
	fi
	for ((step = 1; step <= steps; step++)); do
		# Byte offsets that fall inside lines: the shipper must wait for their ends.
		upto=$((size * step / steps - (step < steps ? 37 * step : 0)))
		head -c "$((upto - fed[$h]))" < <(tail -c "+$((fed[$h] + 1))" "$T/full-$h") >>"$cur"
		fed[$h]=$upto
		if ((step == steps / 2)); then
			# Rotation: close the file at a line end, as a logger does.
			local rest
			# (tail dies of SIGPIPE once head has its line.)
			rest=$(tail -c "+$((fed[$h] + 1))" "$T/full-$h" | head -n 1 | wc -c || true)
			head -c "$rest" < <(tail -c "+$((fed[$h] + 1))" "$T/full-$h") >>"$cur"
			fed[$h]=$((fed[$h] + rest))
			if ((h % 2 == 0)); then
				logrotate_f "rotate-$h"
			else
				tai=4000000052e8$(printf '%04x' "$h")00000000
				mv "$cur" "$LOGS/$host/ml/@$tai.s"
				: >"$cur"
			fi
		fi
		rc=0
		"$SHIP" --config "$T/ship-$h.conf" >"$T/ship-$h.out.$step" 2>&1 || rc=$?
		if [[ $rc != 0 ]]; then
			echo "relaywatch-ship for $host, step $step: exit $rc:" \
				"$(cat "$T/ship-$h.out.$step")" \
				>>"$T/failed"
		fi
	done
	echo "${fed[$h]}" >"$T/fed-$h"
}

# run_loop K: drains until the shippers are done, then once more.
run_loop() {
	local k=$1 i=0 rc last=0
	while :; do
		[[ -e $T/shipped ]] && last=1
		i=$((i + 1))
		rc=0
		"$INGEST" run --verbose --defaults-file="$MYCNF" --incoming "$DROP" \
			>>"$T/run-$k.out" 2>&1 || rc=$?
		if [[ $rc != 0 ]]; then
			echo "relaywatch-ingest run #$k, pass $i: exit $rc" >>"$T/failed"
		fi
		((last)) && break
	done
}

declare -A fed
for ((h = 1; h <= shippers; h++)); do
	fed[$h]=0
done
pids=()
for ((k = 1; k <= ingesters; k++)); do
	run_loop "$k" &
	pids+=($!)
	on_exit "kill_child $! TERM"
done
ship_pids=()
for ((h = 1; h <= shippers; h++)); do
	ship_loop "$h" &
	ship_pids+=($!)
	on_exit "kill_child $! TERM"
done
for p in "${ship_pids[@]}"; do
	wait "$p" || die "a shipper loop failed"
done
touch "$T/shipped"
for p in "${pids[@]}"; do
	wait "$p" || die "an ingester loop failed"
done
tally concurrent_writers $((shippers + ingesters))

if [[ -s $T/failed ]]; then
	cat "$T/failed" >&2
	die "some runs failed"
fi
# The last piece of each log ended with a complete line: everything was shipped, and drained by
# the final passes.
for ((h = 1; h <= shippers; h++)); do
	[[ $(cat "$T/fed-$h") == "$(stat -c %s "$T/full-$h")" ]] ||
		die "test setup: host $h was not fed completely"
done
# One final drain: a chunk that arrived while the last passes were finishing.
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "the final run"
exact "$T/want" "$shippers shippers and $ingesters ingesters at once"
[[ $(find "$DROP" -maxdepth 1 -name '*.manifest' | wc -l) == 0 ]] || die "chunks left undrained"
[[ $(find "$DROP/work" "$DROP/quarantine" -mindepth 1 | wc -l) == 0 ]] ||
	die "chunks left in work/ or quarantine/"
archived=$(find "$DROP/archive" -name '*.manifest' | wc -l)
ledger=$(db_query "SELECT COUNT(*) FROM chunks")
[[ $archived == "$ledger" ]] || die "$archived chunks archived, $ledger in the ledger"
deadlocks=$(cat "$T"/run-*.out | grep -c 'error 1213' || true)
lockwaits=$(cat "$T"/run-*.out | grep -c 'error 1205' || true)
echo "observed: $ledger chunks from $shippers shippers, drained by $ingesters ingesters at once;" \
	"$deadlocks deadlock and $lockwaits lock-wait replays"
tally chunks_concurrent "$ledger"
tally deadlock_replays "$deadlocks"
exit 0
