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
# Environment: BUILD, QUICK=1 (shorter, fewer rounds), ROUNDS, SECS, GROUNDS,
# HOST=0 / GUEST=0 (skip part 1 / 2), BENCH_NICE. Prints KEY=VALUE result lines and a summary.
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
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

cleanup() {
	[ -n "$QSD_PID" ] && { kill "$QSD_PID" 2>/dev/null || true; wait "$QSD_PID" 2>/dev/null || true; }
	[ -n "$LEAPD_PID" ] && { kill "$LEAPD_PID" 2>/dev/null || true; wait "$LEAPD_PID" 2>/dev/null || true; }
	rm -rf "$DIR"
}
trap cleanup EXIT

command -v qemu-storage-daemon >/dev/null || { echo "bench/vhost.sh: no qemu-storage-daemon (scripts/deps.sh --qemu)" >&2; exit 77; }
ncpu=$(nproc)
pin_client=0
pin_server=$((ncpu > 1 ? 1 : 0))

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
val() { sed -n "s/^$1=//p" | tail -n1; }

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
	for who in leapd qsd; do
		pid=$LEAPD_PID
		[ "$who" = qsd ] && pid=$QSD_PID
		out=$(taskset -c "$pin_client" "$VC" bench "$DIR/$who.sock" -q 32 -b 4096 -t "$SECS" -p "$pid")
		iops=$(val IOPS <<<"$out")
		cpu=$(val SERVER_CPU_NS_PER_IO <<<"$out")
		echo "   round $r $who: IOPS $iops, server CPU ${cpu} ns/IO, errors $(val ERRORS <<<"$out")"
		echo "$iops" >>"$DIR/$who.iops"
		echo "$cpu" >>"$DIR/$who.cpu"
	done
done
l_iops=$(median <"$DIR/leapd.iops")
q_iops=$(median <"$DIR/qsd.iops")
ratio=$(awk -v a="$l_iops" -v b="$q_iops" 'BEGIN {printf "%.2f", b ? a / b : 0}')
echo "HOST_LEAPD_IOPS=$l_iops"
echo "HOST_QSD_IOPS=$q_iops"
echo "HOST_LEAPD_CPU_NS_PER_IO=$(median <"$DIR/leapd.cpu")"
echo "HOST_QSD_CPU_NS_PER_IO=$(median <"$DIR/qsd.cpu")"
echo "HOST_RATIO=$ratio (target >= 1.5: $(awk -v r="$ratio" 'BEGIN {print (r >= 1.5) ? "met" : "NOT met"}'))"
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
/opt/bin/fio --name=r --filename=/dev/vda --direct=1 --ioengine=io_uring --rw=randread \
	--bs=4k --iodepth=32 --runtime=$GSECS --time_based --output-format=terse \
	--terse-version=3 >/tmp/fio.out || die fio
echo "FIO_IOPS=\$(cut -d';' -f8 /tmp/fio.out)"
EOF
guest_script "$DIR/g.sh" <"$DIR/fio.sh"
# QEMU (and this shell) on the client's CPU, the back-ends on theirs: a polling
# back-end's idle spinning then costs the guest nothing it would not lose to
# any other process on that CPU.
taskset -p -c "$pin_client" $$ >/dev/null
echo "== fio in a QEMU/TCG guest: io_uring randread 4 KiB QD 32, ${GSECS} s x $GROUNDS round(s)"
echo "   guest: taskset -c $pin_client qemu-system-x86_64 -accel tcg ... vhost-user-blk-pci; back-ends on CPU $pin_server"
for r in $(seq "$GROUNDS"); do
	for who in leapd qsd; do
		mapfile -t args < <(guest_vhost_user_blk_args "$DIR/$who.sock")
		rc=0
		guest_run --timeout 120 --log "$DIR/g-$who-$r.log" "$DIR/g.sh" "${args[@]}" || rc=$?
		iops=$(guest_value FIO_IOPS "$DIR/g-$who-$r.log")
		echo "   round $r $who: guest fio IOPS ${iops:-?} (exit $rc)"
		echo "${iops:-0}" >>"$DIR/$who.giops"
	done
done
l_g=$(median <"$DIR/leapd.giops")
q_g=$(median <"$DIR/qsd.giops")
gratio=$(awk -v a="$l_g" -v b="$q_g" 'BEGIN {printf "%.2f", b ? a / b : 0}')
echo "GUEST_LEAPD_IOPS=$l_g"
echo "GUEST_QSD_IOPS=$q_g"
echo "GUEST_RATIO=$gratio (target >= 1.0: $(awk -v r="$gratio" 'BEGIN {print (r >= 1.0) ? "met" : "NOT met"}'))"
