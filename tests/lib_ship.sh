# Sourced after tests/lib.sh by the relaywatch-ship integration tests (tests/it_ship_*.sh).
# Provides:
#   $DROP               a fresh drop directory the private sshd can write (under RW_SSH_ROOT)
#   $LOGS $REF $STATE   directories under $T: the logs being shipped, the reference content of
#                       every log file (see tests/ship_verify.py), the shipper's state_dir
#   ship_conf FILE [KEY=VALUE...] < SOURCES
#                       writes a mode-600 config for the private sshd; extra keys come later and
#                       so override (the shipper keeps the last value), stdin holds the
#                       "source = ..." lines; with SHIP_HOSTS set (words NAME[:PORT]), one
#                       "host" line for each of them instead of the private sshd's
#   gen_lines TAG FROM TO
#                       prints log lines FROM..TO (1-based) of a file tagged TAG: unique, with a
#                       timestamp first, as syslog writes them
#   ship_ok ARGS...     runs the shipper, fails unless it exits 0 silently
#   ship_rc RC ARGS...  runs the shipper, fails unless it exits RC; its stderr is in $T/err
#   verify REF... [--partial REF:BYTES]...
#                       every chunk in $DROP is a byte range of a REF, each byte exactly once
#   chunks              the number of chunks (manifests) in $DROP
#   logrotate_conf NAME LOG DIRECTIVE...
#                       writes $T/NAME.logrotate, a private logrotate config for LOG (one
#                       directive a line; logrotate refuses a config that others can write)
#   logrotate_f NAME    forces that rotation with the real logrotate (-f), state in
#                       $T/NAME.state
#   multilog_start DIR ARGS...
#                       starts the real multilog ARGS... DIR, reading a pipe that the test holds
#                       open on fd 7 (so multilog lives between writes); multilog_write writes
#                       stdin into it and waits until multilog has put its complete lines into
#                       current; multilog_rotate makes multilog finish current now (SIGALRM:
#                       current becomes @TAI64N.s); multilog_crash kills it (SIGKILL) and starts it
#                       again, which renames the current it finds to @TAI64N.u; multilog_stop
#                       ends its input and waits for it to exit
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
			if [[ -n ${SHIP_HOSTS:-} ]]; then
				for kv in $SHIP_HOSTS; do
					echo "host = $kv"
				done
			else
				echo "host = 127.0.0.1"
				echo "port = $RW_SSH_PORT"
			fi
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
			printf "Jan 28 %02d:%02d:%02d mail1 smtp-%s: %d.%06d " \
				"CHKUSER accepted rcpt: from <sender%d@example.org::> " \
				"remote <helo%d:unknown:198.51.100.%d> " \
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
	OWN_PORT=$(free_port)
	cp "$RW_SERVERS_DIR/ssh/authorized_keys" "$OWN/authorized_keys"
	sed -e "s/^Port .*/Port $OWN_PORT/" -e "s|^PidFile .*|PidFile $OWN/sshd-own.pid|" \
		-e "s|^AuthorizedKeysFile .*|AuthorizedKeysFile $OWN/authorized_keys|" \
		"$RW_SERVERS_DIR/ssh/sshd_config" >"$OWN/sshd_config"
	echo "[127.0.0.1]:$OWN_PORT $(cut -d' ' -f2,3 "$RW_SSH_KNOWN_HOSTS")" >"$OWN/known_hosts"
	on_exit '[[ -n $OWN_PID ]] && kill "$OWN_PID" 2>/dev/null && wait "$OWN_PID" 2>/dev/null'
}
# ship__sshd_start DIR PORT WHAT PIDVAR: starts `sshd -D -f DIR/sshd_config` (log DIR/sshd.log)
# in the background, stores its PID in the variable PIDVAR at once (so that on_exit can stop it),
# and returns once it listens on PORT; dies if it exits or has not listened within 30 s (WHAT
# names it in those messages).
ship__sshd_start() {
	local dir=$1 port=$2 what=$3 pidvar=$4 i pid
	/usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" </dev/null &
	pid=$!
	printf -v "$pidvar" %s "$pid"
	for ((i = 0; i < 300; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || die "$what did not start: $(cat "$dir/sshd.log")"
		sleep 0.1
	done
	die "$what did not listen within 30 s"
}
own_sshd_start() {
	ship__sshd_start "$OWN" "$OWN_PORT" sshd OWN_PID
}
own_sshd_stop() {
	kill "$OWN_PID"
	wait "$OWN_PID" 2>/dev/null || true
	OWN_PID=
}

# ship_paused POINT ARGS...: starts the shipper with ARGS in the background with
# RELAYWATCH_PAUSE=POINT (it stops itself with SIGSTOP there), stdout to $T/out and stderr to
# $T/err, sets SHIP_PID (killed on exit) and returns once it is stopped (lib.sh's wait_stopped).
# `kill -CONT "$SHIP_PID"` lets it go on.
ship_paused() {
	local point=$1
	shift
	RELAYWATCH_PAUSE=$point "$SHIP" "$@" >"$T/out" 2>"$T/err" &
	SHIP_PID=$!
	on_exit "kill_child $SHIP_PID KILL"
	wait_stopped "$SHIP_PID" "the shipper paused at $point" "$T/err"
}

# ship_fails_over FROM TO ARGS...: the shipper with ARGS --verbose, paused at
# ship-after-rename:3 (the data of its second chunk renamed into place, that chunk's manifest not
# yet), stats server FROM killed there (drop_sshd_kill), then let go on: it must exit 0, saying
# it shipped the rest to TO.
ship_fails_over() {
	local from=$1 to=$2 rc=0
	shift 2
	ship_paused ship-after-rename:3 "$@" --verbose
	drop_sshd_kill "$from"
	kill -CONT "$SHIP_PID"
	wait "$SHIP_PID" || rc=$?
	((rc == 0)) || { cat "$T/err" >&2; die "the run that failed over exited $rc"; }
	grep -q "shipping the rest to \[127.0.0.1\]:${DROP_PORT[$to]}\$" "$T/err" || {
		cat "$T/err" >&2
		die "the run did not fail over to $to"
	}
}

# Several stats servers, each a private sshd with its own drop directory (for failover):
#   drop_sshd_prepare NAME  picks a free port (${DROP_PORT[NAME]}), writes its sshd_config (a copy
#                       of the private sshd's) whose SFTP sessions start in ${DROP_ROOT[NAME]}, so
#                       that remote_dir = incoming means ${DROP_ROOT[NAME]}/incoming (created);
#                       appends its host key as [127.0.0.1]:PORT to $DROP_KNOWN_HOSTS
#   drop_sshd_start NAME / drop_sshd_stop NAME
#   drop_sshd_kill NAME     SIGKILL to its listener and every session it serves (by PID)
declare -A DROP_PORT=() DROP_ROOT=() DROP_PID=()
DROP_KNOWN_HOSTS=$T/drop_known_hosts
drop_sshd_prepare() {
	local name=$1 dir=$T/sshd-$1
	need_env RW_SERVERS_DIR
	mkdir -p "$dir"
	DROP_PORT[$name]=$(free_port)
	DROP_ROOT[$name]=$(mktemp -d "$RW_SSH_ROOT/ship-$name.XXXXXX")
	on_exit "rm -rf '${DROP_ROOT[$name]}'"
	mkdir -p "${DROP_ROOT[$name]}/incoming"
	sed -e "s/^Port .*/Port ${DROP_PORT[$name]}/" -e "s|^PidFile .*|PidFile $dir/sshd.pid|" \
		-e "s|^Subsystem sftp .*|Subsystem sftp internal-sftp -d ${DROP_ROOT[$name]}|" \
		"$RW_SERVERS_DIR/ssh/sshd_config" >"$dir/sshd_config"
	echo "[127.0.0.1]:${DROP_PORT[$name]} $(cut -d' ' -f2,3 "$RW_SSH_KNOWN_HOSTS")" \
		>>"$DROP_KNOWN_HOSTS"
	on_exit "drop_sshd_kill $name"
}
drop_sshd_start() {
	local name=$1
	ship__sshd_start "$T/sshd-$name" "${DROP_PORT[$name]}" "sshd $name" "DROP_PID[$name]"
}
drop__descendants() {
	local child
	for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$child"
		drop__descendants "$child"
	done
}
drop__down() {
	local name=$1 sig=$2 pid=${DROP_PID[$1]:-} sessions
	[[ -n $pid ]] || return 0
	sessions=$(drop__descendants "$pid")
	kill_child "$pid" "$sig" || true
	wait "$pid" 2>/dev/null || true
	if [[ -n $sessions ]]; then
		# shellcheck disable=SC2086
		kill -s "$sig" $sessions 2>/dev/null || true
	fi
	DROP_PID[$name]=
}
drop_sshd_stop() {
	drop__down "$1" TERM
}
drop_sshd_kill() {
	drop__down "$1" KILL
}

logrotate_conf() {
	local name=$1 log=$2 d
	shift 2
	{
		echo "$log {"
		for d in "$@"; do
			echo "	$d"
		done
		echo "}"
	} >"$T/$name.logrotate"
	chmod 644 "$T/$name.logrotate"
}

logrotate_f() {
	logrotate -f -s "$T/$1.state" "$T/$1.logrotate" || die "logrotate $1 failed"
}

# The real multilog behind a pipe. It writes a line to current once the line is complete (a
# partial line waits in its memory), and renames current on SIGALRM.
MULTILOG_PID=
multilog_start() {
	MULTILOG_DIR=$1
	shift
	MULTILOG_ARGS=("$@")
	[[ -p $T/multilog.pipe ]] || mkfifo "$T/multilog.pipe"
	multilog "${MULTILOG_ARGS[@]}" "$MULTILOG_DIR" <"$T/multilog.pipe" &
	MULTILOG_PID=$!
	exec 7>"$T/multilog.pipe"
	if [[ -z ${multilog_cleanup:-} ]]; then
		multilog_cleanup=1
		on_exit '[[ -n $MULTILOG_PID ]] && kill_child "$MULTILOG_PID" TERM'
	fi
}
multilog__wait() { # WHAT CMD...: polls CMD, at most 60 s (a multilog that hangs fails the test)
	local what=$1 i
	shift
	for ((i = 0; i < 1200; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	die "gave up waiting for multilog: $what"
}
multilog__current_has() {
	[[ -f $MULTILOG_DIR/current && $(stat -c %s "$MULTILOG_DIR/current") -ge $1 ]]
}
multilog__newest() {
	find "$MULTILOG_DIR" -name '@*' -printf '%f\n' | sort | tail -n 1
}
# Names sort in time order: a new finished file is the newest one (multilog may have deleted an
# old one at the same moment, so their number says nothing).
multilog__finished_after() {
	[[ $(multilog__newest) > $1 ]]
}
MULTILOG_PENDING=0
multilog_write() {
	local before complete
	before=$(stat -c %s "$MULTILOG_DIR/current" 2>/dev/null || echo 0)
	cat >"$T/multilog.in"
	# Only complete lines reach current: the partial line left by the last write, completed now,
	# and this write's complete lines.
	complete=$(wc -c <"$T/multilog.in")
	local partial=0
	if [[ -n $(tail -c 1 "$T/multilog.in" | tr -d '\n') ]]; then
		partial=$(tail -n 1 "$T/multilog.in" | wc -c)
		if ((partial == complete)); then
			partial=$((partial + MULTILOG_PENDING))
		fi
	fi
	cat "$T/multilog.in" >&7
	multilog__wait "current to grow" multilog__current_has \
		$((before + MULTILOG_PENDING + complete - partial))
	MULTILOG_PENDING=$partial
}
multilog_rotate() {
	local newest
	newest=$(multilog__newest)
	kill -ALRM "$MULTILOG_PID"
	multilog__wait "current to be finished" multilog__finished_after "$newest"
}
multilog_crash() {
	local newest
	newest=$(multilog__newest)
	# Killed before its input ends: an end of input would let it finish current as a .s.
	kill_child "$MULTILOG_PID" KILL
	wait "$MULTILOG_PID" 2>/dev/null || true
	exec 7>&-
	MULTILOG_PENDING=0
	multilog_start "$MULTILOG_DIR" "${MULTILOG_ARGS[@]}"
	multilog__wait "the .u file" multilog__finished_after "$newest"
}
multilog_stop() {
	exec 7>&-
	wait "$MULTILOG_PID" || die "multilog failed"
	MULTILOG_PID=
}
