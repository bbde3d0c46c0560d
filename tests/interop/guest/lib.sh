# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=sh
#
# Guest-side helpers (busybox ash), prepended to a test's guest script by
# guest_script (tests/interop/lib/guest.bash). They print KEY=VALUE lines the
# host reads back with guest_value, and fail loudly: "FAIL: why" and exit 1.

die() {
	echo "FAIL: $*"
	exit 1
}

# wait_for PATH SECONDS: until PATH exists.
wait_for() {
	_n=0
	while [ ! -e "$1" ]; do
		_n=$((_n + 1))
		[ "$_n" -gt $(($2 * 10)) ] && return 1
		sleep 0.1
	done
}

# ram_disk MIB: a loop device over a file on tmpfs; prints its path.
ram_disk() {
	modprobe loop || return 1
	_img=$(mktemp /tmp/ramdisk.XXXXXX) || return 1
	truncate -s "${1}M" "$_img" || return 1
	losetup -f --show "$_img"
}

# nvmet_tcp_target NQN TRADDR TRSVCID DEVICE [PORTID]: a Linux nvmet-tcp
# target exporting DEVICE (block device or file) as namespace 1 of NQN to any
# host, listening on TRADDR:TRSVCID (ipv4).
nvmet_tcp_target() {
	_nqn=$1 _addr=$2 _svc=$3 _dev=$4 _port=${5:-1}
	_cfg=/sys/kernel/config/nvmet
	modprobe -a nvmet nvmet-tcp || return 1
	mkdir "$_cfg/subsystems/$_nqn" || return 1
	echo 1 >"$_cfg/subsystems/$_nqn/attr_allow_any_host" || return 1
	mkdir "$_cfg/subsystems/$_nqn/namespaces/1" || return 1
	printf '%s' "$_dev" >"$_cfg/subsystems/$_nqn/namespaces/1/device_path" || return 1
	echo 1 >"$_cfg/subsystems/$_nqn/namespaces/1/enable" || return 1
	mkdir -p "$_cfg/ports/$_port" || return 1
	echo tcp >"$_cfg/ports/$_port/addr_trtype"
	echo ipv4 >"$_cfg/ports/$_port/addr_adrfam"
	echo "$_addr" >"$_cfg/ports/$_port/addr_traddr"
	echo "$_svc" >"$_cfg/ports/$_port/addr_trsvcid"
	ln -s "$_cfg/subsystems/$_nqn" "$_cfg/ports/$_port/subsystems/$_nqn" || return 1
}

# nvme_tcp_connect TRADDR TRSVCID NQN: connects the Linux NVMe/TCP host
# (nvme-cli does not load modules itself) and prints the namespace's block
# device once it exists.
nvme_tcp_connect() {
	modprobe nvme-tcp || return 1
	nvme connect -t tcp -a "$1" -s "$2" -n "$3" >/dev/null || return 1
	for _c in /sys/class/nvme/nvme*; do
		[ "$(cat "$_c/subsysnqn" 2>/dev/null)" = "$3" ] || continue
		_ns=$(basename "$_c")n1
		wait_for "/dev/$_ns" 20 || return 1
		echo "/dev/$_ns"
		return 0
	done
	return 1
}

# pattern MIB: MIB MiB of deterministic bytes that the host regenerates with
# the same commands (tests/interop/guest.bats: expected_pattern_sha). Each
# 64 KiB block starts with its index in 8 digits, so a misplaced block shows;
# the filler is computed once, because busybox seq under TCG does ~0.4 MiB/s.
pattern() {
	_chunk=$(mktemp /tmp/pattern.XXXXXX) || return 1
	seq 1 16384 | head -c 65528 >"$_chunk"
	_i=0
	while [ "$_i" -lt $(($1 * 16)) ]; do
		printf '%08d' "$_i"
		cat "$_chunk"
		_i=$((_i + 1))
	done
	rm -f "$_chunk"
}
