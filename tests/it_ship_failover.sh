#!/usr/bin/env bash
# relaywatch-ship with two stats servers ("host" twice), each its own sshd and drop directory,
# both ingested into one MariaDB: the first server down before a run (the second takes the run),
# back again (the first takes it again), gone after delivering a chunk whose run then crashed
# (the chunk reaches both drop directories and counts once), and killed with SIGKILL in the
# middle of a run (the chunks not yet delivered go to the second in the same run); then a pack of
# small files in the same ambiguous case. Every byte is in the two drop directories, and the
# totals in the database are exact.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

db_migrated ship_failover

drop_sshd_prepare a
drop_sshd_prepare b
A=[127.0.0.1]:${DROP_PORT[a]}
B=[127.0.0.1]:${DROP_PORT[b]}
INA=${DROP_ROOT[a]}/incoming
INB=${DROP_ROOT[b]}/incoming
log=$LOGS/maillog
SHIP_HOSTS="127.0.0.1:${DROP_PORT[a]} 127.0.0.1:${DROP_PORT[b]}" \
	ship_conf "$T/ship.conf" "known_hosts=$DROP_KNOWN_HOSTS" remote_dir=incoming \
	max_chunk=64k parallel=1 connect_timeout=5 <<EOF2
source = $log syslog
EOF2
gen_lines A 1 12000 >"$REF/A"
# grow N: appends to the log, as a logger would, up to the first N lines of the reference.
have=0
grow() {
	head -n "$1" "$REF/A" | tail -n "+$((have + 1))" >>"$log"
	have=$1
}
n_in() { find "$1" -maxdepth 1 -name '*.manifest' | wc -l; }

# Both down: exit 3, one line for each server, nothing planned.
grow 500
ship_rc 3 --config "$T/ship.conf"
(($(wc -l <"$T/err") == 2)) || die "expected a line per server: $(cat "$T/err")"
next="\[127.0.0.1\]:${DROP_PORT[b]}"
grep -q "cannot connect to 127.0.0.1 port ${DROP_PORT[a]}: .*; trying $next\$" \
	"$T/err" || die "the first server's line does not name the next: $(cat "$T/err")"
grep -q "cannot connect to 127.0.0.1 port ${DROP_PORT[b]}" "$T/err" || die "$(cat "$T/err")"
[[ ! -e $STATE/state ]] || die "a plan was recorded although no server could be reached"

# The first down before a run: the second takes all of it, exit 0, one warning line.
drop_sshd_start b
ship_rc 0 --config "$T/ship.conf" --verbose
grep -q "shipped bytes 0-[0-9]* to \[127.0.0.1\]:${DROP_PORT[b]}\$" "$T/err" ||
	die "--verbose does not say where the chunk went: $(cat "$T/err")"
ship_rc 0 --config "$T/ship.conf"
[[ ! -s $T/err ]] || die "nothing to ship, yet: $(cat "$T/err")"
(($(n_in "$INA") == 0 && $(n_in "$INB") > 0)) || die "the chunks are not all on the second"
grow 1500
ship_rc 0 --config "$T/ship.conf"
(($(wc -l <"$T/err") == 1)) || die "expected one warning line: $(cat "$T/err")"
grep -q "cannot connect to 127.0.0.1 port ${DROP_PORT[a]}" "$T/err" || die "$(cat "$T/err")"

# The first back: it takes the runs again, silently.
drop_sshd_start a
grow 3000
nb=$(n_in "$INB")
ship_ok --config "$T/ship.conf"
(($(n_in "$INA") > 0 && $(n_in "$INB") == nb)) || die "the first server did not take the run"

# Ambiguous: the first got a whole chunk, the run died before it recorded that, and the first is
# gone by the next run: the second gets the same chunk again.
grow 4500
RELAYWATCH_CRASH=ship-after-rename:2 ship_rc 137 --config "$T/ship.conf"
drop_sshd_stop a
ship_rc 0 --config "$T/ship.conf"
both=$(comm -12 <(ls "$INA" | grep '\.manifest$' | sort) <(ls "$INB" | grep '\.manifest$' | sort))
[[ -n $both ]] || die "no chunk reached both servers: the ambiguous case was not made"

# The first killed in the middle of a run (after the data of its second chunk was renamed into
# place, before that chunk's manifest): what it did not get goes to the second in the same run.
drop_sshd_start a
grow 12000
ship_fails_over a b --config "$T/ship.conf"
grep -q "connection to \[127.0.0.1\]:${DROP_PORT[a]} lost" "$T/err" || die "$(cat "$T/err")"
grep -q "to \[127.0.0.1\]:${DROP_PORT[a]}\$" "$T/err" || die "nothing went to the first server"
grep -q "to \[127.0.0.1\]:${DROP_PORT[b]}\$" "$T/err" || die "nothing went to the second"
drop_sshd_start a
ship_ok --config "$T/ship.conf"

# A pack (small finished files shipped as one chunk) in the ambiguous case: the first got it, the
# run died before recording that, the first is gone: the second gets the same pack, same name.
small=$LOGS/small
mkdir -p "$small"
SHIP_HOSTS="127.0.0.1:${DROP_PORT[a]} 127.0.0.1:${DROP_PORT[b]}" \
	ship_conf "$T/ship.conf" "known_hosts=$DROP_KNOWN_HOSTS" remote_dir=incoming \
	max_chunk=64k parallel=1 connect_timeout=5 coalesce_below=16k <<EOF2
source = $log syslog
source = $small multilog
EOF2
smalls=()
for k in $(seq 10 33); do
	gen_lines "s$k" 1 30 >"$REF/s$k"
	cp "$REF/s$k" "$small/@40000000600000${k}0000000a.s"
	smalls+=("$REF/s$k")
done
RELAYWATCH_CRASH=ship-after-rename:2 ship_rc 137 --config "$T/ship.conf"
drop_sshd_stop a
ship_rc 0 --config "$T/ship.conf"
both=$(comm -12 <(ls "$INA" | grep 'p[0-9]*\.manifest$' | sort) <(ls "$INB" | sort))
[[ -n $both ]] || die "no pack reached both servers: the ambiguous case was not made"
drop_sshd_start a
ship_ok --config "$T/ship.conf"

# Every byte in the union of the two drop directories, each once (a chunk in both is the same
# file under the same name).
mkdir "$T/union"
for d in "$INA" "$INB"; do
	for m in "$d"/*.manifest; do
		c=${m%.manifest}.gz
		u=$T/union/$(basename "$c")
		if [[ -e $u ]]; then
			cmp -s "$c" "$u" || die "$(basename "$c") differs between the two servers"
		fi
		cp "$m" "$c" "$T/union/"
	done
done
DROP=$T/union verify "$REF/A" "${smalls[@]}"

# One database, both drop directories: every line counted once.
for d in "$INA" "$INB"; do
	ingest run --defaults-file="$MYCNF" --incoming "$d" >"$T/ingest.out" 2>&1 ||
		die "ingest of $d failed: $(cat "$T/ingest.out")"
done
lines=$(db_query "SELECT SUM(line_count) FROM chunks")
logged=$(cat "$REF/A" "${smalls[@]}" | wc -l)
[[ $lines == "$logged" ]] || die "counted $lines lines, logged $logged"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == $(n_in "$T/union") ]] ||
	die "chunks in the ledger differ from the distinct chunks shipped"
