#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# leapd with tenants: leap-perf attaches through the shared-memory listener
# and drives verified I/O on mem and uring namespaces; leapctl stats must
# account for exactly the I/O leap-perf reports; attached controllers
# refuse to be taken apart; SIGTERM with a tenant mid-I/O still exits 0.

load helpers

LEAP_PERF="$E2E_BUILD/bin/leap-perf"

setup() {
	leapd_dir
	PERF_PID=""
}

teardown() {
	# Only the leap-perf this test started, by PID.
	if [ -n "$PERF_PID" ]; then
		kill -KILL "$PERF_PID" 2>/dev/null || true
		wait "$PERF_PID" 2>/dev/null || true
	fi
	leapd_teardown
}

# Two tenants: c0 on a mem bdev, c1 on a uring file, 2 reactors when possible.
start_two_tenants() {
	cat >"$LEAPD_DIR/io.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 33554432}},
	  {"method": "bdev_create",
	   "params": {"name": "u0", "type": "uring", "path": "$LEAPD_DIR/u0.img", "size": 33554432}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "c1", "max_qpairs": 4}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "m0"}},
	  {"method": "ns_add", "params": {"ctrl": "c1", "bdev": "u0"}}
	]
	EOF
	if [ "$(nproc)" -ge 2 ]; then
		leapd_start "$LEAPD_DIR/io.json" -m 0-1
	else
		leapd_start "$LEAPD_DIR/io.json"
	fi
}

perf() {
	timeout 60 "$LEAP_PERF" -s "$LEAPD_TENANT" "$@"
}

# wait_attached CTRL: bounded wait until stats shows a tenant on CTRL.
wait_attached() {
	local i
	for i in $(seq 1 100); do
		if [ "$(leapctl_t --json stats --ctrl "$1" | jq -r '.controllers[0].attached')" = true ]; then
			return 0
		fi
		sleep 0.05
	done
	echo "wait_attached: no tenant on $1 after 5 s" >&2
	return 1
}

@test "leap-perf verify passes on mem and uring namespaces" {
	start_two_tenants
	run perf -c c0 -w randrw -t 1 -q 16 --verify --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .errors <<<"$output")" -eq 0 ]
	[ "$(jq -r .verify_mismatches <<<"$output")" -eq 0 ]
	[ "$(jq -r .ios <<<"$output")" -gt 0 ]
	[ "$(jq -r .reads <<<"$output")" -gt 0 ]
	[ "$(jq -r .writes <<<"$output")" -gt 0 ]
	run perf -c c1 -w randrw -t 1 -q 8 -P 2 --verify --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .errors <<<"$output")" -eq 0 ]
	[ "$(jq -r .verify_mismatches <<<"$output")" -eq 0 ]
	[ "$(jq -r .ios <<<"$output")" -gt 0 ]
	# The data leap-perf wrote through c1 is in the file, and survives a restart.
	leapd_stop
	leapd_start "$LEAPD_DIR/io.json"
	run perf -c c1 -w randread -t 1 -q 8 --verify --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .verify_mismatches <<<"$output")" -eq 0 ]
	leapd_stop
}

@test "stats count exactly the I/O leap-perf reports" {
	start_two_tenants
	run perf -c c0 -w randrw -M 70 -t 1 -q 8 --json
	[ "$status" -eq 0 ]
	perf_out=$output
	ios=$(jq -r .ios <<<"$perf_out")
	reads=$(jq -r .reads <<<"$perf_out")
	writes=$(jq -r .writes <<<"$perf_out")
	[ "$ios" -gt 0 ]

	run leapctl_t --json stats --ctrl c0 --ns 1
	[ "$status" -eq 0 ]
	ns=$(jq -c '.controllers[0].namespaces[0]' <<<"$output")
	[ "$(jq -r .reads <<<"$ns")" -eq "$reads" ]
	[ "$(jq -r .writes <<<"$ns")" -eq "$writes" ]
	[ "$(jq -r '.reads + .writes' <<<"$ns")" -eq "$ios" ]
	[ "$(jq -r .read_bytes <<<"$ns")" -eq $((reads * 4096)) ]
	[ "$(jq -r .write_bytes <<<"$ns")" -eq $((writes * 4096)) ]
	[ "$(jq -r .error_count <<<"$ns")" -eq 0 ]
	[ "$(jq -r '.errors | length' <<<"$ns")" -eq 0 ]
	[ "$(jq -r '.latency_us.p50 > 0 and .latency_us.p99 >= .latency_us.p50 and .latency_us.p999 >= .latency_us.p99' <<<"$ns")" = true ]
	[ "$(jq -r '.iops > 0' <<<"$ns")" = true ]
	# The controller's total covers its (only) namespace's I/O.
	run leapctl_t --json stats --ctrl c0
	[ "$(jq -r '.controllers[0].total | .reads + .writes' <<<"$output")" -eq "$ios" ]
	# c1 saw nothing.
	[ "$(leapctl_t --json stats --ctrl c1 | jq -r '.controllers[0].namespaces[0] | .reads + .writes')" -eq 0 ]

	# Rates cover the time since the previous stats_get: nothing happened since.
	run leapctl_t --json stats --ctrl c0 --ns 1
	ns=$(jq -c '.controllers[0].namespaces[0]' <<<"$output")
	[ "$(jq -r .iops <<<"$ns")" = 0 ]
	[ "$(jq -r .latency_us.p50 <<<"$ns")" = null ]
	[ "$(jq -r '.reads + .writes' <<<"$ns")" -eq "$ios" ]

	# A window measured now, with I/O running during it.
	perf -c c0 -w randread -t 3 -q 4 --json >"$LEAPD_DIR/perf2.json" &
	PERF_PID=$!
	wait_attached c0
	run leapctl_t --json stats --ctrl c0 --window-ms 300
	[ "$status" -eq 0 ]
	[ "$(jq -r .window <<<"$output")" = true ]
	[ "$(jq -r '.controllers[0].namespaces[0].read_iops > 0' <<<"$output")" = true ]
	[ "$(jq -r '.controllers[0].namespaces[0].interval_ms >= 300' <<<"$output")" = true ]
	# Queue pairs while attached: the admin queue and one I/O queue.
	run leapctl_t --json stats --ctrl c0 --qpairs
	[ "$(jq -c '[.controllers[0].qpairs[].sqid]' <<<"$output")" = '[0,1]' ]
	[ "$(jq -r '.controllers[0].qpairs[1].reads > 0' <<<"$output")" = true ]
	wait "$PERF_PID"
	PERF_PID=""
	reads2=$(jq -r .reads "$LEAPD_DIR/perf2.json")
	run leapctl_t --json stats --ctrl c0 --ns 1
	[ "$(jq -r '.controllers[0].namespaces[0].reads' <<<"$output")" -eq $((reads + reads2)) ]
	# Human table: one row per namespace.
	run leapctl_t stats
	[ "$status" -eq 0 ]
	[[ "${lines[1]}" == CTRL*NSID*R_IOPS* ]]
	[[ "${lines[2]}" == c0*1* ]]
	[[ "${lines[3]}" == c1*1* ]]
	run leapctl_t stats --ns 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"'ns' needs 'ctrl'"* ]]
	leapd_stop
}

@test "an attached controller cannot be taken apart; a second tenant is refused" {
	start_two_tenants
	perf -c c0 -w randrw -t 4 -q 4 --json >"$LEAPD_DIR/perf.json" &
	PERF_PID=$!
	wait_attached c0
	run perf -c c0 -w read -t 1
	[ "$status" -ne 0 ]
	[[ "$output" == *"already has a tenant"* ]]
	run leapctl_t ctrl delete c0
	[ "$status" -eq 1 ]
	[[ "$output" == *"attached tenant"* ]]
	run leapctl_t ns remove c0 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"attached tenant"* ]]
	run leapctl_t bdev delete m0
	[ "$status" -eq 1 ]
	[[ "$output" == *"used by 1 namespace(s)"* ]]
	# Adding a namespace is a change the reactor makes while the tenant runs.
	leapctl_t bdev create m1 --type mem --size 1M
	run leapctl_t --json ns add c0 m1
	[ "$status" -eq 0 ]
	[ "$(jq -r .nsid <<<"$output")" -eq 2 ]
	wait "$PERF_PID"
	PERF_PID=""
	[ "$(jq -r .errors "$LEAPD_DIR/perf.json")" -eq 0 ]
	# Once the tenant is gone everything can go.
	run leapctl_t ns remove c0 2
	[ "$status" -eq 0 ]
	run leapctl_t ctrl delete c0
	[ "$status" -eq 0 ]
	run leapctl_t bdev delete m0
	[ "$status" -eq 0 ]
	leapd_stop
}

@test "SIGTERM with a tenant mid-I/O drains, flushes and exits 0" {
	start_two_tenants
	perf -c c1 -w randwrite -t 20 -q 16 >"$LEAPD_DIR/perf.out" 2>&1 &
	PERF_PID=$!
	wait_attached c1
	sleep 0.3
	leapd_stop
	grep -q "tenant detached from controller 'c1'" "$LEAPD_LOG"
	# The tenant notices and ends on its own, within leap-perf's timeout.
	for i in $(seq 1 100); do
		kill -0 "$PERF_PID" 2>/dev/null || break
		sleep 0.1
	done
	! kill -0 "$PERF_PID" 2>/dev/null
	wait "$PERF_PID" || true
	PERF_PID=""
}
