# shellcheck shell=bash
# Sourced after lib.sh by the `relaywatch-ingest run` tests: builds drop-directory chunks by hand,
# the way relaywatch-ship leaves them (NAME.gz first, NAME.manifest renamed into place last).
#   count_lines FILE                     '\n' count, plus 1 when the last byte is not '\n'
#   make_chunk DIR NAME FILE HOST SERVICE [KIND]
#   make_chunks DIR HOST SERVICE KIND NAME=FILE...
#   manifest_set DIR NAME KEY VALUE      rewrites one manifest line (a lying manifest)
#   count_files DIR GLOB                 number of entries matching GLOB in DIR
#   requeue DIR                          puts the chunks of DIR/quarantine/ back into DIR (what an
#                                        admin does once the cause is known) and drops their .why

count_lines() {
	local f=$1 n
	n=$(wc -l <"$f")
	if [[ -s $f && $(tail -c 1 "$f" | od -An -tx1 | tr -d ' \n') != 0a ]]; then
		n=$((n + 1))
	fi
	echo "$n"
}

# make_chunks DIR HOST SERVICE KIND NAME=FILE...: many chunks in one process (forks are slow).
make_chunks() {
	python3 - "$@" <<'PY'
import gzip, hashlib, os, sys
d, host, service, kind = sys.argv[1:5]
for arg in sys.argv[5:]:
    name, path = arg.split("=", 1)
    data = open(path, "rb").read()
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    tmp = os.path.join(d, "." + name + ".gz.part")
    with open(tmp, "wb") as f:
        f.write(gzip.compress(data, mtime=0))
    os.rename(tmp, os.path.join(d, name + ".gz"))
    m = (f"version = 1\nchunk = {name}.gz\nhost = {host}\nservice = {service}\n"
         f"kind = {kind}\nsource = {path}\noffset = 0\nlength = {len(data)}\n"
         f"lines = {lines}\nsha256 = {hashlib.sha256(data).hexdigest()}\n"
         f"mtime = {int(os.stat(path).st_mtime)}\n")
    tmp = os.path.join(d, "." + name + ".manifest.part")
    with open(tmp, "w") as f:
        f.write(m)
    os.rename(tmp, os.path.join(d, name + ".manifest"))
PY
}

make_chunk() {
	local dir=$1 name=$2 file=$3 host=$4 service=$5 kind=${6:-syslog}
	gzip -n -c "$file" >"$dir/.$name.gz.part"
	mv "$dir/.$name.gz.part" "$dir/$name.gz"
	cat >"$dir/.$name.manifest.part" <<MANIFEST
version = 1
chunk = $name.gz
host = $host
service = $service
kind = $kind
source = $file
offset = 0
length = $(stat -c %s "$file")
lines = $(count_lines "$file")
sha256 = $(sha256sum <"$file" | cut -d' ' -f1)
mtime = $(stat -c %Y "$file")
MANIFEST
	mv "$dir/.$name.manifest.part" "$dir/$name.manifest"
}

manifest_set() {
	local dir=$1 name=$2 key=$3 value=$4
	sed -i -e "s|^$key = .*|$key = $value|" "$dir/$name.manifest"
	grep -qxF "$key = $value" "$dir/$name.manifest" || die "manifest_set: no $key in $name"
}

count_files() {
	local dir=$1 glob=$2
	find "$dir" -mindepth 1 -maxdepth 1 -name "$glob" | wc -l
}

requeue() {
	local dir=$1 m n
	for m in "$dir"/quarantine/*.manifest; do
		[[ -e $m ]] || continue
		n=$(basename "$m" .manifest)
		[[ ! -e $dir/quarantine/$n.gz ]] || mv "$dir/quarantine/$n.gz" "$dir/"
		mv "$m" "$dir/"
		rm -f "$dir/quarantine/$n.why"
	done
}
