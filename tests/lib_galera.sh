# shellcheck shell=bash
# Sourced after tests/lib.sh: a three-node MariaDB Galera cluster on 127.0.0.1, private to the test
# (its own datadirs, sockets and ports; provider from Debian's galera-4; state transfers by rsync).
# Every node is started and stopped by PID, and all are stopped when the test exits.
#
#   galera_start N      bootstraps node 1 and joins nodes 2..N (N <= 9); waits until all are
#                       ready; creates database relaywatch and an account for it; writes
#                       $GALERA/nI/my.cnf (the ingester's option file for node I, mode 600)
#   galera_mycnf I      prints node I's option file
#   galera_root I SQL   runs SQL as root on node I (rows tab-separated, no headers); reads wait
#                       until the node has applied every write the cluster committed before them
#                       (wsrep_sync_wait), so "what every node holds" is exact
#   galera_kill I       SIGKILL to node I (a crash: no shutdown, no goodbye to the cluster)
#   galera_stop I       SIGTERM to node I, waits until it is gone
#   galera_restart I    starts node I again (it rejoins and catches up, by IST when the donor's
#                       gcache still holds what it missed) and waits until it is ready
#   galera_ready I      true when node I answers and says wsrep_ready ON
#   galera_size I       wsrep_cluster_size as node I sees it
#   galera_transfer I   "IST" or "SST": how node I caught up the last time it joined
#   galera_dump I DIR   dump_views of node I into DIR
need_env RW_SRC

GALERA_PROVIDER=/usr/lib/galera/libgalera_smm.so
[[ -r $GALERA_PROVIDER ]] ||
	die "no Galera provider ($GALERA_PROVIDER): scripts/deps installs galera-4"
command -v rsync >/dev/null || die "no rsync (the state transfer method): scripts/deps installs it"

# The nodes run as user mysql (as root the joiner's rsync daemon would drop to nobody and fail on
# the datadir), so their directory must be reachable by it: not under $T, which is private.
GALERA=$(mktemp -d "${TMPDIR:-/tmp}/rw-galera.XXXXXX")
chmod 755 "$GALERA"
GALERA_NODES=0
on_exit galera__stop_all

galera__alive() {
	servers__alive "$GALERA/n$1/pid"
}

galera__stop_all() {
	local i
	for ((i = 1; i <= GALERA_NODES; i++)); do
		galera__signal "$i" KILL
	done
	rm -rf "$GALERA"
}

# galera__signal I SIG: signals node I and waits until it is gone (SIGKILL after 60 s).
galera__signal() {
	local pid n
	pid=$(cat "$GALERA/n$1/pid" 2>/dev/null) || return 0
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -s "$2" "$pid" 2>/dev/null || true
		for ((n = 0; n < 600; n++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -s KILL "$pid" 2>/dev/null || true
			while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		fi
	fi
	rm -f "$GALERA/n$1/pid"
}

# The cluster address: every node's group port.
galera__members() {
	local i list=
	for ((i = 1; i <= GALERA_NODES; i++)); do
		list+=${list:+,}127.0.0.1:$(cat "$GALERA/n$i/group.port")
	done
	echo "$list"
}

# galera__args I: the command line of node I.
galera__args() {
	local i=$1 d=$GALERA/n$1 provider_options
	provider_options="gmcast.listen_addr=tcp://127.0.0.1:$(cat "$d/group.port")"
	provider_options+=";ist.recv_addr=127.0.0.1:$(cat "$d/ist.port");gcache.size=128M"
	galera__argv=(mariadbd --no-defaults --user=mysql --datadir="$d/data"
		--socket="$d/run/mysql.sock" --pid-file="$d/run/mariadbd.pid"
		--port="$(cat "$d/client.port")" --bind-address=127.0.0.1 --skip-name-resolve
		--tmpdir="$d/tmp" --log-error="$d/error.log" --innodb-buffer-pool-size=64M
		--innodb-log-file-size=32M --innodb-flush-log-at-trx-commit=2
		--max-connections=100 --character-set-server=utf8mb4 --binlog-format=ROW
		--innodb-autoinc-lock-mode=2 --wsrep-on=ON --wsrep-provider="$GALERA_PROVIDER"
		--wsrep-cluster-name=relaywatch-test
		--wsrep-cluster-address="gcomm://$(galera__members)" --wsrep-node-name="node$i"
		--wsrep-node-address="127.0.0.1:$(cat "$d/group.port")"
		--wsrep-provider-options="$provider_options"
		--wsrep-sst-receive-address="127.0.0.1:$(cat "$d/sst.port")"
		--wsrep-sst-method=rsync)
}

# galera__launch I [--wsrep-new-cluster]
galera__launch() {
	local d=$GALERA/n$1 galera__argv
	galera__args "$1"
	"${galera__argv[@]}" "${@:2}" </dev/null >>"$d/error.log" 2>&1 &
	echo $! >"$d/pid"
	disown $!
}

galera_ready() {
	galera__alive "$1" || return 1
	[[ $(mariadb --defaults-file="$GALERA/n$1/root.cnf" -N -B -e \
		"SHOW STATUS LIKE 'wsrep_ready'" 2>/dev/null | cut -f2) == ON ]]
}

galera_size() {
	mariadb --defaults-file="$GALERA/n$1/root.cnf" -N -B -e \
		"SHOW STATUS LIKE 'wsrep_cluster_size'" | cut -f2
}

# galera__wait I: until node I is ready (0), or it died (1), or 180 s (a hang, not a time
# assertion: the test fails).
galera__wait() {
	local i=$1 n
	for ((n = 0; n < 1800; n++)); do
		if galera_ready "$i"; then
			return 0
		fi
		if ! galera__alive "$i"; then
			return 1
		fi
		sleep 0.1
	done
	tail -n 30 "$GALERA/n$i/error.log" >&2
	die "Galera node $i was not ready within 180 s"
}

galera__ports() {
	local p
	for p in client group ist sst; do
		free_port >"$GALERA/n$1/$p.port"
	done
}

# galera__first_start I [ARGS]: starts node I for the first time. A port chosen free may have been
# taken before the node bound it: then the node starts again on other ports (five tries).
galera__first_start() {
	local i=$1 try
	for ((try = 0; try < 5; try++)); do
		galera__launch "$@"
		if galera__wait "$i"; then
			return 0
		fi
		grep -q 'Address already in use' "$GALERA/n$i/error.log" || break
		galera__ports "$i"
	done
	tail -n 30 "$GALERA/n$i/error.log" >&2
	die "Galera node $i died while starting (log above)"
}

galera_start() {
	local count=$1 i d password try
	((count >= 1 && count <= 9)) || die "galera_start: 1 to 9 nodes"
	GALERA_NODES=$count
	for ((i = 1; i <= count; i++)); do
		d=$GALERA/n$i
		mkdir -p "$d/data" "$d/run" "$d/tmp"
		galera__ports "$i"
		printf '[client]\nuser=root\nsocket=%s\n' "$d/run/mysql.sock" >"$d/root.cnf"
		chmod 600 "$d/root.cnf"
	done
	# Twice at most: MariaDB 10.11's bootstrap has been seen to crash (SIGSEGV in Aria) once
	# in a while on this shared machine, with nothing wrong on our side.
	for try in 1 2; do
		rm -rf "$GALERA/n1/data"
		mkdir -p "$GALERA/n1/data"
		if mariadb-install-db --no-defaults --user=mysql --datadir="$GALERA/n1/data" \
			--auth-root-authentication-method=normal --skip-test-db \
			--skip-name-resolve \
			</dev/null >"$GALERA/install-db.log" 2>&1; then
			break
		fi
		((try < 2)) ||
			{ cat "$GALERA/install-db.log" >&2; die "mariadb-install-db failed"; }
	done
	chown -R mysql:mysql "$GALERA"/n*
	chown root:root "$GALERA"/n*/root.cnf
	galera__first_start 1 --wsrep-new-cluster
	# The joiners start one after the other: two state transfers at once from one donor would
	# only queue.
	for ((i = 2; i <= count; i++)); do
		galera__first_start "$i"
	done
	[[ $(galera_size 1) == "$count" ]] || die "cluster size $(galera_size 1), not $count"
	password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	# Account statements replicate (TOI) like the DDL: made once, on node 1.
	galera_root 1 "CREATE DATABASE relaywatch;
		CREATE USER 'relaywatch'@'localhost' IDENTIFIED BY '$password';
		GRANT ALL ON relaywatch.* TO 'relaywatch'@'localhost'" ||
		die "cannot create the relaywatch account"
	for ((i = 1; i <= count; i++)); do
		d=$GALERA/n$i
		# Every node applies the account before a client may use it there (the write sets
		# of other nodes are applied after they commit; the read waits for that).
		[[ $(galera_root "$i" "SELECT COUNT(*) FROM mysql.global_priv
			WHERE User = 'relaywatch'") == 1 ]] ||
			die "node $i has no relaywatch account"
		(
			umask 077
			printf '[client]\nuser=relaywatch\npassword=%s\nsocket=%s\n%s\n' \
				"$password" "$d/run/mysql.sock" database=relaywatch >"$d/my.cnf"
		)
	done
}

galera_mycnf() {
	echo "$GALERA/n$1/my.cnf"
}

galera_root() {
	mariadb --defaults-file="$GALERA/n$1/root.cnf" -N -B \
		--init-command="SET SESSION wsrep_sync_wait = 1" -e "$2"
}

galera_kill() {
	galera__signal "$1" KILL
}

galera_stop() {
	galera__signal "$1" TERM
}

# galera__evicted N: until every running node counts only the running ones, so that none still
# holds the instance of node N that was killed. A node that comes back before that can be
# partitioned away again while it catches up (seen under load: it then leaves and exits).
galera__evicted() {
	local n=$1 k i live=() ok
	for ((k = 1; k <= GALERA_NODES; k++)); do
		if ((k != n)) && galera__alive "$k"; then
			live+=("$k")
		fi
	done
	for ((i = 0; i < 600; i++)); do
		ok=true
		for k in "${live[@]}"; do
			[[ $(galera_size "$k" 2>/dev/null) == "${#live[@]}" ]] || ok=false
		done
		$ok && return 0
		sleep 0.1
	done
	die "the running nodes still count node $n after 60 s"
}

galera_restart() {
	galera__alive "$1" && die "galera_restart: node $1 is still running"
	local d=$GALERA/n$1 galera__argv pos=
	galera__evicted "$1"
	echo "--- restart" >>"$d/error.log"
	# A node that crashed left no position in grastate.dat (seqno -1): without one it would ask
	# for a whole copy (SST). What the init scripts do (galera_recovery): read the position
	# InnoDB committed, and start from it, so that the donor sends only what was missed (IST).
	if grep -q '^seqno: *-1' "$d/data/grastate.dat" 2>/dev/null; then
		galera__args "$1"
		"${galera__argv[@]}" --wsrep-recover --log-error="$d/recover.log" </dev/null \
			>/dev/null 2>&1 || true
		pos=$(sed -n 's/.*WSREP: Recovered position: *\([-0-9a-f]*:[-0-9]*\).*/\1/p' \
			"$d/recover.log" | tail -n 1)
	fi
	galera__launch "$1" ${pos:+"--wsrep-start-position=$pos"}
	if ! galera__wait "$1"; then
		tail -n 30 "$d/error.log" >&2
		die "Galera node $1 died while restarting (log above)"
	fi
}

galera_transfer() {
	local log
	log=$(sed -n '/^--- restart/,$p' "$GALERA/n$1/error.log")
	[[ -n $log ]] || log=$(cat "$GALERA/n$1/error.log")
	# MariaDB runs the SST script for an IST too ("rsync IST completed"); only a whole copy says
	# "rsync SST completed".
	if grep -q 'rsync SST completed' <<<"$log"; then
		echo SST
	elif grep -q 'Receiving IST: [0-9]* writesets' <<<"$log"; then
		echo IST
	else
		echo none
	fi
}

# Like lib.sh's dump_views, against node I and after that node caught up with the cluster.
galera_dump() {
	local i=$1 dir=$2
	(
		MYCNF=$GALERA/n$i/root.cnf
		db_query() {
			mariadb --defaults-file="$MYCNF" -N -B -D relaywatch \
				--init-command="SET SESSION wsrep_sync_wait = 1" -e "$1"
		}
		dump_views "$dir"
	)
}
