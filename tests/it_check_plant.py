#!/usr/bin/env python3
"""Writes qmail logs (splogger through syslog) of three mail servers over 2024-03-02 .. 2024-03-10
with planted incidents, and expect.json: what `check` and `report` must find in them.

Background (every day, deterministic): eight accounts relaying under 40 recipients an hour each
to a pool of domains from one or two IPs, a webmail server relaying by IP, inbound accepted and
unknown recipients, a trickle of `rejected relaying` from scattered IPs. Nothing in it reaches a
default threshold, so 2024-03-09 is a clean day.

Planted on 2024-03-10 (UTC):
  mx1 13:00  carol@example.org, compromised: 2500 recipients, 300 domains, 40 new remote IPs
             (40 networks)
  mx1 17:00  steady@example.org sends 150 where it sends 20 every hour: only the baseline rule
  mx2 09:00  203.0.113.66 probes for an open relay 1500 times, 203.0.113.77 150 times
  mx2 15:00  app@example.org relays 150 recipients as other senders (ceo@bank.example, ...);
             newsletter@example.org does the same but is in check_sender_allow
  mx3        goes silent after 02:00
Backfill each file with --host mxN: the ledger's host is what the freshness rule judges.
Usage: it_check_plant.py OUTDIR
"""
import calendar
import json
import random
import sys

DAY = 86400
START = calendar.timegm((2024, 3, 2, 0, 0, 0))
INCIDENT_DAY = calendar.timegm((2024, 3, 10, 0, 0, 0))
END = INCIDENT_DAY + DAY
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

rng = random.Random(20240310)
events = []  # (t, host, service, title, desc, sender, auth, ip, rcpt)

ACCOUNTS = [
    ("alice@example.org", ["192.0.2.11"]),
    ("bob@example.org", ["192.0.2.12", "198.51.100.12"]),
    ("carol@example.org", ["192.0.2.13"]),
    ("dave@example.net", ["192.0.2.14"]),
    ("erin@example.net", ["192.0.2.15", "2001:db8::15"]),
    ("frank@example.com", ["192.0.2.16"]),
    ("grace@example.com", ["192.0.2.17"]),
    ("heidi@example.com", ["192.0.2.18"]),
]
DOMAINS = ["d%d.example" % i for i in range(20)]
LOCAL = ["info", "sales", "jo", "max", "office", "team"]


def network(ip):
    """The rule counts remote networks: /24 for IPv4, /48 for IPv6."""
    if ":" in ip:
        return __import__("ipaddress").ip_network(ip + "/48", strict=False)
    return ip.rsplit(".", 1)[0]


def add(t, host, title, desc, sender, auth, ip, rcpt, service="smtp"):
    events.append((t, host, service, title, desc, sender, auth, ip, rcpt))


def relay(t, host, sender, auth, ip, rcpt):
    add(t, host, "relaying rcpt", "client allowed to relay", sender, auth, ip, rcpt)


def denied(t, host, ip, rcpt, sender="spam@bulk.example"):
    add(t, host, "rejected relaying", "client not allowed to relay", sender, "", ip, rcpt,
        "smtp-mx")


def in_hour(h):
    return h + rng.randrange(3600)


for host in ("mx1", "mx2", "mx3"):
    for h in range(START, END, 3600):
        if host == "mx3" and h >= INCIDENT_DAY + 2 * 3600:
            break
        hod = (h % DAY) // 3600
        busy = 8 <= hod < 18
        for acct, ips in ACCOUNTS:
            for _ in range(rng.randrange(0, 12 if busy else 3)):
                sender = acct.upper() if rng.random() < 0.1 else acct
                relay(in_hour(h), host, sender, acct, rng.choice(ips),
                      "%s@%s" % (rng.choice(LOCAL), rng.choice(DOMAINS)))
        if host == "mx1":
            for _ in range(20):
                relay(in_hour(h), host, "steady@example.org", "steady@example.org",
                      "192.0.2.20", "%s@%s" % (rng.choice(LOCAL), rng.choice(DOMAINS)))
        for _ in range(rng.randrange(5, 25)):
            relay(in_hour(h), host, "webmail@example.org", "", "10.0.0.5",
                  "%s@%s" % (rng.choice(LOCAL), rng.choice(DOMAINS)))
        for _ in range(rng.randrange(20, 60)):
            add(in_hour(h), host, "accepted rcpt", "found existing recipient",
                "%s@%s" % (rng.choice(LOCAL), rng.choice(DOMAINS)), "",
                "198.51.100.%d" % rng.randrange(1, 250), "%s@example.org" % rng.choice(LOCAL),
                "smtp-mx")
        for _ in range(rng.randrange(0, 8)):
            add(in_hour(h), host, "rejected rcpt", "not existing recipient",
                "x@spam.example", "", "198.51.100.%d" % rng.randrange(1, 250),
                "nobody%d@example.org" % rng.randrange(100), "smtp-mx")
        for _ in range(rng.randrange(0, 6)):
            denied(in_hour(h), host, "203.0.113.%d" % rng.randrange(1, 40),
                   "victim@%s" % rng.choice(DOMAINS))
        if rng.random() < 0.3:
            add(in_hour(h), host, "accepted sender", "sender accepted", "a@example.org", "",
                "192.0.2.50", "", "smtp")

# The compromised account.
h13 = INCIDENT_DAY + 13 * 3600
for i in range(2500):
    relay(in_hour(h13), "mx1", "carol@example.org", "carol@example.org",
          "198.18.%d.%d" % (i % 40, i % 7 + 1), "user%d@victim%d.example" % (i, i % 300))
# The baseline-only rise.
h17 = INCIDENT_DAY + 17 * 3600
for i in range(130):  # + the 20 of every hour = 150
    relay(in_hour(h17), "mx1", "steady@example.org", "steady@example.org", "192.0.2.20",
          "%s@%s" % (rng.choice(LOCAL), rng.choice(DOMAINS)))
# The relay probes.
h09 = INCIDENT_DAY + 9 * 3600
for i in range(1500):
    denied(in_hour(h09), "mx2", "203.0.113.66", "test%d@probe%d.example" % (i, i % 7))
for i in range(150):
    denied(in_hour(h09), "mx2", "203.0.113.77", "x%d@probe.example" % i)
# Sending as someone else.
h15 = INCIDENT_DAY + 15 * 3600
for i in range(150):
    relay(in_hour(h15), "mx2", ["ceo@bank.example", "billing@paypal.example"][i % 2],
          "app@example.org", "192.0.2.30", "target%d@d%d.example" % (i, i % 20))
for i in range(60):
    relay(in_hour(h15), "mx2", "news@example.org", "newsletter@example.org", "192.0.2.31",
          "reader%d@d%d.example" % (i, i % 20))

events.sort()


def line(e):
    t, host, service, title, desc, sender, auth, ip, rcpt = e
    tm = __import__("time").gmtime(t)
    date = "%s %2d %02d:%02d:%02d" % (MONTHS[tm.tm_mon - 1], tm.tm_mday, tm.tm_hour,
                                      tm.tm_min, tm.tm_sec)
    return ("%s %s %s: %d.%06d CHKUSER %s: from <%s:%s:> remote <helo.example:unknown:%s> "
            "rcpt <%s> : %s\n" % (date, host, service, t, rng.randrange(1000000), title,
                                  sender, auth, ip, rcpt, desc))


out = sys.argv[1]
for host in ("mx1", "mx2", "mx3"):
    with open("%s/%s.log" % (out, host), "w") as f:
        for e in events:
            if e[1] == host:
                f.write(line(e))

# What the report over 2024-03-10 must show, computed from the events themselves.
win = [e for e in events if INCIDENT_DAY <= e[0] < END]


def matches(sender, auth):
    return sender == "" or sender.lower() == auth.lower()


acc = {}
for e in win:
    if e[3] == "relaying rcpt" and e[6]:
        a = acc.setdefault(e[6], {"recipients": 0, "domains": set(), "ips": set(), "foreign": 0})
        a["recipients"] += 1
        a["domains"].add(e[8].rsplit("@", 1)[1])
        a["ips"].add(e[7])
        if not matches(e[5], e[6]):
            a["foreign"] += 1
den = {}
for e in win:
    if e[3] == "rejected relaying":
        den[e[7]] = den.get(e[7], 0) + 1
expect = {
    "events": len(win),
    "relaying_rcpt": sum(1 for e in win if e[3] == "relaying rcpt"),
    "rejected_relaying": sum(1 for e in win if e[3] == "rejected relaying"),
    "accounts": {k: {"recipients": v["recipients"], "domains": len(v["domains"]),
                     "remote_ips": len(v["ips"]), "foreign_sender": v["foreign"]}
                 for k, v in acc.items()},
    "denied": den,
    "mx3_last": max(e[0] for e in events if e[1] == "mx3"),
    "carol_ips_day": len(acc["carol@example.org"]["ips"]),
}


# The alerts of `check --since 2024-03-10 --until 2024-03-11` under the default thresholds (with
# newsletter@example.org allowed), worked out here independently of the C code.
hourly = {}
for e in events:
    if e[3] == "relaying rcpt":
        k = (e[1], e[6], e[0] - e[0] % 3600)
        hourly[k] = hourly.get(k, 0) + 1


def hour_count(host, auth, h):
    return hourly.get((host, auth, h), 0)


def iso(t, day=False):
    """T as check's and report's JSON write it (check's lines drop the seconds)."""
    tm = __import__("time").gmtime(t)
    if day:
        return "%04d-%02d-%02d" % (tm.tm_year, tm.tm_mon, tm.tm_mday)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour,
                                               tm.tm_min, tm.tm_sec)


def p95_threshold(host, auth, h, factor):
    hist = sorted(hour_count(host, auth, x) for x in range(h - 7 * DAY, h, 3600))
    p = hist[(len(hist) * 95 + 99) // 100 - 1]
    return max(p * factor // 100 + 1, 100)


carol = hour_count("mx1", "carol@example.org", h13)
carol_domains = len({e[8].rsplit("@", 1)[1] for e in events if e[1] == "mx1"
                     and e[6] == "carol@example.org" and h13 <= e[0] < h13 + 3600})
carol_ips = len({network(e[7]) for e in events if e[1] == "mx1" and e[6] == "carol@example.org"
                 and INCIDENT_DAY <= e[0] < END})
steady = hour_count("mx1", "steady@example.org", h17)
assert steady == 150
steady_warn = p95_threshold("mx1", "steady@example.org", h17, 300)
steady_crit = p95_threshold("mx1", "steady@example.org", h17, 1000)
assert steady_warn <= steady < steady_crit
mx3_last = max(e[0] for e in events if e[1] == "mx3")


def alert(status, rule, host, kind, subject, value, threshold, start):
    return {"status": status, "rule": rule, "host": host, kind: subject, "value": value,
            "threshold": threshold, "start": start}


expect["alerts"] = [
    alert("CRITICAL", "relay_rcpt", "mx1", "account", "carol@example.org", carol, 2000,
          iso(h13)),
    alert("CRITICAL", "relay_domains", "mx1", "account", "carol@example.org", carol_domains,
          200, iso(h13)),
    alert("CRITICAL", "relay_ips", "mx1", "account", "carol@example.org", carol_ips, 30,
          iso(INCIDENT_DAY, True)),
    alert("CRITICAL", "sender_mismatch", "mx2", "account", "app@example.org", 150, 100,
          iso(h15)),
    alert("CRITICAL", "denied", "mx2", "ip", "203.0.113.66", 1500, 1000, iso(h09)),
    alert("CRITICAL", "baseline", "mx1", "account", "carol@example.org", carol,
          p95_threshold("mx1", "carol@example.org", h13, 1000), iso(h13)),
    # app@example.org never relayed before: no history, so the minimum count is the threshold
    alert("CRITICAL", "baseline", "mx2", "account", "app@example.org", 150,
          p95_threshold("mx2", "app@example.org", h15, 1000), iso(h15)),
    alert("CRITICAL", "stale", "mx3", "host", "mx3", END - mx3_last, 6 * 3600, iso(mx3_last)),
    alert("WARNING", "denied", "mx2", "ip", "203.0.113.77", 150, 100, iso(h09)),
    alert("WARNING", "baseline", "mx1", "account", "steady@example.org", steady, steady_warn,
          iso(h17)),
]
with open("%s/expect.json" % out, "w") as f:
    json.dump(expect, f, indent=1, sort_keys=True)
