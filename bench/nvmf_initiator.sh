#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The nvme-tcp backend's forwarding cost (issue 13). Two leapds on this
# machine: the target (null backend, NVMe/TCP listener on 127.0.0.1) and
# the initiator (an nvme-tcp bdev on the target's controller c0, a tenant
# controller t0 on it). In the same run, 4 KiB random reads:
#   direct:  leap-perf -r (the NVMe/TCP host library) -> target c1
#   through: leap-perf -s (shared memory) -> initiator t0 -> nvme-tcp -> target c0
# at QD 32 (IOPS, target: through >= 0.8 x direct) and QD 1 (added latency).
# Each point runs every configuration in turn, ROUNDS times, and reports
# medians, so the machine's drift hits all of them. Two CPUs, three busy
# threads on the through path, so the layout matters; both ways of sharing
# are measured, each with its own initiator leapd (and target controller):
#   ini1: initiator reactor on CPU 1 with the tenant, which runs --irq
#         (it must not spin against the reactor on its CPU);
#   ini0: initiator reactor on CPU 0 with the target's, the tenant polling
#         alone on CPU 1.
# The direct baseline runs on CPU 1, polling and --irq. The verdict compares
# the best through row with the best direct row. Prints a markdown section.
# QUICK=1: shorter runs, fewer rounds.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build}"
BIN="$BUILD/bin"
QUICK="${QUICK:-0}"
T=$([ "$QUICK" = 1 ] && echo 2 || echo 5)
ROUNDS=$([ "$QUICK" = 1 ] && echo 3 || echo 5)
PERF_CPU=1
NQN=nqn.2024-01.io.leapio:bench-c
DIR="$(mktemp -d /var/tmp/leapio-nvmf-ini.XXXXXX)"
PIDS=()

cleanup() {
	local p
	# Initiators first: their shutdown flush needs the target.
	for p in "${PIDS[@]}"; do
		[ -n "$p" ] || continue
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "${KEEP:-}" ]; then
		echo "kept $DIR" >&2
	else
		rm -rf "$DIR"
	fi
}
trap cleanup EXIT

ctl() { # ctl NAME ARGS...
	local n=$1
	shift
	"$BIN/leapctl" -r "$DIR/$n.sock" -t 30 "$@"
}

# start NAME CPU CONFIG: a leapd with its reactor on CPU (PIDS in start order, reversed).
start() {
	local name=$1 cpu=$2 cfg=$3 pid
	"$BIN/leapd" --foreground -m "$cpu" ${cfg:+-c "$cfg"} -r "$DIR/$name.sock" \
		-s "$DIR/$name-t.sock" -l "$DIR/$name.log" </dev/null >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do
		"$BIN/leapctl" -r "$DIR/$name.sock" info >/dev/null 2>&1 && break
		sleep 0.1
	done
	PIDS=("$pid" "${PIDS[@]}")
	ctl "$name" info >/dev/null || { echo "$name leapd did not start" >&2; exit 1; }
}

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000)) # below the ephemeral range
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

PORT=$(free_port)
ctrls=""
for c in 0 1 2; do
	ctrls="$ctrls
 {\"method\": \"ctrl_create\", \"params\": {\"name\": \"c$c\", \"nqn\": \"$NQN$c\", \"max_qpairs\": 4}},
 {\"method\": \"ns_add\", \"params\": {\"ctrl\": \"c$c\", \"bdev\": \"n0\", \"lba_size\": 4096, \"shared\": true}},
 {\"method\": \"subsys_allow_any_host\", \"params\": {\"ctrl\": \"c$c\", \"allow\": true}},"
done
cat >"$DIR/tgt.json" <<JSON
[
 {"method": "bdev_create", "params": {"name": "n0", "type": "null", "size": 1099511627776, "block_size": 4096}},$ctrls
 {"method": "listener_add", "params": {"type": "tcp", "addr": "127.0.0.1", "port": $PORT}}
]
JSON
start tgt 0 "$DIR/tgt.json"
# c0: direct; c1: ini1's backend; c2: ini0's backend.
for i in 1 0; do
	start "ini$i" "$i" ""
	ctl "ini$i" bdev create r0 --type nvme-tcp --traddr 127.0.0.1 --trsvcid "$PORT" \
		--subnqn "$NQN$((2 - i))" --queues 1 --queue-depth 128 >/dev/null
	ctl "ini$i" ctrl add t0 >/dev/null
	ctl "ini$i" ns add t0 r0 --lba-size 4096 >/dev/null
done

HOWS="direct direct-irq ini1 ini0"

# run HOW QD -> one JSON line
run() {
	local how=$1 qd=$2
	case $how in
	direct | direct-irq)
		taskset -c "$PERF_CPU" "$BIN/leap-perf" \
			-r "trtype:tcp traddr:127.0.0.1 trsvcid:$PORT subnqn:${NQN}0" \
			-q "$qd" -o 4096 -w randread -t "$T" --json $([ "$how" = direct-irq ] && echo --irq)
		;;
	ini1)
		taskset -c "$PERF_CPU" "$BIN/leap-perf" -s "$DIR/ini1-t.sock" -c t0 \
			-q "$qd" -o 4096 -w randread -t "$T" --irq --json
		;;
	ini0)
		taskset -c "$PERF_CPU" "$BIN/leap-perf" -s "$DIR/ini0-t.sock" -c t0 \
			-q "$qd" -o 4096 -w randread -t "$T" --json
		;;
	esac
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# point QD: ROUNDS rounds of the three runs in turn; then row QD HOW prints the medians.
point() {
	local qd=$1 r h
	for h in $HOWS; do : >"$DIR/$h.$qd"; done
	for r in $(seq 1 "$ROUNDS"); do
		for h in $HOWS; do
			run "$h" "$qd" >>"$DIR/$h.$qd"
		done
	done
	if jq -e 'select(.errors != 0)' "$DIR"/*."$qd" >/dev/null; then
		echo "I/O errors during the runs" >&2
		exit 1
	fi
}

med() { jq "$3" "$DIR/$2.$1" | median; } # med QD HOW JQ

row() { # row QD HOW LABEL
	printf '| %s | %s | %.0f | %.1f | %.1f | %.1f | %.0f |\n' "$1" "$3" "$(med "$1" "$2" .iops)" \
		"$(med "$1" "$2" .latency_us.p50)" "$(med "$1" "$2" .latency_us.avg)" \
		"$(med "$1" "$2" .latency_us.p99)" "$(med "$1" "$2" .cpu_pct)"
}

echo "#### NVMe/TCP initiator: leapd -> leapd ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "Command: \`bench/nvmf_initiator.sh\`$([ "$QUICK" = 1 ] && echo ' (QUICK=1)'), 4 KiB random reads, ${T} s per run, median of ${ROUNDS} alternating runs per row."
echo "Target: leapd, null backend, one reactor on CPU 0, NVMe/TCP on 127.0.0.1, one controller per host. Initiators: leapd, one reactor (CPU 1: ini1, CPU 0: ini0), an nvme-tcp bdev with 1 I/O queue of depth 128. leap-perf always on CPU 1."
echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo

point 32
point 1
echo "| QD | path | IOPS | p50 us | avg us | p99 us | load generator CPU % |"
echo "|---|---|---|---|---|---|---|"
for qd in 32 1; do
	row "$qd" direct "direct: leap-perf -r -> target (polling)"
	row "$qd" direct-irq "direct: leap-perf -r --irq -> target"
	row "$qd" ini1 "through ini1: tenant --irq + initiator on CPU 1"
	row "$qd" ini0 "through ini0: tenant polling on CPU 1, initiator on CPU 0"
done
pick() { for h in $3; do med "$1" "$h" "$2"; done | sort -g | if [ "$4" = max ]; then tail -n1; else head -n1; fi; }
best=$(pick 32 .iops "direct direct-irq" max)
bestt=$(pick 32 .iops "ini1 ini0" max)
ratio=$(awk -v a="$bestt" -v b="$best" 'BEGIN {printf "%.2f", a / b}')
verdict=$(awk -v r="$ratio" 'BEGIN {print (r >= 0.8) ? "met" : "MISSED"}')
p50d=$(pick 1 .latency_us.p50 "direct direct-irq" min)
p50t=$(pick 1 .latency_us.p50 "ini1 ini0" min)
added=$(awk -v a="$p50t" -v b="$p50d" 'BEGIN {printf "%.1f", a - b}')
echo
echo "QD 32: best through / best direct = **$ratio** (target >= 0.8: $verdict). QD 1: the best through p50 is **$added us** above the best direct p50."
echo
for i in 1 0; do
	echo "ini$i counters after the runs: \`$(ctl "ini$i" --json bdev list r0 | jq -c '.[0].counters')\`"
	echo
done
[ "$verdict" = met ]
