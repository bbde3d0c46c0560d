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

# as_uid UID [GROUPS] CMD...: run CMD as UID (primary group UID), with only these supplementary groups.
as_uid() {
	local uid=$1 groups=$2
	shift 2
	if [ -n "$groups" ]; then
		setpriv --reuid="$uid" --regid="$uid" --groups="$groups" "$@"
	else
		setpriv --reuid="$uid" --regid="$uid" --clear-groups "$@"
	fi
}

@test "vhost: the socket is its controller's owners'; a peer that is not one is refused, others keep working" {
	cat >"$LEAPD_DIR/own.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 67108864}},
	  {"method": "ctrl_create", "params": {"name": "mine", "owner": "nobody"}},
	  {"method": "ctrl_create", "params": {"name": "byg", "group": "1234,nogroup"}},
	  {"method": "ctrl_create", "params": {"name": "rootonly"}},
	  {"method": "ns_add", "params": {"ctrl": "mine", "bdev": "m0", "size": 16777216, "lba_size": 512}},
	  {"method": "ns_add", "params": {"ctrl": "byg", "bdev": "m0", "offset": 16777216, "size": 16777216, "lba_size": 512}},
	  {"method": "ns_add", "params": {"ctrl": "rootonly", "bdev": "m0", "offset": 33554432, "lba_size": 512}},
	  {"method": "listener_add", "params": {"type": "vhost-user-blk",
	    "socket": "$LEAPD_DIR/mine.sock", "ctrl": "mine"}},
	  {"method": "listener_add", "params": {"type": "vhost-user-blk",
	    "socket": "$LEAPD_DIR/byg.sock", "ctrl": "byg"}},
	  {"method": "listener_add", "params": {"type": "vhost-user-blk",
	    "socket": "$LEAPD_DIR/ro.sock", "ctrl": "rootonly"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/own.json"
	# Other uids may traverse the test's directory (mktemp's 0700); the sockets decide.
	chmod 0711 "$LEAPD_DIR"
	# Each socket is its controller's: owner uid, else root; owner group, 0660, else 0600.
	[ "$(stat -c '%a %u %g' "$LEAPD_DIR/mine.sock")" = "600 65534 0" ]
	[ "$(stat -c '%a %u %g' "$LEAPD_DIR/byg.sock")" = "660 0 1234" ]
	[ "$(stat -c '%a %u %g' "$LEAPD_DIR/ro.sock")" = "600 0 0" ]
	# The owner attaches and does verified I/O.
	run as_uid 65534 "" "$VC" verify "$LEAPD_DIR/mine.sock"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(val VERIFY "$output")" = ok ]
	# Members of a listed group do, through their supplementary groups too.
	run as_uid 65534 "" "$VC" verify "$LEAPD_DIR/byg.sock"
	[ "$status" -eq 0 ]
	run as_uid 4321 1234 "$VC" verify "$LEAPD_DIR/byg.sock"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(val VERIFY "$output")" = ok ]
	# Anyone else cannot even connect.
	run as_uid 4321 "" "$VC" info "$LEAPD_DIR/mine.sock"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"connect: Permission denied"* ]]
	run as_uid 4321 "" "$VC" info "$LEAPD_DIR/byg.sock"
	[ "$status" -eq 1 ]
	[[ "$output" == *"connect: Permission denied"* ]]
	run as_uid 65534 "" "$VC" info "$LEAPD_DIR/ro.sock"
	[ "$status" -eq 1 ]
	[[ "$output" == *"connect: Permission denied"* ]]
	# The owner may open its socket file to everyone: SO_PEERCRED still turns
	# a peer that is not an owner away, with the reason, while a device runs.
	as_uid 65534 "" chmod 0666 "$LEAPD_DIR/mine.sock"
	"$VC" bench "$LEAPD_DIR/ro.sock" -q 8 -t 60 >"$LEAPD_DIR/bench.out" 2>&1 &
	BENCH_PID=$!
	run as_uid 4321 "" "$VC" info "$LEAPD_DIR/mine.sock"
	echo "$output"
	[ "$status" -eq 1 ]
	grep -E "mine.sock: front-end refused: uid 4321 \(pid [0-9]+\) may not use controller 'mine' \(not an owner\)" "$LEAPD_LOG"
	run leapctl_t --json listener list
	echo "$output"
	[ "$(jq '[.[] | .. | objects | select(.socket? == "'"$LEAPD_DIR"'/mine.sock") | .denied] | max' <<<"$output")" -eq 1 ]
	# Turned away without a claim: the owner attaches right after, and the other device never stopped.
	run as_uid 65534 "" "$VC" verify "$LEAPD_DIR/mine.sock"
	[ "$status" -eq 0 ]
	[ "$(val VERIFY "$output")" = ok ]
	kill -INT "$BENCH_PID" 2>/dev/null || true
	kill "$BENCH_PID" 2>/dev/null || true
	wait "$BENCH_PID" || true
	BENCH_PID=""
	run "$VC" bench "$LEAPD_DIR/ro.sock" -q 8 -t 1
	[ "$status" -eq 0 ]
	[ "$(val ERRORS "$output")" -eq 0 ]
	[ "$(val IOS "$output")" -gt 1000 ]
	kill -0 "$LEAPD_PID"
	# Nothing new is saved: a restart from config_save gives the sockets the same owners.
	leapctl_t config save "$LEAPD_DIR/saved.json"
	leapd_stop
	leapd_start "$LEAPD_DIR/saved.json"
	[ "$(stat -c '%a %u %g' "$LEAPD_DIR/mine.sock")" = "600 65534 0" ]
	[ "$(stat -c '%a %u %g' "$LEAPD_DIR/byg.sock")" = "660 0 1234" ]
	run as_uid 65534 "" "$VC" verify "$LEAPD_DIR/mine.sock"
	[ "$status" -eq 0 ]
	leapd_stop
}

# v1_total KEY: the v1 listener's counter summed over every front-end it served.
v1_total() {
	leapctl_t --json listener list |
		jq "[.. | objects | select(.socket? == \"$LEAPD_DIR/v1.sock\" and has(\"totals\"))][0].totals.$1"
}

@test "vhost: adaptive polling: requests far apart are taken on kicks, a stream is polled without them" {
	leapd_start "$LEAPD_DIR/v.json"
	# One request at a time, 100 µs apart (the client spins the gap):
	# shorter than the reactor's idle window (200 µs), so the reactor would
	# poll through them but for the adaptive policy (or a preemption, which
	# also makes it sleep early). After a few such gaps the device sleeps
	# through each one and every request arrives with a kick.
	run "$VC" bench "$LEAPD_DIR/v1.sock" -q 1 -g 100 -t 1
	echo "$output"
	[ "$status" -eq 0 ]
	local req kicks idles
	req=$(v1_total requests)
	kicks=$(v1_total kicks)
	idles=$(v1_total notify_idles)
	echo "requests $req kicks $kicks idle periods asleep $idles"
	[ "$req" -ge 100 ]
	[ "$kicks" -ge $((req / 2)) ]
	[ "$idles" -ge $((req / 2)) ]
	# 32 in flight, resubmitted at once: the device is polled and the driver
	# is told not to kick (a preempted reactor or client may still cause a few).
	run "$VC" bench "$LEAPD_DIR/v1.sock" -q 32 -t 1
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(val ERRORS "$output")" -eq 0 ]
	local req2 kicks2
	req2=$(($(v1_total requests) - req))
	kicks2=$(($(v1_total kicks) - kicks))
	echo "stream: requests $req2 kicks $kicks2"
	[ "$req2" -ge 10000 ]
	[ "$kicks2" -le $((req2 / 10)) ]
	leapd_stop
}
