# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# Boots throw-away Linux guests under QEMU/TCG for interop tests: a real Linux
# NVMe/TCP host and target, virtio-blk over vhost-user, whatever a test script
# does inside. Sourced by bats files and scripts; needs the assets that
# scripts/deps.sh --qemu builds (tests/interop/lib/mkguest.sh).
#
#   guest_run [opts] SCRIPT [qemu args...]      boot, run SCRIPT as /test.sh,
#                                               return its exit status
#   guest_start_bg [opts] SCRIPT [qemu args...] the same in the background;
#                                               GUEST_BG_PID, GUEST_BG_LOG
#   guest_stop [PID...]                         end background guests we started
#   guest_bg_status [LOG NONCE]                 prints an ended bg guest's status
#   guest_descendants PID                       PIDs under PID (timeout, qemu)
#   guest_script FILE < body                    guest/lib.sh helpers + body
#   guest_wait_log LOG REGEX TIMEOUT            wait for a console line
#   guest_wait_nvmet_tcp HOST PORT TIMEOUT      wait for a real NVMe/TCP ICResp
#   guest_output [LOG] / guest_value KEY [LOG]  what the script printed
#   guest_vhost_user_blk_args SOCK...           qemu args for vhost-user-blk-pci
#   guest_hostfwd_args HOSTPORT GUESTPORT       qemu args for a NIC + hostfwd
#   guest_free_port                             an unused 127.0.0.1 TCP port
#   qemu_available                              assets and QEMU present?
#                                               (reason in GUEST_UNAVAILABLE)
# opts: --timeout S (GUEST_TIMEOUT, default 180), --log FILE (GUEST_LOG,
# default a fresh file under the test's temp dir), --mem SIZE (GUEST_MEM,
# default 1G). Exit statuses: the script's own, 124 when the hard timeout
# fired, 125 when the guest ended without printing its exit marker.
# More environment: GUEST_SMP (vCPUs, default 1), GUEST_CPU (default
# qemu64,+rdrand), GUEST_APPEND (more kernel
# arguments), GUEST_OVERLAY (a directory copied into the guest's /),
# GUEST_DIR (assets, default $BUILD/guest), GUEST_QEMU (the emulator).
# Every function is safe under `set -e` (bats runs tests that way).

_GUEST_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GUEST_ROOT="${GUEST_ROOT:-$(cd "$_GUEST_LIB_DIR/../../.." && pwd)}"
GUEST_DIR="${GUEST_DIR:-${BUILD:-$GUEST_ROOT/build}/guest}"
GUEST_QEMU="${GUEST_QEMU:-qemu-system-x86_64}"
GUEST_BG_PIDS=()
_GUEST_BG_FILES=()

# qemu_available: true when QEMU and the guest assets exist. Otherwise false,
# with the reason in GUEST_UNAVAILABLE (tests skip with it).
qemu_available() {
	GUEST_UNAVAILABLE=""
	if ! command -v "$GUEST_QEMU" >/dev/null 2>&1; then
		GUEST_UNAVAILABLE="$GUEST_QEMU not installed (scripts/deps.sh --qemu)"
	elif [ ! -s "$GUEST_DIR/vmlinux" ] || [ ! -s "$GUEST_DIR/base.cpio" ]; then
		GUEST_UNAVAILABLE="no guest assets in $GUEST_DIR (scripts/deps.sh --qemu)"
	fi
	[ -z "$GUEST_UNAVAILABLE" ]
}

# The per-run /init. Runs as pid 1 from the appended archive (a later archive
# replaces the base one's /init). @NONCE@ makes the markers unique per run, so
# a script that echoes a marker-looking line cannot fake an exit status.
_guest_init_text() {
	cat <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
# Functions that put kmod, util-linux and e2fsprogs ahead of the busybox
# applets of the same name, which busybox's ash runs in preference to PATH.
# /test.sh is sourced below, so it sees them too.
. /etc/guest-tools.sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
modprobe configfs && mount -t configfs configfs /sys/kernel/config
# virtio_pci binds whatever virtio devices the test asked for; the device
# drivers are loaded up front so /dev/vda and eth0 exist when /test.sh starts.
modprobe -a virtio_pci virtio_blk virtio_net 2>/dev/null
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
	ip addr add 10.0.2.15/24 dev eth0
	ip link set eth0 up
	ip route add default via 10.0.2.2
fi
# Console output goes to ttyS0 opened here and closed after each use: the
# last close of a serial tty waits until its buffer has left the UART, so
# nothing the script printed is lost when we power off right after.
exec </dev/null >/dev/null 2>&1
# The firmware's last line has no newline: start the marker on a line of its own.
printf '\nLEAPIO-GUEST-START @NONCE@\n' >/dev/ttyS0
(cd /root && . /test.sh) </dev/null >/dev/ttyS0 2>&1
rc=$?
sync
echo "LEAPIO-GUEST-EXIT @NONCE@ rc=$rc" >/dev/ttyS0
poweroff -f
EOF
}

# _guest_initrd SCRIPT OUT NONCE: base.cpio + an archive with /init, /test.sh
# and (GUEST_OVERLAY=DIR) the contents of DIR. All plain newc: the kernel
# refuses a mix of compressed and plain archives.
_guest_initrd() {
	local script=$1 out=$2 nonce=$3 tmp
	tmp=$(mktemp -d) || return 1
	_guest_init_text | sed "s/@NONCE@/$nonce/g" >"$tmp/init"
	cp "$script" "$tmp/test.sh"
	chmod 755 "$tmp/init" "$tmp/test.sh"
	if [ -n "${GUEST_OVERLAY:-}" ]; then
		cp -a "$GUEST_OVERLAY"/. "$tmp/"
	fi
	{
		cat "$GUEST_DIR/base.cpio"
		(cd "$tmp" && find . -mindepth 1 | LC_ALL=C sort |
			cpio -o -H newc --owner 0:0 --quiet)
	} >"$out"
	local rc=$?
	rm -rf "$tmp"
	return $rc
}

# _guest_parse_opts "$@": sets _g_timeout _g_log _g_mem _g_shift.
_guest_parse_opts() {
	_g_timeout=${GUEST_TIMEOUT:-180}
	_g_log=${GUEST_LOG:-}
	_g_mem=${GUEST_MEM:-1G}
	_g_shift=0
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout) _g_timeout=$2; shift 2; _g_shift=$((_g_shift + 2)) ;;
		--log) _g_log=$2; shift 2; _g_shift=$((_g_shift + 2)) ;;
		--mem) _g_mem=$2; shift 2; _g_shift=$((_g_shift + 2)) ;;
		*) break ;;
		esac
	done
	if [ -z "$_g_log" ]; then
		_g_log=$(mktemp "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/guest.XXXXXX.log")
	fi
}

# _guest_cmd INITRD MEM ARGS...: the qemu command line, one word a line.
# -nodefaults: no e1000/VGA/floppy whose option ROMs and probes cost seconds
# under TCG; the serial console is the only device unless the test adds more.
# +rdrand: the kernel trusts the CPU's RNG and initialises its CRNG at boot;
# without it libuuid (mke2fs) waits ~1 s per UUID for entropy that never
# comes. qemu64 beats -cpu max here (no 5-level paging to walk).
_guest_cmd() {
	local initrd=$1 mem=$2
	shift 2
	printf '%s\n' "$GUEST_QEMU" -accel tcg -cpu "${GUEST_CPU:-qemu64,+rdrand}" \
		-m "$mem" -smp "${GUEST_SMP:-1}" \
		-nodefaults -no-user-config \
		-nographic -serial stdio -no-reboot \
		-kernel "$GUEST_DIR/vmlinux" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 ${GUEST_APPEND:-}" "$@"
}

# _guest_status LOG NONCE QEMU_RC: the script's exit status from the marker.
_guest_status() {
	local log=$1 nonce=$2 qrc=$3 line
	# Not anchored: a script whose output does not end in a newline leaves the
	# marker mid-line. The nonce makes it unforgeable anyway.
	line=$(tr -d '\r' <"$log" | grep -aoE "LEAPIO-GUEST-EXIT $nonce rc=[0-9]+" | tail -n1)
	if [ -n "$line" ]; then
		echo "${line##*rc=}"
		return
	fi
	if [ "$qrc" -eq 124 ]; then
		echo "guest: timed out; console log $log (last lines below)" >&2
		tail -n 20 "$log" | tr -d '\r' | sed 's/^/guest| /' >&2
		echo 124
		return
	fi
	echo "guest: ended (qemu exit $qrc) without printing its exit marker;" \
		"console log $log (last lines below)" >&2
	tail -n 20 "$log" | tr -d '\r' | sed 's/^/guest| /' >&2
	echo 125
}

_guest_nonce() { printf '%s%04x%04x' "$(date +%s%N)" "$RANDOM" "$RANDOM"; }

# guest_run [--timeout S] [--log FILE] [--mem SIZE] SCRIPT [qemu args...]
# Boots a guest that runs SCRIPT as /test.sh (sourced by busybox ash in a
# subshell, cwd /root, stdout+stderr on the console) and returns its exit
# status. Sets GUEST_LAST_LOG to the console log.
guest_run() {
	local _g_timeout _g_log _g_mem _g_shift initrd nonce qrc
	_guest_parse_opts "$@"
	shift "$_g_shift"
	[ $# -ge 1 ] || { echo "usage: guest_run [opts] SCRIPT [qemu args...]" >&2; return 2; }
	local script=$1
	shift
	[ -r "$script" ] || { echo "guest_run: cannot read $script" >&2; return 2; }
	qemu_available || { echo "guest_run: $GUEST_UNAVAILABLE" >&2; return 2; }
	nonce=$(_guest_nonce)
	initrd=$(mktemp "${TMPDIR:-/tmp}/guest-initrd.XXXXXX")
	_guest_initrd "$script" "$initrd" "$nonce" || { rm -f "$initrd"; return 2; }
	GUEST_LAST_LOG=$_g_log
	local cmd
	mapfile -t cmd < <(_guest_cmd "$initrd" "$_g_mem" "$@")
	qrc=0
	timeout -k 5 "$_g_timeout" "${cmd[@]}" </dev/null >"$_g_log" 2>&1 || qrc=$?
	rm -f "$initrd"
	return "$(_guest_status "$_g_log" "$nonce" "$qrc")"
}

# guest_start_bg [--timeout S] [--log FILE] [--mem SIZE] SCRIPT [qemu args...]
# Like guest_run, but returns at once. GUEST_BG_PID is the process to stop
# (guest_stop), GUEST_BG_LOG its console log, GUEST_BG_NONCE its marker nonce
# (guest_bg_status reads the exit status once it ended). The hard timeout
# still applies (default 180 s; pass a longer one for long peers).
guest_start_bg() {
	local _g_timeout _g_log _g_mem _g_shift initrd nonce
	_guest_parse_opts "$@"
	shift "$_g_shift"
	[ $# -ge 1 ] || { echo "usage: guest_start_bg [opts] SCRIPT [qemu args...]" >&2; return 2; }
	local script=$1
	shift
	[ -r "$script" ] || { echo "guest_start_bg: cannot read $script" >&2; return 2; }
	qemu_available || { echo "guest_start_bg: $GUEST_UNAVAILABLE" >&2; return 2; }
	nonce=$(_guest_nonce)
	initrd=$(mktemp "${TMPDIR:-/tmp}/guest-initrd.XXXXXX")
	_guest_initrd "$script" "$initrd" "$nonce" || { rm -f "$initrd"; return 2; }
	local cmd
	mapfile -t cmd < <(_guest_cmd "$initrd" "$_g_mem" "$@")
	# The subshell outlives QEMU only to remove the initrd; guest_stop
	# signals its children (timeout, which forwards to QEMU) and lets it
	# finish.
	(
		timeout -k 5 "$_g_timeout" "${cmd[@]}" </dev/null >"$_g_log" 2>&1
		rm -f "$initrd"
	) &
	GUEST_BG_PID=$!
	GUEST_BG_LOG=$_g_log
	GUEST_BG_NONCE=$nonce
	GUEST_BG_PIDS+=("$GUEST_BG_PID")
	_GUEST_BG_FILES+=("$GUEST_BG_PID:$initrd")
}

# guest_stop [PID...]: ends the given background guests (default: every one
# this shell started), each by its own PID and its descendants' PIDs: TERM,
# then KILL after 10 s. Returns 0 once they are gone.
guest_stop() {
	local pids=("$@") pid i f left=()
	[ ${#pids[@]} -gt 0 ] || pids=("${GUEST_BG_PIDS[@]}")
	for pid in "${pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			_guest_signal_children TERM "$pid"
			for ((i = 0; i < 100; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				_guest_signal_children KILL "$pid"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		wait "$pid" 2>/dev/null || true
		for f in "${_GUEST_BG_FILES[@]}"; do
			[ "${f%%:*}" = "$pid" ] && rm -f "${f#*:}"
		done
	done
	for pid in "${GUEST_BG_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null && left+=("$pid")
	done
	GUEST_BG_PIDS=("${left[@]}")
	return 0
}

# guest_descendants PID: the PIDs below PID (found through /proc), deepest
# first. A background guest is PID -> timeout -> qemu-system-x86_64.
guest_descendants() {
	local child
	for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		guest_descendants "$child"
		echo "$child"
	done
}

_guest_signal_children() {
	local pid
	for pid in $(guest_descendants "$2"); do
		kill -"$1" "$pid" 2>/dev/null || true
	done
}

# guest_script FILE: writes FILE: the guest-side helpers
# (tests/interop/guest/lib.sh) followed by the script body read from stdin.
guest_script() {
	{
		cat "$GUEST_ROOT/tests/interop/guest/lib.sh"
		cat
	} >"$1"
}

# guest_bg_status [LOG NONCE]: prints the exit status of a background guest
# that ended (default: the last one started), as guest_run would return it.
guest_bg_status() {
	_guest_status "${1:-$GUEST_BG_LOG}" "${2:-$GUEST_BG_NONCE}" 0
}

# guest_wait_log LOG REGEX TIMEOUT: wait until a console line matches REGEX
# (extended, CRs stripped). Returns 0, or 1 after TIMEOUT seconds.
guest_wait_log() {
	local log=$1 re=$2 timeout=$3 deadline
	deadline=$((SECONDS + timeout))
	while [ "$SECONDS" -lt "$deadline" ]; do
		tr -d '\r' <"$log" 2>/dev/null | grep -aqE "$re" && return 0
		sleep 0.2
	done
	echo "guest_wait_log: no line matching '$re' in $log after ${timeout}s" >&2
	return 1
}

# guest_output [LOG]: what /test.sh printed (between this run's start and
# exit markers), CRs stripped. Default: the last guest_run's log.
guest_output() {
	local log=${1:-$GUEST_LAST_LOG} nonce
	nonce=$(tr -d '\r' <"$log" | grep -aoE 'LEAPIO-GUEST-START [0-9a-f]+' | head -n1)
	nonce=${nonce##* }
	[ -n "$nonce" ] || return 0
	tr -d '\r' <"$log" | awk -v start="LEAPIO-GUEST-START $nonce" \
		-v stop="LEAPIO-GUEST-EXIT $nonce rc=" '
		on && (i = index($0, stop)) { if (i > 1) print substr($0, 1, i - 1); exit }
		on { print }
		index($0, start) { on = 1 }'
}

# guest_value KEY [LOG]: VALUE of the last "KEY=VALUE" line the script printed.
guest_value() {
	local key=$1
	guest_output "${2:-$GUEST_LAST_LOG}" | sed -n "s/^$key=//p" | tail -n1
}

# guest_vhost_user_blk_args SOCK [SOCK...]: the qemu arguments for one
# virtio-blk disk per vhost-user socket (/dev/vda, /dev/vdb, ... in order).
# The back-end maps guest RAM, so RAM becomes one shared memfd whose size must
# equal -m: set GUEST_MEM (not --mem) when it is not the default 1G.
guest_vhost_user_blk_args() {
	local sock i=0
	printf '%s\n' -object "memory-backend-memfd,id=mem,size=${GUEST_MEM:-1G},share=on" \
		-numa node,memdev=mem
	for sock in "$@"; do
		printf '%s\n' -chardev "socket,id=vub$i,path=$sock" \
			-device "vhost-user-blk-pci,chardev=vub$i"
		i=$((i + 1))
	done
}

# guest_hostfwd_args HOSTPORT GUESTPORT: a virtio NIC on user networking with
# 127.0.0.1:HOSTPORT forwarded to the guest's GUESTPORT. The guest is
# 10.0.2.15 and reaches the host's loopback at 10.0.2.2.
guest_hostfwd_args() {
	printf '%s\n' -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$1-:$2" \
		-device virtio-net-pci,netdev=n0
}

# guest_free_port: a TCP port on 127.0.0.1 that nothing listens on now.
guest_free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}

# guest_wait_nvmet_tcp HOST PORT TIMEOUT: wait until HOST:PORT answers an
# NVMe/TCP ICReq with an ICResp. QEMU's hostfwd accepts a TCP connection even
# when nothing listens in the guest, so a connect() proves nothing: this sends
# a 128-byte ICReq (type 0x00, hlen 128, pdo 0, plen 128, pfv 0, hpda 0, no
# digests, maxr2t 0; little endian) and checks that 128 bytes come back with
# type 0x01 (ICResp), hlen 128 and plen 128. Returns 0 with the ICResp in
# GUEST_ICRESP (256 hex digits, for assertions on its fields), or 1 after
# TIMEOUT s.
guest_wait_nvmet_tcp() {
	local host=$1 port=$2 timeout=$3 deadline resp
	local icreq='\x00\x00\x80\x00\x80\x00\x00\x00'
	icreq+=$(printf '\\x00%.0s' $(seq 120))
	deadline=$((SECONDS + timeout))
	while [ "$SECONDS" -lt "$deadline" ]; do
		resp=$(timeout 5 bash -c '
			exec 3<>"/dev/tcp/$1/$2" || exit 1
			printf "$3" >&3
			head -c 128 <&3 | od -An -v -tx1 | tr -d " \n"
		' _ "$host" "$port" "$icreq" 2>/dev/null) || resp=""
		# 01 type, 00 flags, 80 hlen, 00 pdo, 80000000 plen, 120 more bytes.
		# shellcheck disable=SC2034 # for the caller
		if [ "${#resp}" -eq 256 ] && [ "${resp:0:16}" = 0100800080000000 ]; then
			GUEST_ICRESP=$resp
			return 0
		fi
		sleep 1
	done
	echo "guest_wait_nvmet_tcp: no ICResp from $host:$port after ${timeout}s" >&2
	return 1
}
