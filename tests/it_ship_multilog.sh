#!/usr/bin/env bash
# relaywatch-ship over a multilog directory: finished @….s/.u files oldest first, then current's
# complete lines; a partial last line waits; current renamed to @….s is not shipped again; each
# byte of every file arrives exactly once (chunks cut at max_chunk), and a run with nothing new
# changes nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

ml=$LOGS/smtpd
mkdir -p "$ml"
ship_conf "$T/ship.conf" max_chunk=64k <<EOF2
source = $ml multilog service=smtp-mx
EOF2

gen_lines a 1 1000 >"$REF/a"
gen_lines b 1 1200 >"$REF/b"
# A .u file was cut short by an outage: its last line has no '\n' and is shipped as it is.
{ gen_lines c 1 300; printf 'Jan 28 10:00:00 mail1 smtp-c: cut sho'; } >"$REF/c"
gen_lines d 1 500 >"$REF/d"
cp "$REF/a" "$ml/@400000005e0000000000000a.s"
cp "$REF/b" "$ml/@400000005e0000010000000a.s"
cp "$REF/c" "$ml/@400000005e0000020000000a.u"
# current: 200 complete lines and half of the next.
head -c "$(($(gen_lines d 1 200 | wc -c) + 40))" "$REF/d" >"$ml/current"
: >"$ml/lock"
echo garbage >"$ml/state"

ship_ok --config "$T/ship.conf"
verify "$REF/a" "$REF/b" "$REF/c" "$REF/d" --partial "$REF/d:$(gen_lines d 1 200 | wc -c)"
# 1000 lines of ~170 bytes in chunks of at least 64 KiB: several chunks per file.
(($(chunks) >= 8)) || die "expected the finished files in several chunks, got $(chunks)"
grep -q '^service = smtp-mx$' "$DROP"/*.manifest || die "service missing from the manifests"
grep -q '^kind = multilog$' "$DROP"/*.manifest || die "kind missing from the manifests"
grep -q '^host = mail1.example.org$' "$DROP"/*.manifest || die "host missing from the manifests"

# Nothing new: nothing shipped, and nothing needs to connect.
before=$(chunks)
ship_ok --config "$T/ship.conf"
[[ $(chunks) == "$before" ]] || die "a run without new lines shipped something"

# current completes its line and grows, then multilog renames it and starts a new one.
tail -c "+$(($(wc -c <"$ml/current") + 1))" "$REF/d" >>"$ml/current"
cmp -s "$ml/current" "$REF/d" || die "test setup: current is not d"
mv "$ml/current" "$ml/@400000005e0000030000000a.s"
gen_lines e 1 10 >"$REF/e"
cp "$REF/e" "$ml/current"
ship_ok --config "$T/ship.conf"
verify "$REF/a" "$REF/b" "$REF/c" "$REF/d" "$REF/e"

# multilog deletes the oldest file: its state is kept (until forget_days), nothing breaks.
rm "$ml/@400000005e0000000000000a.s"
gen_lines e 11 20 >>"$REF/e"
gen_lines e 11 20 >>"$ml/current"
ship_ok --config "$T/ship.conf"
verify "$REF/a" "$REF/b" "$REF/c" "$REF/d" "$REF/e"
