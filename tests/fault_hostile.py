#!/usr/bin/env python3
"""Writes a qmail log of hostile CHKUSER lines and the rows the ingester must store for them.

Usage: fault_hostile.py LOG EXPECT_DIR

Each hostile value sits in a line of its own hour (splogger stamps, UTC), so each line is one row
of its table, and the expected rows are written as the database prints them with HEX() around
every string column (tests/it_fault_hostile.sh compares byte for byte):
  event_hourly.hex   hour_utc, HEX(host), HEX(service), HEX(event), HEX(reason), n
  relay_hourly.hex   hour_utc, HEX(host), HEX(service), HEX(auth_user), HEX(sender),
                     HEX(remote_ip), HEX(rcpt_domain), n
  denied_hourly.hex  hour_utc, HEX(host), HEX(service), HEX(remote_ip), HEX(sender),
                     HEX(rcpt_domain), n
  totals.tsv         lines, events, malformed (the ledger's counts)
  count              the number of hostile inputs in the log

A line whose client-chosen fields hold a second "IP> rcpt <" or "> remote <" that could anchor the
fields is ambiguous: counted as malformed, never as an event (include/chkuser.h).

The expected fields follow the parser's documented rules (include/chkuser.h, log-formats.md):
SENDER is everything before the last two ':' of the upstream from-part (AUTHUSER and IDENTIFY come
from the server), or before the last "|remoteinfo/auth:" of the labelled one; the description is
after the last "> : "; rcpt_domain is after the last '@', ASCII-lowercased; every string is cut
to its column's bound (agg.h), never rejected. Nothing else is interpreted.
"""
import datetime
import os
import sys

BASE = 1390971600  # 2014-01-29 05:00:00 UTC
HOST = b"mx9"
SERVICE = b"smtp"

# Column bounds (agg.h).
B_HOST, B_SERVICE, B_EVENT, B_REASON = 255, 64, 64, 255
B_AUTH, B_SENDER, B_IP, B_DOMAIN = 255, 255, 64, 255

# Client-chosen values: SQL, shell, quotes, backslashes, the format's own separators, fake
# markers, bytes that are not UTF-8, NUL, terminal escapes, CR, ^Z, overlong values.
HOSTILE_SENDERS = [
    b"' OR 1=1 --@sql.example",
    b"\"; DROP TABLE chunks; --@x.example",
    b"robert'); DROP TABLE relay_hourly;--@bobby.example",
    b"back\\slash@x.example",
    b"\\'@x.example",
    b"trail\\@x.example",
    b"\\\\\\@x.example",
    b"100%_like@x.example",
    b"$(touch /tmp/relaywatch-pwned)@x.example",
    b"`id`;|&<>@x.example",
    b"we:ird:er@x.example",
    b"x>y@x.example",
    b"a|b|c@pipe.example",
    b"fake> : client allowed to relay@x.example",
    b"fake|remoteinfo/auth:admin@x.example",
    b"inval\xff\xfe\xc3\x28id@x.example",
    b"nul\x00byte@x.example",
    b"esc\x1b[31mred\x1b[0m@x.example",
    b"cr\rin@x.example",
    b"ctrlz\x1a@x.example",
    b"m\xc3\xbcller@ex\xc3\xa4mple.example",
    b"\xf0\x9f\x93\xa7@emoji.example",
    b"",
    b"L" * 300 + b"@long.example",
]
# Senders and recipients with a second marker that could anchor the fields (issue 10): the client
# would pick its own remote IP or account. Ambiguous: malformed, never attributed.
AMBIGUOUS_SENDERS = [
    b"fake> remote <h:u:192.0.2.9@x.example",
    b"fake:192.0.2.10> rcpt <victim@x.example",
    b"s:boss@x.example:> remote <x:u@x.example",
]
AMBIGUOUS_RCPTS = [
    b"\"a:203.0.113.9> rcpt <v\"@gmail.test",
    b"\"x:boss@x.example:> remote <h:h:203.0.113.9> rcpt <v\"@gmail.test",
    b"a|remotehostip:203.0.113.9> rcpt <v@gmail.test",
]
HOSTILE_HELOS = [
    b"a:b|c>d",
    b"\"; DROP TABLE chunks; --",
    b"fake> rcpt <x@y.example",
    b"h\xff\x00lo",
    b"$(reboot)",
]
HOSTILE_RCPTS = [
    b"user@EXAMPLE.COM",
    b"u@Ex\xc3\x28AmPle.ORG",
    b"no-at-sign",
    b"a@b@C.Example",
    b"q'uote@x'.example",
    b"u@" + b"D" * 300 + b".example",
]
HOSTILE_TITLES = [
    (b"we'ird \\ title", b"desc\"; DROP TABLE event_hourly; --"),
    (b"rejected rcpt", b"not existing recipient \xff\x00\\'"),
    (b"T" * 100, b"R" * 300),
]


def hour_str(i):
    return datetime.datetime.fromtimestamp(BASE + i * 3600, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S").encode()


def header(i):
    t = BASE + i * 3600 + 17
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    stamp = "%s %2d %s" % (d.strftime("%b"), d.day, d.strftime("%H:%M:%S"))
    return b"%s %s %s: %d.000000 " % (stamp.encode(), HOST, SERVICE, t)


def hx(b):
    return b.hex().upper().encode()


def domain_of(rcpt):
    at = rcpt.rfind(b"@")
    if at < 0:
        return b""
    return bytes(c + 32 if 65 <= c <= 90 else c for c in rcpt[at + 1:])


def main():
    log_path, exp = sys.argv[1], sys.argv[2]
    os.makedirs(exp, exist_ok=True)
    lines = []
    ev, relay, denied = [], [], []
    count = 0
    i = 0

    malformed = 0

    def add(title, desc, sender, auth, helo, ip, rcpt, labelled=False, relay_row=None,
            denied_row=None, ambiguous=False):
        nonlocal i, malformed
        if labelled:
            frm = sender + b"|remoteinfo/auth:" + auth + b"|chkuser-identify:"
            rem = b"helo:" + helo + b"|remotehostname:unknown|remotehostip:" + ip
        else:
            frm = sender + b":" + auth + b":"
            rem = helo + b":unknown:" + ip
        msg = (b"CHKUSER " + title + b": from <" + frm + b"> remote <" + rem + b"> rcpt <" +
               rcpt + b"> : " + desc)
        lines.append(header(i) + msg + b"\n")
        if ambiguous:
            malformed += 1
            i += 1
            return
        h = hour_str(i)
        ev.append(b"\t".join([h, hx(HOST), hx(SERVICE), hx(title[:B_EVENT]),
                              hx(desc[:B_REASON]), b"1"]))
        dom = domain_of(rcpt)[:B_DOMAIN]
        if relay_row:
            relay.append(b"\t".join([h, hx(HOST), hx(SERVICE), hx(auth[:B_AUTH]),
                                     hx(sender[:B_SENDER]), hx(ip[:B_IP]), hx(dom), b"1"]))
        if denied_row:
            denied.append(b"\t".join([h, hx(HOST), hx(SERVICE), hx(ip[:B_IP]),
                                      hx(sender[:B_SENDER]), hx(dom), b"1"]))
        i += 1

    relay_t, relay_d = b"relaying rcpt", b"client allowed to relay"
    deny_t, deny_d = b"rejected relaying", b"client not allowed to relay"
    def sender_pair(s, ambiguous):
        # The sender authenticated and relayed (upstream format), denied (labelled format).
        add(relay_t, relay_d, s, b"auth@local.example", b"helo.example", b"192.0.2.1",
            b"r@dest.example", relay_row=True, ambiguous=ambiguous)
        add(deny_t, deny_d, s, b"", b"helo.example", b"2001:db8::1", b"r@Dest.Example",
            labelled=True, denied_row=True, ambiguous=ambiguous)

    for s in HOSTILE_SENDERS:
        sender_pair(s, False)
        count += 1
    for h in HOSTILE_HELOS:
        add(relay_t, relay_d, b"s@x.example", b"", h, b"198.51.100.7", b"r@dest.example",
            relay_row=True)
        add(deny_t, deny_d, b"s@x.example", b"", h, b"198.51.100.8", b"r@dest.example",
            labelled=True, denied_row=True)
        count += 1
    for r in HOSTILE_RCPTS:
        add(deny_t, deny_d, b"s@x.example", b"", b"helo", b"203.0.113.9", r, denied_row=True)
        count += 1
    for t, d in HOSTILE_TITLES:
        add(t, d, b"s@x.example", b"", b"helo", b"203.0.113.10", b"r@x.example")
        count += 1
    for s in AMBIGUOUS_SENDERS:
        sender_pair(s, True)
        count += 1
    for r in AMBIGUOUS_RCPTS:
        add(deny_t, deny_d, b"spam@x.example", b"", b"helo", b"198.51.100.66", r,
            ambiguous=True)
        add(relay_t, relay_d, b"u@x.example", b"u@x.example", b"helo", b"198.51.100.66", r,
            labelled=True, ambiguous=True)
        count += 1
    events = len(lines) - malformed

    # Not CHKUSER lines: binary noise, a line of NULs, a lone CR, an empty line.
    lines.append(header(i) + b"qmail-smtpd: \xff\xfe\x00\x01 garbage '\"\\\n")
    lines.append(b"\x00" * 64 + b"\n")
    lines.append(b"\r\n")
    lines.append(b"\n")
    count += 4
    # A CHKUSER line of 10 MB: too long to be parsed (scan.h), so malformed, never an event.
    lines.append(header(i + 1) + b"CHKUSER relaying rcpt: from <" + b"X" * (10 << 20) +
                 b"::> remote <h:u:192.0.2.1> rcpt <a@b.example> : client allowed to relay\n")
    # And a last line of 10 MB without a newline (counted as a line, not CHKUSER).
    lines.append(b"Z" * (10 << 20))
    count += 2

    with open(log_path, "wb") as f:
        f.writelines(lines)
    for name, rows in (("event_hourly", ev), ("relay_hourly", relay), ("denied_hourly", denied)):
        with open(os.path.join(exp, name + ".hex"), "wb") as f:
            for r in sorted(rows):
                f.write(r + b"\n")
    with open(os.path.join(exp, "totals.tsv"), "w") as f:
        f.write("lines\t%d\nevents\t%d\nmalformed\t%d\n" % (len(lines), events, malformed + 1))
    with open(os.path.join(exp, "count"), "w") as f:
        f.write("%d\n" % count)


if __name__ == "__main__":
    main()
