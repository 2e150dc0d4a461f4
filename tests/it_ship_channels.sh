#!/usr/bin/env bash
# SFTP channels ("parallel"): the first is opened before the run, the others by the upload thread
# while the first chunks are being compressed. A server that allows fewer sessions than asked
# (sshd's MaxSessions) costs only speed: the run uses the channels it got, says so with
# --verbose, and every byte is shipped exactly once. -vv's count of the channels used shows
# that the run opened them all (a run that quietly kept to one would pass otherwise). Uses its
# own sshd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

own_sshd_prepare
grep -q '^MaxSessions ' "$OWN/sshd_config" || die "the test sshd_config has no MaxSessions line"
sed -i 's/^MaxSessions .*/MaxSessions 2/' "$OWN/sshd_config"
own_sshd_start
log=$LOGS/maillog
ship_conf "$T/ship.conf" "port=$OWN_PORT" "known_hosts=$OWN/known_hosts" max_chunk=64k \
	parallel=4 <<EOF2
source = $log syslog
EOF2
gen_lines A 1 6000 >"$REF/A"
cp "$REF/A" "$log"
ship_rc 0 --config "$T/ship.conf" --verbose --verbose
grep -q 'using 2 SFTP channels instead of 4' "$T/err" ||
	die "the refused channels were not reported: $(cat "$T/err")"
grep -q ' 2 SFTP channel(s), ' "$T/err" ||
	die "the run did not upload on 2 channels: $(cat "$T/err")"
(($(chunks) > 8)) || die "expected more chunks than channels, got $(chunks)"
verify "$REF/A"

# All four allowed: no word about channels, and the rest of the log exactly once.
own_sshd_stop
sed -i 's/^MaxSessions .*/MaxSessions 50/' "$OWN/sshd_config"
own_sshd_start
gen_lines A 6001 9000 >>"$REF/A"
gen_lines A 6001 9000 >>"$log"
ship_rc 0 --config "$T/ship.conf" --verbose --verbose
if grep -q 'SFTP channels' "$T/err"; then
	die "channels reported missing: $(cat "$T/err")"
fi
grep -q ' 4 SFTP channel(s), ' "$T/err" ||
	die "the run did not upload on 4 channels: $(cat "$T/err")"
verify "$REF/A"
