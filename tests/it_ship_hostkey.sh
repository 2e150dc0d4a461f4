#!/usr/bin/env bash
# relaywatch-ship checks the server's host key against known_hosts: a changed key is refused
# loudly (exit 3, even with --accept-new-host-key), an unknown one is refused with the command
# that adds it, --accept-new-host-key records it on first contact; nothing is shipped and the
# state is not touched while the key is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

log=$LOGS/maillog
kh=$T/known_hosts
gen_lines A 1 50 >"$REF/A"
cp "$REF/A" "$log"
ship_conf "$T/ship.conf" "known_hosts=$kh" <<EOF2
source = $log syslog
EOF2

# A different key recorded for this server: a man in the middle, as far as we can tell.
ssh-keygen -q -t ed25519 -N '' -C other -f "$T/other" </dev/null
echo "[127.0.0.1]:$RW_SSH_PORT $(cut -d' ' -f1,2 "$T/other.pub")" >"$kh"
ship_rc 3 --config "$T/ship.conf"
grep -q 'host key for \[127.0.0.1\]:'"$RW_SSH_PORT"' has CHANGED' "$T/err" ||
	die "mismatch not reported: $(cat "$T/err")"
grep -q 'man-in-the-middle' "$T/err" || die "mismatch message does not warn"
(($(wc -l <"$T/err") == 1)) || die "more than one line for one problem: $(cat "$T/err")"
ship_rc 3 --config "$T/ship.conf" --accept-new-host-key
grep -q 'CHANGED' "$T/err" || die "--accept-new-host-key accepted a changed key"
[[ $(chunks) == 0 ]] || die "something was shipped to a server with a changed key"
[[ ! -e $STATE/state ]] || die "the state was written although nothing could be shipped"

# Unknown host: refused, with the way out.
: >"$kh"
ship_rc 3 --config "$T/ship.conf"
grep -q "ssh-keyscan -p $RW_SSH_PORT 127.0.0.1 >> $kh" "$T/err" ||
	die "unknown key message lacks the ssh-keyscan command: $(cat "$T/err")"
grep -q -- '--accept-new-host-key' "$T/err" || die "unknown key message lacks the option"
rm "$kh"
ship_rc 3 --config "$T/ship.conf"

# First contact, explicitly trusted: recorded (OpenSSH format, [host]:port) and used.
ship_rc 0 --config "$T/ship.conf" --accept-new-host-key
grep -q 'added the ssh-ed25519 host key' "$T/err" || die "no notice about the recorded key"
grep -q "^\[127.0.0.1\]:$RW_SSH_PORT ssh-ed25519 " "$kh" || die "known_hosts line: $(cat "$kh")"
cmp -s <(cut -d' ' -f2,3 "$kh") <(cut -d' ' -f2,3 "$RW_SSH_KNOWN_HOSTS") ||
	die "recorded key differs from the server's"
verify "$REF/A"

# From now on it matches: silent. Hashed known_hosts entries work too.
gen_lines A 51 60 >>"$REF/A"
gen_lines A 51 60 >>"$log"
ssh-keygen -q -H -f "$kh" >/dev/null 2>&1
grep -q '^|1|' "$kh" || die "test setup: known_hosts not hashed"
ship_ok --config "$T/ship.conf"
verify "$REF/A"
