#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# The four storage services (policies/*.bpf.c) in a real leapd, with
# assertions on data patterns, statuses and counters: isolation (rate
# limit ceiling and a live limit change, LBA areas), snapshot routing
# (pattern A / snapshot / pattern B, mixed and unaligned ranges, the frozen
# snapshot namespace, rollback, activation under a verifying load),
# statistics (leapctl policy stats == bpftool map dump == what the tenant
# did), priority (classification counters with the arbiter in place).
# Rates are bounded from above only: an upper bound holds on any machine,
# the ±5 % accuracy is a benchmark (bench/RESULTS.md).

load helpers

POL="$E2E_BUILD/policies"
BLKIO="$E2E_BUILD/tests/tools/blkio"
LEAP_PERF="$E2E_BUILD/bin/leap-perf"
PERF_PID=""

setup() {
	leapd_dir
	cat >"$LEAPD_DIR/s.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 33554432}},
	  {"method": "bdev_create", "params": {"name": "base", "type": "mem", "size": 16777216}},
	  {"method": "bdev_create", "params": {"name": "ovl", "type": "mem", "size": 16777216}},
	  {"method": "bdev_create", "params": {"name": "ovlu", "type": "uring",
	   "path": "$LEAPD_DIR/ovlu.img", "size": 16777216}},
	  {"method": "ctrl_create", "params": {"name": "t1", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "t2", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "raw", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "live", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "snap", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "ovraw", "max_qpairs": 4}},
	  {"method": "ns_add", "params": {"ctrl": "t1", "bdev": "m0", "shared": true}},
	  {"method": "ns_add", "params": {"ctrl": "t2", "bdev": "m0", "shared": true}},
	  {"method": "ns_add", "params": {"ctrl": "raw", "bdev": "m0", "shared": true}},
	  {"method": "ns_add", "params": {"ctrl": "live", "bdev": "base", "shared": true}},
	  {"method": "ns_add", "params": {"ctrl": "snap", "bdev": "base", "shared": true}},
	  {"method": "ns_add", "params": {"ctrl": "ovraw", "bdev": "ovlu", "shared": true}}
	]
	EOF
	leapd_start "$LEAPD_DIR/s.json"
}

teardown() {
	if [ -n "$PERF_PID" ]; then
		kill -KILL "$PERF_PID" 2>/dev/null || true
		wait "$PERF_PID" 2>/dev/null || true
	fi
	leapd_teardown
	policy_pins_cleanup
}


blk() { timeout 30 "$BLKIO" "$LEAPD_TENANT" "$@"; }
perf() { timeout 60 "$LEAP_PERF" -s "$LEAPD_TENANT" "$@"; }
cntlid() { leapctl_t --json ctrl list "$1" | jq -r '.[0].cntlid // .cntlid'; }
# word NAME MAP KEY IDX: one 64-bit word of an array map through leapctl.
word() { leapctl_t --json policy dump "$1" "$2" | jq -r ".values[$3][$4]"; }

@test "isolation: the IOPS and bytes/s limits hold, and a live change takes effect at once" {
	local iso t1
	iso=$(pname iso)
	t1=$(cntlid t1)
	leapctl_t policy load "$POL/isolation.bpf.o" --name "$iso"
	leapctl_t policy attach "$iso" --ctrl t1
	leapctl_t policy set "$iso" "iops_limit[$t1]=2000"
	run perf -c t1 -w randread -q 16 -t 2 --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .errors <<<"$output")" -eq 0 ]
	# the bucket holds 50 ms of the rate on top of rate x time
	[ "$(jq -r .ios <<<"$output")" -le $((2000 * 2 * 105 / 100 + 100)) ]
	[ "$(jq -r .ios <<<"$output")" -gt 0 ]
	[ "$(word "$iso" iso_counts "$t1" 1)" -gt 0 ]
	# Lower it live, no reload: the next run sees the new ceiling.
	leapctl_t policy set "$iso" "iops_limit[$t1]=500"
	run perf -c t1 -w randread -q 16 -t 2 --json
	[ "$(jq -r .ios <<<"$output")" -le $((500 * 2 * 105 / 100 + 100)) ]
	# Bytes per second: 1 MiB/s of 4 KiB reads is 256 I/Os per second.
	leapctl_t policy set "$iso" "iops_limit[$t1]=0" "bps_limit[$t1]=1048576"
	run perf -c t1 -w randread -o 4096 -q 8 -t 2 --json
	[ "$(jq -r .ios <<<"$output")" -le $((256 * 2 * 105 / 100 + 100)) ]
	# Another tenant of the same backend is not limited.
	run perf -c t2 -w randread -q 16 -t 1 --json
	[ "$(jq -r .errors <<<"$output")" -eq 0 ]
	[ "$(jq -r .ios <<<"$output")" -gt 1200 ]
	leapd_stop
}

@test "isolation: LBA areas carve one backend; outside the area is LBA Out of Range, untouched" {
	local iso t1 t2
	iso=$(pname iso)
	t1=$(cntlid t1)
	t2=$(cntlid t2)
	leapctl_t policy load "$POL/isolation.bpf.o" --name "$iso"
	leapctl_t policy attach "$iso" --ctrl t1
	leapctl_t policy attach "$iso" --ctrl t2
	leapctl_t policy set "$iso" "area_base[$t1]=0" "area_nlb[$t1]=1000" \
		"area_base[$t2]=1000" "area_nlb[$t2]=1000"
	blk t1 1 write 0 8 1
	blk t2 1 write 0 8 2
	blk t1 1 check 0:8:1
	blk t2 1 check 0:8:2
	# Both live in m0: t2's block 0 is m0's block 1000 (seen raw, unremapped).
	blk raw 1 check 0:8:1 1000:8:2:0
	# Outside the area, or straddling its end: refused before the backend.
	blk raw 1 write 990 20 5
	run blk t1 1 status 1 995 10
	[ "$output" = "status sct=0 sc=0x80" ]
	run blk t1 1 status 2 1000 1
	[ "$output" = "status sct=0 sc=0x80" ]
	blk raw 1 check 990:20:5
	[ "$(word "$iso" iso_counts "$t1" 2)" -eq 2 ]
	leapd_stop
}

@test "snapshot: A, snapshot, B over mixed and unaligned ranges; live reads B, snapshot reads A, rollback reads A" {
	local s live snap
	s=$(pname snap)
	live=$(cntlid live)
	snap=$(cntlid snap)
	leapctl_t policy load "$POL/snapshot.bpf.o" --name "$s"
	leapctl_t policy set "$s" overlay_bdev=bdev:ovl "live_ctrl=$live" live_nsid=1 \
		"snap_ctrl=$snap" snap_nsid=1
	leapctl_t policy attach "$s" --ctrl live
	leapctl_t policy attach "$s" --ctrl snap
	blk live 1 write 0 256 1
	blk live 1 write 256 256 1
	leapctl_t policy set "$s" active=1
	blk live 1 write 10 20 2
	blk live 1 write 100 1 2
	blk live 1 write 200 3 2
	blk live 1 write 300 77 2
	# One command across mixed runs: split at every boundary, each part from its backend.
	run blk live 1 read 0 256
	[ "$output" = "seeds: 0:1 10:2 30:1 100:2 101:1 200:2 203:1" ]
	run blk live 1 read 256 256
	[ "$output" = "seeds: 256:1 300:2 377:1" ]
	[ "$(leapctl_t --json policy dump "$s" snap_counts | jq -r '.values[0][3]')" -gt 0 ]
	# The snapshot namespace serves the frozen image, and refuses writes.
	run blk snap 1 read 0 256
	[ "$output" = "seeds: 0:1" ]
	run blk snap 1 read 256 256
	[ "$output" = "seeds: 256:1" ]
	run blk snap 1 status 1 0 1
	[ "$output" = "status sct=0 sc=0x20" ]
	# The base itself never saw B.
	run blk live 1 status 2 0 1
	[ "$output" = "status sct=0 sc=0x00" ]
	# Rollback: drop the overlay, live reads A again.
	leapctl_t policy set "$s" active=0
	leapctl_t policy clear "$s" snap_bitmap
	run blk live 1 read 0 256
	[ "$output" = "seeds: 0:1" ]
	run blk live 1 read 256 256
	[ "$output" = "seeds: 256:1" ]
	leapd_stop
}

@test "snapshot: taken under a verifying load, the load sees no mismatch" {
	local s live
	s=$(pname snap)
	live=$(cntlid live)
	leapctl_t policy load "$POL/snapshot.bpf.o" --name "$s"
	leapctl_t policy set "$s" overlay_bdev=bdev:ovl "live_ctrl=$live" live_nsid=1
	leapctl_t policy attach "$s" --ctrl live
	perf -c live -w randrw -q 16 -t 3 --verify --span 8388608 --json >"$LEAPD_DIR/p.json" &
	PERF_PID=$!
	sleep 1
	leapctl_t policy set "$s" active=1
	wait "$PERF_PID"
	rc=$?
	PERF_PID=""
	[ "$rc" -eq 0 ]
	[ "$(jq -r .errors "$LEAPD_DIR/p.json")" -eq 0 ]
	[ "$(jq -r .verify_mismatches "$LEAPD_DIR/p.json")" -eq 0 ]
	# Writes after activation went to the overlay.
	[ "$(leapctl_t --json policy dump "$s" snap_counts | jq -r '.values[0][0]')" -gt 0 ]
	leapd_stop
}

# ---- issue 11, class 9: a read racing an overlay write --------------------------

@test "snapshot: a read racing a write of the same blocks returns old or new data, never the overlay's" {
	local s pr live off
	s=$(pname snap)
	pr=$(pname prio)
	live=$(cntlid live)
	leapctl_t policy load "$POL/snapshot.bpf.o" --name "$s"
	leapctl_t policy set "$s" overlay_bdev=bdev:ovlu "live_ctrl=$live" live_nsid=1
	# Hold overlay writes back for certain: one command in flight at the overlay,
	# reads classed urgent and writes low, so a read can overtake a queued write.
	leapctl_t bdev qos ovlu --inflight 1
	leapctl_t policy load "$POL/prio.bpf.o" --name "$pr"
	leapctl_t policy set "$pr" "rule_enabled[0]=1" "rule_opcode[0]=2" "rule_prio[0]=0" \
		"rule_enabled[1]=1" "rule_opcode[1]=1" "rule_prio[1]=3"
	leapctl_t policy attach "$pr" --ctrl live --order 10
	leapctl_t policy attach "$s" --ctrl live --order 20
	# Base: seed 1. Overlay: seed 50, which no write of this test produces.
	for off in $(seq 0 256 4096); do
		blk live 1 write "$off" 256 1
		blk ovraw 1 write "$off" 256 50
	done
	leapctl_t policy set "$s" active=1
	run timeout 60 "$E2E_BUILD/tests/tools/snaprace" "$LEAPD_TENANT" live 4096 3
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep '^rounds=' <<<"$output" | cut -d= -f2)" -gt 100 ]
	[ "$(grep '^violations=' <<<"$output" | cut -d= -f2)" -eq 0 ]
	# The race did happen: some reads ran while their write was in flight (and saw old data).
	[ "$(grep '^old=' <<<"$output" | cut -d= -f2)" -gt 0 ]
	leapd_stop
}

@test "stats: leapctl policy stats equals bpftool's dump and what the tenant did" {
	local st t1
	st=$(pname stats)
	t1=$(cntlid t1)
	leapctl_t policy load "$POL/stats.bpf.o" --name "$st"
	leapctl_t policy attach "$st"
	run perf -c t1 -w randrw -M 70 -q 8 -t 1 --json
	[ "$status" -eq 0 ]
	reads=$(jq -r .reads <<<"$output")
	writes=$(jq -r .writes <<<"$output")
	run leapctl_t --json policy stats "$st"
	[ "$status" -eq 0 ]
	row=$(jq -c ".[] | select(.tenant == $t1)" <<<"$output")
	[ "$(jq -r .reads <<<"$row")" -eq "$reads" ]
	[ "$(jq -r .writes <<<"$row")" -eq "$writes" ]
	[ "$(jq -r .errors <<<"$row")" -eq 0 ]
	[ "$(jq -r '.histogram | add' <<<"$row")" -eq $((reads + writes)) ]
	# The same bytes through bpftool, from the pinned map.
	bt=$(bpftool -j map dump pinned "/sys/fs/bpf/leapio/$st/stats_io")
	[ "$(jq -r ".[] | select(.formatted.key == $t1) | .formatted.value.reads" <<<"$bt")" -eq "$reads" ]
	[ "$(jq -r ".[] | select(.formatted.key == $t1) | .formatted.value.writes" <<<"$bt")" -eq "$writes" ]
	bl=$(bpftool -j map dump pinned "/sys/fs/bpf/leapio/$st/stats_lat")
	[ "$(jq -c ".[] | select(.formatted.key == $t1) | .formatted.value.bucket" <<<"$bl")" = "$(jq -c .histogram <<<"$row")" ]
	run leapctl_t policy stats "$st"
	[[ "$output" == *"P99_US"* ]]
	leapd_stop
}

@test "priority: classes by tenant and opcode, chained before isolation and stats" {
	local pr iso st t1 t2
	pr=$(pname prio)
	iso=$(pname iso)
	st=$(pname stats)
	t1=$(cntlid t1)
	t2=$(cntlid t2)
	leapctl_t bdev qos m0 --inflight 2 --weights '[8,4,1]'
	run leapctl_t --json bdev list m0
	[ "$(jq -r '.[0].qos.inflight // .qos.inflight' <<<"$output")" -eq 2 ]
	leapctl_t policy load "$POL/prio.bpf.o" --name "$pr"
	leapctl_t policy load "$POL/isolation.bpf.o" --name "$iso"
	leapctl_t policy load "$POL/stats.bpf.o" --name "$st"
	# t1 urgent, t2's writes low, the rest medium (prio_default).
	leapctl_t policy set "$pr" "rule_enabled[0]=1" "rule_ctrl[0]=$t1" "rule_prio[0]=0" \
		"rule_enabled[1]=1" "rule_ctrl[1]=$t2" "rule_opcode[1]=1" "rule_prio[1]=3"
	leapctl_t policy attach "$pr" --order 10
	leapctl_t policy attach "$iso" --order 20
	leapctl_t policy attach "$st" --order 30
	perf -c t2 -w randrw -M 50 -q 32 -t 2 --json >"$LEAPD_DIR/bg.json" &
	PERF_PID=$!
	run perf -c t1 -w randread -q 1 -t 1 --json
	[ "$status" -eq 0 ]
	fg=$(jq -r .ios <<<"$output")
	wait "$PERF_PID"
	PERF_PID=""
	[ "$(jq -r .errors "$LEAPD_DIR/bg.json")" -eq 0 ]
	bgw=$(jq -r .writes "$LEAPD_DIR/bg.json")
	bgr=$(jq -r .reads "$LEAPD_DIR/bg.json")
	# Every classified command counted once in its class (fg reads urgent, bg writes low).
	[ "$(word "$pr" prio_counts 0 0)" -eq "$fg" ]
	[ "$(word "$pr" prio_counts 3 0)" -eq "$bgw" ]
	[ "$(word "$pr" prio_counts 2 0)" -eq "$bgr" ]
	# The whole chain ran: stats saw every command of both tenants.
	[ "$(word "$st" stats_io "$t2" 0)" -eq "$bgr" ]
	[ "$(word "$st" stats_io "$t2" 1)" -eq "$bgw" ]
	leapd_stop
}
