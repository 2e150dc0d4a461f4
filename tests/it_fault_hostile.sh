#!/usr/bin/env bash
# Hostile input, end to end: CHKUSER lines whose client-chosen fields hold SQL, shell
# metacharacters, quotes, backslashes, the format's own separators and fake markers, bytes that
# are not UTF-8, NUL, terminal escapes, overlong values, a 10 MB line and a 10 MB last line
# without newline (tests/fault_hostile.py writes them and the rows they must give); file names
# and manifest fields with metacharacters; chunk names that try to be paths. Through backfill,
# through `run` and through relaywatch-ship + `run`: every row byte-exact (compared as HEX()),
# rejected input quarantined or ignored as documented, nothing executed, no raw control byte in
# any message, no crash.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
. "$(dirname "$0")/lib_ship.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF

python3 "$RW_SRC/tests/fault_hostile.py" "$T/hostile.log" "$T/want" ||
	die "fault_hostile.py failed"
inputs=$(cat "$T/want/count")
# What the shell syntax in the input would create (in the working directory, $T) if anything
# ran it.
cd "$T"
pwned=relaywatch-pwned

dump_hex() { # DIR
	mkdir -p "$1"
	db_query "SELECT hour_utc, HEX(host), HEX(service), HEX(event), HEX(reason), n
		FROM event_hourly" | LC_ALL=C sort >"$1/event_hourly.hex"
	db_query "SELECT hour_utc, HEX(host), HEX(service), HEX(auth_user), HEX(sender),
		HEX(remote_ip), HEX(rcpt_domain), n FROM relay_hourly" | LC_ALL=C sort \
		>"$1/relay_hourly.hex"
	db_query "SELECT hour_utc, HEX(host), HEX(service), HEX(remote_ip), HEX(sender),
		HEX(rcpt_domain), n FROM denied_hourly" | LC_ALL=C sort >"$1/denied_hourly.hex"
	db_query "SELECT 'lines', COALESCE(SUM(line_count), 0) FROM chunks
		UNION ALL SELECT 'events', COALESCE(SUM(event_count), 0) FROM chunks
		UNION ALL SELECT 'malformed', COALESCE(SUM(malformed_count), 0) FROM chunks" \
		>"$1/totals.tsv"
}

byte_exact() { # WHAT
	local f bad=0
	dump_hex "$T/got"
	for f in event_hourly.hex relay_hourly.hex denied_hourly.hex totals.tsv; do
		if ! cmp -s "$T/want/$f" "$T/got/$f"; then
			echo "$(basename "$0"): $1: $f differs (HEX of the stored bytes):" >&2
			diff "$T/want/$f" "$T/got/$f" | head -n 20 >&2 || true
			bad=1
		fi
	done
	((bad == 0)) || die "$1: the stored bytes differ from the log's"
	# Row by row equality means nothing lost and nothing counted twice: the zeros are tallied
	# only once the comparison above has proved them. Counted as fault_lib's exact counts: the
	# n of every row of the three tables, and the malformed lines.
	tally lines_checked "$(awk -F'\t' 'FILENAME ~ /\.hex$/ { s += $NF; next }
		$1 == "malformed" { s += $2 } END { print s }' "$T/want/event_hourly.hex" \
		"$T/want/relay_hourly.hex" "$T/want/denied_hourly.hex" "$T/want/totals.tsv")"
	tally lines_lost 0
	tally lines_double 0
}

# Messages render every untrusted byte escaped: no control byte but the newline may reach the
# terminal or the cron mail.
clean_output() { # FILE WHAT
	if LC_ALL=C grep -q '[^[:print:][:space:]]' "$1" || LC_ALL=C grep -q $'\r' "$1"; then
		die "$2: a raw control byte reached the output"
	fi
	[[ ! -e $T/$pwned && ! -e /tmp/$pwned ]] ||
		die "$2: a shell command from the input was executed"
}

hex() { od -An -tx1 -v | tr -d ' \n' | tr a-f A-F; }

# 1. backfill, from a file whose name is made of shell metacharacters, plain then gzip.
db_migrated fault_hostile_bf
evil_name="$T/it's \$(touch $pwned); \`touch $pwned\` | a\"b\\c.log"
cp "$T/hostile.log" "$evil_name"
rc=0
ingest backfill --defaults-file="$MYCNF" "$evil_name" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "backfill of the hostile log"
clean_output "$T/out" "backfill of the hostile log"
byte_exact "backfill"
[[ $(db_query "SELECT HEX(source) FROM chunks") == $(printf '%s' "$evil_name" | hex) ]] ||
	die "backfill: the ledger's source is not the file name, byte for byte"
gzip -n -c "$evil_name" >"$evil_name.gz"
rc=0
ingest backfill --defaults-file="$MYCNF" "$evil_name.gz" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "backfill of the hostile log, gzipped"
clean_output "$T/out" "backfill of the hostile log, gzipped"
byte_exact "backfill of the same content gzipped"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 1 ]] || die "the gzipped copy was counted again"
# The same content from stdin.
rc=0
ingest backfill --defaults-file="$MYCNF" - <"$T/hostile.log" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "backfill of the hostile log from stdin"
byte_exact "backfill of the same content from stdin"

# 2. `run`: the chunk through a drop directory, with a manifest whose free-text fields hold
# quotes, backslashes and shell syntax; next to it, chunk and manifest names that try to be paths
# or options, and manifests that must be refused.
db_migrated fault_hostile_run
in=$T/in
mkdir -p "$in"
make_chunk "$in" mx9-hostile "$T/hostile.log" mx9 smtp
evil_host="mx9'; DROP TABLE chunks; -- \"\\\$(touch $pwned)"
evil_source="/var/log/mail'log;\$(touch $pwned)|\`id\`\\x"
python3 - "$in/mx9-hostile.manifest" "$evil_host" "$evil_source" <<'PY'
import sys
path, host, source = sys.argv[1:]
lines = open(path).read().splitlines()
out = []
for l in lines:
    k = l.split(" = ", 1)[0]
    out.append("host = " + host if k == "host" else "source = " + source if k == "source" else l)
open(path, "w").write("\n".join(out) + "\n")
PY
# A multilog chunk: no syslog header, so the manifest's hostile host and service are the row's.
{
	printf '@4000000052e8926800000000 CHKUSER relaying rcpt: from <s@x.example:u@x.example:> '
	printf 'remote <h:unknown:192.0.2.77> rcpt <r@y.example> : client allowed to relay\n'
} >"$T/ml"
make_chunk "$in" mx9-multilog "$T/ml" mx9 smtp multilog
python3 - "$in/mx9-multilog.manifest" "$evil_host" <<'PY'
import sys
path, host = sys.argv[1:]
lines = open(path).read().splitlines()
out = []
for l in lines:
    k = l.split(" = ", 1)[0]
    out.append("host = " + host if k == "host" else "service = sm'tp\\" if k == "service" else l)
open(path, "w").write("\n".join(out) + "\n")
PY
# Refused manifests (quarantined with a reason): chunk names that are paths, a control byte in a
# field, an oversized manifest.
refused=(path-up path-abs path-dot ctrl-host huge -rf)
make_chunk "$in" path-up "$T/ml" mx9 smtp multilog
manifest_set "$in" path-up chunk "../../../../etc/passwd"
make_chunk "$in" path-abs "$T/ml" mx9 smtp multilog
manifest_set "$in" path-abs chunk "/etc/passwd"
make_chunk "$in" path-dot "$T/ml" mx9 smtp multilog
manifest_set "$in" path-dot chunk ".."
make_chunk "$in" ctrl-host "$T/ml" mx9 smtp multilog
python3 - "$in/ctrl-host.manifest" <<'PY'
import sys
p = sys.argv[1]
s = open(p, "rb").read().replace(b"host = mx9", b"host = mx9\x1b[2J\x07")
open(p, "wb").write(s)
PY
make_chunk "$in" huge "$T/ml" mx9 smtp multilog
head -c 9000 /dev/zero | tr '\0' '#' >>"$in/huge.manifest"
# Ignored names (never used as paths, reported once, escaped): a newline, a space and shell
# syntax; a name that is only dots and the suffix (hidden: a temporary upload). A name starting
# with "-" is valid (never an option: no program is run with it) and is quarantined for what its
# manifest says.
ignored=($'new\nline' 'x;rm -rf ~' '$(touch relaywatch-pwned)')
for n in "${ignored[@]}"; do
	cp "$in/path-up.manifest" "$in/$n.manifest"
done
cp "$in/path-up.manifest" "$in/-rf.manifest"
cp "$in/path-up.manifest" "$in/...manifest"
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
expect_status 1 "$rc" "$T/out" "run over hostile chunks and names"
clean_output "$T/out" "run over hostile chunks and names"
[[ -f /etc/passwd ]] || die "/etc/passwd is gone"
for n in "${refused[@]}"; do
	[[ -f $in/quarantine/$n.manifest && -s $in/quarantine/$n.why ]] ||
		die "$n was not quarantined"
done
for n in "${ignored[@]}"; do
	[[ -f $in/$n.manifest ]] || die "the invalid name '$n' was touched"
done
[[ -f $in/...manifest ]] || die "'...manifest' was touched"
# The multilog row: counted under the manifest's host and service, byte for byte.
row=$(db_query "SELECT HEX(host), HEX(service), n FROM relay_hourly WHERE remote_ip = '192.0.2.77'")
[[ $row == "$(printf '%s' "$evil_host" | hex)	$(printf '%s' "sm'tp\\" | hex)	1" ]] ||
	die "the multilog row's host/service are not the manifest's bytes: $row"
db_query "DELETE FROM relay_hourly WHERE remote_ip = '192.0.2.77';
	DELETE FROM event_hourly WHERE HEX(host) = '$(printf '%s' "$evil_host" | hex)';
	DELETE FROM chunks WHERE source = '$T/ml'"
byte_exact "run"
[[ $(db_query "SELECT HEX(host), HEX(source) FROM chunks") == \
	"$(printf '%s' "$evil_host" | hex)	$(printf '%s' "$evil_source" | hex)" ]] ||
	die "run: the ledger's host and source are not the manifest's bytes"
hostile=$((inputs + ${#refused[@]} + ${#ignored[@]} + 4))

# 3. relaywatch-ship + run: the log under a name full of metacharacters (no blanks: the config
# format separates by blanks) on the mail server.
db_migrated fault_hostile_ship
ship_log="$LOGS/mail'log;\$(touch$pwned)|\`id\`\"x"
cp "$T/hostile.log" "$ship_log.1"
: >"$ship_log"
ship_conf "$T/ship.conf" hostname=mx9 <<EOF
source = $ship_log syslog
EOF
rc=0
"$SHIP" --config "$T/ship.conf" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "relaywatch-ship of a log with a hostile name and content"
clean_output "$T/out" "relaywatch-ship"
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$DROP" >"$T/out" 2>&1 || rc=$?
expect_status 0 "$rc" "$T/out" "run over the shipped hostile log"
clean_output "$T/out" "run over the shipped hostile log"
byte_exact "ship + run"
[[ $(db_query "SELECT HEX(source) FROM chunks") == $(printf '%s' "$ship_log.1" | hex) ]] ||
	die "ship + run: the ledger's source is not the log's name, byte for byte"
hostile=$((hostile + 1))

tally hostile_inputs "$hostile"
exit 0
