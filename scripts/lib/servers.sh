# Private MariaDB and OpenSSH servers for the tests and the demo. Source this file (bash).
#
#   servers_start DIR   starts both inside DIR (an empty directory, e.g. from mktemp -d) and
#                       exports the RW_* variables below; prints nothing on success, one line per
#                       problem on stderr and returns non-zero on failure (after cleaning up).
#   servers_stop        stops what servers_start started (only those PIDs) and removes DIR.
#
# For fault tests, from any shell that has RW_SERVERS_DIR in its environment (they reuse the same
# data directory, port and keys):
#   servers_stop_mariadb / servers_kill_mariadb (SIGKILL) / servers_start_mariadb_again /
#   servers_restart_mariadb, and servers_stop_sshd / servers_kill_sshd /
#   servers_start_sshd_again / servers_restart_sshd.
#
# Exported:
#   RW_SERVERS_DIR      DIR
#   RW_MYCNF            option file, [client] user/password/socket/port/database=relaywatch
#   RW_MYROOTCNF        same for the MariaDB root account (for tests that provoke server faults)
#   RW_MYSQL_SOCKET     unix socket path
#   RW_MYSQL_PORT       TCP port on 127.0.0.1
#   RW_SSH_PORT         sshd port on 127.0.0.1
#   RW_SSH_USER         login user (root)
#   RW_SSH_KEY          ed25519 private key (no passphrase) accepted by the sshd
#   RW_SSH_KNOWN_HOSTS  known_hosts with the sshd's host key as [127.0.0.1]:PORT
#   RW_SSH_ROOT         a directory the ssh user can write (drop directories go under it)
#
# Layout of DIR: mysql/ (datadir), mysql.sock, mariadbd.pid, mariadbd.port, mariadbd.log,
# my.cnf, root.cnf, ssh/ (keys, sshd_config, authorized_keys, known_hosts), sshd.pid, sshd.log,
# sftp/, tmp/.

# A TCP port on 127.0.0.1 that nobody listens on right now. The kernel chooses it, so two callers
# do not collide; it may still be taken before we bind it, which the callers handle by retrying.
servers__free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

servers__err() {
	echo "servers: $*" >&2
}

servers__alive() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 1
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# servers__stop_pid PIDFILE SIGNAL: signals the process named in PIDFILE, waits for it to go
# (SIGKILL after 30 s), removes the pidfile. Touches no other process.
servers__stop_pid() {
	local pidfile=$1 sig=${2:-TERM} pid i
	pid=$(cat "$pidfile" 2>/dev/null) || return 0
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -s "$sig" "$pid" 2>/dev/null || true
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			servers__err "pid $pid did not stop on SIG$sig, killing it"
			kill -s KILL "$pid" 2>/dev/null || true
			while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		fi
	fi
	rm -f "$pidfile"
}

servers__mysql_root() {
	mariadb --defaults-file="$RW_SERVERS_DIR/root.cnf" "$@"
}

# Starts mariadbd on the port in DIR/mariadbd.port and waits until it answers.
servers__mariadb_launch() {
	local d=$RW_SERVERS_DIR port i
	port=$(cat "$d/mariadbd.port")
	: >"$d/mariadbd.log"
	mariadbd --no-defaults --user=root \
		--datadir="$d/mysql" --socket="$d/mysql.sock" --pid-file="$d/mysql/mariadbd.pid" \
		--port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
		--tmpdir="$d/tmp" --log-error="$d/mariadbd.log" \
		--innodb-buffer-pool-size=256M --innodb-log-file-size=64M \
		--innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 \
		--max-connections=300 --skip-log-bin --character-set-server=utf8mb4 \
		</dev/null >>"$d/mariadbd.log" 2>&1 &
	echo $! >"$d/mariadbd.pid"
	# Not a job of this shell: no "Killed" notice when a fault test kills it on purpose.
	disown $!
	for ((i = 0; i < 1200; i++)); do
		if ! servers__alive "$d/mariadbd.pid"; then
			rm -f "$d/mariadbd.pid"
			return 1
		fi
		if [[ -S $d/mysql.sock ]] &&
			mariadb-admin --defaults-file="$d/root.cnf" ping >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	servers__err "mariadbd did not answer within 60 s (see $d/mariadbd.log)"
	servers__stop_pid "$d/mariadbd.pid" KILL
	return 1
}

# What each server logs when its port is taken.
servers__mariadb_busy='Address already in use\|Do you already have another'
servers__sshd_busy='Address already in use'

# servers__launch NAME LAUNCH BUSY: runs LAUNCH (which starts NAME on the port in DIR/NAME.port
# and logs to DIR/NAME.log) on a free port; when the port was taken between choosing and binding
# it (BUSY matches in the log), chooses another, five times at most.
servers__launch() {
	local d=$RW_SERVERS_DIR name=$1 launch=$2 busy=$3 try
	for ((try = 0; try < 5; try++)); do
		servers__free_port >"$d/$name.port" || return 1
		if "$launch" && servers__alive "$d/$name.pid"; then
			return 0
		fi
		if ! grep -q "$busy" "$d/$name.log"; then
			tail -n 20 "$d/$name.log" >&2
			servers__err "$name failed to start"
			return 1
		fi
	done
	servers__err "$name: no free port after 5 tries"
	return 1
}

servers__mariadb_start() {
	local d=$RW_SERVERS_DIR password
	mkdir -p "$d/mysql" "$d/tmp"
	if ! mariadb-install-db --no-defaults --user=root --datadir="$d/mysql" \
		--auth-root-authentication-method=normal --skip-test-db \
		--skip-name-resolve </dev/null >"$d/install-db.log" 2>&1; then
		cat "$d/install-db.log" >&2
		servers__err "mariadb-install-db failed"
		return 1
	fi
	cat >"$d/root.cnf" <<-EOF
		[client]
		user=root
		socket=$d/mysql.sock
	EOF
	chmod 600 "$d/root.cnf"
	servers__launch mariadbd servers__mariadb_launch "$servers__mariadb_busy" || return 1
	password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	if ! servers__mysql_root <<-EOF; then
		CREATE DATABASE IF NOT EXISTS relaywatch;
		CREATE USER 'relaywatch'@'localhost' IDENTIFIED BY '$password';
		CREATE USER 'relaywatch'@'127.0.0.1' IDENTIFIED BY '$password';
		GRANT ALL ON \`relaywatch%\`.* TO 'relaywatch'@'localhost';
		GRANT ALL ON \`relaywatch%\`.* TO 'relaywatch'@'127.0.0.1';
	EOF
		servers__err "could not create the relaywatch account"
		return 1
	fi
	(
		umask 077
		cat >"$d/my.cnf" <<-EOF
			[client]
			user=relaywatch
			password=$password
			socket=$d/mysql.sock
			port=$(cat "$d/mariadbd.port")
			database=relaywatch
		EOF
	)
	chmod 600 "$d/my.cnf"
}

# Starts sshd with DIR/ssh/sshd_config on DIR/sshd.port and waits until it sends its banner.
servers__sshd_launch() {
	local d=$RW_SERVERS_DIR port i banner
	port=$(cat "$d/sshd.port")
	sed -i "s/^Port .*/Port $port/" "$d/ssh/sshd_config"
	: >"$d/sshd.log"
	/usr/sbin/sshd -D -f "$d/ssh/sshd_config" -E "$d/sshd.log" \
		</dev/null >>"$d/sshd.log" 2>&1 &
	echo $! >"$d/sshd.pid"
	disown $!
	for ((i = 0; i < 600; i++)); do
		if ! servers__alive "$d/sshd.pid"; then
			rm -f "$d/sshd.pid"
			return 1
		fi
		banner=$(timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"' && head -c 4 <&3' \
			2>/dev/null) || true
		if [[ $banner == SSH- ]]; then
			return 0
		fi
		sleep 0.05
	done
	servers__err "sshd did not answer within 30 s (see $d/sshd.log)"
	servers__stop_pid "$d/sshd.pid" KILL
	return 1
}

servers__sshd_start() {
	local d=$RW_SERVERS_DIR port
	mkdir -p "$d/ssh" "$d/sftp"
	chmod 700 "$d/ssh"
	# sshd refuses to start without its privilege separation directory.
	mkdir -p /run/sshd
	chmod 755 /run/sshd
	ssh-keygen -q -t ed25519 -N '' -C relaywatch-test-host -f "$d/ssh/host_ed25519" </dev/null ||
		return 1
	ssh-keygen -q -t ed25519 -N '' -C relaywatch-test-user -f "$d/ssh/id_ed25519" </dev/null ||
		return 1
	cp "$d/ssh/id_ed25519.pub" "$d/ssh/authorized_keys"
	chmod 600 "$d/ssh/authorized_keys"
	cat >"$d/ssh/sshd_config" <<-EOF
		Port 22
		ListenAddress 127.0.0.1
		HostKey $d/ssh/host_ed25519
		PidFile $d/ssh/sshd-own.pid
		AuthorizedKeysFile $d/ssh/authorized_keys
		PubkeyAuthentication yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		StrictModes no
		PermitRootLogin prohibit-password
		UseDNS no
		X11Forwarding no
		AllowTcpForwarding no
		PrintMotd no
		MaxStartups 100:30:200
		MaxSessions 50
		LoginGraceTime 30
		Subsystem sftp internal-sftp
	EOF
	if ! /usr/sbin/sshd -t -f "$d/ssh/sshd_config" 2>"$d/sshd.log"; then
		cat "$d/sshd.log" >&2
		servers__err "sshd rejects its configuration"
		return 1
	fi
	servers__launch sshd servers__sshd_launch "$servers__sshd_busy" || return 1
	port=$(cat "$d/sshd.port")
	echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/ssh/host_ed25519.pub")" >"$d/ssh/known_hosts"
}

servers__export() {
	local d=$RW_SERVERS_DIR
	export RW_SERVERS_DIR=$d
	export RW_MYCNF=$d/my.cnf
	export RW_MYROOTCNF=$d/root.cnf
	export RW_MYSQL_SOCKET=$d/mysql.sock
	RW_MYSQL_PORT=$(cat "$d/mariadbd.port")
	export RW_MYSQL_PORT
	RW_SSH_PORT=$(cat "$d/sshd.port")
	export RW_SSH_PORT
	export RW_SSH_USER=root
	export RW_SSH_KEY=$d/ssh/id_ed25519
	export RW_SSH_KNOWN_HOSTS=$d/ssh/known_hosts
	export RW_SSH_ROOT=$d/sftp
}

servers_start() {
	local d=${1:?servers_start: DIR missing}
	if [[ ! -d $d ]]; then
		servers__err "$d is not a directory"
		return 1
	fi
	d=$(cd "$d" && pwd)
	export RW_SERVERS_DIR=$d
	if ! servers__mariadb_start || ! servers__sshd_start; then
		servers_stop
		return 1
	fi
	servers__export
}

servers_stop() {
	local d=${RW_SERVERS_DIR:-}
	[[ -n $d && -d $d ]] || return 0
	servers__sshd_down TERM
	servers__stop_pid "$d/mariadbd.pid" TERM
	rm -rf "$d"
	unset RW_SERVERS_DIR RW_MYCNF RW_MYROOTCNF RW_MYSQL_SOCKET RW_MYSQL_PORT RW_SSH_PORT \
		RW_SSH_USER RW_SSH_KEY RW_SSH_KNOWN_HOSTS RW_SSH_ROOT
}

# Fault-test helpers. They need RW_SERVERS_DIR (exported by servers_start).

servers_stop_mariadb() {
	servers__stop_pid "${RW_SERVERS_DIR:?}/mariadbd.pid" TERM
}

servers_kill_mariadb() {
	servers__stop_pid "${RW_SERVERS_DIR:?}/mariadbd.pid" KILL
}

# servers__again NAME LAUNCH BUSY: starts NAME again on the port its clients know. While it was
# down, the port may have been taken (as the local port of an outgoing connection, say): wait for
# it to be free again, 10 s at most.
servers__again() {
	local d=${RW_SERVERS_DIR:?} name=$1 launch=$2 busy=$3 try
	if servers__alive "$d/$name.pid"; then
		return 0
	fi
	for ((try = 0; try < 20; try++)); do
		if "$launch"; then
			return 0
		fi
		grep -q "$busy" "$d/$name.log" || break
		sleep 0.5
	done
	tail -n 20 "$d/$name.log" >&2
	servers__err "$name failed to start again"
	return 1
}

servers_start_mariadb_again() {
	servers__again mariadbd servers__mariadb_launch "$servers__mariadb_busy"
}

servers_restart_mariadb() {
	servers_stop_mariadb && servers_start_mariadb_again
}

# The listener's children serve the open connections; a stopped server must drop those too, or a
# "server went away" test would still be talking to it.
servers__descendants() {
	local child
	for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$child"
		servers__descendants "$child"
	done
}

servers__sshd_down() {
	local pidfile=${RW_SERVERS_DIR:?}/sshd.pid pid sessions
	pid=$(cat "$pidfile" 2>/dev/null) || return 0
	# Listener first, so that it forks no new session while we stop the others.
	sessions=$(servers__descendants "$pid")
	servers__stop_pid "$pidfile" "$1"
	if [[ -n $sessions ]]; then
		# shellcheck disable=SC2086
		kill -s "$1" $sessions 2>/dev/null || true
	fi
}

servers_stop_sshd() {
	servers__sshd_down TERM
}

servers_kill_sshd() {
	servers__sshd_down KILL
}

servers_start_sshd_again() {
	servers__again sshd servers__sshd_launch "$servers__sshd_busy"
}

servers_restart_sshd() {
	servers_stop_sshd && servers_start_sshd_again
}
