#!/usr/bin/env bash
# `meson install` into a DESTDIR: both programs (and they run), relaywatch-add-mailserver, every
# man page of man/*.scd as roff, the example configs unchanged, and a service and a timer per
# scheduled command whose ExecStart names the installed program; systemd-analyze verify accepts
# the units when it is there. --no-rebuild: the shared build directory is not touched while
# other tests use it.
. "$(dirname "$0")/lib.sh"
need_env RW_BUILD RW_SRC

root=$T/root
meson install -C "$RW_BUILD" --no-rebuild --quiet --destdir "$root" >"$T/install.log" 2>&1 ||
	die "meson install failed: $(tail -n 5 "$T/install.log")"

# The directories this build installs into, as meson resolves them.
eval "$(meson introspect --buildoptions "$RW_BUILD" | python3 -c '
import json, shlex, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
for k in ("prefix", "bindir", "sbindir", "mandir", "datadir", "systemdunitdir"):
    print("%s=%s" % (k, shlex.quote(str(o.get(k, "")))))
')"
[[ -n $prefix ]] || die "meson introspect gave no prefix"
for v in bindir sbindir mandir datadir; do
	[[ ${!v} == /* ]] || printf -v "$v" '%s/%s' "$prefix" "${!v}"
done
[[ -n $systemdunitdir ]] || systemdunitdir=$prefix/lib/systemd/system
[[ $systemdunitdir == /* ]] || systemdunitdir=$prefix/$systemdunitdir

want_file() {
	[[ -f $root$1 && -s $root$1 ]] || die "not installed (or empty): $1"
}

# The programs, runnable from where they were installed.
for p in relaywatch-ship relaywatch-ingest; do
	want_file "$bindir/$p"
	[[ -x $root$bindir/$p ]] || die "not executable: $bindir/$p"
	"$root$bindir/$p" --version | grep -q "^$p [0-9]" || die "$bindir/$p --version"
done

# The stats server's admin command, a POSIX sh script: it runs, and refuses an unsafe host name
# before it touches anything (so this needs no root).
add=$sbindir/relaywatch-add-mailserver
want_file "$add"
[[ -x $root$add ]] || die "not executable: $add"
"$root$add" --help | grep -q '^usage: relaywatch-add-mailserver ' || die "$add --help"
rc=0
"$root$add" 'mail1/../x' /dev/null >"$T/add.out" 2>&1 || rc=$?
if ((rc != 1)) || ! grep -q 'not a host name' "$T/add.out"; then
	die "$add took an unsafe host name (exit $rc): $(cat "$T/add.out")"
fi

# Every man page of the source tree, rendered: roff starts with a comment or .TH and has a .TH.
npages=0
for src in "$RW_SRC"/man/*.scd; do
	page=$(basename "$src" .scd)
	f=$mandir/man${page##*.}/$page
	want_file "$f"
	head -n 1 "$root$f" | grep -q -e '^\.TH' -e '^\.\\"' ||
		die "$f: not roff: $(head -n 1 "$root$f")"
	grep -q '^\.TH' "$root$f" || die "$f: no .TH line"
	npages=$((npages + 1))
done
for page in relaywatch-ship.1 relaywatch-ingest.1 relaywatch-ship.conf.5 relaywatch-ingest.conf.5 \
	relaywatch-ingest-report.1 relaywatch-ingest-check.1 relaywatch-ingest-purge.1 \
	relaywatch-add-mailserver.8; do
	want_file "$mandir/man${page##*.}/$page"
done

# The example configs, byte for byte.
for src in "$RW_SRC"/scripts/*.example; do
	f=$datadir/doc/relaywatch/examples/$(basename "$src")
	want_file "$f"
	cmp -s "$src" "$root$f" || die "$f differs from scripts/$(basename "$src")"
done

# The ingester's example, every commented check_ key switched on, is a valid config: check then
# gets past it to the database, which is not there.
printf '[client]\nsocket = %s\n' "$T/no-server.sock" >"$T/no-server.cnf"
chmod 600 "$T/no-server.cnf"
{
	grep -v '^#' "$RW_SRC/scripts/ingest.conf.example"
	sed -n 's/^#\(check_[a-z_]* = \)/\1/p' "$RW_SRC/scripts/ingest.conf.example"
} >"$T/ingest.conf"
chmod 600 "$T/ingest.conf"
(($(grep -c '^check_' "$T/ingest.conf") >= 17)) ||
	die "ingest.conf.example lists too few check_ keys"
"$root$bindir/relaywatch-ingest" check -c "$T/ingest.conf" --defaults-file="$T/no-server.cnf" \
	>"$T/check.out" 2>"$T/check.err" || true
grep -q 'database unreachable' "$T/check.out" ||
	die "ingest.conf.example is refused: $(cat "$T/check.out" "$T/check.err")"

# The units: ExecStart names the installed program, nothing is left unsubstituted.
units=(relaywatch-ship relaywatch-ingest-run relaywatch-ingest-check relaywatch-ingest-notify
	relaywatch-ingest-report relaywatch-ingest-purge)
for u in "${units[@]}"; do
	s=$systemdunitdir/$u.service
	want_file "$s"
	want_file "$systemdunitdir/$u.timer"
	! grep -n '@[a-z_]*@' "$root$s" || die "$s: unsubstituted variable"
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$root$s")
	[[ $exe == "$bindir"/relaywatch-* && -x $root$exe ]] || die "$s: ExecStart=$exe"
	grep -q '^Type=oneshot$' "$root$s" || die "$s: not Type=oneshot"
	grep -q '^OnCalendar=' "$root$systemdunitdir/$u.timer" || die "$u.timer: no OnCalendar="
	grep -q '^WantedBy=timers.target$' "$root$systemdunitdir/$u.timer" ||
		die "$u.timer: not wanted by timers.target"
done
grep -q -- '--quiet' "$root$systemdunitdir/relaywatch-ingest-check.service" ||
	die "the check unit must run check --quiet"
grep -q -- 'check --new$' "$root$systemdunitdir/relaywatch-ingest-notify.service" ||
	die "the notify unit must run check --new"
grep -q '^OnCalendar=\*:2/5$' "$root$systemdunitdir/relaywatch-ingest-notify.timer" ||
	die "the notify timer must run every five minutes with the ingest run"

# systemd's own opinion, with ExecStart pointed into the DESTDIR so the programs are found.
if command -v systemd-analyze >/dev/null; then
	mkdir "$T/units"
	for u in "${units[@]}"; do
		sed "s|^ExecStart=$bindir/|ExecStart=$root$bindir/|" \
			"$root$systemdunitdir/$u.service" \
			>"$T/units/$u.service"
		cp "$root$systemdunitdir/$u.timer" "$T/units/"
	done
	(cd "$T/units" && systemd-analyze verify --man=no ./*.service ./*.timer) \
		>"$T/verify" 2>&1 ||
		die "systemd-analyze verify: $(cat "$T/verify")"
else
	echo "it_install: systemd-analyze not found, units not verified by systemd"
fi

echo "installed: 2 programs, the admin command, $npages man pages, examples," \
	"${#units[@]} services and timers"
