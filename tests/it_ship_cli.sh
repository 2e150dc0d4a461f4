#!/usr/bin/env bash
# relaywatch-ship's command line: --help, --version, usage and config errors (exit 2, file:line),
# --dry-run (lists the chunks, connects to nothing, changes nothing), the lock (a second run
# exits 0 with a notice), a damaged state file (exit 2, nothing shipped), an unprotected key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_ship.sh"

"$SHIP" --help | grep -q -- '--accept-new-host-key' || die "--help lacks an option"
"$SHIP" --version | grep -q '^relaywatch-ship [0-9]' || die "--version"
# Usage errors: one line each, naming what was wrong.
for args in --no-such-option -xn extra-argument --config; do
	ship_rc 2 "$args"
	[[ $(wc -l <"$T/err") == 1 ]] || { cat "$T/err" >&2; die "$args: not one line"; }
done
grep -qx "relaywatch-ship: option --config needs a value (try --help)" "$T/err" ||
	{ cat "$T/err" >&2; die "--config without a value: unclear line"; }
ship_rc 2 -v -c
grep -qx "relaywatch-ship: option -c needs a value (try --help)" "$T/err" ||
	{ cat "$T/err" >&2; die "-c without a value: unclear line"; }
ship_rc 2 --verbose -xn
grep -qx "relaywatch-ship: unknown option -x (try --help)" "$T/err" ||
	{ cat "$T/err" >&2; die "--verbose -xn: the line does not name -x"; }
ship_rc 2 -xn
grep -qx "relaywatch-ship: unknown option -x (try --help)" "$T/err" ||
	{ cat "$T/err" >&2; die "-xn: the line does not name -x"; }

log=$LOGS/maillog
gen_lines A 1 100 >"$REF/A"
cp "$REF/A" "$log"
ship_conf "$T/ship.conf" <<EOF2
source = $log syslog
EOF2

# Config errors name the file and line.
ship_conf "$T/bad.conf" level=12 </dev/null
ship_rc 2 --config "$T/bad.conf"
grep -q "$T/bad.conf:[0-9]*: level" "$T/err" || die "no file:line for a bad value: $(cat "$T/err")"
ship_rc 2 --config "$T/nonexistent.conf"
chmod 666 "$T/ship.conf"
ship_rc 2 --config "$T/ship.conf"
grep -q 'group or others can write' "$T/err" || die "a world-writable config was not refused"
chmod 600 "$T/ship.conf"

# --dry-run: the plan on stdout, nothing connected, nothing written.
ship_conf "$T/dry.conf" port=1 <<EOF2
source = $log syslog
EOF2
ship_rc 0 --config "$T/dry.conf" --dry-run
grep -q "^$log 0-$(wc -c <"$REF/A") " "$T/out" || die "dry run output: $(cat "$T/out")"
[[ $(chunks) == 0 && ! -e $STATE/state ]] || die "--dry-run changed something"

# Another run holds the lock: this one leaves the work to it.
mkdir -p "$STATE"
exec 9>"$STATE/lock"
flock 9
ship_rc 0 --config "$T/ship.conf"
grep -q 'another run holds' "$T/err" || die "no notice about the lock: $(cat "$T/err")"
ship_rc 0 --config "$T/ship.conf" --quiet
[[ ! -s $T/err ]] || die "--quiet still printed the notice"
exec 9>&-
[[ $(chunks) == 0 ]] || die "shipped while another run held the lock"

# The real run, verbose: says what it shipped.
ship_rc 0 --config "$T/ship.conf" --verbose
grep -q "$log: shipped bytes 0-" "$T/err" || die "--verbose is silent: $(cat "$T/err")"
verify "$REF/A"

# A damaged state stops the run before anything is shipped twice.
cp "$STATE/state" "$T/state.good"
echo "not a state line" >>"$STATE/state"
gen_lines A 101 110 >>"$log"
ship_rc 2 --config "$T/ship.conf"
grep -q "$STATE/state:[0-9]*: state file damaged" "$T/err" ||
	die "damage not reported: $(cat "$T/err")"
cp "$T/state.good" "$STATE/state"
gen_lines A 101 110 >>"$REF/A"
ship_ok --config "$T/ship.conf"
verify "$REF/A"

# A private key others can read is refused, as ssh does.
cp "$RW_SSH_KEY" "$T/key"
chmod 644 "$T/key"
ship_conf "$T/key.conf" "identity=$T/key" <<EOF2
source = $log syslog
EOF2
gen_lines A 111 120 >>"$log"
ship_rc 3 --config "$T/key.conf"
grep -q 'chmod 600' "$T/err" || die "unprotected key not refused: $(cat "$T/err")"

# A state_dir others can write is refused (they could swap the state or plant symlinks).
chmod 777 "$STATE"
ship_rc 2 --config "$T/ship.conf"
grep -q "$STATE: refusing a state_dir that group or others can write" "$T/err" ||
	die "open state_dir not refused: $(cat "$T/err")"
chmod 700 "$STATE"
