#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# vhost-user-blk: leapd against qemu-storage-daemon, both measured in the same
# run, two ways (issue 15):
#  1. host side: tests/tools/vhost_client speaking vhost-user to each back-end
#     on a null device (leapd null bdev, qsd null-co), 4 KiB random reads at
#     QD 32, one queue; IOPS and the back-end's CPU per request (its process
#     CPU time over the run / requests; a polling reactor's idle spinning is
#     included). Client pinned to CPU 0, back-ends to CPU 1; rounds alternate
#     leapd/qsd so both see the same machine; medians reported.
#     Target: leapd >= 1.5x qsd IOPS.
#  2. fio inside a QEMU/TCG guest (vhost-user-blk-pci on each back-end's
#     socket), io_uring 4 KiB randread QD 32, same rounds scheme.
#     Target: leapd >= 1.0x (the emulated guest is the bottleneck; this
#     shows leapd never is).
# Every measured process (both back-ends, the client, QEMU) runs at nice
# BENCH_NICE (default -10; 0 to leave priorities alone): on a shared machine
# other work otherwise decides more of the result than the back-ends do, and a
# polling reactor that shares its CPU with a busy process loses whole
# scheduler slices.
# Each round also prints the load average, and for the guest rounds the
# back-end's CPU per guest I/O (its CPU time over the whole guest run, boot
# included, / fio's I/Os) and leapd's reactor sleeps, kicks and idle periods
# spent asleep; the summary gives min/median/max of the per-round ratios.
# Environment: BUILD, QUICK=1 (shorter, fewer rounds), ROUNDS, SECS, GROUNDS,
# HOST=0 / GUEST=0 (skip part 1 / 2), BENCH_NICE, BASE_BUILD (another build's
# leapd, e.g. from before a change, as a third back-end "base" in every round), PERF=1 (perf stat each
# back-end through its guest rounds: syscalls and context switches per I/O). Prints KEY=VALUE result lines and a summary.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BIN="$BUILD/bin"
VC="$BUILD/tests/tools/vhost_client"
QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
	ROUNDS="${ROUNDS:-1}" SECS="${SECS:-2}" GSECS=5 GROUNDS="${GROUNDS:-1}"
else
	ROUNDS="${ROUNDS:-5}" SECS="${SECS:-5}" GSECS=10 GROUNDS="${GROUNDS:-5}"
fi
GUEST="${GUEST:-1}"
BENCH_NICE="${BENCH_NICE:--10}"
DIR="$(mktemp -d /tmp/leapio-vhost-bench.XXXXXX)"
QSD_PID=""
LEAPD_PID=""
BASE_PID=""
WHO="leapd qsd"
[ -n "${BASE_BUILD:-}" ] && WHO="leapd qsd base"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

cleanup() {
	[ -n "$QSD_PID" ] && { kill "$QSD_PID" 2>/dev/null || true; wait "$QSD_PID" 2>/dev/null || true; }
	[ -n "$LEAPD_PID" ] && { kill "$LEAPD_PID" 2>/dev/null || true; wait "$LEAPD_PID" 2>/dev/null || true; }
	[ -n "$BASE_PID" ] && { kill "$BASE_PID" 2>/dev/null || true; wait "$BASE_PID" 2>/dev/null || true; }
	rm -rf "$DIR"
}
trap cleanup EXIT

command -v qemu-storage-daemon >/dev/null || { echo "bench/vhost.sh: no qemu-storage-daemon (scripts/deps.sh --qemu)" >&2; exit 77; }
ncpu=$(nproc)
pin_client=0
pin_server=$((ncpu > 1 ? 1 : 0))

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
val() { sed -n "s/^$1=//p" | tail -n1; }
# spread FILE: "min/median/max" of the per-round ratios in FILE (one a line).
spread() {
	sort -g "$1" | awk '{a[NR] = $1} END {
		m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "%.2f/%.2f/%.2f", a[1], m, a[NR]}'
}
# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
loadavg() { cut -d' ' -f1 /proc/loadavg; }
# leapd_counters [RPC_SOCKET]: "sleeps wakeups kicks notify_idles requests" of a leapd's
# reactors and its device (kicks and the rest are 0 from a build without them).
leapd_counters() {
	local r l sock=${1:-$DIR/rpc.sock}
	r=$("$BIN/leapctl" -r "$sock" -t 30 --json reactor list)
	l=$("$BIN/leapctl" -r "$sock" -t 30 --json listener list)
	echo "$(jq '[.[].sleeps] | add' <<<"$r") $(jq '[.[].wakeups] | add' <<<"$r")" \
		"$(jq '[.. | objects | select(has("totals")) | .totals.kicks] | add // 0' <<<"$l")" \
		"$(jq '[.. | objects | select(has("totals")) | .totals.notify_idles] | add // 0' <<<"$l")" \
		"$(jq '[.. | objects | select(has("totals")) | .totals.requests] | add // 0' <<<"$l")"
}

cat >"$DIR/l.json" <<EOF
[
  {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1073741824}},
  {"method": "ctrl_create", "params": {"name": "v0"}},
  {"method": "ns_add", "params": {"ctrl": "v0", "bdev": "n0"}},
  {"method": "listener_add", "params": {"type": "vhost-user-blk", "socket": "$DIR/leapd.sock",
    "ctrl": "v0", "nsid": 1, "num_queues": 1}}
]
EOF
# The whole script at BENCH_NICE: everything it starts inherits it.
renice -n "$BENCH_NICE" -p $$ >/dev/null
start_leapd "$DIR/l.json" -m "$pin_server"
# BASE_BUILD: another build's leapd (e.g. before a change) in the same rounds, as "base".
if [ -n "${BASE_BUILD:-}" ]; then
	sed "s|$DIR/leapd.sock|$DIR/base.sock|" "$DIR/l.json" >"$DIR/b.json"
	"$BASE_BUILD/bin/leapd" --foreground -c "$DIR/b.json" -r "$DIR/rpc-base.sock" \
		-s "$DIR/t-base.sock" -l "$DIR/base.log" -m "$pin_server" </dev/null >/dev/null 2>&1 &
	BASE_PID=$!
	for _ in $(seq 100); do [ -S "$DIR/base.sock" ] && break; sleep 0.1; done
	echo "   base: $BASE_BUILD/bin/leapd -m $pin_server (the same config)"
fi
taskset -c "$pin_server" qemu-storage-daemon \
	--blockdev driver=null-co,node-name=n0,size=1073741824 \
	--export "type=vhost-user-blk,id=e0,node-name=n0,addr.type=unix,addr.path=$DIR/qsd.sock,writable=on,num-queues=1" \
	>"$DIR/qsd.log" 2>&1 &
QSD_PID=$!
for _ in $(seq 100); do [ -S "$DIR/qsd.sock" ] && break; sleep 0.1; done

if [ "${HOST:-1}" = 1 ]; then
echo "== host-side load generator: 4 KiB randread QD 32, ${SECS} s x $ROUNDS round(s), null devices, nice $BENCH_NICE"
echo "   leapd: $BIN/leapd -m $pin_server (null bdev); qsd: taskset -c $pin_server qemu-storage-daemon (null-co)"
echo "   client: taskset -c $pin_client $VC bench SOCK -q 32 -b 4096 -t $SECS -p PID"
for r in $(seq "$ROUNDS"); do
	for who in $WHO; do
		pid=$LEAPD_PID
		[ "$who" = qsd ] && pid=$QSD_PID
		[ "$who" = base ] && pid=$BASE_PID
		out=$(taskset -c "$pin_client" "$VC" bench "$DIR/$who.sock" -q 32 -b 4096 -t "$SECS" -p "$pid")
		iops=$(val IOPS <<<"$out")
		cpu=$(val SERVER_CPU_NS_PER_IO <<<"$out")
		echo "   round $r $who: IOPS $iops, server CPU ${cpu} ns/IO, errors $(val ERRORS <<<"$out"), load $(loadavg)"
		echo "$iops" >>"$DIR/$who.iops"
		echo "$cpu" >>"$DIR/$who.cpu"
	done
	awk -v a="$(tail -n1 "$DIR/qsd.iops")" -v b="$(tail -n1 "$DIR/leapd.iops")" 'BEGIN {printf "%.3f\n", a ? b / a : 0}' >>"$DIR/host.ratios"
done
l_iops=$(median <"$DIR/leapd.iops")
q_iops=$(median <"$DIR/qsd.iops")
ratio=$(awk -v a="$l_iops" -v b="$q_iops" 'BEGIN {printf "%.2f", b ? a / b : 0}')
echo "HOST_LEAPD_IOPS=$l_iops"
echo "HOST_QSD_IOPS=$q_iops"
echo "HOST_LEAPD_CPU_NS_PER_IO=$(median <"$DIR/leapd.cpu")"
echo "HOST_QSD_CPU_NS_PER_IO=$(median <"$DIR/qsd.cpu")"
echo "HOST_RATIO=$ratio (target >= 1.5: $(awk -v r="$ratio" 'BEGIN {print (r >= 1.5) ? "met" : "NOT met"}'))"
echo "HOST_ROUND_RATIOS_MIN_MED_MAX=$(spread "$DIR/host.ratios")"
[ -n "$BASE_PID" ] && echo "HOST_BASE_IOPS=$(median <"$DIR/base.iops") (ratio to qsd $(awk -v a="$(median <"$DIR/base.iops")" -v b="$q_iops" 'BEGIN {printf "%.2f", b ? a / b : 0}'))"
fi

if [ "$GUEST" != 1 ]; then
	exit 0
fi
# shellcheck source=tests/interop/lib/guest.bash
. "$ROOT/tests/interop/lib/guest.bash"
if ! qemu_available; then
	echo "GUEST: skipped ($GUEST_UNAVAILABLE)"
	exit 0
fi
FIO="$BUILD/fio/fio"
[ -x "$FIO" ] || FIO=$(command -v fio)
mkdir -p "$DIR/ovl/opt/bin"
cp -L "$FIO" "$DIR/ovl/opt/bin/fio"
for lib in $(ldd "$FIO" | grep -oE '/[^ ]+\.so[^ ]*'); do
	mkdir -p "$DIR/ovl$(dirname "$lib")"
	cp -L "$lib" "$DIR/ovl$lib"
done
export GUEST_OVERLAY="$DIR/ovl" GUEST_MEM=512M
cat >"$DIR/fio.sh" <<EOF
wait_for /dev/vda 10 || die "no /dev/vda"
irqs() { awk '/virtio.*req/ {for (i = 2; i <= NF && \$i ~ /^[0-9]+\$/; i++) s += \$i} END {print s + 0}' /proc/interrupts; }
i0=\$(irqs)
/opt/bin/fio --name=r --filename=/dev/vda --direct=1 --ioengine=io_uring --rw=randread \
	--bs=4k --iodepth=32 --runtime=$GSECS --time_based --output-format=terse \
	--terse-version=3 >/tmp/fio.out || die fio
echo "FIO_IOPS=\$(cut -d';' -f8 /tmp/fio.out)"
echo "FIO_KB=\$(cut -d';' -f6 /tmp/fio.out)"
echo "GUEST_IRQS=\$((\$(irqs) - i0))"
EOF
guest_script "$DIR/g.sh" <"$DIR/fio.sh"
# QEMU (and this shell) on the client's CPU, the back-ends on theirs: a polling
# back-end's idle spinning then costs the guest nothing it would not lose to
# any other process on that CPU.
taskset -p -c "$pin_client" $$ >/dev/null
echo "== fio in a QEMU/TCG guest: io_uring randread 4 KiB QD 32, ${GSECS} s x $GROUNDS round(s)"
echo "   guest: taskset -c $pin_client qemu-system-x86_64 -accel tcg ... vhost-user-blk-pci; back-ends on CPU $pin_server"
for r in $(seq "$GROUNDS"); do
	for who in $WHO; do
		pid=$LEAPD_PID
		[ "$who" = qsd ] && pid=$QSD_PID
		[ "$who" = base ] && pid=$BASE_PID
		mapfile -t args < <(guest_vhost_user_blk_args "$DIR/$who.sock")
		rc=0
		t0=$(cpu_ticks "$pid")
		rpc=$DIR/rpc.sock
		[ "$who" = base ] && rpc=$DIR/rpc-base.sock
		[ "$who" != qsd ] && read -r s0 w0 k0 n0 q0 < <(leapd_counters "$rpc")
		perf_pid=""
		if [ "${PERF:-0}" = 1 ]; then
			perf stat -x, -o "$DIR/perf-$who-$r.txt" -p "$pid" \
				-e task-clock,context-switches,raw_syscalls:sys_enter &
			perf_pid=$!
		fi
		guest_run --timeout 120 --log "$DIR/g-$who-$r.log" "$DIR/g.sh" "${args[@]}" || rc=$?
		t1=$(cpu_ticks "$pid")
		iops=$(guest_value FIO_IOPS "$DIR/g-$who-$r.log")
		kb=$(guest_value FIO_KB "$DIR/g-$who-$r.log")
		ios=$(awk -v kb="${kb:-0}" 'BEGIN {printf "%d", kb / 4}')
		# The back-end's CPU over the whole guest run (boot included) per fio I/O.
		cpu=$(awk -v t="$((t1 - t0))" -v hz="$HZ" -v n="$ios" \
			'BEGIN {printf "%d", n ? t * 1e9 / hz / n : 0}')
		extra=", guest interrupts/IO $(awk -v i="$(guest_value GUEST_IRQS "$DIR/g-$who-$r.log")" -v n="$ios" 'BEGIN {printf "%.2f", n ? i / n : 0}')"
		if [ -n "$perf_pid" ]; then
			kill -INT "$perf_pid"
			wait "$perf_pid" || true
			extra="$extra, per IO: $(awk -F, -v n="$ios" '
				$3 == "context-switches" {c = $1} $3 == "raw_syscalls:sys_enter" {s = $1}
				END {printf "%.2f syscalls, %.2f context switches", n ? s / n : 0, n ? c / n : 0}' \
				"$DIR/perf-$who-$r.txt")"
		fi
		if [ "$who" != qsd ]; then
			read -r s1 w1 k1 n1 q1 < <(leapd_counters "$rpc")
			extra="$extra, reactor sleeps $((s1 - s0)) (woken $((w1 - w0))), kicks $((k1 - k0)), idle periods asleep $((n1 - n0)), requests $((q1 - q0))"
		fi
		echo "   round $r $who: guest fio IOPS ${iops:-?} (exit $rc), back-end CPU ${cpu} ns/IO$extra, load $(loadavg)"
		echo "${iops:-0}" >>"$DIR/$who.giops"
		echo "$cpu" >>"$DIR/$who.gcpu"
	done
	awk -v a="$(tail -n1 "$DIR/qsd.giops")" -v b="$(tail -n1 "$DIR/leapd.giops")" 'BEGIN {printf "%.3f\n", a ? b / a : 0}' >>"$DIR/guest.ratios"
	[ -n "$BASE_PID" ] && awk -v a="$(tail -n1 "$DIR/qsd.giops")" -v b="$(tail -n1 "$DIR/base.giops")" 'BEGIN {printf "%.3f\n", a ? b / a : 0}' >>"$DIR/base.ratios"
done
l_g=$(median <"$DIR/leapd.giops")
q_g=$(median <"$DIR/qsd.giops")
gratio=$(awk -v a="$l_g" -v b="$q_g" 'BEGIN {printf "%.2f", b ? a / b : 0}')
echo "GUEST_LEAPD_IOPS=$l_g"
echo "GUEST_QSD_IOPS=$q_g"
echo "GUEST_LEAPD_CPU_NS_PER_IO=$(median <"$DIR/leapd.gcpu")"
echo "GUEST_QSD_CPU_NS_PER_IO=$(median <"$DIR/qsd.gcpu")"
echo "GUEST_RATIO=$gratio (target >= 1.0: $(awk -v r="$gratio" 'BEGIN {print (r >= 1.0) ? "met" : "NOT met"}'))"
echo "GUEST_ROUND_RATIOS_MIN_MED_MAX=$(spread "$DIR/guest.ratios")"
if [ -n "$BASE_PID" ]; then
	echo "GUEST_BASE_IOPS=$(median <"$DIR/base.giops")"
	echo "GUEST_BASE_CPU_NS_PER_IO=$(median <"$DIR/base.gcpu")"
	echo "GUEST_BASE_ROUND_RATIOS_MIN_MED_MAX=$(spread "$DIR/base.ratios")"
fi
