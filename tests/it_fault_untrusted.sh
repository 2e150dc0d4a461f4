#!/usr/bin/env bash
# Trust no uploader and no log writer (issue 10), end to end: each attack that got through before
# is tried against the real programs, a real MariaDB and the private sshd, with separate Unix users
# for the drop account, the ingester and the log writer where ownership is the point.
#   1. Unbounded chunks: a gzip bomb declared small, the same bomb declared larger than its file
#      could be, a sparse 1 GiB "gzip" (declared small, and declared as large as it is), a chunk of
#      a million distinct relay keys, and a chunk whose reading killed the ingester twice. Each is
#      quarantined with its reason, the bombs and the sparse file without being read through (the
#      bytes the ingester read and its CPU time are measured, never the wall clock), and the good
#      chunk beside them is counted.
#   2. Open archives: under a setgid drop directory of the drop account's group, work/, archive/
#      and quarantine/ end up 0700, the ingester's, and the drop account can neither list nor read
#      nor append to them; an open archive/ left by an older version is closed; one owned by the
#      drop account is refused. A directory named X.manifest is reported once, not every run.
#   3. Any key speaks for any host: with the drop directory bound to one mail server, a chunk
#      shipped under another host name is quarantined, and lines that name another host in their
#      syslog header are counted under the bound one.
#   4. Symlinked log directories: the log user swaps the multilog directory for a symlink to a
#      root-only one, and a finished multilog file is a hard link to a secret: nothing of either
#      is shipped, and each is warned about once.
#   5. (Ambiguous CHKUSER lines are in tests/fault_hostile.py, through it_fault_hostile.sh.)
#   6. A manifest's mtime of 2^63-1 is refused, not overflowed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF
[[ $(id -u) == 0 ]] ||
	die "needs root: it creates the drop account, the ingester's and the log writer's users"

cases=0

measure() { # OUT CMD...: runs CMD, writes what it cost (tests/measure.py)
	python3 "$RW_SRC/tests/measure.py" "$@"
}

cost() { # FILE KEY
	awk -v k="$2" '$1 == k { print $2 }' "$1"
}

# manifest DIR NAME LENGTH [LINES [MTIME]]: a manifest for DIR/NAME.gz that says what we want it to.
manifest() {
	cat >"$1/.$2.manifest.part" <<MANIFEST
version = 1
chunk = $2.gz
host = mx1
service = smtp
kind = syslog
source = /var/log/maillog
offset = 0
length = $3
lines = ${4:-1}
sha256 = $(printf '%064d' 0)
mtime = ${5:-1390971600}
MANIFEST
	mv "$1/.$2.manifest.part" "$1/$2.manifest"
}

quarantined() { # DIR NAME PATTERN WHAT
	[[ -f $1/quarantine/$2.manifest && -f $1/quarantine/$2.why ]] || die "$4: not quarantined"
	grep -q -- "$3" "$1/quarantine/$2.why" ||
		die "$4: the reason is not '$3': $(cat "$1/quarantine/$2.why")"
}

db_migrated fault_untrusted
gen --lines 3000 --seed 71 --host mx1 --service smtp --out "$T/good" --expect "$T/want" ||
	die "gen failed"

# 1. Unbounded chunks. 2 GiB of zeros as 32 gzip members of 64 MiB: about 2 MB on disk.
head -c 64M /dev/zero | gzip -9 -n >"$T/z64.gz"
for _ in $(seq 32); do cat "$T/z64.gz"; done >"$T/bomb.gz"
bomb_size=$(stat -c %s "$T/bomb.gz")
# NAME LENGTH REASON: a file no gzip of LENGTH bytes can be, one that inflates past LENGTH, a
# sparse file (no blocks, no quota) refused by its size, and one refused by its first bytes.
bounded=(
	"bomb-small 10 more than any gzip of that length"
	"bomb-large 4194304 the chunk has more"
	"sparse-small 10 more than any gzip of that length"
	"sparse-large 1073741824 is not gzip data"
)
for c in "${bounded[@]}"; do
	read -r name length reason <<<"$c"
	in=$T/in-$name
	mkdir -p "$in"
	case $name in
	bomb-*) cp "$T/bomb.gz" "$in/$name.gz" ;;
	sparse-*) truncate -s 1G "$in/$name.gz" ;;
	esac
	manifest "$in" "$name" "$length"
	make_chunk "$in" z-good "$T/good" mx1 smtp
	rc=0
	measure "$T/cost" "$INGEST" run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 ||
		rc=$?
	expect_status 1 "$rc" "$T/out" "run with $name"
	quarantined "$in" "$name" "$reason" "$name"
	[[ -f $in/archive/z-good.manifest ]] ||
		die "$name: the good chunk beside it was not counted"
	rchar=$(cost "$T/cost" rchar)
	cpu=$(cost "$T/cost" cpu_ms)
	echo "$name: the run read $rchar bytes, used $cpu ms of CPU (the bomb is $bomb_size bytes)"
	# Reading through would cost the whole file (1 GiB, or 2 MB of a 2 GiB bomb) and seconds
	# of CPU; a bounded run reads a few hundred kB (the good chunk, the program's own files).
	((rchar < bomb_size / 2)) || die "$name: the run read $rchar bytes: it was read through"
	((cpu < 2000)) || die "$name: the run used $cpu ms of CPU: it was inflated through"
	cases=$((cases + 1))
done
exact "$T/want" "the good chunk, counted once (the same content in every drop directory)"
db_migrated fault_untrusted

# A million distinct relay keys in one chunk (8 MB of gzip): max_keys stops the scan.
in=$T/in-keys
mkdir -p "$in"
python3 - "$T/keys" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(1000000):
        f.write("Jan 29 05:00:00 mx1 smtp: 1390971600.000000 CHKUSER relaying rcpt: from "
                "<s@x.example:u:> remote <h:unknown:10.%d.%d.%d> rcpt <r@d%d.keybomb.example> : "
                "client allowed to relay\n" % (i >> 16, (i >> 8) & 255, i & 255, i))
PY
make_chunk "$in" keys "$T/keys" mx1 smtp
rm -f "$T/keys"
make_chunk "$in" z-good "$T/good" mx1 smtp
rc=0
measure "$T/cost" "$INGEST" run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
expect_status 1 "$rc" "$T/out" "run with a million keys"
quarantined "$in" keys "max_keys" "a million keys"
echo "keys: peak RSS $(cost "$T/cost" maxrss_kb) kB"
[[ $(db_query "SELECT COUNT(*) FROM relay_hourly
	WHERE rcpt_domain LIKE '%.keybomb.example'") == 0 ]] ||
	die "a million keys: some were counted"
exact "$T/want" "the good chunk beside a million keys"
cases=$((cases + 1))

# A pack manifest that lists a file twice: quarantined for that before the chunk is read (the
# bomb behind it would otherwise be refused for its size).
in=$T/in-repeat
mkdir -p "$in"
cp "$T/bomb.gz" "$in/repeat.gz"
manifest "$in" repeat 20
printf 'part = 0123456789abcdef 0 10\npart = 0123456789abcdef 0 10\n' >>"$in/repeat.manifest"
rc=0
"$INGEST" run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
expect_status 1 "$rc" "$T/out" "run with a repeated part"
quarantined "$in" repeat "part 2 repeats part 1" "a repeated part"
cases=$((cases + 1))

# A chunk whose reading gets the ingester killed (SIGKILL in the middle of its scan, as the OOM
# killer would): the next run takes the claim over and is killed again; the one after that
# quarantines it instead of dying on it forever, and drains the rest.
db_migrated fault_untrusted
in=$T/in-killer
mkdir -p "$in"
make_chunk "$in" a-killer "$T/good" mx1 smtp
gen --lines 500 --seed 72 --host mx2 --service smtp --out "$T/good2" --expect "$T/want2" ||
	die "gen failed"
make_chunk "$in" b-good "$T/good2" mx2 smtp
for kill in 1 2; do
	rc=0
	RELAYWATCH_CRASH=scan-block:1 ingest run --defaults-file="$MYCNF" --incoming "$in" \
		>"$T/out" 2>&1 || rc=$?
	expect_status 137 "$rc" "$T/out" "run killed while reading a-killer ($kill)"
done
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
expect_status 1 "$rc" "$T/out" "run after two deaths on one chunk"
quarantined "$in" a-killer "died while reading this chunk twice" "the chunk that killed two runs"
[[ ! -e $in/work/a-killer.takeover ]] || die "the takeover mark stayed in work/"
exact "$T/want2" "the chunk behind the killer"
cases=$((cases + 1))

# 2. Open archives, with the README's layout: the drop account owns the setgid drop directory of
# group G; the ingester is another user, a member of G.
suffix=$$
grp=rwg$suffix drop=rwdrop$suffix ing=rwing$suffix logu=rwlog$suffix
groupadd "$grp" || die "groupadd failed"
on_exit "groupdel $grp"
useradd -M -N -g "$grp" -s /usr/sbin/nologin "$drop" || die "useradd failed"
on_exit "userdel $drop"
useradd -M -U -G "$grp" -s /usr/sbin/nologin "$ing" || die "useradd failed"
on_exit "userdel $ing; groupdel $ing 2>/dev/null"
useradd -M -U -s /usr/sbin/nologin "$logu" || die "useradd failed"
on_exit "userdel $logu; groupdel $logu 2>/dev/null"
as() { # USER CMD...
	local u=$1
	shift
	runuser -u "$u" -- "$@"
}
# What the other users need to reach: $T itself stays closed to listing.
chmod 711 "$T"
u=$T/u
install -d -m 0755 "$u"
install -m 0755 "$INGEST" "$u/relaywatch-ingest"
install -o "$ing" -m 0600 /dev/null "$u/my.cnf"
sed -e '/^socket/d' -e 's/^\[client\]/[client]\nhost=127.0.0.1/' "$MYCNF" >"$u/my.cnf"
in=$u/incoming
install -d -o "$drop" -g "$grp" -m 2770 "$in"
# Its own config (not this machine's /etc/relaywatch/ingest.conf, which it may not read).
install -o "$ing" -m 0600 /dev/null "$u/ingest.conf"
printf 'defaults_file = %s\nincoming = %s\n' "$u/my.cnf" "$in" >"$u/ingest.conf"
ing_run() { # OUT: the ingester, as its own user
	local rc=0
	(cd "$u" && as "$ing" "$u/relaywatch-ingest" run -c "$u/ingest.conf") >"$1" 2>&1 || rc=$?
	return "$rc"
}
# The drop account uploads a chunk (as sftp's umask 0027 would leave it) and a directory that
# looks like a manifest.
as "$drop" sh -c "umask 0027; cp '$T/good' '$in/.up'" || die "the drop account cannot write"
as "$drop" sh -c "umask 0027; cd '$in' && gzip -n -c .up >.g.part && mv .g.part c1.gz && rm .up"
make_chunk "$T" c1-manifest "$T/good" mx1 smtp
sed -e 's/^chunk = .*/chunk = c1.gz/' "$T/c1-manifest.manifest" >"$T/c1.manifest"
as "$drop" sh -c \
	"umask 0027; cat '$T/c1.manifest' >'$in/.m.part' && mv '$in/.m.part' '$in/c1.manifest'"
as "$drop" sh -c "umask 0027; mkdir '$in/dir.manifest'"
db_migrated fault_untrusted
sed -i -e "s/^database=.*/database=$DB_NAME/" "$u/my.cnf"
rc=0
ing_run "$T/out" || rc=$?
expect_status 0 "$rc" "$T/out" "the ingester's first run in a setgid drop directory"
grep -q "dir.manifest is a directory" "$T/out" ||
	die "the directory named like a manifest was not reported"
for d in work archive quarantine; do
	[[ $(stat -c '%a %U %G' "$in/$d") == "700 $ing $ing" ]] ||
		die "$d/ is $(stat -c '%a %U %G' "$in/$d"), not 700 $ing $ing"
	if as "$drop" ls "$in/$d" >/dev/null 2>&1; then
		die "the drop account can list $d/"
	fi
done
[[ -f $in/archive/c1.gz ]] || die "c1 was not archived"
if as "$drop" cat "$in/archive/c1.gz" >/dev/null 2>&1; then
	die "the drop account can read an archived chunk"
fi
if as "$drop" sh -c "echo 'lines = 1' >>'$in/archive/c1.manifest'" 2>/dev/null; then
	die "the drop account can append to an archived manifest"
fi
exact "$T/want" "the chunk the drop account uploaded"
cases=$((cases + 1))
# The directory is reported once, not in every run's cron mail.
rc=0
ing_run "$T/out" || rc=$?
expect_status 0 "$rc" "$T/out" "the second run beside the directory named like a manifest"
[[ ! -s $T/out ]] || die "the second run was not silent: $(cat "$T/out")"
cases=$((cases + 1))
# An archive/ that an older version left open (0750, the drop account's group, setgid) is closed
# with a warning; a quarantine/ that the drop account made is refused.
chmod 2750 "$in/archive"
chgrp "$grp" "$in/archive"
rc=0
ing_run "$T/out" || rc=$?
expect_status 0 "$rc" "$T/out" "the run that closes an open archive/"
grep -q "archive: was mode 2750, now 0700" "$T/out" ||
	die "closing archive/ was not reported: $(cat "$T/out")"
[[ $(stat -c '%a %G' "$in/archive") == "700 $ing" ]] || die "archive/ was not closed"
rm -rf "$in/quarantine"
install -d -o "$drop" -g "$grp" -m 0700 "$in/quarantine"
rc=0
ing_run "$T/out" || rc=$?
expect_status 2 "$rc" "$T/out" "the run beside the drop account's quarantine/"
grep -q "quarantine: refusing a directory owned by uid $(id -u "$drop")" "$T/out" ||
	die "the drop account's quarantine/ was not refused clearly: $(cat "$T/out")"
cases=$((cases + 1))

# 3. The host comes from where a chunk was uploaded. mail1's key ships mail1's log, in which one
# line's syslog header names mail2; a stolen copy of that key ships a log as mail2.
db_migrated fault_untrusted
mkdir -p "$LOGS/mail1" "$LOGS/mail2"
gen_lines A 1 200 >"$LOGS/mail1/maillog.1"
gen_lines F 201 201 | sed 's/ mail1 / mail2 /' >>"$LOGS/mail1/maillog.1"
: >"$LOGS/mail1/maillog"
gen_lines B 1 100 | sed 's/ mail1 / mail2 /' >"$LOGS/mail2/maillog.1"
: >"$LOGS/mail2/maillog"
ship_conf "$T/ship1.conf" hostname=mail1.example.org <<CONF
source = $LOGS/mail1/maillog syslog
CONF
ship_ok --config "$T/ship1.conf"
ship_conf "$T/ship2.conf" hostname=mail2.example.org state_dir="$T/state2" <<CONF
source = $LOGS/mail2/maillog syslog
CONF
ship_ok --config "$T/ship2.conf"
(
	umask 077
	printf 'defaults_file = %s\nincoming = %s host=mail1.example.org\n' "$MYCNF" "$DROP" \
		>"$T/ingest.conf"
)
rc=0
ingest run --config "$T/ingest.conf" >"$T/out" 2>&1 || rc=$?
expect_status 1 "$rc" "$T/out" "run over a drop directory bound to mail1"
grep -q "manifest names host 'mail2.example.org', but this drop directory is mail1.example.org's" \
	"$DROP"/quarantine/*.why ||
	die "the chunk shipped as mail2 was not quarantined for its host"
[[ $(db_query "SELECT COUNT(*) FROM chunks WHERE host <> 'mail1.example.org'") == 0 ]] ||
	die "a chunk of another host is in the ledger"
[[ $(db_query "SELECT GROUP_CONCAT(DISTINCT host), SUM(n) FROM event_hourly") == \
	"mail1.example.org	201" ]] ||
	die "the rows are not all mail1's:" \
		"$(db_query "SELECT host, SUM(n) FROM event_hourly GROUP BY host")"
cases=$((cases + 2))
# The same on the command line.
rm -rf "$DROP"/quarantine/* "$DROP"/archive/*
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$DROP" --host mail2.example.org >"$T/out" 2>&1 ||
	rc=$?
expect_status 0 "$rc" "$T/out" "run with --host and nothing left"
rc=0
ingest run --defaults-file="$MYCNF" --host mail2.example.org >"$T/out" 2>&1 || rc=$?
expect_status 2 "$rc" "$T/out" "--host without --incoming"

# 4. Symlinked log directories and hard-linked secrets. The log user owns /var/log/qmail (here
# $LOGS/qmail), as qmaill often does; root's secret directory holds a multilog "current".
rm -rf "$DROP"/*
install -d -m 0755 "$LOGS"
install -d -o "$logu" -m 0755 "$LOGS/qmail"
install -d -o "$logu" -m 0755 "$LOGS/qmail/smtpd"
gen_lines S 1 10 | sed 's/^/@4000000052e8926800000000 /' >"$LOGS/qmail/smtpd/current"
install -d -m 0700 "$T/secret"
printf 'SECRET-ROOT-ONLY CHKUSER relaying rcpt: from <a::> remote <::1.2.3.4> rcpt <b@c> : x\n' \
	>"$T/secret/current"
as "$logu" sh -c "cd '$LOGS/qmail' && mv smtpd smtpd.old && ln -s '$T/secret' smtpd" ||
	die "the log user cannot swap its directory"
install -d -m 0755 "$LOGS/ml2"
printf 'SECRET-HARD-LINK CHKUSER relaying rcpt: from <a::> remote <::1.2.3.4> rcpt <b@c> : x\n' \
	>"$T/secret/shadow"
ln "$T/secret/shadow" "$LOGS/ml2/@4000000052e8926800000000.s"
gen_lines H 1 5 >"$LOGS/ml2/current"
rm -rf "$STATE"
ship_conf "$T/ship4.conf" hostname=mail1.example.org <<CONF
source = $LOGS/qmail/smtpd multilog service=smtp
source = $LOGS/ml2 multilog service=smtp
CONF
for try in 1 2; do
	ship_rc 0 --config "$T/ship4.conf"
	if ((try == 1)); then
		grep -q "qmail/smtpd: a symbolic link, not followed" "$T/err" ||
			die "the symlinked log directory was not warned about: $(cat "$T/err")"
		grep -q "@4000000052e8926800000000.s: a file with more than one hard link" \
			"$T/err" ||
			die "the hard-linked file was not warned about: $(cat "$T/err")"
	fi
done
for f in "$DROP"/*.gz; do
	[[ -e $f ]] || continue
	if zcat "$f" | grep -q SECRET; then
		die "a secret was shipped in $f"
	fi
done
[[ $(chunks) -ge 1 ]] || die "the legitimate current of ml2 was not shipped"
cases=$((cases + 2))

# 6. mtime = 2^63-1 in a manifest: refused, never added to.
db_migrated fault_untrusted
in=$T/in-mtime
mkdir -p "$in"
make_chunk "$in" mtime "$T/good" mx1 smtp
manifest_set "$in" mtime mtime 9223372036854775807
make_chunk "$in" z-good "$T/good2" mx2 smtp
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
expect_status 1 "$rc" "$T/out" "run with mtime = 2^63-1"
quarantined "$in" mtime "mtime: expected a whole number" "mtime = 2^63-1"
exact "$T/want2" "the chunk beside an mtime of 2^63-1"
cases=$((cases + 1))

tally hostile_inputs "$cases"
exit 0
