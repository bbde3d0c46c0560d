#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# XDP policies end to end: policies/fabric_acl.bpf.c loaded, attached,
# replaced and inspected through leapctl on a real leapd, in front of a TCP
# server, with real and raw traffic. Each test builds its own topology and
# removes it (teardown runs on failure too):
#
#   netns T (leapd, server on port 4420)
#     ta<tag> 198.18.1.1/24 fd00:1::1/64  <-veth->  at<tag> in netns A 198.18.1.2 fd00:1::2
#     td<tag> 198.18.2.1/24 fd00:2::1/64  <-veth->  dt<tag> in netns D 198.18.2.2 fd00:2::2
#
# leapd runs in T (nsenter --net, so it keeps the host's /sys/fs/bpf); the
# policy is attached to ta and td. Traffic goes only between these
# namespaces. The tag is this run's PID and the test number, so parallel
# runs do not collide. tests/tools/xdp_net is the server, client, raw SYN
# sender and sniffer (the sniffer's tap sees only what XDP passed); the last
# two tests put leapd's NVMe/TCP target behind the ACL and drive it with the
# host library (tests/tools/nvmf_probe, verified I/O).

load helpers

XDP_NET="$E2E_BUILD/tests/tools/xdp_net"
ACL_OBJ="$E2E_BUILD/policies/fabric_acl.bpf.o"
PORT=4420

setup() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, XDP)"
	command -v nsenter >/dev/null || skip "needs nsenter (util-linux)"
	TAG="$$${BATS_TEST_NUMBER}"
	NT="xdpT$TAG" NA="xdpA$TAG" ND="xdpD$TAG"
	TA="ta$TAG" AT="at$TAG" TD="td$TAG" DT="dt$TAG"
	BG_PIDS=()
	ip netns add "$NT" && ip netns add "$NA" && ip netns add "$ND" || return 1
	ip link add "$TA" type veth peer name "$AT" &&
		ip link add "$TD" type veth peer name "$DT" || return 1
	ip link set "$TA" netns "$NT" && ip link set "$TD" netns "$NT" &&
		ip link set "$AT" netns "$NA" && ip link set "$DT" netns "$ND" || return 1
	for ns in "$NT" "$NA" "$ND"; do ip -n "$ns" link set lo up; done
	ip -n "$NT" addr add 198.18.1.1/24 dev "$TA" && ip -n "$NT" addr add fd00:1::1/64 dev "$TA" nodad &&
		ip -n "$NT" addr add 198.18.2.1/24 dev "$TD" && ip -n "$NT" addr add fd00:2::1/64 dev "$TD" nodad &&
		ip -n "$NA" addr add 198.18.1.2/24 dev "$AT" && ip -n "$NA" addr add fd00:1::2/64 dev "$AT" nodad &&
		ip -n "$ND" addr add 198.18.2.2/24 dev "$DT" && ip -n "$ND" addr add fd00:2::2/64 dev "$DT" nodad ||
		return 1
	ip -n "$NT" link set "$TA" up && ip -n "$NT" link set "$TD" up &&
		ip -n "$NA" link set "$AT" up && ip -n "$ND" link set "$DT" up || return 1
	leapd_dir
	# leapd in T: nsenter execs it, so the PID leapd_start records is leapd's.
	printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "$NT" "$LEAPD" >"$LEAPD_DIR/leapd-in-ns"
	chmod +x "$LEAPD_DIR/leapd-in-ns"
	LEAPD="$LEAPD_DIR/leapd-in-ns"
	SERVER_LOG="$LEAPD_DIR/server.log"
	POL="$(pname acl)"
}

teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	leapd_teardown
	for ns in "$NT" "$NA" "$ND"; do ip netns del "$ns" 2>/dev/null || true; done
	rm -f "/sys/fs/bpf/xdpext_$TAG"
	policy_pins_cleanup
}

# in_ns NS CMD...: run CMD in network namespace NS, keeping the host's mounts. A
# command started in the background is started with nsenter directly, which
# execs it: $! is then the command's own PID.
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

# start_server: the echo server on [::]:4420 in T (dual stack), logging accepts.
start_server() {
	: >"$SERVER_LOG"
	nsenter --net="/run/netns/$NT" "$XDP_NET" serve :: "$PORT" "$SERVER_LOG" 300 &
	BG_PIDS+=($!)
	for _ in $(seq 1 50); do
		grep -q listening "$SERVER_LOG" && return 0
		sleep 0.1
	done
	echo "server did not start" >&2
	return 1
}

# acl_load_attach [ATTACH ARGS for td]: leapd, fabric_acl on ta (with $TA_ARGS) and td, server up.
acl_load_attach() {
	leapd_start
	leapctl_t policy load "$ACL_OBJ" --name "$POL"
	# shellcheck disable=SC2086 # split on purpose
	leapctl_t policy attach "$POL" --xdp "$TA" ${TA_ARGS:-}
	leapctl_t policy attach "$POL" --xdp "$TD" "$@"
	start_server
}

# src_count SOURCE FIELD: fabric_acl's per-source counter (0 when the source is unknown).
src_count() {
	leapctl_t --json policy acl "$POL" |
		jq -r --arg s "$1" --arg f "$2" '[.sources[] | select(.source == $s) | .[$f]] | add // 0'
}

# xdp_prog_on NS IFACE: the id of the XDP program the kernel runs on IFACE (empty if none).
xdp_prog_on() {
	ip -n "$1" -j link show dev "$2" | jq -r '.[0].xdp.prog.id // .[0].xdp.attached[0].prog.id // empty'
}

mac_of() { ip -n "$1" -j link show dev "$2" | jq -r '.[0].address'; }

accepts_from() { grep -c "accept .*$1\$" "$SERVER_LOG" || true; }

@test "xdp: fabric_acl attaches through leapd's BPF links; list/show report the kernel's runs; detach and leapd's exit take it off" {
	acl_load_attach --mode generic
	run leapctl_t --json policy show "$POL"
	[ "$status" -eq 0 ]
	[ "$(jq -r '.hooks | join(",")' <<<"$output")" = "xdp" ]
	[ "$(jq -r '.programs[0].runs_in' <<<"$output")" = "kernel" ]
	[ "$(jq -r '[.maps[] | select(.name == "acl_allow")][0].pin' <<<"$output")" = "/sys/fs/bpf/leapio/$POL/acl_allow" ]
	[ "$(jq -r '.links' <<<"$output")" = "[]" ]
	[ "$(jq '.xdp_links | length' <<<"$output")" -eq 2 ]
	# The kernel runs what leapd reports, in the mode asked for.
	prog=$(jq -r '.programs[0].kernel_id' <<<"$output")
	[ "$(xdp_prog_on "$NT" "$TA")" = "$prog" ]
	[ "$(xdp_prog_on "$NT" "$TD")" = "$prog" ]
	[ "$(jq -r --arg i "$TD" '.xdp_links[] | select(.iface == $i) | .attached' <<<"$output")" = "generic" ]
	[ "$(jq -r --arg i "$TA" '.xdp_links[] | select(.iface == $i) | .attached' <<<"$output")" = "native" ]

	leapctl_t policy prefix-add "$POL" 198.18.1.2
	run in_ns "$NA" "$XDP_NET" connect 198.18.1.1 "$PORT" -n 3
	[ "$status" -eq 0 ]
	run leapctl_t --json policy list
	runs=$(jq -r --arg i "$TA" '.xdp_links[] | select(.iface == $i) | .runs' <<<"$output")
	[ "$runs" -gt 10 ]
	[ "$(jq -r '.xdp_links[0].stats_on' <<<"$output")" = "true" ]
	run leapctl_t policy list
	[[ "$output" == *"$TA"*native* ]]
	# config save replays the attachment.
	leapctl_t config save "$LEAPD_DIR/saved.json"
	[ "$(jq --arg i "$TD" '[.[] | select(.method == "policy_attach" and .params.xdp == $i and .params.mode == "generic")] | length' "$LEAPD_DIR/saved.json")" -eq 1 ]
	# A policy with XDP links cannot be unloaded.
	run leapctl_t policy unload "$POL"
	[ "$status" -eq 1 ]
	[[ "$output" == *"detach it first"* ]]

	leapctl_t policy detach "$POL" --xdp "$TD"
	[ -z "$(xdp_prog_on "$NT" "$TD")" ]
	[ "$(xdp_prog_on "$NT" "$TA")" = "$prog" ]
	# Pinned on request: it outlives leapd, even a crash; the unpinned one does not.
	leapctl_t policy attach "$POL" --xdp "$TD" --pin
	[ -e "/sys/fs/bpf/leapio/$POL/xdp_link_$TD" ]
	kill -KILL "$LEAPD_PID"
	wait "$LEAPD_PID" || true
	LEAPD_PID=""
	[ -z "$(xdp_prog_on "$NT" "$TA")" ]
	[ "$(xdp_prog_on "$NT" "$TD")" = "$prog" ]
	rm "/sys/fs/bpf/leapio/$POL/xdp_link_$TD"
	[ -z "$(xdp_prog_on "$NT" "$TD")" ]
}

@test "xdp: an allowed namespace connects and exchanges data (IPv4, IPv6); a denied one's SYNs are dropped and counted, and never accepted" {
	acl_load_attach
	leapctl_t policy prefix-add "$POL" 198.18.1.2/32
	leapctl_t policy prefix-add "$POL" fd00:1::/64
	run leapctl_t policy prefixes "$POL"
	[ "$output" = "$(printf '198.18.1.2/32\nfd00:1::/64')" ]
	run in_ns "$NA" "$XDP_NET" connect 198.18.1.1 "$PORT" -n 5 -b 200000
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "ok 5 errors 0 timeouts 0" ]
	run in_ns "$NA" "$XDP_NET" connect fd00:1::1 "$PORT" -n 5 -b 200000
	[ "$status" -eq 0 ]
	run in_ns "$ND" "$XDP_NET" connect 198.18.2.1 "$PORT" -n 2 -t 1500 --expect-timeout
	echo "$output"
	[ "$status" -eq 0 ]
	run in_ns "$ND" "$XDP_NET" connect fd00:2::1 "$PORT" -n 1 -t 1500 --expect-timeout
	[ "$status" -eq 0 ]
	[ "$(accepts_from 198.18.1.2)" -eq 5 ]
	[ "$(accepts_from fd00:1::2)" -eq 5 ]
	[ "$(accepts_from 198.18.2.2)" -eq 0 ]
	[ "$(accepts_from fd00:2::2)" -eq 0 ]
	# Each timed-out connect sent its SYN and at least one retransmission.
	[ "$(src_count 198.18.2.2 dropped)" -ge 4 ]
	[ "$(src_count fd00:2::2 dropped)" -ge 2 ]
	[ "$(src_count 198.18.2.2 passed)" -eq 0 ]
	[ "$(src_count 198.18.1.2 dropped)" -eq 0 ]
	[ "$(src_count 198.18.1.2 passed)" -gt 20 ]
	[ "$(src_count 198.18.1.2 syns)" -eq 5 ]
	# The same counters through bpftool, summed over CPUs, from the pinned map.
	dropped=$(bpftool -j map dump pinned "/sys/fs/bpf/leapio/$POL/acl_totals" |
		jq '[.[] | select(.formatted.key == 1) | .formatted.values[].value] | add')
	[ "$dropped" -ge 6 ]
	# Other ports are not guarded: the denied namespace still reaches T (ICMP-free check: TCP 4421 refused fast).
	run in_ns "$ND" "$XDP_NET" connect 198.18.2.1 4421 -n 1 -t 1500
	[[ "$output" == *"Connection refused"* ]]
}

@test "xdp: adding a prefix live lets its source in; removing it shuts new connections out" {
	acl_load_attach
	run in_ns "$ND" "$XDP_NET" connect 198.18.2.1 "$PORT" -n 1 -t 1200 --expect-timeout
	[ "$status" -eq 0 ]
	leapctl_t policy prefix-add "$POL" 198.18.2.0/24
	run in_ns "$ND" "$XDP_NET" connect 198.18.2.1 "$PORT" -n 3
	[ "$status" -eq 0 ]
	[ "$(accepts_from 198.18.2.2)" -eq 3 ]
	# Written differently, the same prefix: host bits are cleared on add and remove.
	leapctl_t policy prefix-remove "$POL" 198.18.2.77/24
	run leapctl_t policy prefixes "$POL"
	[ -z "$output" ]
	run in_ns "$ND" "$XDP_NET" connect 198.18.2.1 "$PORT" -n 1 -t 1200 --expect-timeout
	[ "$status" -eq 0 ]
	[ "$(accepts_from 198.18.2.2)" -eq 3 ]
	run leapctl_t policy prefix-remove "$POL" 198.18.2.0/24
	[ "$status" -eq 1 ]
	[[ "$output" == *"not in the list"* ]]
	run leapctl_t policy prefix-add "$POL" 198.18.2.0/33
	[ "$status" -eq 1 ]
	[[ "$output" == *"bad prefix length"* ]]
	# The bpftool equivalent (policies/README.md): key = prefixlen 96+24, ::ffff:198.18.2.0.
	bpftool map update pinned "/sys/fs/bpf/leapio/$POL/acl_allow" \
		key hex 78 00 00 00 00 00 00 00 00 00 00 00 00 00 ff ff c6 12 02 00 value hex 00 00 00 00 00 00 00 00
	run leapctl_t policy prefixes "$POL"
	[ "$output" = "198.18.2.0/24" ]
	run in_ns "$ND" "$XDP_NET" connect 198.18.2.1 "$PORT" -n 1
	[ "$status" -eq 0 ]
}

@test "xdp: a SYN flood from one allowed source is cut to its rate while another host's connections go on with 0 errors" {
	acl_load_attach
	leapctl_t policy prefix-add "$POL" 198.18.0.0/15
	leapctl_t policy set "$POL" syn_rate=100 syn_burst=20
	nsenter --net="/run/netns/$NT" "$XDP_NET" sniff "$TD" "$PORT" 8 198.18.2.2 >"$LEAPD_DIR/sniff.out" &
	spid=$!
	BG_PIDS+=($spid)
	for _ in $(seq 1 50); do grep -q listening "$LEAPD_DIR/sniff.out" && break; sleep 0.1; done
	nsenter --net="/run/netns/$NA" "$XDP_NET" connect 198.18.1.1 "$PORT" -d 5 -i 40 -b 16384 >"$LEAPD_DIR/a.out" 2>&1 &
	apid=$!
	BG_PIDS+=($apid)
	t0=$(date +%s.%N)
	run in_ns "$ND" "$XDP_NET" flood "$DT" "$(mac_of "$NT" "$TD")" 198.18.2.2 198.18.2.1 "$PORT" -r 20000 -n 80000 -d 4
	t1=$(date +%s.%N)
	echo "$output"
	[ "$status" -eq 0 ]
	sent=$(awk '{print $2}' <<<"$output")
	[ "$sent" -ge 20000 ]
	wait "$apid"
	cat "$LEAPD_DIR/a.out"
	grep -q "errors 0 timeouts 0" "$LEAPD_DIR/a.out"
	[ "$(awk '{print $2}' "$LEAPD_DIR/a.out")" -ge 50 ]
	# The flood: at most burst + rate * elapsed SYNs passed (a veth may drop a
	# few frames before XDP sees them: the counters are per SYN seen).
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
	max=$(awk -v s="$secs" 'BEGIN {printf "%d", 20 + 100 * (s + 0.5)}')
	syns=$(src_count 198.18.2.2 syns)
	passed=$((syns - $(src_count 198.18.2.2 syn_dropped)))
	echo "sent $sent in ${secs}s, XDP saw $syns, passed $passed (max $max)"
	[ "$syns" -le "$sent" ]
	[ "$syns" -ge $((sent * 9 / 10)) ]
	[ "$passed" -le "$max" ]
	[ "$passed" -ge 200 ]
	# What reached the stack, seen by a tap behind XDP, is what the counters say passed.
	wait "$spid"
	cat "$LEAPD_DIR/sniff.out"
	[ "$(awk '/^syns/ {print $2}' "$LEAPD_DIR/sniff.out")" -eq "$passed" ]
	[ "$(src_count 198.18.1.2 syn_dropped)" -eq 0 ]
}

@test "xdp: replace under traffic swaps the program on both links atomically: no denied SYN passes, state is kept" {
	# The denied flood meets the native link (td), the allowed host the generic one (ta).
	TA_ARGS="--mode generic" acl_load_attach
	leapctl_t policy prefix-add "$POL" 198.18.1.2
	old=$(xdp_prog_on "$NT" "$TD")
	nsenter --net="/run/netns/$NT" "$XDP_NET" sniff "$TD" "$PORT" 9 198.18.2.2 >"$LEAPD_DIR/sniff.out" &
	spid=$!
	BG_PIDS+=($spid)
	for _ in $(seq 1 50); do grep -q listening "$LEAPD_DIR/sniff.out" && break; sleep 0.1; done
	nsenter --net="/run/netns/$ND" "$XDP_NET" flood "$DT" "$(mac_of "$NT" "$TD")" 198.18.2.2 198.18.2.1 "$PORT" -r 30000 -n 50000000 -d 6 >"$LEAPD_DIR/flood.out" &
	fpid=$!
	BG_PIDS+=($fpid)
	nsenter --net="/run/netns/$NA" "$XDP_NET" connect 198.18.1.1 "$PORT" -d 6 -i 20 >"$LEAPD_DIR/a.out" 2>&1 &
	apid=$!
	BG_PIDS+=($apid)
	sleep 0.5
	for i in $(seq 1 10); do
		d0=$(src_count 198.18.2.2 dropped)
		leapctl_t policy replace "$POL" "$ACL_OBJ"
		sleep 0.2
		d1=$(src_count 198.18.2.2 dropped)
		[ "$d1" -gt "$d0" ] # the drop counter keeps counting across every swap
	done
	wait "$fpid"
	wait "$apid"
	wait "$spid"
	cat "$LEAPD_DIR/flood.out" "$LEAPD_DIR/a.out" "$LEAPD_DIR/sniff.out"
	sent=$(awk '{print $2}' "$LEAPD_DIR/flood.out")
	[ "$sent" -ge 10000 ]
	[ "$(awk '/^syns/ {print $2}' "$LEAPD_DIR/sniff.out")" -eq 0 ]
	[ "$(accepts_from 198.18.2.2)" -eq 0 ]
	syns=$(src_count 198.18.2.2 syns)
	[ "$syns" -ge $((sent * 9 / 10)) ]
	[ "$(src_count 198.18.2.2 dropped)" -eq "$syns" ]
	[ "$(src_count 198.18.2.2 passed)" -eq 0 ]
	# The allowed host went on through every swap (the allow-list map was kept).
	grep -q "errors 0 timeouts 0" "$LEAPD_DIR/a.out"
	run leapctl_t --json policy show "$POL"
	[ "$(jq -r '.replaced' <<<"$output")" -eq 10 ]
	new=$(jq -r '.programs[0].kernel_id' <<<"$output")
	[ "$new" != "$old" ]
	[ "$(xdp_prog_on "$NT" "$TD")" = "$new" ]
	[ "$(xdp_prog_on "$NT" "$TA")" = "$new" ]
	[ "$(jq -r --arg i "$TD" '.xdp_links[] | select(.iface == $i) | .attached' <<<"$output")" = "native" ]
	[ "$(jq -r --arg i "$TA" '.xdp_links[] | select(.iface == $i) | .attached' <<<"$output")" = "generic" ]
	[ "$(jq '[.maps[] | select(.name == "acl_allow" or .name == "acl_src_stats") | .reused] | all' <<<"$output")" = "true" ]
}

@test "xdp: bad objects and attachments fail with a clear reason and leave nothing attached" {
	leapd_start
	run leapctl_t policy load "$E2E_BUILD/tests/bpf/progs/xdp_bad.bpf.o" --name "$POL"
	[ "$status" -eq 1 ]
	[[ "$output" == *"program 'xdp_unchecked': rejected by the kernel verifier"* ]]
	[ ! -e "/sys/fs/bpf/leapio/$POL/data" ]
	run leapctl_t --json policy list
	[ "$(jq '.policies | length' <<<"$output")" -eq 0 ]

	run leapctl_t policy load "$E2E_BUILD/tests/bpf/progs/xdp_map_in_leap.bpf.o" --name "$POL"
	[ "$status" -eq 1 ]
	[[ "$output" == *"program 'uses_per_cpu': insn "*": map 'per_cpu' is a type only the kernel runs (LPM trie, per-CPU): only XDP programs may use it"* ]]
	[ ! -e "/sys/fs/bpf/leapio/$POL/per_cpu" ]

	leapctl_t policy load "$ACL_OBJ" --name "$POL"
	run leapctl_t policy attach "$POL" --xdp "nope$TAG"
	[ "$status" -eq 1 ]
	[[ "$output" == *"interface nope$TAG does not exist"* ]]
	run leapctl_t policy attach "$POL" --xdp lo --mode native
	[ "$status" -eq 1 ]
	[[ "$output" == *"interface lo: its driver"*"has no native XDP support; attach with --mode generic"* ]]
	[ -z "$(xdp_prog_on "$NT" lo)" ]
	run leapctl_t policy attach "$POL" --xdp "$TA" --mode turbo
	[ "$status" -eq 1 ]
	[[ "$output" == *"mode: 'native', 'generic'"* ]]
	run leapctl_t policy attach "$POL" --xdp "$TA" --ctrl x
	[ "$status" -eq 1 ]
	# An interface that runs an XDP program leapd did not attach.
	bpftool prog load "$E2E_BUILD/policies/fabric_acl.bpf.o" "/sys/fs/bpf/xdpext_$TAG"
	in_ns "$NT" bpftool net attach xdpgeneric pinned "/sys/fs/bpf/xdpext_$TAG" dev "$TD"
	ext=$(xdp_prog_on "$NT" "$TD")
	run leapctl_t policy attach "$POL" --xdp "$TD"
	[ "$status" -eq 1 ]
	[[ "$output" == *"interface $TD already runs XDP program $ext (generic), which leapd did not attach"* ]]
	[ "$(xdp_prog_on "$NT" "$TD")" = "$ext" ]
	in_ns "$NT" bpftool net detach xdpgeneric dev "$TD"
	run leapctl_t --json policy list
	[ "$(jq '.xdp_links | length' <<<"$output")" -eq 0 ]
	[ "$(jq '.policies[0].links' <<<"$output")" -eq 0 ]

	# Attached: a second link on the same interface, and a replacement without an XDP program.
	leapctl_t policy attach "$POL" --xdp "$TA"
	prog=$(xdp_prog_on "$NT" "$TA")
	run leapctl_t policy attach "$POL" --xdp "$TA"
	[ "$status" -eq 1 ]
	[[ "$output" == *"already has policy '$POL' attached"* ]]
	run leapctl_t policy replace "$POL" "$E2E_BUILD/policies/stats.bpf.o"
	[ "$status" -eq 1 ]
	[[ "$output" == *"has no SEC(\"xdp\") program, and policy '$POL' is attached to $TA"* ]]
	run leapctl_t policy replace "$POL" "$E2E_BUILD/tests/bpf/progs/xdp_bad.bpf.o"
	[ "$status" -eq 1 ]
	[[ "$output" == *"rejected by the kernel verifier"* ]]
	[ "$(xdp_prog_on "$NT" "$TA")" = "$prog" ]
	# A queue policy cannot go on an interface.
	leapctl_t policy load "$E2E_BUILD/policies/stats.bpf.o" --name "$(pname st)"
	run leapctl_t policy attach "$(pname st)" --xdp "$TD"
	[ "$status" -eq 1 ]
	[[ "$output" == *"has no SEC(\"xdp\") program"* ]]
	leapctl_t policy detach --xdp "$TA"
	[ -z "$(xdp_prog_on "$NT" "$TA")" ]
	leapctl_t policy unload "$POL"
	[ ! -e "/sys/fs/bpf/leapio/$POL" ]
	leapd_stop
}

@test "xdp: fabric_acl's verdicts on crafted frames (IPv4, IPv6 and extension headers, VLAN and QinQ, fragments, other ports)" {
	run "$E2E_BUILD/tests/tools/xdp_acl_verdicts" "$ACL_OBJ"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *"not ok"* ]]
}

@test "xdp: VLAN-tagged SYNs from a denied source are dropped and counted at the port" {
	acl_load_attach
	leapctl_t policy prefix-add "$POL" 198.18.1.2
	run in_ns "$ND" "$XDP_NET" flood "$DT" "$(mac_of "$NT" "$TD")" 198.18.2.2 198.18.2.1 "$PORT" -n 300 -r 10000 --vlan 7
	[ "$status" -eq 0 ]
	run in_ns "$ND" "$XDP_NET" flood "$DT" "$(mac_of "$NT" "$TD")" fd00:2::2 fd00:2::1 "$PORT" -n 200 -r 10000 --qinq 3 --vlan 7
	[ "$status" -eq 0 ]
	[ "$(src_count 198.18.2.2 dropped)" -eq 300 ]
	[ "$(src_count fd00:2::2 dropped)" -eq 200 ]
}

# NVMe/TCP: the target (runtime/frontend/tcp) behind the ACL, hosts driven by
# the host library (tests/tools/nvmf_probe). Controllers c0 (for A) and c1 (for D)
# on memory backends; both host NQNs are on the target's allow-list, so the
# address gate alone decides who reaches the Connect.
NQN0=nqn.2024-01.io.leapio:c0
NQN1=nqn.2024-01.io.leapio:c1
HOSTA=nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-1111-2222-3333-444444444444
HOSTD=nqn.2014-08.org.nvmexpress:uuid:dddddddd-1111-2222-3333-444444444444

nvmf_target() {
	leapd_start
	leapctl_t bdev create m0 --type mem --size 32M
	leapctl_t bdev create m1 --type mem --size 32M
	leapctl_t ctrl add c0
	leapctl_t ns add c0 m0
	leapctl_t ctrl add c1
	leapctl_t ns add c1 m1
	leapctl_t subsys host add c0 "$HOSTA"
	leapctl_t subsys host add c1 "$HOSTD"
	leapctl_t listener add tcp --addr 0.0.0.0 --port "$PORT"
	leapctl_t policy load "$ACL_OBJ" --name "$POL"
	leapctl_t policy attach "$POL" --xdp "$TA"
	leapctl_t policy attach "$POL" --xdp "$TD"
}

probe() { # NS ADDR SUBNQN HOSTNQN ARGS...: nvmf_probe in NS
	local ns=$1 addr=$2 sub=$3 host=$4
	shift 4
	in_ns "$ns" "$E2E_BUILD/tests/tools/nvmf_probe" "$@" "traddr:$addr trsvcid:$PORT subnqn:$sub hostnqn:$host"
}

kv() { sed -n "s/^$1=//p" <<<"$2" | head -n1; }

@test "xdp + NVMe/TCP: an allowed host connects and does verified I/O; a denied host's Connect never reaches the target until its prefix is added" {
	nvmf_target
	leapctl_t policy prefix-add "$POL" 198.18.1.2
	run probe "$NA" 198.18.1.1 "$NQN0" "$HOSTA" -q 2 -d 16 -v 4 -t 1
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv RESULT "$output")" = ok ]
	[ "$(kv PERF_ERRORS "$output")" -eq 0 ]
	[ "$(kv VERIFY_IOS "$output")" -gt 0 ]
	run probe "$ND" 198.18.2.1 "$NQN1" "$HOSTD" -v 0 -t 0 -T 3000
	echo "$output"
	[ "$status" -ne 0 ]
	[ "$(grep -c "198.18.2.2" "$LEAPD_LOG" || true)" -eq 0 ] # not even an accept
	[ "$(src_count 198.18.2.2 dropped)" -ge 2 ]
	[ "$(src_count 198.18.2.2 passed)" -eq 0 ]
	leapctl_t policy prefix-add "$POL" 198.18.2.2
	run probe "$ND" 198.18.2.1 "$NQN1" "$HOSTD" -q 1 -d 8 -v 2 -t 0
	[ "$status" -eq 0 ]
	[ "$(kv RESULT "$output")" = ok ]
	grep -q "198.18.2.2" "$LEAPD_LOG"
}

@test "xdp + NVMe/TCP: verified I/O goes on with 0 errors through an allowed source's SYN flood and ten live replaces" {
	nvmf_target
	leapctl_t policy prefix-add "$POL" 198.18.0.0/15
	leapctl_t policy set "$POL" syn_rate=100 syn_burst=20
	probe "$NA" 198.18.1.1 "$NQN0" "$HOSTA" -q 2 -d 16 -v 16 -t 6 >"$LEAPD_DIR/probe.out" 2>&1 &
	ppid=$!
	BG_PIDS+=($ppid)
	nsenter --net="/run/netns/$ND" "$XDP_NET" flood "$DT" "$(mac_of "$NT" "$TD")" 198.18.2.2 198.18.2.1 "$PORT" -r 20000 -n 200000 -d 6 >"$LEAPD_DIR/flood.out" &
	fpid=$!
	BG_PIDS+=($fpid)
	sleep 1
	for i in $(seq 1 10); do
		leapctl_t policy replace "$POL" "$ACL_OBJ" >/dev/null
		sleep 0.3
	done
	wait "$fpid"
	rc=0
	wait "$ppid" || rc=$?
	cat "$LEAPD_DIR/probe.out" "$LEAPD_DIR/flood.out"
	[ "$rc" -eq 0 ]
	[ "$(kv RESULT "$(cat "$LEAPD_DIR/probe.out")")" = ok ]
	[ "$(kv PERF_ERRORS "$(cat "$LEAPD_DIR/probe.out")")" -eq 0 ]
	[ "$(src_count 198.18.2.2 syn_dropped)" -gt 10000 ]
	[ "$(src_count 198.18.1.2 syn_dropped)" -eq 0 ]
	[ "$(leapctl_t --json policy show "$POL" | jq .replaced)" -eq 10 ]
}
