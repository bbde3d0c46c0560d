#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# `make run`: the main job on an embedded default. Starts leapd with a 1 GiB
# sparse file as an io_uring backend carved into two tenants' namespaces,
# runs verified I/O from both tenants at once with leap-perf, shows leapd's
# statistics, and stops leapd with SIGTERM (it drains and exits 0).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BIN="$BUILD/bin"
DIR="$(mktemp -d /var/tmp/leapio-run.XXXXXX)"
LEAPD_PID=""

cleanup() {
	[ -n "$LEAPD_PID" ] && kill -TERM "$LEAPD_PID" 2>/dev/null && wait "$LEAPD_PID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

say "1. A 1 GiB sparse file as the backing store: $DIR/disk.img"
truncate -s 1G "$DIR/disk.img"
cat >"$DIR/leapd.json" <<JSON
[
  {"method": "bdev_create", "params": {"name": "disk", "type": "uring",
   "path": "$DIR/disk.img", "block_size": 512}},
  {"method": "ctrl_create", "params": {"name": "tenant-a", "max_qpairs": 4}},
  {"method": "ctrl_create", "params": {"name": "tenant-b", "max_qpairs": 4}},
  {"method": "ns_add", "params": {"ctrl": "tenant-a", "bdev": "disk",
   "offset": 0, "size": 536870912, "lba_size": 512}},
  {"method": "ns_add", "params": {"ctrl": "tenant-b", "bdev": "disk",
   "offset": 536870912, "size": 536870912, "lba_size": 4096}}
]
JSON
cat "$DIR/leapd.json"

say "2. leapd starts from that config (uring backend, O_DIRECT; two virtual NVMe controllers)"
"$BIN/leapd" --foreground -c "$DIR/leapd.json" -r "$DIR/rpc.sock" -s "$DIR/tenant.sock" \
	-l "$DIR/leapd.log" &
LEAPD_PID=$!
for _ in $(seq 1 100); do
	"$BIN/leapctl" -r "$DIR/rpc.sock" info >/dev/null 2>&1 && break
	sleep 0.1
done
"$BIN/leapctl" -r "$DIR/rpc.sock" info
"$BIN/leapctl" -r "$DIR/rpc.sock" ns list

say "3. Two tenants attach over shared memory and run verified I/O at the same time"
echo "   tenant-a: random 70/30 read/write, 4 KiB, QD 16, every read checked against its LBA pattern"
echo "   tenant-b: random reads and writes, 16 KiB, QD 8, 2 queue pairs, verified too"
"$BIN/leap-perf" -s "$DIR/tenant.sock" -c tenant-a -q 16 -o 4k -w randrw -M 70 -t 4 \
	--verify --span 64M >"$DIR/a.out" &
A=$!
"$BIN/leap-perf" -s "$DIR/tenant.sock" -c tenant-b -q 8 -o 16k -w randrw -P 2 -t 4 \
	--verify --span 64M >"$DIR/b.out" &
B=$!
wait "$A"
wait "$B"
cat "$DIR/a.out" "$DIR/b.out"

say "4. What leapd counted (leapctl stats)"
"$BIN/leapctl" -r "$DIR/rpc.sock" stats

say "5. SIGTERM: leapd stops accepting, drains, flushes the backend and exits"
kill -TERM "$LEAPD_PID"
wait "$LEAPD_PID"
echo "leapd exited with status $?"
LEAPD_PID=""
tail -n 3 "$DIR/leapd.log"
