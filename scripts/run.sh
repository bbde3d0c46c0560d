#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# `make run`: the main job on an embedded default. Starts leapd with a 1 GiB
# sparse file as an io_uring backend carved into two tenants' namespaces,
# loads three policies (priority, isolation, statistics), runs a fio job
# through leapio's fio engine for both tenants (one verified with crc32c,
# one rate-limited by the isolation policy), shows leapctl stats, the
# policies' counters and one bpftool map dump, and stops leapd with
# SIGTERM (it drains and exits 0).
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

POL="$BUILD/policies"
ctl() { "$BIN/leapctl" -r "$DIR/rpc.sock" "$@"; }
A_ID=$(ctl --json ctrl list tenant-a | jq -r '.[0].cntlid // .cntlid')
B_ID=$(ctl --json ctrl list tenant-b | jq -r '.[0].cntlid // .cntlid')
# Policy state is pinned under /sys/fs/bpf/leapio/NAME and outlives leapd; start clean.
rm -rf /sys/fs/bpf/leapio/demo_prio /sys/fs/bpf/leapio/demo_iso /sys/fs/bpf/leapio/demo_stats

say "3. Three storage services, each a BPF program the kernel verifier checks at load"
echo "   prio:      tenant-a (cntlid $A_ID) urgent, everything else low; the backend keeps 8 in flight"
echo "   isolation: tenant-b (cntlid $B_ID) limited to 2000 IOPS (token bucket, DEFER when empty)"
echo "   stats:     per-tenant counters and a log2 latency histogram, on the complete hook"
ctl policy load "$POL/prio.bpf.o" --name demo_prio >/dev/null
ctl policy load "$POL/isolation.bpf.o" --name demo_iso >/dev/null
ctl policy load "$POL/stats.bpf.o" --name demo_stats >/dev/null
ctl policy set demo_prio 'rule_enabled[0]=1' "rule_ctrl[0]=$A_ID" 'rule_prio[0]=0' prio_default=3
ctl policy set demo_iso "iops_limit[$B_ID]=2000"
ctl bdev qos disk --inflight 8 --weights '[8,4,1]' >/dev/null
ctl policy attach demo_prio --order 10 >/dev/null
ctl policy attach demo_iso --order 20 >/dev/null
ctl policy attach demo_stats --order 30 >/dev/null
ctl policy list

say "4. fio drives both tenants through leapio's fio engine (build/lib/leapio_fio.so)"
cat >"$DIR/demo.fio" <<FIO
[global]
ioengine=external:$BUILD/lib/leapio_fio.so
thread=1
socket=$DIR/tenant.sock
bs=4k
size=32m

; tenant-a writes 32 MiB at random and reads every block back, checking crc32c
[tenant-a]
ctrl=tenant-a
rw=randwrite
iodepth=16
verify=crc32c
do_verify=1

; tenant-b reads as fast as it can; the isolation policy holds it at 2000 IOPS
[tenant-b]
ctrl=tenant-b
rw=randread
iodepth=16
time_based=1
runtime=4
FIO
cat "$DIR/demo.fio"
echo
(cd "$DIR" && "$BUILD/fio/fio" demo.fio)

say "5. What leapd counted (leapctl stats), and what the policies did (leapctl policy list)"
ctl stats
echo
ctl policy list

say "6. The stats policy's map, rendered by leapctl and as bpftool sees the same pinned bytes"
ctl policy stats demo_stats
echo
echo "\$ bpftool map dump pinned /sys/fs/bpf/leapio/demo_stats/stats_io   (non-empty tenants)"
bpftool -j map dump pinned /sys/fs/bpf/leapio/demo_stats/stats_io |
	jq -c '.[] | .formatted // . | select(.value.reads + .value.writes + .value.other > 0)'

say "7. Policies unloaded (their pins go with them); SIGTERM: leapd drains, flushes and exits"
for p in demo_prio demo_iso demo_stats; do
	ctl policy detach "$p" >/dev/null
	ctl policy unload "$p" >/dev/null
done
kill -TERM "$LEAPD_PID"
wait "$LEAPD_PID"
echo "leapd exited with status $?"
LEAPD_PID=""
tail -n 3 "$DIR/leapd.log"
