#!/usr/bin/env bash
# relaywatch-ship over a multilog directory written by the real multilog (daemontools) behind a
# pipe: finished @….s/.u files oldest first, then current's complete lines; a partial last line
# (which multilog holds in memory until its end arrives) waits; current renamed to @….s is not
# shipped again; a .u file left by a multilog killed mid-file is shipped whole; each byte of
# every file arrives exactly once (chunks cut at max_chunk); a run with nothing new changes
# nothing; and multilog's n limit deletes a shipped file without harm.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

ml=$LOGS/smtpd
ship_conf "$T/ship.conf" max_chunk=64k <<EOF2
source = $ml multilog service=smtp-mx
EOF2

gen_lines a 1 1000 >"$REF/a"
gen_lines b 1 1200 >"$REF/b"
gen_lines c 1 300 >"$REF/c"
gen_lines d 1 500 >"$REF/d"
# s: never by size here (the test rotates with SIGALRM, at the ends of a, b and d); n4: the
# finished files and current, four in all, so that finishing d deletes a.
multilog_start "$ml" s9999999 n4
multilog_write <"$REF/a"
multilog_rotate
multilog_write <"$REF/b"
multilog_rotate
# A .u file: multilog was killed while writing c, and renamed it at its next start. Its last
# line was cut short by the crash (what a power cut leaves on disk; no signal makes multilog
# write half a line), and is shipped as it is.
multilog_write <"$REF/c"
printf 'Jan 28 10:00:00 mail1 smtp-c: cut sho' | tee -a "$REF/c" >>"$ml/current"
multilog_crash
# current: 200 complete lines, and half of the next still in multilog's memory.
head -c "$(($(gen_lines d 1 200 | wc -c) + 40))" "$REF/d" | multilog_write
[[ $(find "$ml" -name '@*.s' | wc -l) == 2 && $(find "$ml" -name '@*.u' | wc -l) == 1 ]] ||
	die "test setup: expected two .s files and one .u file"
cmp -s "$ml/current" <(gen_lines d 1 200) || die "test setup: current is not d's first 200 lines"

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

# current completes its line and grows, then multilog renames it and starts a new one; having
# four files then, it deletes the oldest, a, which was shipped long ago: its state is kept (until
# forget_days), nothing breaks.
tail -c "+$(($(gen_lines d 1 200 | wc -c) + 41))" "$REF/d" | multilog_write
cmp -s "$ml/current" "$REF/d" || die "test setup: current is not d"
first=$(find "$ml" -name '@*' | sort | head -n 1)
multilog_rotate
[[ ! -e $first ]] || die "test setup: multilog n4 did not delete the oldest file"
gen_lines e 1 10 >"$REF/e"
multilog_write <"$REF/e"
ship_ok --config "$T/ship.conf"
verify "$REF/a" "$REF/b" "$REF/c" "$REF/d" "$REF/e"

gen_lines e 11 20 >>"$REF/e"
gen_lines e 11 20 | multilog_write
ship_ok --config "$T/ship.conf"
verify "$REF/a" "$REF/b" "$REF/c" "$REF/d" "$REF/e"
multilog_stop
