#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# Hostile tenants (issue 11): a tenant controls the sizes of its regions,
# the descriptors it passes or is handed, how many connections it opens and
# when it leaves. Each test commits one abuse with tests/tools/shm_hostile
# while a second tenant runs a verified leap-perf on another controller,
# then requires: leapd still up and answering, the victim's data intact
# and its I/O not stalled, and leapd stopping cleanly (exit 0) on SIGTERM.

load helpers

setup() {
	leapd_dir
	PERF="$E2E_BUILD/bin/leap-perf"
	HOSTILE="$E2E_BUILD/tests/tools/shm_hostile"
	cat >"$LEAPD_DIR/h.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 67108864}},
	  {"method": "ctrl_create", "params": {"name": "h0", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "v0", "max_qpairs": 4}},
	  {"method": "ns_add", "params": {"ctrl": "h0", "bdev": "m0", "size": 33554432, "lba_size": 512}},
	  {"method": "ns_add", "params": {"ctrl": "v0", "bdev": "m0", "offset": 33554432, "lba_size": 512}}
	]
	EOF
	VICTIM_PID=""
}

teardown() {
	if [ -n "$VICTIM_PID" ]; then
		kill "$VICTIM_PID" 2>/dev/null || true
		wait "$VICTIM_PID" 2>/dev/null || true
	fi
	leapd_teardown
	policy_pins_cleanup
}

# victim_start SECONDS: a verified leap-perf on v0 in the background.
victim_start() { # SECONDS [more leap-perf options]
	"$PERF" -s "$LEAPD_TENANT" -c v0 --json -q 8 -w randrw -t "$@" --verify \
		>"$LEAPD_DIR/victim.json" 2>"$LEAPD_DIR/victim.err" &
	VICTIM_PID=$!
}

# victim_check: it finished in time, with no error and no mismatch.
victim_check() {
	local i rc
	for i in $(seq 1 200); do
		kill -0 "$VICTIM_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$VICTIM_PID" 2>/dev/null; then
		echo "victim leap-perf stalled (still running 20 s past its end)"
		return 1
	fi
	rc=0
	wait "$VICTIM_PID" || rc=$?
	VICTIM_PID=""
	echo "victim exit $rc:"
	cat "$LEAPD_DIR/victim.json" "$LEAPD_DIR/victim.err"
	[ "$rc" -eq 0 ]
	[ "$(jq .errors "$LEAPD_DIR/victim.json")" -eq 0 ]
	[ "$(jq .verify_mismatches "$LEAPD_DIR/victim.json")" -eq 0 ]
	[ "$(jq .ios "$LEAPD_DIR/victim.json")" -gt 100 ]
}

# leapd_alive: the process is there and answers the control socket.
leapd_alive() {
	kill -0 "$LEAPD_PID"
	leapctl_t info >/dev/null
}

# kv KEY: the value of the last KEY=value line in $output.
kv() {
	grep "^$1=" <<<"$output" | tail -n1 | cut -d= -f2-
}

# ---- class 1: region sizes ---------------------------------------------------

@test "class 1: a region larger than its memfd is refused, nothing maps past the end" {
	leapd_start "$LEAPD_DIR/h.json"
	victim_start 3
	run "$HOSTILE" "$LEAPD_TENANT" h0 region-oversize
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv region)" -eq -22 ]
	[[ "$(kv region_msg)" == *"runs past the memfd"* ]]
	# The read into the refused range is a Data Transfer Error, not a fault.
	[ "$(kv io)" = "0x4" ]
	leapd_alive
	victim_check
	leapd_stop
}

@test "class 1: an unsealed region memfd is refused (a later shrink cannot fault leapd)" {
	leapd_start "$LEAPD_DIR/h.json"
	victim_start 3
	run "$HOSTILE" "$LEAPD_TENANT" h0 region-unsealed-shrink
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv region)" -eq -1 ]
	[[ "$(kv region_msg)" == *"F_SEAL_SHRINK"* ]]
	[ "$(kv io)" = "0x4" ]
	leapd_alive
	victim_check
	leapd_stop
}

@test "class 1: a sealed region cannot shrink under leapd; I/O into it works" {
	leapd_start "$LEAPD_DIR/h.json"
	run "$HOSTILE" "$LEAPD_TENANT" h0 region-sealed-shrink
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv region)" -eq 0 ]
	[ "$(kv truncate)" -eq -1 ] # EPERM: the seal holds
	[ "$(kv io)" = "0x0" ]
	leapd_alive
	leapd_stop
}

@test "class 1: pipes, disk files and unsealed shmem are refused as regions, with the reason" {
	leapd_start "$LEAPD_DIR/h.json"
	run "$HOSTILE" "$LEAPD_TENANT" h0 region-not-memfd
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^region=-9$' <<<"$output")" -eq 2 ] # EBADF: pipe, disk file
	[ "$(grep -c 'must be a memfd' <<<"$output")" -eq 2 ]
	[ "$(grep -c '^region=-1$' <<<"$output")" -eq 1 ] # EPERM: not sealed
	leapd_alive
	leapd_stop
}

@test "class 1: the controller area leapd hands out cannot be truncated" {
	leapd_start "$LEAPD_DIR/h.json"
	victim_start 3
	run "$HOSTILE" "$LEAPD_TENANT" h0 area-truncate
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv truncate)" -eq -1 ]
	[ "$(kv alive)" -eq 1 ]
	leapd_alive
	victim_check
	leapd_stop
}

# ---- class 2: descriptors a tenant can reach ---------------------------------

@test "class 2: clearing O_NONBLOCK on the kick eventfd does not block the reactor" {
	leapd_start "$LEAPD_DIR/h.json"
	"$HOSTILE" "$LEAPD_TENANT" h0 kick-blocking 4 >"$LEAPD_DIR/hostile.out" 2>&1 &
	hostile=$!
	sleep 1 # leapd sleeps and wakes a few times with the flag cleared
	victim_start 2
	victim_check
	wait "$hostile"
	cat "$LEAPD_DIR/hostile.out"
	grep -q '^setfl=0$' "$LEAPD_DIR/hostile.out"
	leapd_alive
	leapd_stop
}

@test "class 2: a vector left full, set blocking, then closed costs leapd nothing" {
	leapd_start "$LEAPD_DIR/h.json"
	victim_start 3
	run "$HOSTILE" "$LEAPD_TENANT" h0 vector-abuse
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv fill)" -eq -9 ] # EBADF: the tenant holds only the read end
	[ "$(kv ios_full)" -eq 20000 ]
	[ "$(kv ios_closed)" -eq 2000 ]
	leapd_alive
	victim_check
	leapd_stop
}

@test "class 2: an ABI 1 attach passing its own eventfd is refused with the reason" {
	leapd_start "$LEAPD_DIR/h.json"
	run "$HOSTILE" "$LEAPD_TENANT" h0 v1-attach
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv attach)" -eq -71 ] # EPROTO
	[[ "$(kv attach_msg)" == *"ABI version 1 not supported"* ]]
	leapd_alive
	leapd_stop
}

# ---- class 3: connection hoarding --------------------------------------------

# open_tenant_socket: let other uids reach this test's tenant socket (the
# directory is mktemp's 0700), so a hostile tenant can run as nobody.
open_tenant_socket() {
	chmod 0711 "$LEAPD_DIR"
	chmod 0666 "$LEAPD_TENANT"
}

@test "class 3: 300 connections that never attach lock no other uid out, and time out" {
	leapd_start "$LEAPD_DIR/h.json"
	open_tenant_socket
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$HOSTILE" "$LEAPD_TENANT" h0 hoard 300 8 >"$LEAPD_DIR/hoard.out" 2>&1 &
	hoarder=$!
	sleep 1
	victim_start 2
	victim_check
	wait "$hoarder"
	output=$(cat "$LEAPD_DIR/hoard.out")
	echo "$output"
	# nobody may keep 16 unattached connections; the rest are refused with the reason.
	[ "$(kv refused)" -eq $(($(kv connected) - 16)) ]
	[[ "$(kv refusal_msg)" == *"connections that have not attached (limit 16)"* ]]
	# ... and those 16 are dropped after the 5 s handshake timeout, saying so.
	[ "$(kv timedout)" -eq 16 ]
	[[ "$(kv timeout_msg)" == *"no attach within 5000 ms"* ]]
	[ "$(kv held)" -eq 0 ]
	leapd_alive
	leapd_stop
}

# ---- class 4: descriptor exhaustion --------------------------------------------

# leapd_limit SOFT [HARD]: the next leapd_start runs leapd with these RLIMIT_NOFILE values.
leapd_limit() {
	cat >"$LEAPD_DIR/leapd-limited" <<-WRAP
	#!/bin/sh
	exec prlimit --nofile=$1:${2:-$1} -- "$E2E_BUILD/bin/leapd" "\$@"
	WRAP
	chmod +x "$LEAPD_DIR/leapd-limited"
	LEAPD="$LEAPD_DIR/leapd-limited"
}

# many_ctrls N: a config with hostile controllers h0..h<N-1> (nobody's) and the victim's v0.
many_ctrls() {
	local i
	{
		echo '['
		echo '{"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 67108864}},'
		echo '{"method": "ctrl_create", "params": {"name": "v0", "max_qpairs": 4}},'
		echo '{"method": "ns_add", "params": {"ctrl": "v0", "bdev": "m0", "offset": 33554432, "lba_size": 512}},'
		for i in $(seq 0 $(($1 - 1))); do
			echo "{\"method\": \"ctrl_create\", \"params\": {\"name\": \"h$i\", \"max_qpairs\": 4, \"owner\": \"nobody\"}},"
			echo "{\"method\": \"ns_add\", \"params\": {\"ctrl\": \"h$i\", \"bdev\": \"m0\", \"size\": 1048576, \"offset\": $((i * 1048576)), \"lba_size\": 512, \"shared\": true}}$([ "$i" -lt $(($1 - 1)) ] && echo ,)"
		done
		echo ']'
	} >"$LEAPD_DIR/many.json"
}

fd_count() {
	ls /proc/"$LEAPD_PID"/fd | wc -l
}

@test "class 4: a uid attaching every vector and region everywhere hits its quota; others are served" {
	many_ctrls 12
	leapd_limit 1024
	leapd_start "$LEAPD_DIR/many.json"
	open_tenant_socket
	fds_before=$(fd_count)
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$HOSTILE" "$LEAPD_TENANT" - exhaust 12 6 >"$LEAPD_DIR/exhaust.out" 2>&1 &
	hostile=$!
	sleep 2
	victim_start 2
	victim_check
	leapctl_t info >/dev/null
	wait "$hostile"
	output=$(cat "$LEAPD_DIR/exhaust.out")
	echo "$output"
	[ "$(kv attached)" -ge 1 ]
	[ "$(kv attached)" -lt 12 ]
	[[ "$(kv attach_msg)" == *"descriptor quota: uid 65534"* ]]
	# The log says so, but not for every refusal.
	[ "$(stat -c %s "$LEAPD_LOG")" -lt 100000 ]
	for i in $(seq 1 50); do
		[ "$(fd_count)" -eq "$fds_before" ] && break
		sleep 0.1
	done
	[ "$(fd_count)" -eq "$fds_before" ]
	leapd_alive
	leapd_stop
}

@test "class 4: a message carrying 60 descriptors is answered precisely and leaks none" {
	leapd_start "$LEAPD_DIR/h.json"
	fds_before=$(fd_count)
	run "$HOSTILE" "$LEAPD_TENANT" h0 fd-spray
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv region)" -eq -22 ]
	[[ "$(kv region_msg)" == *"exactly one descriptor"* ]]
	sleep 0.5
	ls -l /proc/"$LEAPD_PID"/fd
	echo "fds: $fds_before before, $(fd_count) after"
	[ "$(fd_count)" -eq "$fds_before" ]
	leapd_alive
	leapd_stop
}

@test "class 4: leapd raises its soft descriptor limit to the hard one" {
	leapd_limit 512 4096
	leapd_start "$LEAPD_DIR/h.json"
	grep -E '^Max open files +4096 +4096 ' /proc/"$LEAPD_PID"/limits
	grep -q 'descriptor limit raised from 512 to 4096' "$LEAPD_LOG"
	leapd_stop
}

@test "class 4: EMFILE at the control socket: clients refused with a reason, no spin, log bounded" {
	leapd_limit 64
	leapd_start "$LEAPD_DIR/h.json"
	"$HOSTILE" - - rpc-hog "$LEAPD_RPC" 100 5 >"$LEAPD_DIR/hog.out" 2>&1 &
	hog=$!
	sleep 1.5
	t0=$(awk '{print $14 + $15}' /proc/"$LEAPD_PID"/stat)
	sleep 2
	t1=$(awk '{print $14 + $15}' /proc/"$LEAPD_PID"/stat)
	echo "leapd CPU over 2 s: $((t1 - t0)) ticks"
	[ $((t1 - t0)) -lt 40 ] # a spinning loop burns ~200
	run leapctl_t info
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"out of file descriptors"* ]]
	wait "$hog"
	cat "$LEAPD_DIR/hog.out"
	[ "$(stat -c %s "$LEAPD_LOG")" -lt 100000 ]
	# The hog is gone: the control socket serves again.
	for i in $(seq 1 50); do
		leapctl_t info >/dev/null 2>&1 && break
		sleep 0.1
	done
	leapctl_t info >/dev/null
	leapd_stop
}

# ---- class 6: a second leapd on the same paths ---------------------------------

@test "class 6: a second leapd on the same paths fails and leaves the running one's sockets" {
	leapd_start "$LEAPD_DIR/h.json"
	run "$LEAPD" --foreground -r "$LEAPD_RPC" -s "$LEAPD_TENANT" -l "$LEAPD_DIR/second.log" \
		-c "$LEAPD_DIR/h.json"
	cat "$LEAPD_DIR/second.log"
	[ "$status" -eq 1 ]
	grep -q "is owned by another leapd (pid $LEAPD_PID)" "$LEAPD_DIR/second.log"
	# Only the tenant socket shared: refused as well, before touching anything.
	run "$LEAPD" --foreground -r "$LEAPD_DIR/other.sock" -s "$LEAPD_TENANT" \
		-l "$LEAPD_DIR/third.log"
	[ "$status" -eq 1 ]
	grep -q "$LEAPD_TENANT is owned by another leapd" "$LEAPD_DIR/third.log"
	[ -S "$LEAPD_TENANT" ]
	[ -S "$LEAPD_RPC" ]
	# A leapd of its own paths asked (listener_add) to listen on ours: refused too.
	"$LEAPD" --foreground -r "$LEAPD_DIR/b.sock" -s "$LEAPD_DIR/b-tenant.sock" \
		-l "$LEAPD_DIR/b.log" </dev/null &
	other=$!
	for i in $(seq 1 50); do
		"$LEAPCTL" -r "$LEAPD_DIR/b.sock" info >/dev/null 2>&1 && break
		sleep 0.1
	done
	run "$LEAPCTL" -r "$LEAPD_DIR/b.sock" listener add shm --path "$LEAPD_TENANT"
	echo "$output"
	kill -TERM "$other"
	wait "$other"
	[ "$status" -ne 0 ]
	grep -q "$LEAPD_TENANT is owned by another leapd (pid $LEAPD_PID)" "$LEAPD_DIR/b.log"
	[ -S "$LEAPD_TENANT" ]
	victim_start 1
	victim_check
	leapd_alive
	leapd_stop
	# The lock dies with its owner: the next leapd takes the paths over.
	leapd_start "$LEAPD_DIR/h.json"
	leapd_stop
}

# ---- class 5: detach while commands are deferred -------------------------------

@test "class 5: a tenant leaving with deferred commands holds up no one; they are aborted" {
	leapd_start "$LEAPD_DIR/h.json"
	pv=$(pname pv)
	leapctl_t policy load "$E2E_BUILD/tests/bpf/progs/pol_verdict.bpf.o" --name "$pv"
	leapctl_t policy attach "$pv" --ctrl h0
	# Always DEFER, 50 ms at a time, forever: a rate limit that never lets go.
	leapctl_t policy set "$pv" verdict=3 defer_ns=50000000
	run "$HOSTILE" "$LEAPD_TENANT" h0 defer-exit 32
	echo "$output"
	[ "$(kv submitted)" -eq 32 ]
	[ "$(kv completed_before_exit)" -eq 0 ]
	# Another tenant attaches and runs at once, not after the deferrals.
	start=$(date +%s%N)
	run timeout 10 "$PERF" -s "$LEAPD_TENANT" -c v0 --json -q 4 -t 1 --verify
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq .errors <<<"$output")" -eq 0 ]
	elapsed_ms=$((($(date +%s%N) - start) / 1000000))
	echo "victim run took $elapsed_ms ms"
	[ "$elapsed_ms" -lt 5000 ]
	# h0 itself is free again: its deferred commands were aborted, not waited for.
	for i in $(seq 1 30); do
		grep -q "tenant detached from controller 'h0'" "$LEAPD_LOG" && break
		sleep 0.1
	done
	grep -q "tenant detached from controller 'h0'" "$LEAPD_LOG"
	# ... completed as "aborted: SQ deletion" (generic status 0x08).
	run leapctl_t --json stats --ctrl h0
	echo "$output"
	[ "$(jq '.controllers[0].namespaces[0].errors.sct0_sc0x08' <<<"$output")" -eq 32 ]
	leapctl_t policy set "$pv" verdict=0
	run timeout 10 "$PERF" -s "$LEAPD_TENANT" -c h0 --json -q 4 -t 1
	[ "$status" -eq 0 ]
	leapd_stop
}

# ---- class 8: shared hints that lie ----------------------------------------------

@test "class 8: a tenant lying in its CPU and interrupt-mask hints costs other tenants nothing" {
	leapd_start "$LEAPD_DIR/h.json"
	# The victim sleeps on its completion vector: it depends on leapd signalling it.
	victim_start 4 --irq
	run "$HOSTILE" "$LEAPD_TENANT" h0 hints 4
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kv lies)" -gt 1000 ]
	[ "$(kv ios)" -gt 0 ]
	victim_check
	# The reactor answers, and a polling tenant runs at once afterwards.
	leapctl_t --json reactor list
	run timeout 10 "$PERF" -s "$LEAPD_TENANT" -c v0 --json -q 4 -t 1 --verify
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq .errors <<<"$output")" -eq 0 ]
	[ "$(jq .ios <<<"$output")" -gt 1000 ]
	leapd_alive
	leapd_stop
}

# ---- class 7: corrupt policy objects -------------------------------------------

@test "class 7: byte-mutated policy objects (some crash libbpf's parser) never take leapd down" {
	local mut="$E2E_BUILD/tests/tools/objmutate" obj="$E2E_BUILD/policies/stats.bpf.o"
	mkdir -p "$LEAPD_DIR/mut"
	# Seeds whose mutant crashes bpf_object__open() itself: the test keeps its teeth.
	# handle_segv=0: under the sanitizer build a crash must still be a signal.
	crashers=$(ASAN_OPTIONS=handle_segv=0 "$mut" crashes "$obj" 0 1000)
	echo "crashing seeds: $crashers"
	[ "$(wc -w <<<"$crashers")" -ge 3 ]
	for s in $crashers; do "$mut" write "$obj" "$LEAPD_DIR/mut" "$s" 1; done
	"$mut" write "$obj" "$LEAPD_DIR/mut" 0 40
	leapd_start "$LEAPD_DIR/h.json"
	fds_before=$(fd_count)
	loaded=0
	for f in "$LEAPD_DIR"/mut/mut-*.bpf.o; do
		s=${f##*/mut-}
		s=${s%.bpf.o}
		run leapctl_t policy load "$f" --name "$(pname m$s)"
		if [ "$status" -eq 0 ]; then
			loaded=$((loaded + 1))
			leapctl_t policy unload "$(pname m$s)"
		elif [[ " $crashers " == *" $s "* ]]; then
			echo "seed $s: $output"
			[[ "$output" == *"crashed the loader's helper process"* ]]
		fi
		kill -0 "$LEAPD_PID"
	done
	echo "$loaded mutants loaded (and were unloaded)"
	leapd_alive
	# Nothing left behind: no descriptors, no pinned maps of refused objects.
	[ "$(fd_count)" -eq "$fds_before" ]
	[ -z "$(find /sys/fs/bpf/leapio/ -path "*_${BATS_TEST_NUMBER}_$$/*" 2>/dev/null)" ]
	# The real object still loads.
	leapctl_t policy load "$obj" --name "$(pname ok)"
	leapd_stop
}

@test "class 7: a FIFO or an oversized file as a policy object is refused at once" {
	leapd_start "$LEAPD_DIR/h.json"
	mkfifo "$LEAPD_DIR/fifo.bpf.o"
	run timeout 5 "$LEAPCTL" -r "$LEAPD_RPC" -t 4 policy load "$LEAPD_DIR/fifo.bpf.o" --name "$(pname f)"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not a regular file"* ]]
	truncate -s 17M "$LEAPD_DIR/big.bpf.o"
	run leapctl_t policy load "$LEAPD_DIR/big.bpf.o" --name "$(pname b)"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"more than the 16 MiB allowed"* ]]
	leapd_alive
	leapd_stop
}

# ---- access control: controller owners, the tenant group, a root-only control socket

# as_nobody CMD...: run CMD as uid/gid 65534 (nobody/nogroup), no other groups.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# as_other CMD...: uid/gid 1234, not in the tenant group.
as_other() { setpriv --reuid=1234 --regid=1234 --clear-groups "$@"; }

@test "access: controllers admit only their owners; the socket is the tenant group's; root-only control" {
	cat >"$LEAPD_DIR/acl.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 67108864}},
	  {"method": "ctrl_create", "params": {"name": "mine", "owner": "nobody"}},
	  {"method": "ctrl_create", "params": {"name": "byg", "group": "1234,nogroup"}},
	  {"method": "ctrl_create", "params": {"name": "rootonly"}},
	  {"method": "ns_add", "params": {"ctrl": "mine", "bdev": "m0", "size": 16777216, "lba_size": 512}},
	  {"method": "ns_add", "params": {"ctrl": "byg", "bdev": "m0", "offset": 16777216, "size": 16777216, "lba_size": 512}},
	  {"method": "ns_add", "params": {"ctrl": "rootonly", "bdev": "m0", "offset": 33554432, "lba_size": 512}}
	]
	EOF
	leapd_start "$LEAPD_DIR/acl.json" --tenant-group nogroup
	# The tenant socket: root:nogroup 0660; its directory lets the group through.
	[ "$(stat -c '%a %U %G' "$LEAPD_TENANT")" = "660 root nogroup" ]
	[ "$(stat -c '%a %U' "$LEAPD_RPC")" = "600 root" ]
	# nobody (in nogroup) runs on its own controller and on its group's, verified.
	run as_nobody "$PERF" -s "$LEAPD_TENANT" -c mine --json -q 4 -t 1 --verify
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq .verify_mismatches <<<"$output")" -eq 0 ]
	run as_nobody "$PERF" -s "$LEAPD_TENANT" -c byg --json -q 4 -t 1
	[ "$status" -eq 0 ]
	# ... and may neither use nor squat on a controller that is not its.
	run as_nobody "$PERF" -s "$LEAPD_TENANT" -c rootonly -t 1
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"uid 65534 may not attach to controller 'rootonly' (not an owner)"* ]]
	# uid 1234 is not in the socket's group: it cannot even connect.
	run as_other "$PERF" -s "$LEAPD_TENANT" -c byg -t 1
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Permission denied"* ]]
	# With nogroup as a supplementary group it can; byg lists gid 1234, mine does not.
	run setpriv --reuid=1234 --regid=1234 --groups=65534 "$PERF" -s "$LEAPD_TENANT" -c byg -t 1
	[ "$status" -eq 0 ]
	run setpriv --reuid=1234 --regid=1234 --groups=65534 "$PERF" -s "$LEAPD_TENANT" -c mine -t 1
	[ "$status" -eq 1 ]
	# The control socket is root's alone (the directory is not what stops them).
	run as_nobody "$LEAPCTL" -r "$LEAPD_RPC" info
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Permission denied"* ]]
	# Owners are shown, and kept by config_save.
	run leapctl_t --json ctrl list mine
	[ "$(jq -r '.[0].owner // .owner' <<<"$output")" = "65534" ]
	leapctl_t config save "$LEAPD_DIR/saved.json"
	[ "$(jq -r '.[] | select(.method == "ctrl_create" and .params.name == "byg") | .params.group' \
		"$LEAPD_DIR/saved.json")" = "1234,65534" ]
	[ "$(jq -r '.[] | select(.method == "ctrl_create" and .params.name == "rootonly") | .params.owner' \
		"$LEAPD_DIR/saved.json")" = "null" ]
	# A name that resolves to no one is refused, with the name.
	run leapctl_t ctrl add bad --owner no-such-user-here
	[ "$status" -ne 0 ]
	[[ "$output" == *"no user 'no-such-user-here'"* ]]
	leapd_stop
}

# ---- stress: several hostile tenants at once -----------------------------------

@test "stress: three tenants abuse queues, doorbells, regions, CC and exits for 10 s; verifiers unharmed" {
	cat >"$LEAPD_DIR/st.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 67108864}},
	  {"method": "bdev_create", "params": {"name": "f0", "type": "uring",
	   "path": "$LEAPD_DIR/f0.img", "size": 33554432}},
	  {"method": "ctrl_create", "params": {"name": "v0", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "v1", "max_qpairs": 4}},
	  {"method": "ns_add", "params": {"ctrl": "v0", "bdev": "m0", "size": 16777216, "lba_size": 512}},
	  {"method": "ns_add", "params": {"ctrl": "v1", "bdev": "f0", "size": 16777216, "lba_size": 4096}},
	  {"method": "ctrl_create", "params": {"name": "h0", "owner": "nobody"}},
	  {"method": "ctrl_create", "params": {"name": "h1", "owner": "nobody"}},
	  {"method": "ctrl_create", "params": {"name": "h2", "owner": "nobody"}},
	  {"method": "ns_add", "params": {"ctrl": "h0", "bdev": "m0", "offset": 33554432, "size": 8388608, "lba_size": 512}},
	  {"method": "ns_add", "params": {"ctrl": "h1", "bdev": "m0", "offset": 41943040, "size": 8388608, "lba_size": 4096}},
	  {"method": "ns_add", "params": {"ctrl": "h2", "bdev": "f0", "offset": 16777216, "lba_size": 512}}
	]
	EOF
	leapd_start "$LEAPD_DIR/st.json"
	open_tenant_socket
	# A first pass of each victim, so lazily made things exist before counting.
	"$PERF" -s "$LEAPD_TENANT" -c v0 -q 4 -t 1 >/dev/null
	"$PERF" -s "$LEAPD_TENANT" -c v1 -q 4 -t 1 >/dev/null
	sleep 0.5
	fds_before=$(fd_count)
	maps_before=$(wc -l </proc/"$LEAPD_PID"/maps)
	rss_before=$(awk '/^VmRSS/ {print $2}' /proc/"$LEAPD_PID"/status)
	pids=()
	for i in 0 1 2; do
		setpriv --reuid=nobody --regid=nogroup --clear-groups \
			"$HOSTILE" "$LEAPD_TENANT" "h$i" chaos 10 $((i + 7)) >"$LEAPD_DIR/chaos$i.out" 2>&1 &
		pids+=($!)
	done
	"$PERF" -s "$LEAPD_TENANT" -c v0 --json -q 8 -w randrw -t 10 --verify \
		>"$LEAPD_DIR/v0.json" 2>&1 &
	v0=$!
	"$PERF" -s "$LEAPD_TENANT" -c v1 --json -q 8 -w randrw -t 10 --verify \
		>"$LEAPD_DIR/v1.json" 2>&1 &
	v1=$!
	for p in "${pids[@]}"; do wait "$p"; done
	rc0=0; wait "$v0" || rc0=$?
	rc1=0; wait "$v1" || rc1=$?
	cat "$LEAPD_DIR"/chaos*.out "$LEAPD_DIR/v0.json" "$LEAPD_DIR/v1.json"
	[ "$rc0" -eq 0 ] && [ "$rc1" -eq 0 ]
	for v in v0 v1; do
		[ "$(jq .errors "$LEAPD_DIR/$v.json")" -eq 0 ]
		[ "$(jq .verify_mismatches "$LEAPD_DIR/$v.json")" -eq 0 ]
		[ "$(jq .ios "$LEAPD_DIR/$v.json")" -gt 1000 ]
	done
	# Each hostile process lived and died many times.
	for i in 0 1 2; do
		[ "$(grep '^lives=' "$LEAPD_DIR/chaos$i.out" | cut -d= -f2)" -ge 10 ]
	done
	# Tenant-made errors are logged, but not once per attach for ever.
	[ "$(stat -c %s "$LEAPD_LOG")" -lt 500000 ]
	leapd_alive
	# Everything the hostile tenants made leapd hold is given back.
	for i in $(seq 1 100); do
		[ "$(fd_count)" -eq "$fds_before" ] && break
		sleep 0.1
	done
	echo "fds $fds_before -> $(fd_count), maps $maps_before -> $(wc -l </proc/"$LEAPD_PID"/maps)"
	[ "$(fd_count)" -eq "$fds_before" ]
	[ -n "${LEAP_ASAN:-}" ] || [ "$(wc -l </proc/"$LEAPD_PID"/maps)" -eq "$maps_before" ]
	rss_after=$(awk '/^VmRSS/ {print $2}' /proc/"$LEAPD_PID"/status)
	echo "RSS ${rss_before} kB -> ${rss_after} kB"
	[ -n "${LEAP_ASAN:-}" ] || [ "$rss_after" -lt $((rss_before + 32768)) ]
	leapd_stop
}
