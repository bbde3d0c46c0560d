#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# The NVMe/TCP target (runtime/frontend/tcp) driven from this machine by the
# host library (nvmf_probe, nvmf_identify) and a raw host (nvmf_badhost):
# listener parameters and config round trip, verified I/O over IPv4 and
# IPv6 with and without digests counted by leapctl stats, the Identify
# values a Linux host needs, access control and discovery, one host per
# controller, keep-alive expiry, and teardown. Listeners bind 127.0.0.1 and
# ::1 on random ports.

load helpers

TOOLS="$E2E_BUILD/tests/tools"
NQN0=nqn.2024-01.io.leapio:c0
NQN1=nqn.2024-01.io.leapio:c1
NQN2=nqn.2024-01.io.leapio:c2
HOST1=nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555
HOST2=nqn.2014-08.org.nvmexpress:uuid:66666666-7777-8888-9999-000000000000

setup() {
	leapd_dir
}

teardown() {
	leapd_teardown
	policy_pins_cleanup
}

# tcp_listen ADDR [EXTRA_JSON]: a tcp listener on a free random port (TCP_PORT, TCP_ID).
tcp_listen() {
	local addr=$1 extra=${2:-} out i
	for i in $(seq 1 20); do
		TCP_PORT=$((20000 + RANDOM % 40000))
		if out=$(leapctl_t --json rpc listener_add \
			"{\"type\": \"tcp\", \"addr\": \"$addr\", \"port\": $TCP_PORT${extra:+, $extra}}" 2>&1); then
			TCP_ID=$(jq -r .id <<<"$out")
			return 0
		fi
		[[ "$out" == *"Address already in use"* ]] || { echo "$out" >&2; return 1; }
	done
	return 1
}

# trid ADDR SUBNQN HOSTNQN [MORE]: a transport ID for the host-library tools.
trid() {
	echo "traddr:$1 trsvcid:$TCP_PORT subnqn:$2 hostnqn:$3${4:+ $4}"
}

kv() { # kv KEY TEXT: the value of KEY=... in TEXT
	sed -n "s/^$1=//p" <<<"$2" | head -n1
}

ctrls_with_ns() {
	leapctl_t bdev create m0 --type mem --size 32M
	leapctl_t bdev create m1 --type mem --size 16M
	leapctl_t ctrl add c0 --serial SN-C0-TCP
	leapctl_t ns add c0 m0
	leapctl_t ctrl add c1
	leapctl_t ns add c1 m1 --lba-size 4096
}

@test "tcp listener: parameter errors name the field, conflicts, IPv4 and IPv6, config round trip" {
	leapd_start
	run leapctl_t listener add tcp --port 4420
	[ "$status" -eq 1 ]
	[[ "$output" == *"tcp: 'addr' (an IPv4 or IPv6 address to listen on) is required"* ]]
	run leapctl_t listener add tcp --addr localhost
	[ "$status" -eq 1 ]
	[[ "$output" == *"'addr' 'localhost' is not an IPv4 or IPv6 address literal"* ]]
	run leapctl_t listener add tcp --addr 127.0.0.1 --port 70000
	[ "$status" -eq 1 ]
	[[ "$output" == *"tcp: 'port' must be an integer 1..65535"* ]]
	run leapctl_t rpc listener_add '{"type": "tcp", "addr": "127.0.0.1", "backlog": 5}'
	[ "$status" -eq 1 ]
	[[ "$output" == *"tcp: unknown parameter 'backlog'"* ]]
	run leapctl_t rpc listener_add '{"type": "tcp", "addr": "127.0.0.1", "max_connections": 0}'
	[ "$status" -eq 1 ]
	[[ "$output" == *"'max_connections' must be an integer 1..4096"* ]]

	tcp_listen 127.0.0.1 '"idle_timeout_ms": 60000'
	v4=$TCP_ID
	port=$TCP_PORT
	# Same port on ::1 is another socket; the same address and port again is a conflict.
	run leapctl_t --json rpc listener_add "{\"type\": \"tcp\", \"addr\": \"::1\", \"port\": $port}"
	[ "$status" -eq 0 ]
	run leapctl_t rpc listener_add "{\"type\": \"tcp\", \"addr\": \"127.0.0.1\", \"port\": $port}"
	[ "$status" -eq 1 ]
	[[ "$output" == *"listener $v4 (tcp) already serves these parameters"* ]]
	run leapctl_t rpc listener_add "{\"type\": \"tcp\", \"addr\": \"0:0::1\", \"port\": $port}"
	[ "$status" -eq 1 ]
	[[ "$output" == *"already serves these parameters"* ]]

	leapctl_t ctrl add c0
	leapctl_t ctrl add c1
	leapctl_t subsys host add c0 "$HOST1"
	leapctl_t subsys allow-any-host c1 on
	leapctl_t config save "$LEAPD_DIR/saved.json"
	# Allow-lists after their controllers, before any listener.
	methods=$(jq -r '.[].method' "$LEAPD_DIR/saved.json" | tr '\n' ' ')
	[[ "$methods" == *"ctrl_create ctrl_create subsys_host_add subsys_allow_any_host"*"listener_add listener_add"* ]] ||
		[[ "$methods" == *"ctrl_create ctrl_create subsys_allow_any_host subsys_host_add"*"listener_add listener_add"* ]]
	[ "$(jq -c '[.[] | select(.method == "listener_add") | .params.addr]' "$LEAPD_DIR/saved.json")" = '["127.0.0.1","::1"]' ]
	[ "$(jq '[.[] | select(.method == "listener_add")][0].params.idle_timeout_ms' "$LEAPD_DIR/saved.json")" -eq 60000 ]
	before=$(leapctl_t --json subsys host list)
	leapd_stop
	leapd_start "$LEAPD_DIR/saved.json"
	json_eq "$before" "$(leapctl_t --json subsys host list)"
	[ "$(leapctl_t --json listener list | jq '[.[] | select(.type == "tcp")] | length')" -eq 2 ]
	# The replayed listener really listens: discovery answers on it.
	run "$TOOLS/nvmf_probe" -D -v 0 -t 0 "$(trid 127.0.0.1 "$NQN0" "$HOST1")"
	[ "$(kv DISC_NUMREC "$output")" -eq 2 ]
}

@test "verified I/O over 127.0.0.1 and ::1, with and without digests; leapctl stats counts it" {
	leapd_start
	ctrls_with_ns
	leapctl_t subsys host add c0 "$HOST1"
	tcp_listen 127.0.0.1
	tcp_listen ::1 # same TCP_PORT is not guaranteed: keep each port
	port6=$TCP_PORT
	port4=$(leapctl_t --json listener list | jq -r '[.[] | select(.params.addr == "127.0.0.1")][0].params.port')
	writes=0
	bytes=0
	for addr in 127.0.0.1 ::1; do
		for dg in "" "hdgst:1 ddgst:1"; do
			[ "$addr" = ::1 ] && TCP_PORT=$port6 || TCP_PORT=$port4
			run "$TOOLS/nvmf_probe" -q 2 -d 16 -v 4 -t 1 "$(trid "$addr" "$NQN0" "$HOST1" "$dg")"
			echo "$addr $dg: $output"
			[ "$status" -eq 0 ]
			[ "$(kv RESULT "$output")" = ok ]
			[ "$(kv PERF_ERRORS "$output")" -eq 0 ]
			writes=$((writes + $(kv VERIFY_IOS "$output") / 2))
			bytes=$((bytes + $(kv VERIFY_BYTES "$output")))
		done
	done
	grep -q "connected from \[::1\]:.*header digest, data digest" "$LEAPD_LOG"
	grep -q "connected from 127.0.0.1:" "$LEAPD_LOG"
	run leapctl_t --json stats --ctrl c0
	[ "$status" -eq 0 ]
	ns=$(jq '.controllers[0].namespaces[0]' <<<"$output")
	[ "$(jq .writes <<<"$ns")" -eq "$writes" ]
	[ "$(jq .reads <<<"$ns")" -gt "$writes" ]
	[ "$(jq .error_count <<<"$ns")" -eq 0 ]
	[ "$(jq .write_bytes <<<"$ns")" -eq "$bytes" ]
}

@test "Identify and properties: SUBNQN, serial, model, SGLS, IOCCSZ, CNTRLTYPE, CAP, VS, unique namespace IDs" {
	leapd_start
	ctrls_with_ns
	leapctl_t bdev create m2 --type mem --size 8M
	leapctl_t ns add c0 m2
	leapctl_t subsys allow-any-host c0 on
	tcp_listen 127.0.0.1
	run "$TOOLS/nvmf_identify" "$(trid 127.0.0.1 "$NQN0" "$HOST1" "hdgst:1")"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv SUBNQN "$output")" = "$NQN0" ]
	[ "$(kv SN "$output")" = SN-C0-TCP ]
	[ "$(kv MN "$output")" = "leapio virtual NVMe" ]
	[ "$(kv CNTRLTYPE "$output")" -eq 1 ]
	[ "$(kv SGLS "$output")" = 0x00140001 ]
	[ "$(kv IOCCSZ "$output")" -eq 516 ]
	[ "$(kv IORCSZ "$output")" -eq 1 ]
	[ "$(kv ICDOFF "$output")" -eq 0 ]
	[ "$(kv MSDBD "$output")" -eq 1 ]
	[ "$(kv MDTS "$output")" -eq 5 ]
	[ "$(kv CNTLID "$output")" -eq "$(leapctl_t --json ctrl list c0 | jq '.[0].cntlid')" ]
	# CAP: MQES = max_queue_size - 1 (256 - 1), CQR; VS 1.4.
	cap=$(kv PROP_CAP "$output")
	[ $((cap & 0xffff)) -eq 255 ]
	[ $(((cap >> 16) & 1)) -eq 1 ]
	[ "$(kv PROP_VS "$output")" = 0x00010400 ]
	[ "$(kv NS1_LBADS "$output")" -eq 9 ]
	[ "$(kv NS2_LBADS "$output")" -eq 9 ]
	[ "$(kv NS1_NGUID "$output")" != "$(kv NS2_NGUID "$output")" ]
	[ "$(kv NS1_UUID "$output")" != "$(kv NS2_UUID "$output")" ]
	[ -n "$(kv NS2_UUID "$output")" ]
}

@test "access control: default deny, allow-list, allow-any-host; refusals logged with the peer; discovery shows only what a host may reach" {
	leapd_start
	ctrls_with_ns
	leapctl_t ctrl add c2
	leapctl_t subsys host add c0 "$HOST1"
	leapctl_t subsys allow-any-host c1 on
	tcp_listen 127.0.0.1

	run "$TOOLS/nvmf_identify" "$(trid 127.0.0.1 "$NQN0" "$HOST2")"
	[ "$status" -eq 1 ]
	[[ "$output" == *"invalid host"* ]]
	[ "$(grep -c "Connect from 127.0.0.1:[0-9]* refused: host $HOST2 is not allowed on $NQN0" "$LEAPD_LOG")" -eq 1 ]
	run "$TOOLS/nvmf_badhost" 127.0.0.1 "$TCP_PORT" "$NQN0" "$HOST2" connect
	[ "$output" = "status sct=1 sc=0x84 dw0=0x00010200" ]
	run "$TOOLS/nvmf_identify" "$(trid 127.0.0.1 "$NQN0" "$HOST1")"
	[ "$status" -eq 0 ]
	run "$TOOLS/nvmf_identify" "$(trid 127.0.0.1 "$NQN1" "$HOST2")"
	[ "$status" -eq 0 ]
	# c2 allows nobody until told.
	run "$TOOLS/nvmf_identify" "$(trid 127.0.0.1 "$NQN2" "$HOST1")"
	[ "$status" -eq 1 ]

	# Discovery: HOST1 sees c0 and c1, HOST2 only c1, at this listener's address and port.
	run "$TOOLS/nvmf_probe" -D -v 0 -t 0 "$(trid 127.0.0.1 "$NQN1" "$HOST1")"
	[ "$status" -eq 0 ]
	[ "$(kv DISC_NUMREC "$output")" -eq 2 ]
	[[ "$output" == *"trtype:3 adrfam:1 subtype:2 traddr:127.0.0.1 trsvcid:$TCP_PORT subnqn:$NQN0"* ]]
	[[ "$output" == *"subnqn:$NQN1"* ]]
	run "$TOOLS/nvmf_probe" -D -v 0 -t 0 "$(trid 127.0.0.1 "$NQN1" "$HOST2")"
	[ "$status" -eq 0 ]
	[ "$(kv DISC_NUMREC "$output")" -eq 1 ]
	[[ "$output" == *"subnqn:$NQN1"* ]]
	[[ "$output" != *"subnqn:$NQN0"* ]]

	# Taking HOST1 off the list: refused, and c0 gone from its discovery log.
	leapctl_t subsys host remove c0 "$HOST1"
	run "$TOOLS/nvmf_identify" "$(trid 127.0.0.1 "$NQN0" "$HOST1")"
	[ "$status" -eq 1 ]
	run "$TOOLS/nvmf_probe" -D -v 0 -t 0 "$(trid 127.0.0.1 "$NQN1" "$HOST1")"
	[ "$(kv DISC_NUMREC "$output")" -eq 1 ]
	# allow-any-host on c2, then off again.
	leapctl_t subsys allow-any-host c2 on
	run "$TOOLS/nvmf_identify" "$(trid 127.0.0.1 "$NQN2" "$HOST2")"
	[ "$status" -eq 0 ]
	leapctl_t subsys allow-any-host c2 off
	run "$TOOLS/nvmf_identify" "$(trid 127.0.0.1 "$NQN2" "$HOST2")"
	[ "$status" -eq 1 ]
	# A shm tenant is not subject to the network allow-list.
	run "$E2E_BUILD/bin/leap-perf" -s "$LEAPD_TENANT" -c c0 -q 4 -w randrw --verify -t 1
	[ "$status" -eq 0 ]
}

@test "one host per controller: a second host gets Controller Busy; keep-alive expiry frees the controller" {
	leapd_start
	ctrls_with_ns
	leapctl_t subsys allow-any-host c0 on
	tcp_listen 127.0.0.1 '"handshake_timeout_ms": 1000'
	# HOST1 holds c0 for 4 s; HOST2 is refused after the busy-retry window (2 s).
	"$TOOLS/nvmf_badhost" -w 4000 127.0.0.1 "$TCP_PORT" "$NQN0" "$HOST1" hold >"$LEAPD_DIR/hold.out" &
	holder=$!
	sleep 0.3
	run "$TOOLS/nvmf_badhost" -w 5000 127.0.0.1 "$TCP_PORT" "$NQN0" "$HOST2" connect
	[ "$output" = "status sct=1 sc=0x81 dw0=0x00000000" ]
	wait "$holder"
	[[ "$(head -n1 "$LEAPD_DIR/hold.out")" == "status sct=0 sc=0x00"* ]]

	# KATO 1 s and silence: torn down after about a second; the next host gets in.
	"$TOOLS/nvmf_badhost" -w 5000 127.0.0.1 "$TCP_PORT" "$NQN0" "$HOST1" kato >"$LEAPD_DIR/kato.out" &
	kato=$!
	sleep 0.3
	# Busy at first, connected once the silent host's association is gone (the retry).
	run "$TOOLS/nvmf_badhost" -w 5000 127.0.0.1 "$TCP_PORT" "$NQN0" "$HOST2" connect
	[ "$output" = "status sct=0 sc=0x00 dw0=0x00000001" ]
	wait "$kato"
	[[ "$(sed -n 2p "$LEAPD_DIR/kato.out")" =~ ^closed\ after\ (9[0-9][0-9]|1[0-3][0-9][0-9])\ ms$ ]]
	grep -q "c0: host $HOST1 (127.0.0.1:[0-9]*): association ended: keep-alive timeout: nothing received for 1000 ms (KATO)" "$LEAPD_LOG"
}

@test "listener remove ends its hosts' associations; leapd stops cleanly with hosts connected" {
	leapd_start
	ctrls_with_ns
	leapctl_t subsys allow-any-host c0 on
	leapctl_t subsys allow-any-host c1 on
	tcp_listen 127.0.0.1
	"$TOOLS/nvmf_badhost" -w 10000 127.0.0.1 "$TCP_PORT" "$NQN0" "$HOST1" hold >"$LEAPD_DIR/hold.out" &
	holder=$!
	for i in $(seq 1 50); do
		[ "$(leapctl_t --json listener list | jq "[.[] | select(.id == $TCP_ID)][0].state.controllers")" -eq 1 ] && break
		sleep 0.1
	done
	leapctl_t listener remove "$TCP_ID"
	wait "$holder"
	[[ "$(sed -n 2p "$LEAPD_DIR/hold.out")" == "closed after"* ]]
	grep -q "association ended: the listener was removed" "$LEAPD_LOG"
	# The controller is free again: a new listener serves it.
	tcp_listen 127.0.0.1
	run "$TOOLS/nvmf_probe" -v 1 -t 0 "$(trid 127.0.0.1 "$NQN0" "$HOST1")"
	[ "$status" -eq 0 ]
	# Shutdown with a host attached drains and exits 0.
	"$TOOLS/nvmf_badhost" -w 10000 127.0.0.1 "$TCP_PORT" "$NQN1" "$HOST2" hold >/dev/null &
	holder=$!
	sleep 0.5
	leapd_stop
	wait "$holder" || true
}

@test "a host killed mid-I/O (uring file, I/O in flight) releases its controller; the next host verifies" {
	img="/var/tmp/leapio-tcp-$$-$BATS_TEST_NUMBER.img"
	leapd_start
	leapctl_t bdev create f0 --type uring --path "$img" --size 64M
	leapctl_t ctrl add c0
	leapctl_t ns add c0 f0
	leapctl_t subsys allow-any-host c0 on
	tcp_listen 127.0.0.1
	"$TOOLS/nvmf_probe" -q 2 -d 64 -v 0 -t 20 "$(trid 127.0.0.1 "$NQN0" "$HOST1")" >/dev/null 2>&1 &
	victim=$!
	for i in $(seq 1 50); do
		[ "$(leapctl_t --json stats --ctrl c0 | jq '.controllers[0].namespaces[0].reads')" -gt 1000 ] && break
		sleep 0.1
	done
	kill -KILL "$victim"
	wait "$victim" || true
	# The association ends on the closed sockets; its in-flight reads drain first.
	run "$TOOLS/nvmf_probe" -q 2 -d 16 -v 8 -t 1 "$(trid 127.0.0.1 "$NQN0" "$HOST2")"
	rm -f "$img"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv RESULT "$output")" = ok ]
	grep -q "c0: host $HOST1 (127.0.0.1:[0-9]*): association ended: queue [0-9]: closed by the host" "$LEAPD_LOG"
	leapd_stop
}

@test "policies apply to an NVMe/TCP host: isolation's IOPS limit holds, the stats policy counts its I/O" {
	local iso st c0
	leapd_start
	ctrls_with_ns
	leapctl_t subsys allow-any-host c0 on
	tcp_listen 127.0.0.1
	c0=$(leapctl_t --json ctrl list c0 | jq '.[0].cntlid')
	iso=$(pname iso)
	st=$(pname stats)
	leapctl_t policy load "$E2E_BUILD/policies/isolation.bpf.o" --name "$iso"
	leapctl_t policy load "$E2E_BUILD/policies/stats.bpf.o" --name "$st"
	leapctl_t policy attach "$iso" --ctrl c0 --order 10
	leapctl_t policy attach "$st" --ctrl c0 --order 20
	leapctl_t policy set "$iso" "iops_limit[$c0]=1000"
	run "$TOOLS/nvmf_probe" -q 1 -d 16 -v 1 -t 2 "$(trid 127.0.0.1 "$NQN0" "$HOST1")"
	echo "$output"
	[ "$status" -eq 0 ]
	# 2 s of random reads at 1000 IOPS (the bucket holds 50 ms more).
	[ "$(kv PERF_IOPS "$output")" -le 1100 ]
	[ "$(kv PERF_IOPS "$output")" -gt 0 ]
	ios=$(kv VERIFY_IOS "$output")
	run leapctl_t --json policy stats "$st"
	[ "$status" -eq 0 ]
	row=$(jq -c ".[] | select(.tenant == $c0)" <<<"$output")
	ns=$(leapctl_t --json stats --ctrl c0 | jq '.controllers[0].namespaces[0]')
	[ "$(jq -r .writes <<<"$row")" -eq $((ios / 2)) ]
	[ "$(jq -r .reads <<<"$row")" -eq "$(jq .reads <<<"$ns")" ]
	[ "$(jq -r .errors <<<"$row")" -eq 0 ]
}

@test "a namespace added while a host is attached: Namespace Attribute Changed AEN, log page 04h lists it" {
	leapd_start
	ctrls_with_ns
	leapctl_t bdev create m2 --type mem --size 8M
	leapctl_t subsys allow-any-host c0 on
	tcp_listen 127.0.0.1
	"$TOOLS/nvmf_badhost" -w 5000 127.0.0.1 "$TCP_PORT" "$NQN0" "$HOST1" aen-ns >"$LEAPD_DIR/aen.out" &
	host=$!
	for i in $(seq 1 50); do
		grep -q "aer sent" "$LEAPD_DIR/aen.out" && break
		sleep 0.1
	done
	sleep 0.2
	leapctl_t ns add c0 m2 --nsid 3
	wait "$host"
	cat "$LEAPD_DIR/aen.out"
	# AER completion: type 2 (notice), info 0 (namespace attribute changed), log page 04h.
	[ "$(sed -n 2p "$LEAPD_DIR/aen.out")" = "status sct=0 sc=0x00 dw0=0x00040002" ]
	[ "$(sed -n 3p "$LEAPD_DIR/aen.out")" = "status sct=0 sc=0x00 dw0=0x00000000" ]
	[ "$(sed -n 4p "$LEAPD_DIR/aen.out")" = "changed nsid=3" ]
}
