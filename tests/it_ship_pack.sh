#!/usr/bin/env bash
# Packs end to end: small finished multilog files go as a few chunks, each listing its files'
# ranges, and `run` counts them exactly. A run killed after the server's rename of a pack and
# before its state update, then a file of that pack deleted (multilog's rotation) before the next
# run: the rerun rebuilds the pack without it, and the ledger's rows per file find the rest
# counted already. The files that appear meanwhile are never added to the planned pack.
# With the argument "late", the first pack reaches the ingester only after the rebuilt one: its
# one file is counted already, the other nine are counted from it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF
late=${1:-}
db_migrated "ship_pack${late:+_late}"

host=mx1
ml=$LOGS/small
mkdir -p "$ml" "$T/parts"
gen --lines 3000 --seed 904 --format multilog --host "$host" --service smtp-mx \
	--out "$T/full" --expect "$T/want"
split -l 100 -a 3 -d "$T/full" "$T/parts/x"
ship_conf "$T/ship.conf" "hostname=$host" coalesce_below=1M <<EOF
source = $ml multilog service=smtp-mx
EOF
next=0
add() { # N: the next N files of the log, as multilog names them
	local k f
	for ((k = 0; k < $1; k++)); do
		f=$T/parts/x$(printf '%03d' "$next")
		mv "$f" "$ml/$(printf '@40000000600%05x0000000a.s' "$next")"
		next=$((next + 1))
	done
}
run() {
	local rc=0
	ingest run --verbose --defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out" "$1"
}

# Ten files, one pack: delivered (the 2nd rename is its manifest's), then the run is killed
# before it records that.
add 10
rc=0
{ RELAYWATCH_CRASH=ship-after-rename:2 "$SHIP" --config "$T/ship.conf" 2>"$T/err"; } \
	2>/dev/null || rc=$?
if [[ $rc != 137 ]]; then
	cat "$T/err" >&2
	die "relaywatch-ship was not killed after the rename (exit $rc)"
fi
(($(chunks) == 1)) || die "expected the 10 files in one pack, got $(chunks) chunks"
grep -c '^part = ' "$DROP"/*.manifest | grep -qx 10 || die "the pack does not list its 10 files"
# Each file is a gzip member of its own (deflated as if shipped alone), its length the part's.
python3 - "$DROP"/*.gz "$DROP"/*.manifest <<'EOF' || die "the pack's gzip members are not its parts"
import sys, zlib
data = open(sys.argv[1], "rb").read()
members = []
while data:
    d = zlib.decompressobj(16 + 15)
    members.append(len(d.decompress(data)))
    if not d.eof:
        sys.exit("truncated gzip member")
    data = d.unused_data
parts = [int(l.split()[4]) for l in open(sys.argv[2]) if l.startswith("part = ")]
if members != parts:
    sys.exit("members %s, parts %s" % (members, parts))
EOF
if [[ $late ]]; then
	# Held back: the ingester takes it after the rebuilt pack.
	mkdir "$T/held"
	mv "$DROP"/*.manifest "$DROP"/*.gz "$T/held/"
else
	run "run of the first pack"
	[[ $(db_query "SELECT COUNT(*) FROM chunk_parts") == 10 ]] || die "expected 10 part rows"
fi

# multilog deletes the oldest files, all but one of the pack; more files arrive. The rerun ships
# the planned pack with the one file left (a new chunk: its bytes differ, but its part row is
# the same), then the new files in a pack of their own.
for k in 0 1 2 3 4 5 6 7 8; do
	rm "$ml/$(printf '@40000000600%05x0000000a.s' "$k")"
done
add 5
ship_ok --config "$T/ship.conf"
run "run after the rebuilt pack"
if [[ $late ]]; then
	# The first pack now: its one file still there was counted from the rebuilt pack.
	[[ $(db_query "SELECT COUNT(*) FROM chunk_parts") == 6 ]] || die "expected 6 part rows"
	mv "$T/held"/* "$DROP/"
	run "run of the first pack, after the rebuilt one"
	if ! grep -q '1 of its 10 files were counted by another chunk' "$T/out"; then
		cat "$T/out" >&2
		die "the first pack did not count its other 9 files"
	fi
	[[ $(db_query "SELECT COUNT(*) FROM chunk_parts") == 15 ]] || die "expected 15 part rows"
elif ! grep -qE 'p1(\.gz|\.manifest)?: already ingested' "$T/out"; then
	cat "$T/out" >&2
	die "the rebuilt pack of one file was not recognised as counted"
fi

# Everything else, then clean runs: each line exactly once.
add $((30 - next))
ship_ok --config "$T/ship.conf"
ship_ok --config "$T/ship.conf"
run "the final run"
exact "$T/want" "packs through a crash and a deleted file"
