#!/usr/bin/env bash
# Two `relaywatch-ingest run` processes drain the same drop directory at once, over many small
# chunks, some of them the same content under two names: every chunk is claimed by exactly one of
# them, the totals are exact, no chunk is counted twice, and both exit 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
need_env RW_MYCNF
db_migrated run_concurrent

in=$T/incoming
mkdir -p "$in"
rounds=3
per_round=40
expects=()
chunks=0

for round in $(seq 1 $rounds); do
	# Two mail servers, split into small line-aligned chunks (each line carries its own header).
	for host in mx1 mx2; do
		gen --lines $((per_round * 250)) --seed "$round$((${host#mx} + 500))" \
			--host "$host" \
			--service smtp --out "$T/log-$round-$host" --expect "$T/e-$round-$host"
		expects+=("$T/e-$round-$host")
		mkdir -p "$T/split-$round-$host"
		split -l 500 -d -a 4 "$T/log-$round-$host" "$T/split-$round-$host/p"
		args=()
		for p in "$T/split-$round-$host"/p*; do
			args+=("$host-$round-$(basename "$p")=$p")
			chunks=$((chunks + 1))
		done
		make_chunks "$in" "$host" smtp syslog "${args[@]}"
	done
	# Re-sent content under new names: duplicates racing with their originals.
	args=()
	for p in "$T/split-$round-mx1"/p000[0-4]; do
		args+=("zz-resent-$round-$(basename "$p")=$p")
	done
	make_chunks "$in" mx1 smtp syslog "${args[@]}"

	at_once "round $round" "$T/err1-$round" "$T/err2-$round" \
		run --defaults-file="$MYCNF" --incoming "$in" -- \
		run --defaults-file="$MYCNF" --incoming "$in"
	[[ ! -s $T/err1-$round && ! -s $T/err2-$round ]] || {
		cat "$T/err1-$round" "$T/err2-$round" >&2
		die "round $round: a run printed something"
	}
	[[ $(count_files "$in" '*.manifest') == 0 ]] || die "round $round: chunks left in incoming/"
	[[ $(count_files "$in/work" '*') == 0 ]] || die "round $round: chunks left in work/"
done

merge_expect "$T/want" "${expects[@]}"
dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "concurrent runs did not count exactly once"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == "$chunks" ]] ||
	die "expected $chunks ledger rows, found $(db_query "SELECT COUNT(*) FROM chunks")"
[[ $(count_files "$in/archive" '*.manifest') == $((chunks + rounds * 5)) ]] ||
	die "not every chunk was archived"
[[ $(count_files "$in/quarantine" '*') == 0 ]] || die "something was quarantined"
exit 0
