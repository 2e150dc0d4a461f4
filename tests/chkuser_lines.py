#!/usr/bin/env python3
"""Writes CHKUSER lines (splogger through syslog, as qmail logs them) for the alert tests, spread
evenly over [--start, --end) in time order, on stdout. Deterministic for a seed.

  chkuser_lines.py --host mx1 --start T0 --end T1 --count N KIND [OPTIONS]

KIND:
  relay       relayed recipients of --auth (default: an IP-allowed relay), sent as --sender
              (default: the account itself; 'others' = a different person each time), from
              --nets distinct /24 networks (198.18.0.0/15, one address in each) or --ip, to
              --domains distinct domains
  denied      `rejected relaying` recipients from --ip
  background  ordinary traffic of --accounts accounts: each relays a few recipients an hour as
              itself from its two usual addresses, and roams (a phone, a hotel) from a few
              addresses in one mobile network; inbound mail; a trickle of rejected relaying
"""
import argparse
import random
import sys
import time

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

p = argparse.ArgumentParser()
p.add_argument("kind", choices=["relay", "denied", "background"])
p.add_argument("--host", default="mx1")
p.add_argument("--service", default="smtp")
p.add_argument("--start", type=int, required=True)
p.add_argument("--end", type=int, required=True)
p.add_argument("--count", type=int, default=100)
p.add_argument("--auth", default="")
p.add_argument("--sender", default="")
p.add_argument("--ip", default="192.0.2.200")
p.add_argument("--nets", type=int, default=0)
p.add_argument("--domains", type=int, default=1)
p.add_argument("--accounts", type=int, default=8)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
rng = random.Random(a.seed)
out = []


def line(t, title, desc, sender, auth, ip, rcpt, service=None):
    tm = time.gmtime(t)
    date = "%s %2d %02d:%02d:%02d" % (MONTHS[tm.tm_mon - 1], tm.tm_mday, tm.tm_hour, tm.tm_min,
                                      tm.tm_sec)
    out.append((t, "%s %s %s: %d.%06d CHKUSER %s: from <%s:%s:> remote "
                   "<helo.example:unknown:%s> rcpt <%s> : %s\n"
                % (date, a.host, service or a.service, t, rng.randrange(1000000), title, sender,
                   auth, ip, rcpt, desc)))


def spread(n):
    span = max(a.end - a.start, 1)
    return [a.start + i * span // max(n, 1) for i in range(n)]


if a.kind == "relay":
    for i, t in enumerate(spread(a.count)):
        ip = "198.%d.%d.%d" % (18 + i % a.nets // 256, i % a.nets % 256, 1 + i % 7) \
            if a.nets else a.ip
        if a.sender == "others":
            sender = "person%d@customer%d.example" % (i, i % 50)
        else:
            sender = a.sender or a.auth
        line(t, "relaying rcpt", "client allowed to relay", sender, a.auth, ip,
             "user%d@victim%d.example" % (i, i % a.domains))
elif a.kind == "denied":
    for i, t in enumerate(spread(a.count)):
        line(t, "rejected relaying", "client not allowed to relay", "spam@bulk.example", "",
             a.ip, "probe%d@target%d.example" % (i, i % 7), "smtp-mx")
else:
    for h in range(a.start - a.start % 3600, a.end, 3600):
        for k in range(a.accounts):
            acct = "user%d@example.org" % k
            home = ["192.0.2.%d" % (10 + k), "2001:db8:%x::%x" % (k, k + 1)]
            for _ in range(rng.randrange(1, 12)):
                t = h + rng.randrange(3600)
                if rng.random() < 0.15:
                    # roaming: a new address in the carrier's pool every time
                    ip = "100.64.%d.%d" % (rng.randrange(4), rng.randrange(1, 255))
                else:
                    ip = rng.choice(home)
                line(t, "relaying rcpt", "client allowed to relay", acct, acct, ip,
                     "friend%d@d%d.example" % (rng.randrange(50), rng.randrange(30)))
        for _ in range(rng.randrange(20, 40)):
            line(h + rng.randrange(3600), "accepted rcpt", "found existing recipient",
                 "news@list.example", "", "198.51.100.%d" % rng.randrange(1, 250),
                 "user%d@example.org" % rng.randrange(a.accounts), "smtp-mx")
        for _ in range(rng.randrange(0, 5)):
            line(h + rng.randrange(3600), "rejected relaying", "client not allowed to relay",
                 "spam@bulk.example", "", "203.0.113.%d" % rng.randrange(1, 40),
                 "x@target.example", "smtp-mx")
    out = [o for o in out if a.start <= o[0] < a.end]

out.sort(key=lambda o: o[0])
sys.stdout.write("".join(o[1] for o in out))
