#!/usr/bin/env bash
# End to end through the shipper's crashes: relaywatch-ship killed (SIGKILL) at passes of every
# crash point of shipper/ (while deflating, mid-upload, after the remote rename before the state
# update, while writing the state, between the files of a pack), and at random moments, while a
# syslog file and a multilog directory grow (partial last lines) and rotate, and a second multilog
# directory gains small finished files that are shipped in packs; `relaywatch-ingest run` drains
# between the kills, itself killed now and then. Between kills nothing is ever counted twice; after
# clean final runs every view equals the generator's counts exactly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF
db_migrated fault_crash_ship

host=mx1
mkdir -p "$LOGS/ml"
gen --lines 30000 --seed 901 --format syslog --host "$host" --service smtp,smtp-mx --malformed 6 \
	--out "$T/full-sys" --expect "$T/e-sys"
gen --lines 20000 --seed 902 --format multilog --host "$host" --service smtp-mx --incident \
	--start 1390990000 --out "$T/full-ml" --expect "$T/e-ml"
gen --lines 9000 --seed 903 --format multilog --host "$host" --service smtp-sub \
	--start 1391000000 --out "$T/full-small" --expect "$T/e-small"
merge_expect "$T/want" "$T/e-sys" "$T/e-ml" "$T/e-small"
# The small files, 60 lines each, added a few before every run (add_small N).
mkdir -p "$LOGS/small" "$T/small"
split -l 60 -a 4 -d "$T/full-small" "$T/small/x"
small_next=0
add_small() {
	local k f
	for ((k = 0; k < $1; k++)); do
		f=$T/small/x$(printf '%04d' "$small_next")
		[[ -e $f ]] || return 0
		mv "$f" "$LOGS/small/$(printf '@40000000600%05x0000000a.s' "$small_next")"
		small_next=$((small_next + 1))
	done
}
# Small chunks and one upload at a time: many passes of every point in each run; the small
# files go in packs of up to 96k.
ship_conf "$T/ship.conf" "hostname=$host" max_chunk=96k parallel=2 coalesce_below=32k <<EOF
source = $LOGS/maillog syslog
source = $LOGS/ml multilog service=smtp-mx
source = $LOGS/small multilog service=smtp-sub
EOF

declare -A fed=([sys]=0 [ml]=0)
declare -A live=([sys]=$LOGS/maillog [ml]=$LOGS/ml/current)
rotations=0

# feed KEY BYTES: appends the next BYTES bytes of the full log to its live file (cutting lines).
feed() {
	local key=$1 n=$2 size
	size=$(stat -c %s "$T/full-$key")
	((fed[$key] + n <= size)) || n=$((size - fed[$key]))
	((n > 0)) || return 0
	head -c "$n" < <(tail -c "+$((fed[$key] + 1))" "$T/full-$key") >>"${live[$key]}"
	fed[$key]=$((fed[$key] + n))
}

# rotate KEY: completes the live file's last line and rotates it: the syslog file by Debian's
# logrotate as it rotates rsyslog's files (maillog -> maillog.1 -> maillog.2.gz ...), the
# multilog one as multilog does (current -> @TAI64N.s); the writer starts a new file.
logrotate_conf maillog "$LOGS/maillog" "rotate 5" create compress delaycompress
rotate() {
	local key=$1 rest
	rest=$(tail -c "+$((fed[$key] + 1))" "$T/full-$key" | head -n 1 | wc -c || true)
	feed "$key" "$rest"
	rotations=$((rotations + 1))
	if [[ $key == sys ]]; then
		logrotate_f maillog
	else
		# (multilog's own rotation; the real multilog never leaves the partial lines that
		# this test feeds on disk.)
		mv "$LOGS/ml/current" \
			"$LOGS/ml/@4000000052e8$(printf '%04x' "$rotations")00000000.s"
		: >"${live[$key]}"
	fi
}

# No view may ever hold more than the generator wrote (counted twice), whatever was lost so far.
never_double() { # WHAT
	local checked lost double
	wait_for "the killed ingester's connection to end" db_idle
	dump_views "$T/now"
	read -r checked lost double < <(fault__lost_double "$T/want" "$T/now")
	((double == 0)) || die "$1: $double CHKUSER lines counted twice"
}

ship_crashes=0
ingest_crashes=0
mapfile -t ship_points < <(grep -rhoE 'crashpoint\("[a-z0-9-]+"\)' "$RW_SRC/shipper" |
	sed -E 's/crashpoint\("(.*)"\)/\1/' | LC_ALL=C sort -u)
mapfile -t ingest_points < <(grep -rhoE 'crashpoint\("[a-z0-9-]+"\)' "$RW_SRC/ingester" |
	sed -E 's/crashpoint\("(.*)"\)/\1/' | LC_ALL=C sort -u)
((${#ship_points[@]} >= 4)) || die "found only ${#ship_points[@]} crash points in shipper/"
RANDOM=9090
step=0
for point in "${ship_points[@]}"; do
	passed=0
	for n in 1 2 3 5; do
		step=$((step + 1))
		feed sys $((90000 + step * 1013))
		feed ml $((60000 + step * 709))
		add_small 4
		case $((step % 7)) in
		3) rotate sys ;;
		5) rotate ml ;;
		esac
		rc=0
		# (bash's "Killed" notice of an expected kill goes to /dev/null.)
		{ RELAYWATCH_CRASH=$point:$n "$SHIP" --config "$T/ship.conf" >"$T/out" 2>&1; } \
			2>/dev/null || rc=$?
		if [[ $rc == 137 ]]; then
			ship_crashes=$((ship_crashes + 1))
			passed=1
		else
			expect_status 0 "$rc" "$T/out" \
				"relaywatch-ship with RELAYWATCH_CRASH=$point:$n"
		fi
		# Drain what arrived; every third time the ingester is killed too.
		rc=0
		if ((step % 3 == 0)); then
			ip=${ingest_points[RANDOM % ${#ingest_points[@]}]}
			{ RELAYWATCH_CRASH=$ip:$((RANDOM % 3 + 1)) "$INGEST" run \
				--defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1; } \
				2>/dev/null || rc=$?
			if [[ $rc == 137 ]]; then
				ingest_crashes=$((ingest_crashes + 1))
			else
				expect_status 0 "$rc" "$T/out" "run with RELAYWATCH_CRASH=$ip"
			fi
		else
			ingest run --defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1 ||
				rc=$?
			expect_status 0 "$rc" "$T/out" \
				"run after relaywatch-ship was killed at $point:$n"
		fi
		never_double "after a kill at $point:$n"
	done
	((passed)) || die "relaywatch-ship never passed its crash point $point"
done

# Random moments: the shipper killed after a random delay within the time an uninterrupted run
# of the same amount takes here (measured first).
feed sys 400000
feed ml 300000
t0=${EPOCHREALTIME/./}
"$SHIP" --config "$T/ship.conf" >"$T/out" 2>&1 || die "an uninterrupted relaywatch-ship failed"
span_us=$((${EPOCHREALTIME/./} - t0))
kills=0
for try in 1 2 3 4 5; do
	feed sys 400000
	feed ml 300000
	add_small 6
	((try != 2)) || rotate sys
	"$SHIP" --config "$T/ship.conf" >"$T/out" 2>&1 &
	pid=$!
	on_exit "kill_child $pid"
	delay_us=$(((RANDOM * 32768 + RANDOM) % span_us))
	sleep "$((delay_us / 1000000)).$(printf '%06d' $((delay_us % 1000000)))"
	kill_child "$pid" || true
	rc=0
	wait "$pid" 2>/dev/null || rc=$?
	if [[ $rc == 137 ]]; then
		kills=$((kills + 1))
	else
		expect_status 0 "$rc" "$T/out" "relaywatch-ship not killed (try $try)"
	fi
	rc=0
	ingest run --defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out" "run after a random kill of relaywatch-ship"
	never_double "after a random kill of relaywatch-ship (try $try)"
done

# The rest of both logs (ending with complete lines), then clean runs.
feed sys "$(stat -c %s "$T/full-sys")"
feed ml "$(stat -c %s "$T/full-ml")"
add_small 1000
rc=0
"$SHIP" --config "$T/ship.conf" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "the final relaywatch-ship"
[[ -z $(problem_lines "$T/out") ]] || { cat "$T/out" >&2; die "the final relaywatch-ship spoke"; }
"$SHIP" --config "$T/ship.conf" >"$T/out" 2>&1 || die "a second final relaywatch-ship failed"
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "the final run"
exact "$T/want" "after $ship_crashes shipper and $ingest_crashes ingester kills, $kills random"
[[ $(find "$DROP" -maxdepth 1 -name '.*' | wc -l) == 0 ]] || die "temporary uploads left behind"
[[ $(find "$DROP/work" "$DROP/quarantine" -mindepth 1 | wc -l) == 0 ]] ||
	die "chunks left in work/ or quarantine/"
((rotations >= 2)) || die "test setup: nothing rotated"
[[ -n $(db_query "SELECT 1 FROM chunk_parts LIMIT 1") ]] || die "test setup: no pack was counted"
tally crash_points $((ship_crashes + ingest_crashes))
tally random_kills "$kills"
exit 0
