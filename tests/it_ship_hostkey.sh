#!/usr/bin/env bash
# relaywatch-ship checks the server's host key against known_hosts: a changed key is refused
# loudly (exit 3, even with --accept-new-host-key), an unknown one is refused with the command
# that adds it, --accept-new-host-key records it on first contact; nothing is shipped and the
# state is not touched while the key is refused. A line vouches only for its own port, and a
# known_hosts that another user could write is refused.
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

# A line matches only its own port, as in OpenSSH: the right key under the bare name (port 22)
# or under another port does not vouch for this server.
key=$(cut -d' ' -f2,3 "$RW_SSH_KNOWN_HOSTS")
gen_lines A 61 70 >>"$REF/A"
gen_lines A 61 70 >>"$log"
for line in "127.0.0.1 $key" "[127.0.0.1]:$((RW_SSH_PORT == 22 ? 23 : 22)) $key"; do
	echo "$line" >"$kh"
	ship_rc 3 --config "$T/ship.conf"
	grep -q "host key for \[127.0.0.1\]:$RW_SSH_PORT is not in $kh" "$T/err" ||
		die "'$line' vouched for port $RW_SSH_PORT: $(cat "$T/err")"
done

# A known_hosts that another local user could change is refused with one line: whoever writes it
# chooses the server that receives the logs.
echo "[127.0.0.1]:$RW_SSH_PORT $key" >"$kh"
chmod 664 "$kh"
ship_rc 3 --config "$T/ship.conf"
(($(wc -l <"$T/err") == 1)) && grep -q "$kh: .*group or others can write" "$T/err" ||
	die "group-writable known_hosts not refused in one line: $(cat "$T/err")"
chmod 644 "$kh"
chown nobody "$kh"
ship_rc 3 --config "$T/ship.conf"
(($(wc -l <"$T/err") == 1)) && grep -q "$kh: .*owned by another user" "$T/err" ||
	die "known_hosts of another user not refused in one line: $(cat "$T/err")"
chown "$(id -u)" "$kh"
ship_ok --config "$T/ship.conf"
verify "$REF/A"
