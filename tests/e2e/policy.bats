#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# Policies in a real leapd, driven through leapctl, bpftool and a tenant
# (blkio, leap-perf): load/attach/list/detach/unload, every rejection
# class with the running chain untouched, every verdict's effect on data
# and statuses, chain order, per-namespace scope, knobs changed live by
# leapctl and by bpftool, and live replace under a verifying load.
# The knob-driven test policy is tests/bpf/progs/pol_verdict.bpf.c.

load helpers

PROGS="$E2E_BUILD/tests/bpf/progs"
BLKIO="$E2E_BUILD/tests/tools/blkio"
LEAP_PERF="$E2E_BUILD/bin/leap-perf"
PERF_PID=""

setup() {
	leapd_dir
	cat >"$LEAPD_DIR/p.json" <<-EOF
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 16777216}},
	  {"method": "bdev_create", "params": {"name": "m1", "type": "mem", "size": 16777216}},
	  {"method": "ctrl_create", "params": {"name": "c0", "max_qpairs": 4}},
	  {"method": "ctrl_create", "params": {"name": "c1", "max_qpairs": 4}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "m0", "size": 8388608}},
	  {"method": "ns_add", "params": {"ctrl": "c0", "bdev": "m0", "offset": 8388608}},
	  {"method": "ns_add", "params": {"ctrl": "c1", "bdev": "m1"}}
	]
	EOF
	leapd_start "$LEAPD_DIR/p.json"
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

# seen NAME FIELD_INDEX: a word of pol_verdict's `seen` map through leapctl.
seen() {
	leapctl_t --json policy dump "$1" seen | jq -r ".values[0][$2]"
}

load_pv() {
	run leapctl_t policy load "$PROGS/pol_verdict.bpf.o" --name "$1"
	[ "$status" -eq 0 ]
}

@test "load, attach, list, show, detach, unload; programs visible in bpftool, maps pinned" {
	local pv
	pv=$(pname pv)
	load_pv "$pv"
	[ -e "/sys/fs/bpf/leapio/$pv/seen" ]
	run leapctl_t policy attach "$pv"
	[ "$status" -eq 0 ]
	run leapctl_t --json policy list
	[ "$(jq -r '.links | length' <<<"$output")" -eq 2 ]
	[ "$(jq -r '[.links[].hook] | sort | join(",")' <<<"$output")" = "complete,submit" ]
	# The kernel's program ids leapd reports are loaded programs bpftool lists.
	ids=$(leapctl_t --json policy show "$pv" | jq -r '.programs[].kernel_id')
	for id in $ids; do
		bpftool prog show id "$id" >/dev/null
	done
	blk c0 1 write 0 8 1
	blk c0 1 check 0:8:1
	[ "$(seen "$pv" 0)" -eq 2 ]
	[ "$(seen "$pv" 1)" -eq 2 ]
	run leapctl_t --json policy list
	[ "$(jq -r '.links[] | select(.hook=="submit") | .runs' <<<"$output")" -eq 2 ]
	[ "$(jq -r '.links[] | select(.hook=="submit") | .verdicts.pass' <<<"$output")" -eq 2 ]
	# Unload refuses while attached, then works and takes the pins with it.
	run leapctl_t policy unload "$pv"
	[ "$status" -ne 0 ]
	[[ "$output" == *"detach it first"* ]]
	run leapctl_t policy detach "$pv"
	[ "$status" -eq 0 ]
	blk c0 1 write 0 1 2
	[ "$(seen "$pv" 0)" -eq 2 ]
	run leapctl_t policy unload "$pv"
	[ "$status" -eq 0 ]
	[ ! -e "/sys/fs/bpf/leapio/$pv" ]
	for id in $ids; do
		run bpftool prog show id "$id"
		[ "$status" -ne 0 ]
	done
	leapd_stop
}

@test "load-time knobs: --set writes .rodata before verification; policy set refuses them" {
	local pv
	pv=$(pname pv)
	run leapctl_t policy load "$PROGS/pol_verdict.bpf.o" --name "$pv" --set load_mark=5
	[ "$status" -eq 0 ]
	leapctl_t policy set "$pv" mark=2
	leapctl_t policy attach "$pv"
	blk c0 1 write 0 2 1
	# cookie[0] = mark + load_mark at submit, compared at complete: 2 + 5 both times.
	[ "$(seen "$pv" 1)" -eq 1 ]
	[ "$(seen "$pv" 3)" -eq 1 ]
	run leapctl_t --json policy show "$pv"
	[ "$(jq -r '.vars[] | select(.name=="load_mark") | .section' <<<"$output")" = rodata ]
	[ "$(jq -r '.vars[] | select(.name=="load_mark") | .value' <<<"$output")" -eq 5 ]
	[ "$(jq -r '.set.load_mark' <<<"$output")" -eq 5 ]
	run leapctl_t policy set "$pv" load_mark=1
	[ "$status" -ne 0 ]
	[[ "$output" == *"load-time knob"* ]]
	run leapctl_t policy load "$PROGS/pol_verdict.bpf.o" --name "$(pname other)" --set nosuch=1
	[ "$status" -ne 0 ]
	[[ "$output" == *"no such knob"* ]]
	# Replace keeps the previous --set values unless given new ones.
	leapctl_t policy replace "$pv" "$PROGS/pol_verdict.bpf.o"
	blk c0 1 write 0 2 1
	[ "$(seen "$pv" 3)" -eq 2 ]
	leapd_stop
}

@test "rejections name the reason and leave the running chain untouched" {
	local pv bad
	pv=$(pname pv)
	load_pv "$pv"
	leapctl_t policy attach "$pv" --hook submit
	bad=$(pname bad)
	run leapctl_t policy load "$PROGS/bad_verifier.bpf.o" --name "$bad"
	[ "$status" -ne 0 ]
	[[ "$output" == *"rejected by the kernel verifier"* ]]
	run leapctl_t policy load "$PROGS/bad_helper.bpf.o" --name "$bad"
	[ "$status" -ne 0 ]
	[[ "$output" == *"helper"* ]]
	[[ "$output" == *"insn"* ]]
	run leapctl_t policy load "$PROGS/bad_kfunc.bpf.o" --name "$bad"
	[ "$status" -ne 0 ]
	[[ "$output" == *"kfunc"* ]]
	run leapctl_t policy load "$PROGS/bad_section.bpf.o" --name "$bad"
	[ "$status" -ne 0 ]
	[[ "$output" == *"unknown section"* ]]
	run leapctl_t policy load "$PROGS/pol_bad_ctx.bpf.o" --name "$bad"
	[ "$status" -ne 0 ]
	[[ "$output" == *"insn"* ]]
	[[ "$output" == *"context"* ]]
	run leapctl_t policy load /nonexistent.bpf.o --name "$bad"
	[ "$status" -ne 0 ]
	# A map whose shape conflicts with the pinned one: replace refused, naming the field.
	run leapctl_t policy replace "$pv" "$PROGS/pol_shape.bpf.o"
	[ "$status" -ne 0 ]
	[[ "$output" == *"max_entries"* ]]
	# Nothing of that reached the chain: the old program still runs, alone.
	run leapctl_t --json policy list
	[ "$(jq -r '.policies | length' <<<"$output")" -eq 1 ]
	[ "$(jq -r '.policies[0].replaced' <<<"$output")" -eq 0 ]
	blk c0 1 write 0 4 3
	blk c0 1 check 0:4:3
	[ "$(seen "$pv" 0)" -eq 2 ]
	# Bad RPC parameters get a JSON-RPC error, leapd keeps serving.
	run leapctl_t policy attach "$pv" --hook sideways
	[ "$status" -ne 0 ]
	run leapctl_t policy attach "$pv" --ctrl nosuch
	[ "$status" -ne 0 ]
	[[ "$output" == *"not found"* ]]
	leapd_stop
}

@test "verdicts: complete, redirect, split, defer, and bad verdicts fail only their command" {
	local pv
	pv=$(pname pv)
	load_pv "$pv"
	leapctl_t policy attach "$pv" --ctrl c0
	blk c0 1 write 0 16 1
	# COMPLETE with a status: the write never happens.
	leapctl_t policy set "$pv" verdict=1 status=$((0x8000 | 0x286)) only_opcode=1
	run blk c0 1 status 1 0 4
	[ "$output" = "status sct=2 sc=0x86" ]
	leapctl_t policy set "$pv" verdict=0
	blk c0 1 check 0:16:1
	# REDIRECT writes of c0 ns1 to bdev m1, 100 blocks further: c1 (on m1) sees them there.
	leapctl_t policy set "$pv" verdict=2 target_bdev=bdev:m1 target_lba_add=100 only_opcode=1
	blk c0 1 write 0 8 7
	leapctl_t policy set "$pv" verdict=0
	blk c0 1 check 0:16:1
	blk c1 1 check 100:8:7:0
	# SPLIT: the first 3 blocks redirected to m1, the rest run the chain again and stay.
	leapctl_t policy set "$pv" verdict=4 split_nlb=3 split_verdict=2 target_bdev=bdev:m1 \
		target_lba_add=200 only_opcode=0xff
	blk c0 1 write 4 8 9
	leapctl_t policy set "$pv" verdict=0
	blk c0 1 check 0:4:1 4:3:1 7:5:9 12:4:1
	blk c1 1 check 204:3:9:4
	[ "$(seen "$pv" 2)" -ge 1 ]
	# DEFER: held 20 ms, then the chain runs again and the command completes.
	leapctl_t policy set "$pv" verdict=3 defer_ns=20000000 only_opcode=2
	(sleep 0.1 && leapctl_t policy set "$pv" verdict=0 only_opcode=0xff) &
	setter=$!
	blk c0 1 check 0:4:1
	wait "$setter"
	run leapctl_t --json policy list
	[ "$(jq -r '.links[] | select(.hook=="submit") | .verdicts.defer' <<<"$output")" -ge 1 ]
	# An unknown verdict and a redirect to a missing backend: Internal Error, counted.
	leapctl_t policy set "$pv" verdict=9
	run blk c0 1 status 2 0 1
	[ "$output" = "status sct=0 sc=0x06" ]
	leapctl_t policy set "$pv" verdict=2 target_bdev=4000
	run blk c0 1 status 2 0 1
	[ "$output" = "status sct=0 sc=0x06" ]
	# A redirect past the target's end.
	leapctl_t policy set "$pv" verdict=2 target_bdev=0 target_lba_add=100000000
	run blk c0 1 status 2 0 1
	[ "$output" = "status sct=0 sc=0x06" ]
	run leapctl_t --json policy list
	[ "$(jq -r '.controllers[] | select(.ctrl=="c0") | .invalid_verdicts' <<<"$output")" -eq 1 ]
	[ "$(jq -r '.controllers[] | select(.ctrl=="c0") | .route_errors' <<<"$output")" -eq 2 ]
	[ "$(jq -r '.links[] | select(.hook=="submit") | .verdicts.invalid' <<<"$output")" -eq 1 ]
	# The daemon and the other tenant are fine.
	blk c1 1 write 0 2 4
	blk c1 1 check 0:2:4
	leapd_stop
}

@test "chains: order decides, the first non-PASS ends the chain, links see earlier writes" {
	local a b
	a=$(pname a)
	b=$(pname b)
	load_pv "$a"
	load_pv "$b"
	leapctl_t policy set "$a" prio=0 mark=11
	leapctl_t policy set "$b" verdict=1 status=$((0x8000 | 0x286))
	leapctl_t policy attach "$b" --hook submit --order 20
	leapctl_t policy attach "$a" --hook submit --order 10
	run blk c0 1 status 2 0 1
	[ "$output" = "status sct=2 sc=0x86" ]
	# b ran after a and saw the priority a set.
	[ "$(seen "$a" 0)" -eq 1 ]
	[ "$(seen "$b" 0)" -eq 1 ]
	[ "$(seen "$b" 6)" -eq 0 ]
	# Reordered: b first ends the chain, a never runs.
	leapctl_t policy detach "$a"
	leapctl_t policy attach "$a" --hook submit --order 30
	run blk c0 1 status 2 0 1
	[ "$output" = "status sct=2 sc=0x86" ]
	[ "$(seen "$a" 0)" -eq 1 ]
	[ "$(seen "$b" 0)" -eq 2 ]
	leapd_stop
}

@test "scope: a namespace link runs only for that namespace, a controller link only there" {
	local pv
	pv=$(pname pv)
	load_pv "$pv"
	leapctl_t policy set "$pv" verdict=1 status=$((0x8000 | 0x286))
	leapctl_t policy attach "$pv" --hook submit --ctrl c0 --ns 2
	run blk c0 2 status 2 0 1
	[ "$output" = "status sct=2 sc=0x86" ]
	run blk c0 1 status 2 0 1
	[ "$output" = "status sct=0 sc=0x00" ]
	run blk c1 1 status 2 0 1
	[ "$output" = "status sct=0 sc=0x00" ]
	leapctl_t policy detach "$pv"
	leapctl_t policy attach "$pv" --hook submit --ctrl c1
	run blk c1 1 status 2 0 1
	[ "$output" = "status sct=2 sc=0x86" ]
	run blk c0 2 status 2 0 1
	[ "$output" = "status sct=0 sc=0x00" ]
	leapd_stop
}

@test "knobs change live through leapctl and through bpftool, and bpftool shows the same bytes" {
	local pv
	pv=$(pname pv)
	load_pv "$pv"
	leapctl_t policy attach "$pv"
	blk c0 1 write 0 2 1
	# The map as bpftool sees it equals leapctl's dump.
	sub_bpftool=$(bpftool -j map dump pinned "/sys/fs/bpf/leapio/$pv/seen" | jq -r '.[0].formatted.value.submits // .[0].value.submits')
	[ "$sub_bpftool" = "$(seen "$pv" 0)" ]
	[ "$sub_bpftool" -eq 1 ]
	# A knob set by leapctl is visible to bpftool in the data map.
	leapctl_t policy set "$pv" prio=3
	run bpftool -j map dump pinned "/sys/fs/bpf/leapio/$pv/data"
	[ "$status" -eq 0 ]
	[[ "$output" == *'"prio":3'* ]]
	# ... and a knob written by bpftool changes what the policy does, no reload.
	val=$(bpftool -j map dump pinned "/sys/fs/bpf/leapio/$pv/bss" | jq -r '.[0].value | map(.) | join(" ")')
	read -r -a bytes <<<"$val"
	bytes[0]=0x01 # verdict = LEAP_COMPLETE
	bytes[4]=0x86 # status = 0x8286
	bytes[5]=0x82
	bpftool map update pinned "/sys/fs/bpf/leapio/$pv/bss" key 0 0 0 0 value "${bytes[@]}"
	run blk c0 1 status 2 0 1
	[ "$output" = "status sct=2 sc=0x86" ]
	run leapctl_t --json policy show "$pv"
	[ "$(jq -r '.vars[] | select(.name=="verdict") | .value' <<<"$output")" -eq 1 ]
	leapd_stop
}

@test "live replace every 100 ms under a verifying load: no error, no mismatch, state kept" {
	local pv i
	pv=$(pname pv)
	load_pv "$pv"
	leapctl_t policy attach "$pv"
	timeout 60 "$LEAP_PERF" -s "$LEAPD_TENANT" -c c0 -w randrw -q 16 -t 4 --verify --json \
		>"$LEAPD_DIR/perf.json" &
	PERF_PID=$!
	sleep 0.3
	for i in $(seq 1 25); do
		leapctl_t policy replace "$pv" "$PROGS/pol_verdict.bpf.o" >/dev/null
		sleep 0.1
	done
	wait "$PERF_PID"
	rc=$?
	PERF_PID=""
	[ "$rc" -eq 0 ]
	[ "$(jq -r .errors "$LEAPD_DIR/perf.json")" -eq 0 ]
	[ "$(jq -r .verify_mismatches "$LEAPD_DIR/perf.json")" -eq 0 ]
	ios=$(jq -r .ios "$LEAPD_DIR/perf.json")
	[ "$ios" -gt 0 ]
	run leapctl_t --json policy list
	[ "$(jq -r '.policies[0].replaced' <<<"$output")" -eq 25 ]
	# Every command ran the submit chain and the complete chain exactly once,
	# across 25 object swaps, because the `seen` map was kept each time.
	[ "$(seen "$pv" 1)" -ge "$ios" ]
	[ "$(seen "$pv" 0)" -eq "$(seen "$pv" 1)" ]
	leapd_stop
}

@test "config_save writes policies and links back; a restart from it runs them" {
	local pv
	pv=$(pname pv)
	load_pv "$pv"
	leapctl_t policy attach "$pv" --hook submit --ctrl c0 --order 7
	leapctl_t config save "$LEAPD_DIR/saved.json"
	jq -e '.[] | select(.method=="policy_load") | .params.name' "$LEAPD_DIR/saved.json"
	jq -e '.[] | select(.method=="policy_attach" and .params.order==7 and .params.ctrl=="c0")' \
		"$LEAPD_DIR/saved.json"
	leapd_stop
	leapd_start "$LEAPD_DIR/saved.json"
	run leapctl_t --json policy list
	[ "$(jq -r '.links | length' <<<"$output")" -eq 1 ]
	[ "$(jq -r '.links[0].order' <<<"$output")" -eq 7 ]
	# The pinned state survived the restart: the map was reused.
	before=$(seen "$pv" 0)
	blk c0 1 write 0 1 1
	[ "$(seen "$pv" 0)" -eq $((before + 1)) ]
	leapd_stop
}
