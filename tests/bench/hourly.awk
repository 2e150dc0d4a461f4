# The mail admin's alternative to relaywatch-ingest --dry-run, for scripts/bench:
#   zcat maillog.gz | mawk -f hourly.awk
# prints the counts of event_hourly, relay_hourly and denied_hourly (syslog + splogger lines:
# header in $1..$5, epoch stamp in $6, the message from $7 on) by anchoring on chkuser's markers.
$7 == "CHKUSER" {
	service = $5
	sub(/:$/, "", service)
	sub(/\[.*$/, "", service)
	hour = int($6 / 3600) * 3600
	m = substr($0, index($0, " CHKUSER ") + 9)
	if (!(p = index(m, ": from <"))) { bad++; next }
	title = substr(m, 1, p - 1); m = substr(m, p + 8)
	if (!(p = index(m, "> remote <"))) { bad++; next }
	from = substr(m, 1, p - 1); m = substr(m, p + 10)
	if (!(p = index(m, "> rcpt <"))) { bad++; next }
	remote = substr(m, 1, p - 1); m = substr(m, p + 8)
	if (!(p = index(m, "> : "))) { bad++; next }
	rcpt = substr(m, 1, p - 1); reason = substr(m, p + 4)
	key = hour "\t" $4 "\t" service
	event[key "\t" title "\t" reason]++
	if (title != "relaying rcpt" && title != "rejected relaying") next
	# from is SENDER:AUTHUSER:IDENTIFY (the sender may hold ':'), remote is HELO:HOST:IP.
	n = split(from, f, ":")
	auth = f[n - 1]
	sender = substr(from, 1, length(from) - length(f[n - 1]) - length(f[n]) - 2)
	ip = remote
	sub(/^[^:]*:[^:]*:/, "", ip)
	domain = rcpt
	while ((p = index(domain, "@"))) domain = substr(domain, p + 1)
	domain = tolower(domain)
	if (title == "relaying rcpt") relay[key "\t" auth "\t" sender "\t" ip "\t" domain]++
	else denied[key "\t" ip "\t" sender "\t" domain]++
}
END {
	for (k in event) { print "event_hourly\t" k "\t" event[k]; events += event[k] }
	for (k in relay) print "relay_hourly\t" k "\t" relay[k]
	for (k in denied) print "denied_hourly\t" k "\t" denied[k]
	print "events\t" events + 0 "\tmalformed\t" bad + 0
}
