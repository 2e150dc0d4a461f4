#!/usr/bin/env bash
# The Debian packages on this machine, as CI runs the suite (root, a throwaway machine):
#   1. scripts/package builds relaywatch-ship and relaywatch-ingest (dpkg-buildpackage -b) and
#      runs lintian, which must report no error and no warning;
#   2. each package holds its own side's programs, man pages, examples and units;
#   3. `apt-get install ./relaywatch-…deb` makes the user, the group and the directories common
#      to all mail servers with their modes, installs the units but enables and starts none, and
#      systemd-analyze verify accepts them;
#   4. the installed relaywatch-add-mailserver gives one mail server (deb1.example.org) its
#      account rw-deb1, chroot, drop directory and keys file, again without change, and refuses
#      unsafe names, another host's account and unusable keys;
#   5. ship → run with the installed programs and that account: the shipper (root, state in
#      /var/lib/relaywatch) uploads over SFTP as rw-deb1, chrooted and keyed by the Match block of
#      scripts/sshd_config.example, into /srv/relaywatch/rw-deb1/incoming; the ingester runs as
#      user relaywatch with the `incoming = … host=…` line the command printed, into the private
#      MariaDB, and counts exactly the generator's lines;
#   6. remove keeps the state, purge deletes it and every file of the packages, and leaves what
#      Debian keeps: the system users (relaywatch, and rw-deb1 that the admin command made) and
#      group, each mail server's drop directory with its data and its keys, the database.
# The packages, users and directories are the machine's: a lock serialises this test between
# suites that run at once, and it refuses to start where relaywatch is already set up (unless
# an earlier run of this test left it, which it then cleans up).
. "$(dirname "$0")/lib.sh"
need_env RW_SRC RW_MYCNF RW_MYSQL_PORT
. "$(dirname "$0")/lib_ship.sh"
((EUID == 0)) || die "needs root: it installs packages"

packages=(relaywatch-ship relaywatch-ingest)
accounts=(rw-deb1 relaywatch)
paths=(/etc/relaywatch /var/lib/relaywatch /var/lib/relaywatch-report /srv/relaywatch
	/etc/ssh/relaywatch)
lockdir=/run/lock
[[ -d $lockdir ]] || lockdir=/tmp
# Present while this test owns the machine's relaywatch setup: a run that was killed left it.
marker=$lockdir/relaywatch-it-debian.owned

exec 9>"$lockdir/relaywatch-it-debian.lock"
flock 9

apt_quiet() {
	DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Lock::Timeout=600 "$@" </dev/null \
		>"$T/apt.log" 2>&1 || die "apt-get $*: $(tail -n 20 "$T/apt.log")"
}

status_of() {
	dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null || true
}

# known PACKAGE: dpkg has it, installed or as config files that a purge would remove.
known() {
	case $(status_of "$1") in
	'' | not-installed) return 1 ;;
	esac
}

# Everything this test makes on the machine, gone again.
machine_clean() {
	local p a
	for p in "${packages[@]}"; do
		if known "$p"; then
			apt_quiet purge "$p"
		fi
	done
	for a in "${accounts[@]}" rw-deb2; do
		if getent passwd "$a" >/dev/null; then
			deluser --system --quiet "$a" >/dev/null 2>&1
		fi
	done
	if getent group relaywatch >/dev/null; then
		delgroup --system --quiet relaywatch >/dev/null 2>&1
	fi
	rm -rf "${paths[@]}"
	rm -f "$marker"
}

if [[ -e $marker ]]; then
	echo "it_debian: cleaning up what a killed run of this test left"
	machine_clean
fi
for p in "${packages[@]}"; do
	! known "$p" || die "$p is installed on this machine: not touching it"
done
for a in "${accounts[@]}" rw-deb2; do
	! getent passwd "$a" >/dev/null || die "user $a exists on this machine: not touching it"
done
! getent group relaywatch >/dev/null || die "group relaywatch exists on this machine"
for d in "${paths[@]}"; do
	[[ ! -e $d ]] || die "$d exists on this machine: not touching it"
done
: >"$marker"
on_exit machine_clean

# 1. Build and lintian. nocheck: the unit tests are part of this suite already.
debs=$T/deb
DEB_BUILD_OPTIONS=nocheck "$RW_SRC/scripts/package" "$debs" >"$T/package.log" 2>&1 ||
	die "scripts/package failed: $(tail -n 30 "$T/package.log")"
grep -q '^package: lintian clean$' "$T/package.log" || die "lintian did not run"
! grep -E '^[EW]: ' "$debs/lintian.txt" || die "lintian reports errors or warnings"
version=$(dpkg-parsechangelog -l "$RW_SRC/debian/changelog" -S Version)
deb_of() {
	echo "${1}_${version}_$(dpkg --print-architecture).deb"
}
for p in "${packages[@]}"; do
	deb=$debs/$(deb_of "$p")
	[[ -f $deb ]] || die "scripts/package made no $(basename "$deb")"
	dpkg-deb -c "$deb" | awk '{ print substr($6, 2) }' >"$T/$p.contents"
done

# 2. Each side's files in its own package, as the source tree has them.
in_deb() { # PACKAGE PATH
	grep -qx -- "$2" "$T/$1.contents" || die "$1: does not contain $2"
}
for p in "${packages[@]}"; do
	in_deb "$p" "/usr/bin/$p"
	in_deb "$p" "/usr/share/doc/$p/copyright"
done
for src in "$RW_SRC"/man/*.scd; do
	page=$(basename "$src" .scd)
	case $page in
	relaywatch-ship*) in_deb relaywatch-ship "/usr/share/man/man${page##*.}/$page.gz" ;;
	relaywatch-ingest* | relaywatch-add-mailserver*)
		in_deb relaywatch-ingest "/usr/share/man/man${page##*.}/$page.gz"
		;;
	*) die "man/$page.scd: neither side's page" ;;
	esac
done
in_deb relaywatch-ship /usr/share/doc/relaywatch-ship/examples/ship.conf.example
in_deb relaywatch-ingest /usr/share/doc/relaywatch-ingest/examples/ingest.conf.example
in_deb relaywatch-ingest /usr/share/doc/relaywatch-ingest/examples/sshd_config.example
in_deb relaywatch-ingest /usr/share/doc/relaywatch-ingest/examples/alert-mail.example
in_deb relaywatch-ingest /usr/sbin/relaywatch-add-mailserver
units=()
for src in "$RW_SRC"/scripts/systemd/*.service.in "$RW_SRC"/scripts/systemd/*.timer; do
	u=$(basename "$src" .in)
	units+=("$u")
	case $u in
	relaywatch-ship*) in_deb relaywatch-ship "/lib/systemd/system/$u" ;;
	relaywatch-ingest*) in_deb relaywatch-ingest "/lib/systemd/system/$u" ;;
	*) die "scripts/systemd/$u: neither side's unit" ;;
	esac
done
! grep -q '^/etc/relaywatch\|^/etc/ssh\|^/srv\|^/var' "$T"/*.contents ||
	die "a package ships files in /etc/relaywatch, /etc/ssh, /srv or /var:" \
		"the postinst makes those"

# 3. Install, then look at what the maintainer scripts made. First a mail server: the shipper
# alone makes no account and keeps /etc/relaywatch to root.
mode_is() { # PATH OWNER:GROUP:MODE
	local got
	got=$(stat -c %U:%G:%a "$1") || die "$1 is missing"
	[[ $got == "$2" ]] || die "$1 is $got, expected $2"
}
(cd "$debs" && apt_quiet install "./$(deb_of relaywatch-ship)")
mode_is /var/lib/relaywatch root:root:700
mode_is /etc/relaywatch root:root:700
for a in "${accounts[@]}"; do
	! getent passwd "$a" >/dev/null || die "relaywatch-ship made the user $a"
done
[[ ! -e /srv/relaywatch ]] || die "relaywatch-ship made /srv/relaywatch"

# Then the same host becomes the stats server too.
(cd "$debs" && apt_quiet install "./$(deb_of relaywatch-ingest)")
for p in "${packages[@]}"; do
	[[ $(status_of "$p") == installed ]] || die "$p: not installed: $(status_of "$p")"
	"/usr/bin/$p" --version | grep -q "^$p $version" || die "/usr/bin/$p --version"
done
for p in "${packages[@]}"; do
	dpkg-query -L "$p" >"$T/$p.files"
	while read -r f; do
		[[ -e $f ]] || die "$p: $f is not on disk"
	done <"$T/$p.files"
done
mode_is /var/lib/relaywatch root:root:700
mode_is /etc/relaywatch root:relaywatch:710
mode_is /srv/relaywatch root:root:755
mode_is /etc/ssh/relaywatch root:root:755
! find /srv/relaywatch /etc/ssh/relaywatch -mindepth 1 | grep . ||
	die "the package made a mail server's part (above)"
! getent passwd rw-deb1 >/dev/null || die "the package made the user rw-deb1"

# An upgrade (here a reinstall) keeps what the admin changed.
chmod 0750 /etc/relaywatch
(cd "$debs" && apt_quiet install --reinstall "./$(deb_of relaywatch-ingest)" \
	"./$(deb_of relaywatch-ship)")
mode_is /etc/relaywatch root:relaywatch:750
chmod 0710 /etc/relaywatch

account_is() { # USER HOME SHELL
	local uid gid home shell
	IFS=: read -r _ _ uid gid _ home shell < <(getent passwd "$1") || die "no user $1"
	((uid < 1000)) || die "$1 is not a system user (uid $uid)"
	[[ $(getent group "$gid" | cut -d: -f1) == relaywatch ]] ||
		die "$1: group is not relaywatch"
	[[ $home == "$2" && $shell == "$3" ]] || die "$1: home $home, shell $shell"
}
gid=$(getent group relaywatch | cut -d: -f3) || die "no group relaywatch"
((gid < 1000)) || die "group relaywatch is not a system group (gid $gid)"
account_is relaywatch /nonexistent /usr/sbin/nologin

# Installed, not enabled, not started.
! find /etc/systemd/system -name 'relaywatch*' | grep . ||
	die "units were enabled (above)"
if [[ -d /run/systemd/system ]]; then
	for u in "${units[@]}"; do
		[[ $(systemctl is-active "$u" || true) == inactive ]] || die "$u was started"
	done
fi
(cd /lib/systemd/system && systemd-analyze verify --man=no "${units[@]}") >"$T/verify" 2>&1 ||
	die "systemd-analyze verify: $(cat "$T/verify")"

# 4. One mail server, as README step 1 says: the admin command, then the Match block once.
add=/usr/sbin/relaywatch-add-mailserver
drop=/srv/relaywatch/rw-deb1/incoming
"$add" deb1.example.org "$RW_SSH_KEY.pub" >"$T/add.out" 2>"$T/add.err" ||
	die "relaywatch-add-mailserver failed: $(cat "$T/add.err")"
[[ $(cat "$T/add.out") == "incoming = $drop host=deb1.example.org" ]] ||
	die "relaywatch-add-mailserver printed: $(cat "$T/add.out")"
account_is rw-deb1 /incoming /usr/sbin/nologin
# '*': no password, yet not locked ('!'), which an sshd without PAM would refuse.
[[ $(getent shadow rw-deb1 | cut -d: -f2) == '*' ]] || die "rw-deb1: password field is not '*'"
[[ ! -e /incoming ]] || die "a home directory was created"
mode_is /srv/relaywatch/rw-deb1 root:root:755
mode_is "$drop" rw-deb1:relaywatch:2770
mode_is /etc/ssh/relaywatch/rw-deb1.keys root:root:644
cmp -s "$RW_SSH_KEY.pub" /etc/ssh/relaywatch/rw-deb1.keys || die "rw-deb1.keys is not the key given"
# Again: the same line, nothing made or rewritten.
"$add" deb1.example.org "$RW_SSH_KEY.pub" >"$T/add2.out" 2>"$T/add2.err" ||
	die "relaywatch-add-mailserver failed the second time: $(cat "$T/add2.err")"
cmp -s "$T/add.out" "$T/add2.out" || die "the second run printed: $(cat "$T/add2.out")"
! grep -E 'created|wrote' "$T/add2.err" || die "the second run changed something (above)"
# Refused, making nothing: names unsafe in paths and configs, another host whose first label is
# the same, an account outside the Match block, an RSA key, a private key.
sed 's/^ssh-ed25519 /ssh-rsa /' "$RW_SSH_KEY.pub" >"$T/rsa.pub"
find /srv/relaywatch /etc/ssh/relaywatch -printf '%p %u %g %m %s\n' | sort >"$T/tree.before"
refused() { # ARGS...
	local rc=0
	"$add" "$@" >"$T/refused.out" 2>&1 || rc=$?
	((rc == 1)) || die "relaywatch-add-mailserver $* exited $rc: $(cat "$T/refused.out")"
}
for h in ../etc 'deb1.example.org;id' 'deb1 x' '' .deb1 deb1..example.org 'deb1/x' -deb1 \
	"$(printf 'deb1\nx')"; do
	refused -- "$h" "$RW_SSH_KEY.pub"
done
refused deb1.example.net "$RW_SSH_KEY.pub"
grep -q "not deb1.example.net's" "$T/refused.out" ||
	die "refused for another reason: $(cat "$T/refused.out")"
refused -a root deb2.example.org "$RW_SSH_KEY.pub"
refused -a rw-../deb2 deb2.example.org "$RW_SSH_KEY.pub"
refused deb2.example.org "$T/rsa.pub"
refused deb2.example.org "$RW_SSH_KEY"
! getent passwd rw-deb2 >/dev/null || die "a refused call made the user rw-deb2"
find /srv/relaywatch /etc/ssh/relaywatch -printf '%p %u %g %m %s\n' | sort >"$T/tree.after"
cmp -s "$T/tree.before" "$T/tree.after" ||
	die "a refused call changed something: $(diff "$T/tree.before" "$T/tree.after")"

# 5. ship → run. The README's stats-server sshd block as it is, on a private copy of the test
# sshd: the chroot and keys file are the ones relaywatch-add-mailserver made.
own_sshd_prepare
sed -n '/^Match User rw-\*/,$p' "$RW_SRC/scripts/sshd_config.example" >>"$OWN/sshd_config"
grep -q 'AuthorizedKeysFile /etc/ssh/relaywatch/%u.keys' "$OWN/sshd_config" ||
	die "sshd_config.example has no Match User rw-* block"
own_sshd_start

gen --lines 20000 --seed 1301 --format syslog --host deb1.example.org --service smtp --malformed 5 \
	--start 1390973534 --out "$LOGS/maillog" --expect "$T/want"
(
	umask 077
	cat >"$T/ship.conf" <<-EOF
		host = 127.0.0.1
		port = $OWN_PORT
		user = rw-deb1
		identity = $RW_SSH_KEY
		known_hosts = $OWN/known_hosts
		remote_dir = /incoming
		hostname = deb1.example.org
		timeout = 20
		source = $LOGS/maillog syslog
	EOF
)
/usr/bin/relaywatch-ship -c "$T/ship.conf" --quiet >"$T/out" 2>&1 ||
	die "relaywatch-ship failed: $(cat "$T/out") $(tail -n 5 "$OWN/sshd.log")"
[[ ! -s $T/out ]] || die "relaywatch-ship was not silent: $(cat "$T/out")"
[[ -n $(ls -A /var/lib/relaywatch) ]] || die "the shipper kept no state in /var/lib/relaywatch"
n=0
for f in "$drop"/*; do
	mode_is "$f" rw-deb1:relaywatch:640
	n=$((n + 1))
done
((n >= 2)) || die "nothing arrived in $drop"

# The ingester as the package's user, with its config readable by that user only.
db_fresh debian
cfg=$(mktemp -d "${TMPDIR:-/tmp}/rw-debian-cfg.XXXXXX")
on_exit "rm -rf '$cfg'"
# TCP: the private server's socket is in a directory only root can enter.
{
	echo '[client]'
	grep -E '^(user|password)[[:space:]]*=' "$RW_MYCNF"
	printf 'host=127.0.0.1\nport=%s\ndatabase=%s\n' "$RW_MYSQL_PORT" "$DB_NAME"
} >"$cfg/my.cnf"
printf 'defaults_file = %s\n%s\narchive = yes\n' "$cfg/my.cnf" "$(cat "$T/add.out")" \
	>"$cfg/ingest.conf"
chmod 600 "$cfg"/*
chown -R relaywatch:relaywatch "$cfg"
chmod 700 "$cfg"
as_ingester() {
	runuser -u relaywatch -- /usr/bin/relaywatch-ingest "$@" -c "$cfg/ingest.conf" \
		>"$T/out" 2>&1 || die "relaywatch-ingest $* (as relaywatch): $(cat "$T/out")"
}
as_ingester migrate
as_ingester run --quiet
quiet_but_malformed "$T/out"
dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "the installed ship → run did not count the generator's lines"
[[ -z $(find "$drop" -maxdepth 1 -type f) ]] || die "chunks were left waiting"
archived=$(find "$drop/archive" -type f | wc -l)
((archived == n)) || die "$archived files archived, $n arrived"
own_sshd_stop

# 6. Remove keeps the shipper's state, purge deletes it; neither touches the database or the
# chunks.
db_snapshot "$T/db.before"
apt_quiet remove "${packages[@]}"
for p in "${packages[@]}"; do
	[[ ! -e /usr/bin/$p ]] || die "remove left /usr/bin/$p"
done
[[ -n $(ls -A /var/lib/relaywatch) ]] || die "remove deleted the shipper's state"
apt_quiet purge "${packages[@]}"
for p in "${packages[@]}"; do
	! known "$p" || die "$p is still known to dpkg after purge: $(status_of "$p")"
	while read -r f; do
		[[ -d $f || ! -e $f ]] || die "purge left $f"
	done <"$T/$p.files"
	[[ ! -e /usr/share/doc/$p ]] || die "purge left /usr/share/doc/$p"
done
for d in /var/lib/relaywatch /var/lib/relaywatch-report /etc/relaywatch; do
	[[ ! -e $d ]] || die "purge left $d"
done
! find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
	-name '*relaywatch*' 2>/dev/null | grep . || die "purge left systemd state (above)"
# What stays: the accounts, the package's and the one relaywatch-add-mailserver made (files they
# own may remain), the mail server's drop directory with its data and its keys, the database.
for a in "${accounts[@]}"; do
	getent passwd "$a" >/dev/null || die "purge deleted the system user $a"
done
getent group relaywatch >/dev/null || die "purge deleted the group relaywatch"
cmp -s "$RW_SSH_KEY.pub" /etc/ssh/relaywatch/rw-deb1.keys || die "purge touched rw-deb1.keys"
left=$(find "$drop/archive" -type f | wc -l)
((left == archived)) || die "purge touched the drop directory's data ($left of $archived left)"
db_snapshot "$T/db.after"
cmp -s "$T/db.before" "$T/db.after" || die "purge changed the database"

echo "debian: 2 packages built lintian-clean, installed, ${#units[@]} units verified," \
	"a mail server added, $n files shipped and counted, removed and purged"
