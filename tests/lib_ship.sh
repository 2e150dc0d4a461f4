# Sourced after tests/lib.sh by the relaywatch-ship integration tests (tests/it_ship_*.sh).
# Provides:
#   $DROP               a fresh drop directory the private sshd can write (under RW_SSH_ROOT)
#   $LOGS $REF $STATE   directories under $T: the logs being shipped, the reference content of
#                       every log file (see tests/ship_verify.py), the shipper's state_dir
#   ship_conf FILE [KEY=VALUE...] < SOURCES
#                       writes a mode-600 config for the private sshd; extra keys come later and
#                       so override (the shipper keeps the last value), stdin holds the
#                       "source = ..." lines
#   gen_lines TAG FROM TO
#                       prints log lines FROM..TO (1-based) of a file tagged TAG: unique, with a
#                       timestamp first, as syslog writes them
#   ship_ok ARGS...     runs the shipper, fails unless it exits 0 silently
#   ship_rc RC ARGS...  runs the shipper, fails unless it exits RC; its stderr is in $T/err
#   verify REF... [--partial REF:BYTES]...
#                       every chunk in $DROP is a byte range of a REF, each byte exactly once
#   chunks              the number of chunks (manifests) in $DROP
need_env RW_SSH_PORT RW_SSH_USER RW_SSH_KEY RW_SSH_KNOWN_HOSTS RW_SSH_ROOT RW_SRC

DROP=$(mktemp -d "$RW_SSH_ROOT/ship-drop.XXXXXX")
on_exit "rm -rf '$DROP'"
LOGS=$T/logs
REF=$T/ref
STATE=$T/state
mkdir -p "$LOGS" "$REF"

ship_conf() {
	local file=$1 kv
	shift
	(
		umask 077
		{
			echo "host = 127.0.0.1"
			echo "port = $RW_SSH_PORT"
			echo "user = $RW_SSH_USER"
			echo "identity = $RW_SSH_KEY"
			echo "known_hosts = $RW_SSH_KNOWN_HOSTS"
			echo "remote_dir = $DROP"
			echo "state_dir = $STATE"
			echo "hostname = mail1.example.org"
			echo "timeout = 20"
			for kv in "$@"; do
				echo "${kv%%=*} = ${kv#*=}"
			done
			cat
		} >"$file.new"
	)
	chmod 600 "$file.new"
	mv "$file.new" "$file"
}

gen_lines() {
	local tag=$1 from=$2 to=$3
	awk -v tag="$tag" -v from="$from" -v to="$to" 'BEGIN {
		for (i = from; i <= to; i++) {
			s = 1390973534 + i
			printf "Jan 28 %02d:%02d:%02d mail1 smtp-%s: %d.%06d CHKUSER accepted rcpt: " \
				"from <sender%d@example.org::> remote <helo%d:unknown:198.51.100.%d> " \
				"rcpt <rcpt%d@example.net> : found existing recipient\n",
				int(i / 3600) % 24, int(i / 60) % 60, i % 60, tag, s, i % 1000000,
				i % 97, i % 13, i % 250, i
		}
	}'
}

ship_ok() {
	if ! "$SHIP" "$@" >"$T/out" 2>"$T/err"; then
		cat "$T/err" >&2
		die "relaywatch-ship $* failed"
	fi
	if [[ -s $T/err ]]; then
		cat "$T/err" >&2
		die "relaywatch-ship $* succeeded but was not silent"
	fi
}

ship_rc() {
	local want=$1 rc=0
	shift
	"$SHIP" "$@" >"$T/out" 2>"$T/err" || rc=$?
	if [[ $rc != "$want" ]]; then
		cat "$T/err" >&2
		die "relaywatch-ship $* exited $rc, expected $want"
	fi
}

verify() {
	python3 "$RW_SRC/tests/ship_verify.py" "$DROP" "$@" || die "the drop directory is wrong"
}

chunks() {
	find "$DROP" -maxdepth 1 -name '*.manifest' | wc -l
}

# A private copy of the test sshd that a test may stop, or give other keys, without disturbing
# the other tests:
#   own_sshd_prepare    picks a free port ($OWN_PORT) and writes $OWN/sshd_config, a copy of the
#                       private sshd's with its own port, pid file and authorized_keys
#                       ($OWN/authorized_keys, starting as a copy of the test one); $OWN/known_hosts
#                       holds its host key as [127.0.0.1]:$OWN_PORT
#   own_sshd_start / own_sshd_stop
OWN=$T/own
OWN_PID=
own_sshd_prepare() {
	need_env RW_SERVERS_DIR
	mkdir -p "$OWN"
	OWN_PORT=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
	cp "$RW_SERVERS_DIR/ssh/authorized_keys" "$OWN/authorized_keys"
	sed -e "s/^Port .*/Port $OWN_PORT/" -e "s|^PidFile .*|PidFile $OWN/sshd-own.pid|" \
		-e "s|^AuthorizedKeysFile .*|AuthorizedKeysFile $OWN/authorized_keys|" \
		"$RW_SERVERS_DIR/ssh/sshd_config" >"$OWN/sshd_config"
	echo "[127.0.0.1]:$OWN_PORT $(cut -d' ' -f2,3 "$RW_SSH_KNOWN_HOSTS")" >"$OWN/known_hosts"
	on_exit '[[ -n $OWN_PID ]] && kill "$OWN_PID" 2>/dev/null && wait "$OWN_PID" 2>/dev/null'
}
own_sshd_start() {
	local i
	/usr/sbin/sshd -D -f "$OWN/sshd_config" -E "$OWN/sshd.log" </dev/null &
	OWN_PID=$!
	for ((i = 0; i < 300; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$OWN_PORT") 2>/dev/null; then
			return 0
		fi
		kill -0 "$OWN_PID" 2>/dev/null || die "sshd did not start: $(cat "$OWN/sshd.log")"
		sleep 0.1
	done
	die "sshd did not listen within 30 s"
}
own_sshd_stop() {
	kill "$OWN_PID"
	wait "$OWN_PID" 2>/dev/null || true
	OWN_PID=
}
