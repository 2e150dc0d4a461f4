#!/usr/bin/env bash
# The largest manifest the shipper can be made to write still fits and is accepted: a syslog
# source whose path is as long as ship.conf allows, rotated under dateext names as long as a
# file name can be (their paths pass the manifest's 1024 bytes for "source": cut there, the
# chunk still ships), the 64 rotated files in one pack (64 "part" lines), the longest hostname
# and service. Every file ships in one run, exit 0 and silent, and `run` counts every line
# exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF
db_migrated ship_bounds

# ship.conf takes a source path of up to 992 bytes (MANIFEST_SOURCE_MAX - 32).
dir=$LOGS
while ((${#dir} < 990 - 201)); do
	dir+=/$(printf 'd%.0s' {1..200})
done
dir+=/$(printf 'e%.0s' $(seq $((990 - ${#dir} - 1))))
log=$dir/m
((${#log} == 992)) || die "test setup: the source path is ${#log} bytes, not 992"
mkdir -p "$dir"

gen --lines 6500 --seed 931 --format syslog --host mail1 --service smtp \
	--out "$T/full" --expect "$T/want"
mkdir -p "$T/pieces"
split -n l/65 -a 2 -d "$T/full" "$T/pieces/x"
# 64 rotated files, oldest first by their DATE; NAME_MAX (255) bytes each.
pad=$(printf '0%.0s' {1..250})
for ((k = 0; k < 64; k++)); do
	p=$T/pieces/x$(printf '%02d' "$k")
	cp "$p" "$REF/r$k"
	mv "$p" "$dir/m-$(printf '%03d' "$k")$pad"
done
cp "$T/pieces/x64" "$REF/live"
mv "$T/pieces/x64" "$log"
name=$(basename "$(find "$dir" -name 'm-000*')")
((${#name} == 255)) || die "test setup: a rotated name is ${#name} bytes, not 255"

ship_conf "$T/ship.conf" "hostname=$(printf 'h%.0s' {1..255})" coalesce_below=1M <<EOF
source = $log syslog service=$(printf 's%.0s' {1..64})
EOF
ship_ok --config "$T/ship.conf"
(($(chunks) == 2)) || die "expected a pack of 64 files and the live file's chunk, got $(chunks)"
pack=$(grep -l '^part = ' "$DROP"/*.manifest)
(($(grep -c '^part = ' "$pack") == 64)) || die "the pack does not list its 64 files"
src=$(sed -n 's/^source = //p' "$pack")
[[ ${#src} == 1024 && $dir/m-000$pad == "$src"* ]] ||
	die "the pack's source is not its first file's path cut to 1024 bytes: '$src'"
refs=()
for ((k = 0; k < 64; k++)); do
	refs+=("$REF/r$k")
done
verify "${refs[@]}" "$REF/live"

rc=0
ingest run --defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "run of the largest manifests"
exact "$T/want" "the largest manifests"
