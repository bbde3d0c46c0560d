#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# leap-perf -r and the fio engine against a target nobody here wrote: Linux
# nvmet-tcp in a QEMU/TCG guest (tests/interop/lib/guest.bash), reached
# through a forwarded port. Verified I/O in both directions, in-capsule and
# R2T-sized writes (nvmet takes 8 KiB in the capsule), with and without
# digests, two queues. Guest I/O runs at emulator speed, so the runs are
# short and the spans small: this is about interoperating, not speed.
# Skips (with the reason) where QEMU or the guest assets are missing.

load helpers
load ../interop/lib/guest

PERF="$E2E_BUILD/bin/leap-perf"
FIO="$E2E_BUILD/fio/fio"
ENGINE="$E2E_BUILD/lib/leapio_fio.so"
LNQN=nqn.2026-12.io.leapio:linux

setup_file() {
	qemu_available || return 0
	export GUEST_TMP
	GUEST_TMP=$(mktemp -d /tmp/tcp-host-nvmet.XXXXXX)
	NVMET_PORT=$(guest_free_port)
	export NVMET_PORT
	guest_script "$GUEST_TMP/t.sh" <<-EOF
	dev=\$(ram_disk 64) || die "no loop device"
	nvmet_tcp_target $LNQN 0.0.0.0 4420 "\$dev" || die "nvmet_tcp_target"
	echo TARGET_UP
	sleep 600
	EOF
	mapfile -t fwd < <(guest_hostfwd_args "$NVMET_PORT" 4420)
	guest_start_bg --timeout 700 --log "$GUEST_TMP/guest.log" "$GUEST_TMP/t.sh" "${fwd[@]}"
	echo "$GUEST_BG_PID" >"$GUEST_TMP/pid"
	guest_wait_nvmet_tcp 127.0.0.1 "$NVMET_PORT" 120 || echo down >"$GUEST_TMP/down"
}

teardown_file() {
	[ -n "${GUEST_TMP:-}" ] || return 0
	[ -f "$GUEST_TMP/pid" ] && guest_stop "$(cat "$GUEST_TMP/pid")"
	rm -rf "$GUEST_TMP"
}

setup() {
	qemu_available || skip "$GUEST_UNAVAILABLE"
	if [ -f "$GUEST_TMP/down" ]; then
		tail -n 30 "$GUEST_TMP/guest.log"
		false # the guest's nvmet-tcp never answered an ICReq: a failure, not a skip
	fi
}

trid() {
	echo "trtype:tcp traddr:127.0.0.1 trsvcid:$NVMET_PORT subnqn:$LNQN${1:+ $1}"
}

@test "leap-perf -r against Linux nvmet-tcp: verified randrw, then 64 KiB writes by R2T with digests on two queues" {
	run timeout 120 "$PERF" -r "$(trid)" --connect-timeout 60000 -q 16 -w randrw --verify \
		--span 4M -t 2 --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .errors <<<"$output")" -eq 0 ]
	[ "$(jq -r .verify_mismatches <<<"$output")" -eq 0 ]
	[ "$(jq -r .reads <<<"$output")" -gt 0 ]
	[ "$(jq -r .writes <<<"$output")" -gt 0 ]
	run timeout 120 "$PERF" -r "$(trid "hdgst:1 ddgst:1")" --connect-timeout 60000 -P 2 -q 8 \
		-o 64k -w randrw --verify --span 8M -t 2 --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .errors <<<"$output")" -eq 0 ]
	[ "$(jq -r .verify_mismatches <<<"$output")" -eq 0 ]
	[ "$(jq -r .tcp.ddgst <<<"$output")" = true ]
	[ "$(jq -r .writes <<<"$output")" -gt 0 ]
}

@test "fio verify=crc32c through the engine against Linux nvmet-tcp, with data digests" {
	[ -x "$FIO" ] || skip "fio 3.33 is not built in $E2E_BUILD/fio (make deps)"
	run timeout -k 10 180 "$FIO" --ioengine="external:$ENGINE" --thread=1 --verify_state_save=0 \
		--connect_timeout=60000 --output-format=json --output="$GUEST_TMP/fio.json" --name=v \
		--filename="trtype=tcp traddr=127.0.0.1 trsvcid=$NVMET_PORT subnqn=${LNQN//:/\\:} ddgst=1" \
		--rw=randwrite --bs=16k --size=4M --iodepth=8 --verify=crc32c
	echo "$output"
	cat "$GUEST_TMP/fio.json" || true
	[ "$status" -eq 0 ]
	[ "$(jq -r '.jobs[0].error' "$GUEST_TMP/fio.json")" -eq 0 ]
	[ "$(jq -r '.jobs[0].write.total_ios' "$GUEST_TMP/fio.json")" -eq 256 ]
	[ "$(jq -r '.jobs[0].read.total_ios' "$GUEST_TMP/fio.json")" -eq 256 ]
}
