#!/usr/bin/env bash
# `relaywatch-ingest run` writes a chunk's rows while it reads the chunk, and commits each chunk
# while it reads the next one (ingester/overlap.c, drain.c). Each chunk is counted exactly once
# when the stream's connection is killed in the middle (the chunk is replayed whole), when the
# ingester is killed in the middle of a stream (nothing of it stays; the next run takes the
# claim over), when chunks fail verification after their rows went ahead (rolled back and
# quarantined; the chunk committed between them holds only its own rows), and when a pack some
# of whose files another chunk counted is read between two other chunks (its rescan rolls back
# what the next chunk streamed meanwhile, which is then written whole).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_drain.sh"
. "$(dirname "$0")/fault_lib.sh"
need_env RW_MYCNF
db_migrated run_overlap

# Three logs of 8 to 12 hours (5 MB and more: several 2 MB scan blocks, each finishing an hour or
# more), so the writer has rows to stream while each is read.
gen --lines 100000 --seed 1101 --format syslog --host mx1 --service smtp --malformed 4 \
	--out "$T/a" --expect "$T/ea"
gen --lines 80000 --seed 1102 --format labelled --host mx2 --service smtp --out "$T/b" \
	--expect "$T/eb"
gen --lines 60000 --seed 1103 --format multilog --host mx3 --service smtp-mx --step-us 700000 \
	--out "$T/c" --expect "$T/ec"
declare -A expect_of # chunk id (SHA-256 of the plain bytes) -> expectation directory
for n in a b c; do
	expect_of[$(sha256sum <"$T/$n" | cut -d' ' -f1)]=$T/e$n
done
merge_expect "$T/want" "$T/ea" "$T/eb" "$T/ec"
in=$T/in

fresh() { # the drop directory with the three chunks, and an empty database
	db_query "DELETE FROM chunks; DELETE FROM chunk_parts; TRUNCATE event_hourly;
		TRUNCATE relay_hourly; TRUNCATE denied_hourly"
	rm -rf "$in"
	mkdir -p "$in"
	make_chunk "$in" c1 "$T/a" mx1 smtp
	make_chunk "$in" c2 "$T/b" mx2 smtp
	make_chunk "$in" c3 "$T/c" mx3 smtp-mx multilog
}

run_ok() { # WHAT: a run that must succeed (verbose output in $T/out)
	local rc=0
	ingest run --verbose --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
	expect_status 0 "$rc" "$T/out" "$1"
}

drained() { # WHAT N: every chunk counted, N archived, nothing claimed or quarantined
	exact "$T/want" "$1"
	[[ $(count_files "$in" '*.manifest') == 0 ]] || die "$1: chunks left in the drop directory"
	[[ $(count_files "$in/work" '*') == 0 ]] || die "$1: work/ is not empty"
	[[ $(count_files "$in/quarantine" '*') == 0 ]] || die "$1: something was quarantined"
	[[ $(count_files "$in/archive" '*.gz') == "$2" ]] || die "$1: not every chunk was archived"
}

# 0. Undisturbed: rows go ahead while the chunks are read.
fresh
run_ok "an undisturbed run"
grep -Eq 'c1: .*\([1-9][0-9]* batches written while scanning\)' "$T/out" ||
	{ cat "$T/out" >&2; die "nothing of c1 was written while it was read"; }
drained "an undisturbed run" 3

# 1. Stopped just after the writer sent its first batch; the connection is killed meanwhile.
fresh
RELAYWATCH_PAUSE=db-stream-batch:1 "$INGEST" run --verbose --defaults-file="$MYCNF" \
	--incoming "$in" >"$T/out" 2>&1 &
pid=$!
on_exit "kill_child $pid KILL"
wait_stopped "$pid" "the run" "$T/out"
# Its transaction holds rows already: nobody else sees them.
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 0 ]] || die "a ledger row before the commit"
[[ $(db_query "SELECT COUNT(*) FROM relay_hourly") == 0 ]] || die "streamed rows are visible"
kill_db_connection
kill -CONT "$pid"
rc=0
wait "$pid" || rc=$?
expect_status 0 "$rc" "$T/out" "a run whose stream lost its connection"
# The loss is met by the stream's next batch ("while writing ahead, replaying") or, when c1 had
# no other batch, by its last statements ("retrying"): either way c1 is written again whole.
grep -q -e '/a: .*while writing ahead, replaying' -e '/a: .*, retrying' "$T/out" ||
	{ cat "$T/out" >&2; die "no replay said"; }
drained "a run whose stream lost its connection" 3

# 2. Killed (SIGKILL) at each streamed batch in turn (how many there are depends on how fast the
# writer keeps up): nothing of an uncommitted chunk stays (a chunk committed meanwhile stays
# whole), and the next run counts the rest.
n=1
while ((n <= 4)); do
	fresh
	rc=0
	# (bash's "Killed" notice of an expected kill goes to /dev/null.)
	{ RELAYWATCH_CRASH=db-stream-batch:$n "$INGEST" run --defaults-file="$MYCNF" \
		--incoming "$in" >"$T/out" 2>&1; } 2>/dev/null || rc=$?
	if [[ $rc == 0 ]]; then
		drained "a run that streamed fewer than $n batches" 3
		break
	fi
	expect_status 137 "$rc" "$T/out" "a run with RELAYWATCH_CRASH=db-stream-batch:$n"
	ledger_consistent "a run killed at db-stream-batch:$n"
	[[ $(count_files "$in/work" '*.manifest') -ge 1 ]] ||
		die "db-stream-batch:$n: no claim left"
	run_ok "the run after a kill at db-stream-batch:$n"
	drained "a run killed at db-stream-batch:$n, then run again" 3
	n=$((n + 1))
done
((n > 1)) || die "the run never passed db-stream-batch"

# 3. Chunks that turn out bad only at the end of their scan, after their rows went ahead: the
# line count (c1) and the SHA-256 (c3) differ from the manifest's. Both are rolled back and
# quarantined; c2, committed between them, holds its own rows only. (c1, read first, streams for
# certain; c3 does when c2's commit is done before c3's last block.)
fresh
manifest_set "$in" c1 lines "$(($(count_lines "$T/a") + 1))"
manifest_set "$in" c3 sha256 "$(sha256sum <"$T/b" | cut -d' ' -f1)"
rc=0
ingest run --verbose --defaults-file="$MYCNF" --incoming "$in" >"$T/out" 2>&1 || rc=$?
expect_status 1 "$rc" "$T/out" "a run with two bad chunks"
grep -Eq "c1: [1-9][0-9]* batches written while scanning, rolled back" "$T/out" ||
	{ cat "$T/out" >&2; die "nothing of the bad chunk c1 went ahead (untested rollback)"; }
for n in c1 c3; do
	[[ -e $in/quarantine/$n.gz && -e $in/quarantine/$n.why ]] || die "$n was not quarantined"
done
grep -q 'lines: manifest says' "$in/quarantine/c1.why" || die "c1 quarantined for another reason"
grep -q 'sha256: manifest says' "$in/quarantine/c3.why" || die "c3 quarantined for another reason"
exact "$T/eb" "two bad chunks around a good one"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 1 ]] || die "expected c2's ledger row alone"

# 4. A pack (p3) one of whose files a rebuilt pack (p2) counted already, read between p2 and a
# chunk (p4): p3's ingest finds the file counted (DB_PARTIAL) while p4 is being read; p3 is read
# again and counts its other files, p4 is written whole after it.
make_pack() { # DIR NAME HOST SERVICE FILE...: a multilog pack, each file a part from offset 0
	python3 - "$@" <<'PY'
import gzip, hashlib, os, sys
d, name, host, service = sys.argv[1:5]
files = sys.argv[5:]
data = b"".join(open(f, "rb").read() for f in files)
lines = data.count(b"\n")
with open(os.path.join(d, "." + name + ".gz.part"), "wb") as f:
    f.write(gzip.compress(data, mtime=0))
os.rename(os.path.join(d, "." + name + ".gz.part"), os.path.join(d, name + ".gz"))
m = (f"version = 1\nchunk = {name}.gz\nhost = {host}\nservice = {service}\n"
     f"kind = multilog\nsource = {files[0]}\noffset = 0\nlength = {len(data)}\n"
     f"lines = {lines}\nsha256 = {hashlib.sha256(data).hexdigest()}\n"
     f"mtime = {int(os.stat(files[0]).st_mtime)}\n")
for f in files:
    # The part's fingerprint digits: the file's number, as the shipper's are the file's own.
    m += f"part = {int(os.path.basename(f)[1:]):016x} 0 {os.path.getsize(f)}\n"
with open(os.path.join(d, "." + name + ".manifest.part"), "w") as f:
    f.write(m)
os.rename(os.path.join(d, "." + name + ".manifest.part"), os.path.join(d, name + ".manifest"))
PY
}
rm -rf "$T/parts"
mkdir -p "$T/parts"
gen --lines 100000 --seed 1104 --format multilog --host mx4 --service smtp-mx \
	--out "$T/d" --expect "$T/ed"
split -n l/10 -a 1 -d "$T/d" "$T/parts/x"
parts=("$T"/parts/x?)
((${#parts[@]} == 10)) || die "expected 10 files, got ${#parts[@]}"
merge_expect "$T/want" "$T/ed" "$T/ec"
# p3's rescan rolls back what p4's scan streamed meanwhile, and --verbose says how much. p4
# streams only if p3's ingest ends before p4's scan does (the writer takes no batch while it
# ingests): a run whose p4 streamed nothing leaves the rollback untested, so the scenario is run
# again, each time counted exactly, until p4 has streamed (at most 5 runs).
rolled='s/.*p4: ([0-9]+) batches written while scanning, rolled back: '
rolled+='it is written whole after p3$/\1/p'
try=1
while :; do
	db_query "DELETE FROM chunks; DELETE FROM chunk_parts; TRUNCATE event_hourly;
		TRUNCATE relay_hourly; TRUNCATE denied_hourly"
	rm -rf "$in"
	mkdir -p "$in"
	make_pack "$in" p2 mx4 smtp-mx "${parts[9]}"
	make_pack "$in" p3 mx4 smtp-mx "${parts[@]}"
	make_chunk "$in" p4 "$T/c" mx3 smtp-mx multilog
	run_ok "a run with a pack partly counted ($try)"
	grep -q 'p3: 1 of its 10 files were counted by another chunk: counting the other 9' \
		"$T/out" || { cat "$T/out" >&2; die "p3 did not count its other 9 files"; }
	streamed=$(sed -nE "$rolled" "$T/out")
	[[ -n $streamed ]] || { cat "$T/out" >&2; die "p3's rescan did not roll back p4's stream"; }
	# None of p4's streamed batches went into the rows: --verbose reports none as written.
	grep -Eq 'p4: .*\(0 batches written while scanning\)' "$T/out" ||
		{ cat "$T/out" >&2; die "p4's batches, rolled back, are reported as written"; }
	drained "a pack partly counted, between two chunks ($try)" 3
	[[ $(db_query "SELECT COUNT(*) FROM chunk_parts") == 10 ]] || die "expected 10 part rows"
	if ((streamed > 0)); then
		break
	fi
	((try < 5)) || die "p4 streamed nothing before p3's rescan in $try runs: rollback untested"
	try=$((try + 1))
done
exit 0
