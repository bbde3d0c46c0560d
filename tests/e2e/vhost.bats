#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# The vhost-user-blk front-end in a real leapd, driven by our own vhost-user
# front-end (tests/tools/vhost_client): listener parameters and the config
# round trip, verified I/O on memory and io_uring backends, every class of
# bad input with the answer the issue asks for (IOERR/UNSUPP per request,
# the device broken until a reset, a refused or closed connection) while
# another device's load keeps completing, and an isolation policy limiting
# a vhost device exactly as it limits an shm tenant.
# QEMU guests are in tests/interop/vhost.bats.

load helpers

VC="$E2E_BUILD/tests/tools/vhost_client"
POL="$E2E_BUILD/policies"
BENCH_PID=""

setup() {
	leapd_dir
	cat >"$LEAPD_DIR/v.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 67108864}},
	  {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1073741824}},
	  {"method": "ctrl_create", "params": {"name": "v0"}},
	  {"method": "ctrl_create", "params": {"name": "v1"}},
	  {"method": "ns_add", "params": {"ctrl": "v0", "bdev": "m0"}},
	  {"method": "ns_add", "params": {"ctrl": "v1", "bdev": "n0"}},
	  {"method": "listener_add", "params": {"type": "vhost-user-blk",
	    "socket": "$LEAPD_DIR/v0.sock", "ctrl": "v0", "nsid": 1, "num_queues": 2}},
	  {"method": "listener_add", "params": {"type": "vhost-user-blk",
	    "socket": "$LEAPD_DIR/v1.sock", "ctrl": "v1"}}
	]
	EOF
}

teardown() {
	if [ -n "$BENCH_PID" ]; then
		kill "$BENCH_PID" 2>/dev/null || true
		wait "$BENCH_PID" 2>/dev/null || true
	fi
	leapd_teardown
	policy_pins_cleanup
}

val() { sed -n "s/^$1=//p" <<<"$2" | tail -n1; }

@test "vhost listener: parameters checked, listed, saved and restored" {
	leapd_start
	run leapctl_t listener add vhost-user-blk --socket rel.sock --ctrl v0
	[ "$status" -eq 1 ]
	[[ "$output" == *"absolute path"* ]]
	run leapctl_t rpc listener_add '{"type": "vhost-user-blk", "socket": "/tmp/x.sock"}'
	[ "$status" -eq 1 ]
	[[ "$output" == *"'ctrl'"* ]]
	run leapctl_t rpc listener_add \
		'{"type": "vhost-user-blk", "socket": "/tmp/x.sock", "ctrl": "v0", "num_queues": 99}'
	[ "$status" -eq 1 ]
	[[ "$output" == *"num_queues"* ]]
	leapctl_t listener add vhost-user-blk --socket "$LEAPD_DIR/x.sock" --ctrl v0
	run leapctl_t listener add vhost-user-blk --socket "$LEAPD_DIR/x.sock" --ctrl v1
	[ "$status" -eq 1 ]
	[[ "$output" == *"already serves"* ]]
	leapd_stop
	leapd_start "$LEAPD_DIR/v.json"
	[ "$(stat -c %a "$LEAPD_DIR/v0.sock")" = 600 ]
	run leapctl_t --json listener list
	[ "$(jq '[.[] | select(.type == "vhost-user-blk")] | length' <<<"$output")" -eq 2 ]
	run leapctl_t --json config save
	[ "$status" -eq 0 ]
	jq '[.[] | select(.method == "listener_add" and .params.type == "vhost-user-blk")]' \
		<<<"$output" >"$LEAPD_DIR/saved.json"
	[ "$(jq '.[0].params.num_queues' "$LEAPD_DIR/saved.json")" -eq 2 ]
	[ "$(jq -r '.[0].params.ctrl' "$LEAPD_DIR/saved.json")" = v0 ]
	leapd_stop
}

@test "vhost: negotiated features, device config from the namespace, verified I/O" {
	leapd_start "$LEAPD_DIR/v.json"
	run "$VC" info "$LEAPD_DIR/v0.sock"
	[ "$status" -eq 0 ]
	[ "$(val CAPACITY "$output")" -eq 131072 ]
	[ "$(val BLK_SIZE "$output")" -eq 512 ]
	[ "$(val SEG_MAX "$output")" -eq 32 ]
	[ "$(val NUM_QUEUES "$output")" -eq 1 ]
	# MQ, REPLY_ACK, CONFIG (INFLIGHT_SHMFD is offered but the client does not ask).
	[ "$(val PROTOCOL_FEATURES "$output")" = 0x209 ]
	run "$VC" verify "$LEAPD_DIR/v0.sock"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(val VERIFY "$output")" = ok ]
	[ "$(val SERIAL "$output")" = "$(leapctl_t --json ctrl list v0 | jq -r '.[0].serial // .serial')" ]
	# The controller counted the guest's commands like any tenant's.
	run leapctl_t --json stats
	echo "$output"
	[ "$(jq '[.. | objects | select(has("writes")) | .writes] | max' <<<"$output")" -gt 0 ]
	leapd_stop
}

@test "vhost: io_uring backend, discard punches a hole in the file" {
	leapd_start
	truncate -s 64M "$LEAPD_DIR/disk.img"
	leapctl_t bdev create u0 --type uring --path "$LEAPD_DIR/disk.img" --size 64M
	leapctl_t ctrl add g0
	leapctl_t ns add g0 u0
	leapctl_t listener add vhost-user-blk --socket "$LEAPD_DIR/g0.sock" --ctrl g0
	run "$VC" verify "$LEAPD_DIR/g0.sock"
	echo "$output"
	[ "$status" -eq 0 ]
	# verify wrote sectors 0..7 and discarded them last: that block is a hole again.
	run python3 -c "
import os
fd = os.open('$LEAPD_DIR/disk.img', os.O_RDONLY)
print(os.lseek(fd, 0, os.SEEK_HOLE))"
	[ "$output" -eq 0 ]
	leapd_stop
}

@test "vhost: every class of bad input gets its answer; other devices keep running" {
	leapd_start "$LEAPD_DIR/v.json"
	# Another guest's load runs through all of it.
	"$VC" bench "$LEAPD_DIR/v1.sock" -q 8 -t 60 >"$LEAPD_DIR/bench.out" 2>&1 &
	BENCH_PID=$!
	local n=0
	for c in $("$VC" bad list); do
		run timeout 30 "$VC" bad "$LEAPD_DIR/v0.sock" "$c"
		echo "$c: $output"
		[ "$status" -eq 0 ]
		[ "$(val RESULT "$output")" = ok ]
		kill -0 "$LEAPD_PID"
		n=$((n + 1))
	done
	[ "$n" -ge 30 ]
	# The device recovers for the next front-end; the other device never stopped.
	run "$VC" verify "$LEAPD_DIR/v0.sock"
	[ "$status" -eq 0 ]
	kill -INT "$BENCH_PID" 2>/dev/null || true
	kill "$BENCH_PID"
	wait "$BENCH_PID" || true
	BENCH_PID=""
	run "$VC" bench "$LEAPD_DIR/v1.sock" -q 8 -t 1
	[ "$status" -eq 0 ]
	[ "$(val ERRORS "$output")" -eq 0 ]
	[ "$(val IOS "$output")" -gt 1000 ]
	grep -q "device broken until the front-end resets it" "$LEAPD_LOG"
	grep -q "malformed message from the front-end" "$LEAPD_LOG"
	leapd_stop
}

@test "vhost: an isolation policy limits a vhost device's IOPS" {
	leapd_start "$LEAPD_DIR/v.json"
	local t iso
	iso=$(pname iso)
	t=$(leapctl_t --json ctrl list v1 | jq -r '.[0].cntlid // .cntlid')
	leapctl_t policy load "$POL/isolation.bpf.o" --name "$iso"
	leapctl_t policy attach "$iso" --ctrl v1
	leapctl_t policy set "$iso" "iops_limit[$t]=2000"
	run "$VC" bench "$LEAPD_DIR/v1.sock" -q 16 -t 2
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(val IOS "$output")" -le $((2000 * 2 * 105 / 100 + 100)) ]
	[ "$(val IOS "$output")" -gt 1000 ]
	leapctl_t policy set "$iso" "iops_limit[$t]=0"
	run "$VC" bench "$LEAPD_DIR/v1.sock" -q 16 -t 1
	[ "$(val IOS "$output")" -gt 8000 ]
	leapd_stop
}

@test "vhost: a front-end that leaves with requests held by a policy: drained, then the device serves again" {
	leapd_start "$LEAPD_DIR/v.json"
	local t iso
	iso=$(pname iso)
	t=$(leapctl_t --json ctrl list v0 | jq -r '.[0].cntlid // .cntlid')
	leapctl_t policy load "$POL/isolation.bpf.o" --name "$iso"
	leapctl_t policy attach "$iso" --ctrl v0
	# 32 writes at 20 IOPS: most are still parked in the policy when the socket closes.
	leapctl_t policy set "$iso" "iops_limit[$t]=20"
	run timeout 30 "$VC" bad "$LEAPD_DIR/v0.sock" disconnect-mid
	[ "$status" -eq 0 ]
	# The listener waits for them (their status bytes still land in memory that
	# stays mapped until then), then the controller is free for the next one.
	for _ in $(seq 100); do
		grep -q "front-end left controller 'v0'" "$LEAPD_LOG" && break
		sleep 0.1
	done
	grep -q "front-end left controller 'v0'" "$LEAPD_LOG"
	kill -0 "$LEAPD_PID"
	leapctl_t policy set "$iso" "iops_limit[$t]=0"
	run "$VC" verify "$LEAPD_DIR/v0.sock"
	[ "$status" -eq 0 ]
	[ "$(val VERIFY "$output")" = ok ]
	leapd_stop
}
