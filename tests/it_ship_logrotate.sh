#!/usr/bin/env bash
# relaywatch-ship over a syslog file rotated by the real logrotate (forced with -f, a private
# config and state file): the numbered scheme with delaycompress across two rotations (maillog
# -> maillog.1 -> maillog.2.gz: the same content under new names and compressed is never shipped
# again, only the tail that was not shipped yet), the live file's growth with a partial last line
# across runs, and dateext + compress (a rotated file that is gzipped at once: its tail is read
# from the .gz). The same under live writes: tests/it_machinery_logrotate.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

log=$LOGS/maillog
log2=$LOGS/other/maillog
mkdir -p "$LOGS/other"
ship_conf "$T/ship.conf" <<EOF2
source = $log syslog
source = $log2 syslog service=smtp
EOF2
bytes() { gen_lines "$@" | wc -c; }

gen_lines A 1 600 >"$REF/A"
gen_lines B 1 400 >"$REF/B"
gen_lines C 1 50 >"$REF/C"
gen_lines X 1 300 >"$REF/X"
gen_lines Y 1 20 >"$REF/Y"

# Run 1: maillog has 300 lines and a partial one.
head -c "$(($(bytes A 1 300) + 25))" "$REF/A" >"$log"
head -c "$(bytes X 1 100)" "$REF/X" >"$log2"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/X" --partial "$REF/A:$(bytes A 1 300)" --partial "$REF/X:$(bytes X 1 100)"

# Run 2: growth, the partial line completed, another partial one.
head -c "$(($(bytes A 1 450) + 7))" "$REF/A" >"$log"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/X" --partial "$REF/A:$(bytes A 1 450)" --partial "$REF/X:$(bytes X 1 100)"

# The real logrotate, forced: maillog as Debian rotates rsyslog's files (create, compress,
# delaycompress), other/maillog with dateext and compress.
logrotate_conf main "$log" "rotate 4" create compress delaycompress
logrotate_conf other "$log2" "rotate 4" create dateext compress
grow_to_end() { # FILE REF: the writer finishes REF in FILE
	tail -c "+$(($(stat -c %s "$1") + 1))" "$2" >>"$1"
}

# Rotation 1 (delaycompress): A is finished as maillog.1, B starts. X is rotated with dateext and
# compressed at once, Y starts.
grow_to_end "$log" "$REF/A"
logrotate_f main
[[ -f $log.1 && ! -s $log ]] || die "test setup: logrotate did not make maillog.1"
head -c "$(bytes B 1 100)" "$REF/B" >>"$log"
grow_to_end "$log2" "$REF/X"
logrotate_f other
compgen -G "$log2-[0-9]*.gz" >/dev/null || die "test setup: logrotate did not make maillog-DATE.gz"
cat "$REF/Y" >>"$log2"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/X" "$REF/Y" --partial "$REF/B:$(bytes B 1 100)"
after_rotation1=$(chunks)

# Rotation 2: maillog.1 is compressed to maillog.2.gz, B becomes maillog.1, C starts.
grow_to_end "$log" "$REF/B"
logrotate_f main
[[ -f $log.2.gz && -f $log.1 ]] || die "test setup: logrotate did not make maillog.2.gz"
head -c "$(bytes C 1 50)" "$REF/C" >>"$log"
ship_ok --config "$T/ship.conf"
verify "$REF/A" "$REF/B" "$REF/C" "$REF/X" "$REF/Y"
# A was not shipped again: only B's tail and C are new.
(($(chunks) == after_rotation1 + 2)) ||
	die "expected 2 new chunks after the second rotation, got $(($(chunks) - after_rotation1))"

# A third run finds nothing new, and leaves the state file as it was (an idle cron run rewrites
# and syncs nothing; the state is replaced by rename, so a rewrite shows as a new inode).
state_inode=$(stat -c %i "$STATE/state")
ship_ok --config "$T/ship.conf"
[[ $(stat -c %i "$STATE/state") == "$state_inode" ]] || die "an idle run rewrote the state file"
(($(chunks) == after_rotation1 + 2)) || die "a run without new lines shipped something"
grep -q "^source = $log.1\$" "$DROP"/*.manifest || die "no chunk names maillog.1 as its source"

# A symbolic link planted among the rotations (by whoever may write the log directory) is not
# followed: the shipper, as root, must not send the file it points to. One warning, exit 0.
echo "SECRET-$$-not-a-log-line" >"$T/secret"
ln -s "$T/secret" "$log.3"
"$SHIP" --config "$T/ship.conf" >"$T/out" 2>"$T/err" ||
	die "relaywatch-ship failed beside a symlink"
grep -q "^relaywatch-ship: $log.3: a symbolic link, not followed" "$T/err" ||
	{ cat "$T/err" >&2; die "no warning for the planted symlink"; }
(($(chunks) == after_rotation1 + 2)) || die "the symlink's target was shipped"
! zcat "$DROP"/*.gz | grep -q "SECRET-$$" || die "the symlink's target is in the drop directory"
rm "$log.3"

# An old rotation whose gzip data is damaged: one error line naming it, exit 1, and the files
# after it (here the live log's new lines) are still shipped; it is retried by the next run.
gen_lines F 1 3000 | gzip -6 >"$T/F.gz"
head -c "$(($(stat -c %s "$T/F.gz") / 2))" "$T/F.gz" >"$log.5.gz"
gen_lines C 1 80 >"$REF/C"
gen_lines C 51 80 >>"$log"
ship_rc 1 --config "$T/ship.conf"
grep -q "^relaywatch-ship: $log.5.gz: truncated gzip data" "$T/err" ||
	{ cat "$T/err" >&2; die "no error line for the damaged rotation"; }
verify "$REF/A" "$REF/B" "$REF/C" "$REF/X" "$REF/Y"
rm "$log.5.gz"
ship_ok --config "$T/ship.conf"
