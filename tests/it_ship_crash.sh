#!/usr/bin/env bash
# relaywatch-ship killed (SIGKILL, through RELAYWATCH_CRASH) at each of its crash points, many
# times, while the logs grow and rotate between runs (by Debian's logrotate and multilog): after
# a clean final run every byte of every file is in the drop directory exactly once, with no
# leftover temporary upload. A third source gains small finished files before every run, which
# the shipper packs (several files in one chunk): a pack planned by a killed run is rebuilt with
# the same files, never with the new ones.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

log=$LOGS/maillog
ml=$LOGS/ml
small=$LOGS/small
mkdir -p "$ml" "$small"
ship_conf "$T/ship.conf" max_chunk=64k parallel=3 coalesce_below=16k <<EOF2
source = $log syslog
source = $ml multilog
source = $small multilog
EOF2

gen_lines A 1 2000 >"$REF/A"
gen_lines B 1 2000 >"$REF/B"
gen_lines C 1 2000 >"$REF/C"
# The syslog log is rotated twice by Debian's logrotate, with Debian's rsyslog settings: maillog.1
# stays plain for one rotation, then becomes maillog.2.gz.
logrotate_conf maillog "$log" "rotate 2" create compress delaycompress
for k in 0 1 2 3; do
	gen_lines "m$k" 1 700 >"$REF/m$k"
done
cp "$REF/m0" "$ml/@400000005e0000000000000a.s"
cp "$REF/m1" "$ml/@400000005e0000010000000a.s"

# grow FILE REF LEN: appends to FILE the bytes of REF up to LEN, as a logger would.
grow() {
	local have=0
	[[ -e $1 ]] && have=$(wc -c <"$1")
	head -c "$3" "$2" | tail -c "+$((have + 1))" >>"$1"
}
size() { wc -c <"$1"; }
# add_small N: N more small finished files in $small (multilog's @….s names, in time order).
nsmall=0
add_small() {
	local k
	for ((k = 0; k < $1; k++)); do
		nsmall=$((nsmall + 1))
		gen_lines "s$nsmall" 1 $((20 + nsmall % 7 * 5)) >"$REF/s$nsmall"
		cp "$REF/s$nsmall" "$small/$(printf '@40000000600%05x0000000a.s' "$nsmall")"
	done
}
add_small 6

# The multilog source is written by the real multilog, which rotates only when told (SIGALRM):
# a size limit above what the test writes, and enough finished files kept.
multilog_start "$ml" s16777215 n100
ml_fed=0
# feed_ml REF LEN: the bytes of REF up to LEN through multilog, as a program logs them (a partial
# last line waits in multilog's memory until its end comes).
feed_ml() {
	head -c "$2" "$1" | tail -c "+$((ml_fed + 1))" | multilog_write
	ml_fed=$(($2 < $(size "$1") ? $2 : $(size "$1")))
}

log_is=A
cur_is=m2
grow "$log" "$REF/A" 100000
feed_ml "$REF/m2" 50000

# Each step: grow or rotate something, then a run that is killed at the N-th pass of a point.
steps=(
	"ship-deflate:1" "ship-deflate:4" "ship-upload:1" "ship-upload:3" "ship-after-rename:1"
	"ship-after-rename:2" "ship-after-rename:3" "ship-after-rename:6" "ship-state-write:1"
	"ship-state-write:2" "ship-state-write:3" "ship-deflate:9" "ship-upload:7"
	"ship-after-rename:9" "ship-state-write:4" "ship-upload:2" "ship-after-rename:4"
	"ship-pack-member:1" "ship-pack-member:3" "ship-after-rename:2" "ship-pack-member:2"
)
i=0
# Kills per point name: a step that runs to its end proves nothing, so every point must have killed
# at least one run (a RELAYWATCH_CRASH that is not honoured would otherwise pass unseen).
declare -A kills=()
for point in "${steps[@]}"; do
	i=$((i + 1))
	add_small 3
	case $((i % 5)) in
	0) grow "$log" "$REF/$log_is" $(($(size "$log") + 60011)) ;;
	1) feed_ml "$REF/$cur_is" $((ml_fed + 25003)) ;;
	2)
		if [[ $log_is == A ]] && (($(size "$log") > 150000)); then
			grow "$log" "$REF/A" "$(size "$REF/A")"
			logrotate_f maillog
			grow "$log" "$REF/B" 1000
			log_is=B
		fi
		;;
	3)
		if [[ $cur_is == m2 ]] && ((ml_fed > 70000)); then
			feed_ml "$REF/m2" "$(size "$REF/m2")"
			multilog_rotate
			ml_fed=0
			feed_ml "$REF/m3" 3000
			cur_is=m3
		fi
		;;
	4)
		# The second rotation: A, maybe shipped in part as maillog.1, comes back compressed
		# under another name.
		if [[ $log_is == B ]]; then
			grow "$log" "$REF/B" "$(size "$REF/B")"
			logrotate_f maillog
			[[ -f $log.2.gz && -f $log.1 ]] ||
				die "test setup: logrotate did not rotate twice"
			grow "$log" "$REF/C" 1000
			log_is=C
		fi
		;;
	esac
	rc=0
	# (bash's own "Killed" notice for the expected kill goes to /dev/null, ours to $T/err.)
	{ RELAYWATCH_CRASH=$point "$SHIP" --config "$T/ship.conf" 2>"$T/err"; } 2>/dev/null || rc=$?
	# 137: killed at the point; 0: the run passed it fewer than N times.
	if [[ $rc != 137 && $rc != 0 ]]; then
		cat "$T/err" >&2
		die "run with RELAYWATCH_CRASH=$point exited $rc"
	fi
	if [[ $rc == 137 ]]; then
		kills[${point%:*}]=$((${kills[${point%:*}]:-0} + 1))
	fi
done
for point in "${steps[@]}"; do
	((${kills[${point%:*}]:-0} > 0)) || die "relaywatch-ship was never killed at ${point%:*}"
done
# Every crash point of the shipper's source is among the steps: a new one must be tried here.
for point in $(grep -rhoE 'crashpoint\("[a-z0-9-]+"\)' "$RW_SRC/shipper" |
	sed -E 's/crashpoint\("(.*)"\)/\1/' | LC_ALL=C sort -u); do
	[[ -n ${kills[$point]:-} ]] ||
		die "crash point $point is in the source but not in the steps"
done
[[ $log_is == C && $cur_is == m3 ]] || die "test setup: the files did not rotate"

# Everything finishes, then clean runs.
grow "$log" "$REF/C" "$(size "$REF/C")"
feed_ml "$REF/m3" "$(size "$REF/m3")"
ship_ok --config "$T/ship.conf"
ship_ok --config "$T/ship.conf"
smalls=()
for ((k = 1; k <= nsmall; k++)); do
	smalls+=("$REF/s$k")
done
verify "$REF/A" "$REF/B" "$REF/C" "$REF/m0" "$REF/m1" "$REF/m2" "$REF/m3" "${smalls[@]}"
# The small files went in packs, not one chunk each.
packs=$(grep -l '^part = ' "$DROP"/*.manifest | wc -l)
((packs > 0 && $(grep -h '^part = ' "$DROP"/*.manifest | wc -l) > 2 * packs)) ||
	die "expected the small files packed, got $packs packs"
