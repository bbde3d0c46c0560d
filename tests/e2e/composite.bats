#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# Composite backends in a real leapd (issue 14), driven through leapctl,
# fio (the leapio engine) and leap-perf: a fault backend that hangs gives the
# tenant a timeout status instead of a hang; a mirror of a uring file and a
# mem backend keeps a crc32c-verifying fio job error-free while a leg starts
# failing every write, and re-adding the healed leg copies only the regions
# written meanwhile, after which each leg on its own holds exactly what fio
# wrote (a second mirror of two files is compared with cmp); the same with
# a remote leg (the nvme-tcp backend to a second leapd whose process is
# killed mid-verify and restarted); a failing read is served by the other
# leg; bdev list shows resync progress and the config
# round-trips a degraded mirror; a stripe's legs reassemble into the image
# fio verifies; the stats and isolation policies behave on a mirror as on a
# plain backend.

load helpers

FIO="$E2E_BUILD/fio/fio"
ENGINE="$E2E_BUILD/lib/leapio_fio.so"
LEAP_PERF="$E2E_BUILD/bin/leap-perf"
POL="$E2E_BUILD/policies"
FIO_PID=""

setup() {
	leapd_dir
	TGT_PID=""
	TGT_DIR="$LEAPD_DIR/tgt"
}

teardown() {
	local p
	# Only the processes this test started, by PID.
	for p in "$FIO_PID" "$TGT_PID"; do
		[ -n "$p" ] || continue
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -f "$TGT_DIR/leapd.log" ]; then
		echo "---- target log ----"
		tail -n 40 "$TGT_DIR/leapd.log"
	fi
	leapd_teardown
	policy_pins_cleanup
}

need_fio() {
	[ -x "$FIO" ] || skip "fio 3.33 is not built in $E2E_BUILD/fio (make deps)"
	[ -f "$ENGINE" ] || skip "$ENGINE is not built (make)"
}

perf() { timeout 60 "$LEAP_PERF" -s "$LEAPD_TENANT" "$@"; }
# pj JQ: a field of leap-perf's JSON line in $output (stderr lines around it ignored).
pj() { grep '^{' <<<"$output" | jq -r "$1"; }

# fio_t OUT ARGS...: fio with the engine against this test's leapd, JSON report in OUT.
fio_t() {
	local out=$1
	shift
	timeout -k 10 120 "$FIO" --ioengine="external:$ENGINE" --socket="$LEAPD_TENANT" \
		--verify_state_save=0 --thread=1 --output-format=json --output="$out" "$@"
}

# bdev_json NAME: the bdev's bdev_list entry.
bdev_json() {
	leapctl_t --json bdev list "$1" | jq -c '.[0]'
}

# leg_field MIRROR LEG JQ: a field of one leg's entry.
leg_field() {
	bdev_json "$1" | jq -r ".legs[] | select(.name == \"$2\") | $3"
}

# wait_state NAME STATE: poll bdev_list until the bdev's state is STATE (30 s at most).
wait_state() {
	local i
	for i in $(seq 1 300); do
		[ "$(bdev_json "$1" | jq -r .state)" = "$2" ] && return 0
		sleep 0.1
	done
	echo "bdev $1 never reached state $2: $(bdev_json "$1")" >&2
	return 1
}

# ns_writes CTRL: writes leapd counted on the controller's namespace 1.
ns_writes() {
	leapctl_t --json stats --ctrl "$1" --ns 1 | jq -r '.controllers[0].namespaces[0].writes'
}

@test "fault: a hung device with io_timeout_ms answers the tenant with a timeout, not a hang" {
	cat >"$LEAPD_DIR/c.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 16777216}},
	  {"method": "bdev_create",
	   "params": {"name": "f0", "type": "fault", "base": "m0", "io_timeout_ms": 300}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 2}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "f0"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/c.json"
	leapctl_t bdev fault f0 --ops r --action hang
	[ "$(bdev_json f0 | jq -r .state)" = "hanging" ]
	# Every read is held, aborted at 300 ms and answered: leap-perf ends on time.
	start=$(date +%s%N)
	run perf -c c0 -w randread -q 4 -t 1 --json
	end=$(date +%s%N)
	[ "$status" -eq 1 ]
	[[ "$output" == *"first status sct 3 sc 0x71"* ]]
	errors=$(pj .errors)
	[ "$errors" -ge 4 ]
	[ $(((end - start) / 1000000)) -lt 10000 ]
	[ "$(bdev_json f0 | jq -r .fault.aborted)" -eq "$errors" ]
	[ "$(bdev_json f0 | jq -r .fault.held)" -eq 0 ]
	# Writes were never held; healed, reads work again; leapd is fine.
	run perf -c c0 -w randwrite -q 8 -t 1 --json
	[ "$status" -eq 0 ]
	leapctl_t bdev fault f0 --clear
	run perf -c c0 -w randrw -q 8 -t 1 --verify --json
	[ "$status" -eq 0 ]
	[ "$(pj .errors)" -eq 0 ]
	# The timeout and the rule are in the saved config.
	run leapctl_t config save
	[ "$(jq -r '.[] | select(.params.name == "f0") | .params.io_timeout_ms' <<<"$output")" -eq 300 ]
	leapd_stop
}

@test "fault: bad rules are refused with the field named" {
	cat >"$LEAPD_DIR/c.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 1048576}},
	  {"method": "bdev_create", "params": {"name": "f0", "type": "fault", "base": "m0"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/c.json"
	run leapctl_t bdev fault f0 --ops x
	[ "$status" -eq 1 ]
	[[ "$output" == *"'ops' is a set of r (reads), w (writes), f (flushes), got 'x'"* ]]
	run leapctl_t bdev fault f0 --action fail --lba 4096
	[ "$status" -eq 1 ]
	[[ "$output" == *"beyond the bdev's 2048"* ]]
	run leapctl_t bdev fault m0 --action fail
	[ "$status" -eq 1 ]
	[[ "$output" == *"bdev 'm0' is a mem bdev, not fault"* ]]
	leapd_stop
}

# A mirror "mir" of fu (fault over the file u0) and a leg $2 (mem m0 or file u1),
# 1 MiB regions over 64 MiB; c0 uses the mirror, cu and cleg each leg directly.
mirror_config() {
	local second=$1
	cat >"$LEAPD_DIR/m.json" <<-EOF
	[
	  {"method": "bdev_create",
	   "params": {"name": "u0", "type": "uring", "path": "$LEAPD_DIR/u0.img", "size": 67108864}},
	  {"method": "bdev_create", "params": {"name": "fu", "type": "fault", "base": "u0"}},
	  $second,
	  {"method": "bdev_create",
	   "params": {"name": "mir", "type": "mirror", "legs": ["fu", "leg2"], "region_size": 1048576}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 2}},
	  {"method": "ctrl_create", "params": {"name": "cu", "max_qpairs": 2}},
	  {"method": "ctrl_create", "params": {"name": "cleg", "max_qpairs": 2}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "mir"}},
	  {"method": "ns_add", "params": {"ctrl": "cu", "bdev": "u0"}},
	  {"method": "ns_add", "params": {"ctrl": "cleg", "bdev": "leg2"}}
	]
	EOF
}

# The verifying job: 16 MiB of the 64 MiB written at 4000 IOPS (about 1 s), then read back.
JOB=(--name=v --rw=randwrite --bs=4k --size=16M --iodepth=16 --verify=crc32c --randseed=1234)

# Start the job on c0, fail every write of fu mid-run, wait: no fio error, fu faulty.
fail_a_leg_under_fio() {
	fio_t "$LEAPD_DIR/fio.json" --ctrl=c0 --rate_iops=4000 "${JOB[@]}" &
	FIO_PID=$!
	for _ in $(seq 1 100); do
		[ "$(ns_writes c0)" -gt 300 ] && break
		sleep 0.02
	done
	leapctl_t bdev fault fu --ops w --action fail
	wait "$FIO_PID"
	FIO_PID=""
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/fio.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].write.total_ios' "$LEAPD_DIR/fio.json")" -eq 4096 ]
	[ "$(jq -r '.jobs[0].read.total_ios' "$LEAPD_DIR/fio.json")" -eq 4096 ]
	[ "$(leapctl_t --json stats --ctrl c0 --ns 1 | jq -r '.controllers[0].namespaces[0].error_count')" -eq 0 ]
	[ "$(bdev_json mir | jq -r .state)" = "degraded" ]
	[ "$(leg_field mir fu .state)" = "faulty" ]
	[ "$(leg_field mir leg2 .state)" = "active" ]
}

# Heal fu and add it back: the resync copies exactly the regions marked dirty.
heal_and_readd() {
	local dirty
	dirty=$(leg_field mir fu .dirty_regions)
	# fio wrote 16 of the 64 regions; only what it wrote after the fault is dirty.
	[ "$dirty" -ge 1 ]
	[ "$dirty" -le 16 ]
	leapctl_t bdev fault fu --clear
	leapctl_t bdev mirror add-leg mir fu
	wait_state mir optimal
	[ "$(leg_field mir fu .resync.regions_copied)" -eq "$dirty" ]
	[ "$(leg_field mir fu .resync.bytes_copied)" -eq $((dirty << 20)) ]
	[ "$(leg_field mir fu .dirty_regions)" -eq 0 ]
}

@test "mirror of a uring file and mem: fio verify survives a leg failing every write; the re-added leg gets only what it missed" {
	need_fio
	mirror_config '{"method": "bdev_create", "params": {"name": "leg2", "type": "mem", "size": 67108864}}'
	leapd_start "$LEAPD_DIR/m.json"
	fail_a_leg_under_fio
	heal_and_readd
	# Each leg on its own now holds what fio wrote: the file, and the mem leg read back.
	fio_t "$LEAPD_DIR/u.json" --ctrl=cu "${JOB[@]}" --verify_only=1
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/u.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].read.total_ios' "$LEAPD_DIR/u.json")" -eq 4096 ]
	fio_t "$LEAPD_DIR/l.json" --ctrl=cleg "${JOB[@]}" --verify_only=1
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/l.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].read.total_ios' "$LEAPD_DIR/l.json")" -eq 4096 ]
	# And through the mirror, reads spread over both legs again.
	fio_t "$LEAPD_DIR/r.json" --ctrl=c0 "${JOB[@]}" --verify_only=1
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/r.json")" -eq 0 ]
	leapd_stop
}

@test "mirror of two files: after the bitmap resync the files are identical (cmp)" {
	need_fio
	mirror_config "{\"method\": \"bdev_create\", \"params\": {\"name\": \"leg2\", \"type\": \"uring\", \"path\": \"$LEAPD_DIR/u1.img\", \"size\": 67108864}}"
	leapd_start "$LEAPD_DIR/m.json"
	fail_a_leg_under_fio
	! cmp -s "$LEAPD_DIR/u0.img" "$LEAPD_DIR/u1.img"
	heal_and_readd
	leapd_stop
	cmp "$LEAPD_DIR/u0.img" "$LEAPD_DIR/u1.img"
}

@test "mirror: a leg failing reads is passed over, the tenant sees every byte" {
	need_fio
	mirror_config '{"method": "bdev_create", "params": {"name": "leg2", "type": "mem", "size": 67108864}}'
	leapd_start "$LEAPD_DIR/m.json"
	fio_t "$LEAPD_DIR/w.json" --ctrl=c0 "${JOB[@]}" --do_verify=0
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/w.json")" -eq 0 ]
	leapctl_t bdev fault fu --ops r --action fail
	fio_t "$LEAPD_DIR/r.json" --ctrl=c0 "${JOB[@]}" --verify_only=1
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/r.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].read.total_ios' "$LEAPD_DIR/r.json")" -eq 4096 ]
	[ "$(bdev_json mir | jq -r .read_retries)" -ge 1 ]
	[ "$(leg_field mir fu .state)" = "faulty" ]
	[ "$(leg_field mir fu .read_errors)" -ge 1 ]
	# A read error loses no data: nothing to copy when it comes back.
	[ "$(leg_field mir fu .dirty_regions)" -eq 0 ]
	leapd_stop
}

@test "mirror: a hung leg with a timeout costs the tenant no error" {
	cat >"$LEAPD_DIR/h.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 16777216}},
	  {"method": "bdev_create", "params": {"name": "m1", "type": "mem", "size": 16777216}},
	  {"method": "bdev_create",
	   "params": {"name": "f1", "type": "fault", "base": "m1", "io_timeout_ms": 200}},
	  {"method": "bdev_create", "params": {"name": "mir", "type": "mirror", "legs": ["m0", "f1"]}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 2}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "mir"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/h.json"
	leapctl_t bdev fault f1 --action hang
	run perf -c c0 -w randrw -q 16 -t 2 --verify --json
	[ "$status" -eq 0 ]
	[ "$(pj .errors)" -eq 0 ]
	[ "$(pj .verify_mismatches)" -eq 0 ]
	[ "$(pj .ios)" -gt 1000 ]
	[ "$(leg_field mir f1 .state)" = "faulty" ]
	[ "$(bdev_json f1 | jq -r .fault.aborted)" -ge 1 ]
	leapd_stop
}

@test "mirror: bdev list shows resync progress; config save round-trips a degraded mirror" {
	cat >"$LEAPD_DIR/p.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 268435456}},
	  {"method": "bdev_create", "params": {"name": "m1", "type": "mem", "size": 268435456}},
	  {"method": "bdev_create",
	   "params": {"name": "mir", "type": "mirror", "legs": ["m0", "m1"],
	              "resync_rate_mbps": 50, "read_policy": "round_robin"}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 2}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "mir"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/p.json"
	# A full rebuild at 50 MB/s: 256 MiB take about 5 s.
	leapctl_t bdev mirror resync mir m1 --full
	sleep 0.5
	run leapctl_t bdev list
	[[ "$output" == *"mir "*"resyncing"*"m1 resyncing "*"%"* ]]
	p1=$(leg_field mir m1 .resync.percent)
	sleep 0.5
	p2=$(leg_field mir m1 .resync.percent)
	[ "$p2" -gt "$p1" ]
	[ "$p2" -lt 100 ]
	[ "$(leg_field mir m1 .resync.regions_total)" -eq 256 ]
	# Saved mid-resync: m1 comes back degraded, everything to copy.
	leapctl_t config save "$LEAPD_DIR/saved.json"
	# Tenant I/O goes on meanwhile.
	run perf -c c0 -w randrw -q 8 -t 1 --verify --json
	[ "$status" -eq 0 ]
	[ "$(bdev_json mir | jq -r .state)" = "resyncing" ]
	[ "$(jq -c '.[] | select(.params.name == "mir") | .params.degraded' "$LEAPD_DIR/saved.json")" = '["m1"]' ]
	[ "$(jq -r '.[] | select(.params.name == "mir") | .params.read_policy' "$LEAPD_DIR/saved.json")" = "round_robin" ]
	leapd_stop
	leapd_start "$LEAPD_DIR/saved.json"
	[ "$(bdev_json mir | jq -r .state)" = "degraded" ]
	[ "$(leg_field mir m1 .state)" = "faulty" ]
	[ "$(leg_field mir m1 .dirty_regions)" -eq 256 ]
	leapctl_t rpc bdev_mirror_set '{"name": "mir", "resync_rate_mbps": 0}'
	leapctl_t bdev mirror add-leg mir m1
	wait_state mir optimal
	[ "$(leg_field mir m1 .resync.regions_copied)" -eq 256 ]
	# And a config saved in sync says nothing of degraded legs.
	run leapctl_t config save
	[ "$(jq -c '.[] | select(.params.name == "mir") | .params.degraded' <<<"$output")" = "null" ]
	run leapctl_t bdev mirror remove-leg mir m0
	[ "$status" -eq 0 ]
	run leapctl_t bdev mirror remove-leg mir m1
	[ "$status" -eq 1 ]
	[[ "$output" == *"last in-sync leg"* ]]
	run leapctl_t bdev mirror frobnicate mir m1
	[ "$status" -eq 2 ]
	leapd_stop
}

@test "stripe: writes of every size across 16 KiB chunks land where RAID-0 puts them" {
	need_fio
	cat >"$LEAPD_DIR/s.json" <<-EOF
	[
	  {"method": "bdev_create",
	   "params": {"name": "l0", "type": "uring", "path": "$LEAPD_DIR/l0.img", "size": 8388608}},
	  {"method": "bdev_create",
	   "params": {"name": "l1", "type": "uring", "path": "$LEAPD_DIR/l1.img", "size": 8388608}},
	  {"method": "bdev_create",
	   "params": {"name": "st", "type": "stripe", "legs": ["l0", "l1"], "chunk_size": 16384}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 2}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "st"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/s.json"
	[ "$(bdev_json st | jq -r .size)" -eq 16777216 ]
	# 512 B to 128 KiB at any 512-byte offset: inside one chunk, across two, across eight.
	local job=(--name=s --rw=randwrite --bsrange=512-128k --blockalign=512 --size=16M
		--iodepth=8 --verify=crc32c --randseed=77)
	fio_t "$LEAPD_DIR/s1.json" --ctrl=c0 "${job[@]}"
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/s1.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].write.total_ios' "$LEAPD_DIR/s1.json")" -gt 100 ]
	leapd_stop
	# The reference: the stripe image rebuilt from the legs by the RAID-0 map.
	img="$LEAPD_DIR/image.img"
	for c in $(seq 0 1023); do
		dd if="$LEAPD_DIR/l$((c % 2)).img" of="$img" bs=16384 count=1 \
			skip=$((c / 2)) seek="$c" conv=notrunc status=none
	done
	cat >"$LEAPD_DIR/r.json" <<-EOF
	[
	  {"method": "bdev_create",
	   "params": {"name": "img", "type": "uring", "path": "$img", "size": 16777216}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 2}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "img"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/r.json"
	fio_t "$LEAPD_DIR/s2.json" --ctrl=c0 "${job[@]}" --verify_only=1
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/s2.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].read.total_ios' "$LEAPD_DIR/s2.json")" -eq \
		"$(jq -r '.jobs[0].write.total_ios' "$LEAPD_DIR/s1.json")" ]
	leapd_stop
}

@test "policies on a mirror: stats counts what the tenant did, isolation holds its limit" {
	cat >"$LEAPD_DIR/q.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 33554432}},
	  {"method": "bdev_create", "params": {"name": "m1", "type": "mem", "size": 33554432}},
	  {"method": "bdev_create", "params": {"name": "mir", "type": "mirror", "legs": ["m0", "m1"]}},
	  {"method": "ctrl_create", "params": {"name": "t1", "max_qpairs": 4}},
	  {"method": "ns_add", "params": {"ctrl": "t1", "bdev": "mir"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/q.json"
	local st iso t1
	st=$(pname stats)
	iso=$(pname iso)
	t1=$(leapctl_t --json ctrl list t1 | jq -r '.[0].cntlid // .cntlid')
	leapctl_t policy load "$POL/stats.bpf.o" --name "$st"
	leapctl_t policy attach "$st"
	run perf -c t1 -w randrw -M 70 -q 8 -t 1 --json
	[ "$status" -eq 0 ]
	reads=$(pj .reads)
	writes=$(pj .writes)
	run leapctl_t --json policy stats "$st"
	row=$(jq -c ".[] | select(.tenant == $t1)" <<<"$output")
	[ "$(jq -r .reads <<<"$row")" -eq "$reads" ]
	[ "$(jq -r .writes <<<"$row")" -eq "$writes" ]
	[ "$(jq -r .errors <<<"$row")" -eq 0 ]
	leapctl_t policy load "$POL/isolation.bpf.o" --name "$iso"
	leapctl_t policy attach "$iso" --ctrl t1
	leapctl_t policy set "$iso" "iops_limit[$t1]=2000"
	run perf -c t1 -w randwrite -q 16 -t 2 --json
	[ "$status" -eq 0 ]
	[ "$(pj .ios)" -le $((2000 * 2 * 105 / 100 + 100)) ]
	[ "$(pj .ios)" -gt 0 ]
	# Both legs took every write.
	[ "$(bdev_json mir | jq -r .state)" = "optimal" ]
	leapd_stop
}

# ---- a remote leg (the nvme-tcp backend to a second leapd) ------------------------------

RNQN=nqn.2024-01.io.leapio:mirror-remote
tgtctl() { "$LEAPCTL" -r "$TGT_DIR/rpc.sock" -t 10 "$@"; }

# The target: a 64 MiB file, c0 for the initiator, c1 on the same blocks for checks.
tgt_config() {
	local p
	mkdir -p "$TGT_DIR"
	while :; do
		p=$((20000 + RANDOM % 40000))
		ss -Hltn "sport = :$p" | grep -q . || break
	done
	TGT_PORT=$p
	cat >"$TGT_DIR/tgt.json" <<-EOF
	[
	  {"method": "bdev_create",
	   "params": {"name": "d0", "type": "uring", "path": "$TGT_DIR/disk.img", "size": 67108864}},
	  {"method": "ctrl_create", "params": {"name": "c0", "nqn": "$RNQN"}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "d0", "shared": true}},
	  {"method": "subsys_allow_any_host", "params": {"ctrl": "c0", "allow": true}},
	  {"method": "ctrl_create", "params": {"name": "c1"}},
	  {"method": "ns_add", "params": {"ctrl": "c1", "bdev": "d0", "shared": true}},
	  {"method": "listener_add", "params": {"type": "tcp", "addr": "127.0.0.1", "port": $TGT_PORT}}
	]
	EOF
}

tgt_start() {
	"$LEAPD" --foreground -c "$TGT_DIR/tgt.json" -r "$TGT_DIR/rpc.sock" -s "$TGT_DIR/t.sock" \
		-L info -l "$TGT_DIR/leapd.log" </dev/null >>"$TGT_DIR/leapd.out" 2>&1 &
	TGT_PID=$!
	for _ in $(seq 1 100); do
		kill -0 "$TGT_PID" 2>/dev/null || { cat "$TGT_DIR/leapd.out" >&2; return 1; }
		tgtctl info >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

tgt_kill() {
	kill -KILL "$TGT_PID"
	wait "$TGT_PID" 2>/dev/null || true
	TGT_PID=""
}

@test "mirror with a remote leg: the target killed mid-verify costs fio no error; back, the leg resyncs what it missed" {
	need_fio
	tgt_config
	tgt_start
	leapd_start
	leapctl_t bdev types | grep -q nvme-tcp || skip "this leapd has no nvme-tcp backend"
	leapctl_t bdev create r0 --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$TGT_PORT" \
		--subnqn "$RNQN" --reconnect-delay 1 --ctrl-loss-timeout 1
	leapctl_t bdev create leg2 --type mem --size 64M
	leapctl_t bdev create mir --type mirror --param legs=r0,leg2 --param region_size=1048576
	leapctl_t ctrl add c0
	leapctl_t ns add c0 mir
	leapctl_t ctrl add cleg
	leapctl_t ns add cleg leg2
	fio_t "$LEAPD_DIR/fio.json" --ctrl=c0 --rate_iops=2000 "${JOB[@]}" &
	FIO_PID=$!
	for _ in $(seq 1 100); do
		[ "$(ns_writes c0)" -gt 300 ] && break
		sleep 0.02
	done
	tgt_kill
	wait "$FIO_PID"
	FIO_PID=""
	# The remote leg's I/O was held for the ctrl-loss-timeout, then failed: the mirror took it.
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/fio.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].read.total_ios' "$LEAPD_DIR/fio.json")" -eq 4096 ]
	[ "$(leg_field mir r0 .state)" = "faulty" ]
	[ "$(leapctl_t --json stats --ctrl c0 --ns 1 | jq -r '.controllers[0].namespaces[0].error_count')" -eq 0 ]
	dirty=$(leg_field mir r0 .dirty_regions)
	[ "$dirty" -ge 1 ]
	[ "$dirty" -le 16 ]
	# The target comes back; the backend reconnects; the leg is added back.
	tgt_start
	for _ in $(seq 1 150); do
		[ "$(bdev_json r0 | jq -r .state)" = live ] && break
		sleep 0.1
	done
	[ "$(bdev_json r0 | jq -r .state)" = live ]
	leapctl_t bdev mirror add-leg mir r0
	wait_state mir optimal
	[ "$(leg_field mir r0 .resync.regions_copied)" -eq "$dirty" ]
	# Each leg holds what fio wrote: the remote file read on the target, the mem leg here.
	timeout -k 10 120 "$FIO" --ioengine="external:$ENGINE" --socket="$TGT_DIR/t.sock" \
		--verify_state_save=0 --thread=1 --output-format=json --output="$LEAPD_DIR/t.json" \
		--ctrl=c1 "${JOB[@]}" --verify_only=1
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/t.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].read.total_ios' "$LEAPD_DIR/t.json")" -eq 4096 ]
	fio_t "$LEAPD_DIR/l.json" --ctrl=cleg "${JOB[@]}" --verify_only=1
	[ "$(jq -r '.jobs[0].error' "$LEAPD_DIR/l.json")" -eq 0 ]
	leapd_stop
}
