#!/usr/bin/env bash
# relaywatch-ship's key types with the libssh2 of Debian 12: ed25519 and ECDSA (P-256, P-384)
# client keys log in, in OpenSSH's private key format without a separate .pub file; an RSA key
# is refused by OpenSSH (libssh2 1.10 signs with SHA-1 only) and the message says why. A server
# offering several host key types is checked against the type known_hosts holds. known_hosts is
# read up to its limit of 4 MiB and refused beyond it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

# libssh2 1.10's own leak when it loads an ECDSA key (see the file) is not ours to report.
supp=$RW_SRC/tests/lsan_libssh2.supp
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

own_sshd_prepare
log=$LOGS/maillog
gen_lines A 1 40 >"$REF/A"
: >"$log"
for k in ecdsa256 ecdsa384 rsa; do
	case $k in
	ecdsa256) ssh-keygen -q -t ecdsa -b 256 -N '' -C "$k" -f "$T/id_$k" </dev/null ;;
	ecdsa384) ssh-keygen -q -t ecdsa -b 384 -N '' -C "$k" -f "$T/id_$k" </dev/null ;;
	rsa) ssh-keygen -q -t rsa -b 2048 -N '' -C "$k" -f "$T/id_$k" </dev/null ;;
	esac
	cat "$T/id_$k.pub" >>"$OWN/authorized_keys"
done
# The server also offers an ECDSA host key (libssh2 would prefer it): known_hosts only holds
# the ed25519 one.
ssh-keygen -q -t ecdsa -N '' -f "$OWN/host_ecdsa" </dev/null
sed -i "s|^HostKey .*|HostKey $OWN/host_ecdsa\n&|" "$OWN/sshd_config"
own_sshd_start

n=0
for k in ecdsa256 ecdsa384; do
	# The public half is not needed: libssh2 derives it from the private key.
	rm "$T/id_$k.pub"
	ship_conf "$T/$k.conf" "port=$OWN_PORT" "known_hosts=$OWN/known_hosts" \
		"identity=$T/id_$k" <<EOF2
source = $log syslog
EOF2
	gen_lines A $((n + 1)) $((n + 20)) >>"$log"
	n=$((n + 20))
	ship_ok --config "$T/$k.conf"
done
verify "$REF/A"
grep -q "Accepted publickey for $RW_SSH_USER .* ECDSA " "$OWN/sshd.log" || die "no ECDSA login"

# known_hosts may hold at most 4 MiB (relaywatch-ship.conf(5)): one of exactly 4 MiB (comment
# lines, then the host key) is read, one byte more is refused with a line that says why, before
# anything is shipped.
kh_of_size() { # FILE BYTES: $OWN/known_hosts after comment lines, BYTES in all
	python3 - "$1" "$2" "$OWN/known_hosts" <<'EOF2'
import sys
out, total, key = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "rb").read()
pad = total - len(key)
n = pad // 100 - 1  # lines of 100 bytes, and a first one of 100 to 199
first = pad - 100 * n
with open(out, "wb") as f:
    f.write(b"#" + b"x" * (first - 2) + b"\n" + (b"#" + b"x" * 98 + b"\n") * n + key)
EOF2
	chmod 600 "$1"
	[[ $(wc -c <"$1") == "$2" ]] || die "$1: not $2 bytes"
}
kh_max=$((4 * 1024 * 1024))
kh_of_size "$T/known_hosts.max" "$kh_max"
kh_of_size "$T/known_hosts.over" $((kh_max + 1))
gen_lines A 41 60 >>"$REF/A"
gen_lines A 41 60 >>"$log"
ship_conf "$T/kh-over.conf" "port=$OWN_PORT" "known_hosts=$T/known_hosts.over" <<EOF2
source = $log syslog
EOF2
ship_rc 3 --config "$T/kh-over.conf"
grep -q "known_hosts.over: larger than $kh_max bytes" "$T/err" ||
	die "an oversized known_hosts not refused clearly: $(cat "$T/err")"
(($(wc -l <"$T/err") == 1)) || die "more than one line: $(cat "$T/err")"
echo "error line (known_hosts over 4 MiB): $(cat "$T/err")"
ship_conf "$T/kh-max.conf" "port=$OWN_PORT" "known_hosts=$T/known_hosts.max" <<EOF2
source = $log syslog
EOF2
ship_ok --config "$T/kh-max.conf"
verify "$REF/A"

ship_conf "$T/rsa.conf" "port=$OWN_PORT" "known_hosts=$OWN/known_hosts" "identity=$T/id_rsa" <<EOF2
source = $log syslog
EOF2
echo "Jan 28 23:59:59 mail1 smtp: one more line" >>"$log"
ship_rc 3 --config "$T/rsa.conf"
grep -q 'use an ed25519 or ECDSA key' "$T/err" || die "RSA refusal not explained: $(cat "$T/err")"
(($(wc -l <"$T/err") == 1)) || die "more than one line: $(cat "$T/err")"
