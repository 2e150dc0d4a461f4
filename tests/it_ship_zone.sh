#!/usr/bin/env bash
# Syslog dates without splogger's UTC stamp are the mail server's local time: the shipper names
# its zone in each manifest and `run` reads those dates in it, whatever the stats server's zone.
# A manifest whose zone would name a file outside zoneinfo is quarantined.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"
need_env RW_MYCNF
db_migrated ship_zone

line='mail1 smtp: CHKUSER accepted rcpt: from <a@b.example::> remote <h:unknown:192.0.2.1>'
line+=' rcpt <c@d.example> : found existing recipient'
printf 'Jan 28 21:32:14 %s\nJan 28 21:59:59 %s\n' "$line" "$line" >"$LOGS/maillog"
# The year comes from the file's mtime: early 2014.
touch -d '2014-02-01 00:00:00 UTC' "$LOGS/maillog"
ship_conf "$T/ship.conf" <<EOF2
source = $LOGS/maillog syslog
EOF2

TZ=America/Los_Angeles ship_ok --config "$T/ship.conf"
grep -qx 'tz = America/Los_Angeles' "$DROP"/*.manifest || die "the manifest names no zone"

TZ=UTC ingest run --defaults-file="$MYCNF" --incoming "$DROP" || die "run failed"
# 21:32 in Los Angeles (UTC-8 in January) is 05:32 UTC the next day.
got=$(db_query "SELECT hour_utc, n FROM event_hourly")
[[ $got == "2014-01-29 05:00:00	2" ]] || die "event_hourly: expected the 05:00 UTC hour, got '$got'"

# A hostile zone in a manifest: quarantined, never handed to TZ.
m=$(ls "$DROP"/archive/*.manifest | head -n 1)
name=$(basename "$m" .manifest)
cp "$DROP/archive/$name.gz" "$DROP/evil.gz"
sed -e "s|^chunk = .*|chunk = evil.gz|" -e 's|^tz = .*|tz = ../../../etc/passwd|' "$m" \
	>"$DROP/evil.manifest"
rc=0
ingest run --defaults-file="$MYCNF" --incoming "$DROP" 2>"$T/err" || rc=$?
[[ $rc == 1 ]] || die "run with a hostile zone: exit status $rc, expected 1"
[[ -f $DROP/quarantine/evil.manifest ]] || die "the hostile manifest was not quarantined"
[[ $(db_query "SELECT SUM(n) FROM event_hourly") == 2 ]] || die "the hostile chunk was counted"
