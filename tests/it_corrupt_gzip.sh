#!/usr/bin/env bash
# A corrupt or truncated gzip file writes nothing for its chunk, says why (naming the file), makes
# the exit status 1, and does not stop a good file given in the same command.
. "$(dirname "$0")/lib.sh"
need_env RW_MYCNF
db_migrated corrupt_gzip

gen --lines 30000 --seed 301 --host mx1 --out "$T/base" --expect "$T/e-base"
gen --lines 30000 --seed 302 --host mx1 --out "$T/bad" --expect "$T/e-bad"
gen --lines 20000 --seed 303 --host mx2 --out "$T/good" --expect "$T/e-good"
merge_expect "$T/want" "$T/e-base" "$T/e-good"

ingest backfill --defaults-file="$MYCNF" "$T/base" || die "backfill of a good file failed"
db_snapshot "$T/before"

# A byte flipped in the middle of the compressed data.
gzip -n -c "$T/bad" >"$T/flipped.gz"
size=$(stat -c %s "$T/flipped.gz")
python3 - "$T/flipped.gz" "$((size / 2))" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x5A]))
PY
# A gzip cut in the middle, and one that lost only its trailer (CRC and size).
head -c "$((size / 2))" <(gzip -n -c "$T/bad") >"$T/truncated.gz"
head -c "$((size - 4))" <(gzip -n -c "$T/bad") >"$T/notrailer.gz"
# Intact gzip, then a second member that is garbage.
{ gzip -n -c "$T/bad"; printf '\037\213\010\000garbage-not-deflate'; } >"$T/badmember.gz"
# A byte of the trailer's CRC flipped, then one of its length: the scan checks the CRC itself
# (the reader defers it to the scanning thread), the reader the length.
flip_from_end() { # FROM TO BYTES-FROM-END
	python3 - "$1" "$2" "$3" <<'PY'
import sys
src, dst, back = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = bytearray(open(src, "rb").read())
data[-back] ^= 0x01
open(dst, "wb").write(data)
PY
}
gzip -n -c "$T/bad" >"$T/intact.gz"
flip_from_end "$T/intact.gz" "$T/badcrc.gz" 8
flip_from_end "$T/intact.gz" "$T/badlength.gz" 4

must_fail_unchanged() { # FILE REASON
	local rc=0
	ingest backfill --defaults-file="$MYCNF" "$1" >"$T/out" 2>&1 || rc=$?
	[[ $rc == 1 ]] ||
		{ cat "$T/out" >&2; die "backfill $(basename "$1"): exit status $rc, not 1"; }
	# The file's name, then the reason in zlib's words.
	grep -qF "$(basename "$1"): $2" "$T/out" || {
		cat "$T/out" >&2
		die "backfill $(basename "$1"): no error '$(basename "$1"): $2'"
	}
	db_snapshot "$T/after"
	cmp -s "$T/before" "$T/after" || {
		diff "$T/before" "$T/after" | head -n 20 >&2
		die "backfill of $(basename "$1") changed the database"
	}
}
must_fail_unchanged "$T/flipped.gz" "corrupt gzip data ("
must_fail_unchanged "$T/truncated.gz" "truncated gzip data (unexpected end of file)"
must_fail_unchanged "$T/notrailer.gz" "truncated gzip data (unexpected end of file)"
must_fail_unchanged "$T/badmember.gz" "corrupt gzip data ("
must_fail_unchanged "$T/badcrc.gz" "corrupt gzip data (incorrect data check)"
must_fail_unchanged "$T/badlength.gz" "corrupt gzip data (incorrect length check)"

# Bad files around a good one: the good one is counted, the status still says something failed.
gzip -n -c "$T/good" >"$T/good.gz"
rc=0
ingest backfill --defaults-file="$MYCNF" "$T/flipped.gz" "$T/good.gz" "$T/truncated.gz" \
	>"$T/out" 2>&1 || rc=$?
[[ $rc == 1 ]] || { cat "$T/out" >&2; die "mixed backfill: exit status $rc, not 1"; }
dump_views "$T/got"
same_dir "$T/want" "$T/got" || die "the views differ from the good files' counts"
[[ $(db_query "SELECT COUNT(*) FROM chunks") == 2 ]] || die "expected exactly 2 ledger rows"
