#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# Bad input to the NVMe/TCP target (issue 12's list), one class per case of
# tests/tools/nvmf_badhost, each answered as the spec says: a C2HTermReq
# with its FES and FEI and then a close, an NVMe status, or a close after
# the handshake or keep-alive timeout. While the bad host works on
# controller c0, a well-behaved host keeps reading from c1 on the same
# listener and reactor, and after each test verifies a fresh pattern there:
# nothing else is affected and leapd keeps running.

load helpers

TOOLS="$E2E_BUILD/tests/tools"
NQN0=nqn.2024-01.io.leapio:c0
NQN1=nqn.2024-01.io.leapio:c1
BAD=nqn.2014-08.org.nvmexpress:uuid:0badbad0-0000-4000-8000-000000000001
GOOD=nqn.2014-08.org.nvmexpress:uuid:00600d00-0000-4000-8000-000000000002

setup() {
	leapd_dir
	leapd_start
	leapctl_t bdev create m0 --type mem --size 16M
	leapctl_t bdev create m1 --type mem --size 16M
	leapctl_t ctrl add c0
	leapctl_t ns add c0 m0
	leapctl_t ctrl add c1
	leapctl_t ns add c1 m1
	leapctl_t subsys host add c0 "$BAD"
	leapctl_t subsys host add c1 "$GOOD"
	local i out
	for i in $(seq 1 20); do
		PORT=$((20000 + RANDOM % 40000))
		out=$(leapctl_t rpc listener_add "{\"type\": \"tcp\", \"addr\": \"127.0.0.1\", \"port\": $PORT, \
			\"handshake_timeout_ms\": 1000, \"max_connections\": 16}" 2>&1) && break
		[[ "$out" == *"Address already in use"* ]] || { echo "$out" >&2; return 1; }
	done
	# The bystander: random reads on c1 for the length of the test.
	"$TOOLS/nvmf_probe" -q 1 -d 8 -v 0 -t 3 "traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN1 hostnqn:$GOOD" \
		>"$LEAPD_DIR/bystander.out" 2>&1 &
	BYSTANDER=$!
}

teardown() {
	[ -n "${BYSTANDER:-}" ] && kill "$BYSTANDER" 2>/dev/null
	leapd_teardown
}

bad() { # bad CASE: run one bad-input case against c0
	run "$TOOLS/nvmf_badhost" -w 2000 127.0.0.1 "$PORT" "$NQN0" "$BAD" "$1"
	echo "$1: $output"
}

# The bystander finished without an error, a new pattern verifies on c1, and
# the bad host can still do I/O on c0 (its controller was released).
others_unaffected() {
	wait "$BYSTANDER"
	BYSTANDER=""
	cat "$LEAPD_DIR/bystander.out"
	grep -q '^RESULT=ok$' "$LEAPD_DIR/bystander.out"
	grep -q '^PERF_ERRORS=0$' "$LEAPD_DIR/bystander.out"
	run "$TOOLS/nvmf_probe" -q 2 -d 8 -v 2 -t 0 "traddr:127.0.0.1 trsvcid:$PORT subnqn:$NQN1 hostnqn:$GOOD"
	[ "$status" -eq 0 ]
	run "$TOOLS/nvmf_badhost" 127.0.0.1 "$PORT" "$NQN0" "$BAD" io-good
	[ "${lines[1]}" = "status sct=0 sc=0x00 dw0=0x00000000" ]
	[ "${lines[2]}" = "status sct=0 sc=0x00 dw0=0x00000000" ]
	kill -0 "$LEAPD_PID"
}

@test "before the Connect: capsule before ICReq, bad ICReq, half an ICReq, silence, I/O and H2CData before Connect" {
	bad capsule-before-icreq
	[ "$output" = $'termreq fes=0x02 fei=0\nclosed' ] # PDU Sequence Error
	bad icreq-pfv
	[ "$output" = $'termreq fes=0x06 fei=8\nclosed' ] # Unsupported Parameter: PFV
	# Closed by the 1000 ms handshake timeout: not before it, and long before
	# anything else would (the bound is loose: a loaded machine is late, not wrong).
	bad half-icreq
	[[ "$output" =~ ^closed\ after\ ([0-9]+)\ ms$ ]]
	((BASH_REMATCH[1] >= 900 && BASH_REMATCH[1] < 8000))
	bad silent
	[[ "$output" =~ ^closed\ after\ ([0-9]+)\ ms$ ]]
	((BASH_REMATCH[1] >= 900 && BASH_REMATCH[1] < 8000))
	bad io-before-connect
	[ "$output" = "status sct=0 sc=0x0c dw0=0x00000000" ] # Command Sequence Error
	bad h2c-before-connect
	[ "$output" = $'termreq fes=0x01 fei=10\nclosed' ] # no R2T: TTAG invalid
	others_unaffected
}

@test "PDU header fields: unknown type, a controller's type, flags, HLEN, PDO, PLEN, a second ICReq" {
	bad unknown-pdu
	[ "$output" = $'termreq fes=0x01 fei=0\nclosed' ]
	bad controller-pdu
	[ "$output" = $'termreq fes=0x01 fei=0\nclosed' ]
	bad bad-flags
	[ "$output" = $'termreq fes=0x01 fei=1\nclosed' ]
	bad bad-hlen
	[ "$output" = $'termreq fes=0x01 fei=2\nclosed' ]
	bad bad-pdo
	[ "$output" = $'termreq fes=0x01 fei=3\nclosed' ]
	bad bad-plen
	[ "$output" = $'termreq fes=0x01 fei=4\nclosed' ]
	bad icreq-twice
	[ "$output" = $'termreq fes=0x02 fei=0\nclosed' ]
	others_unaffected
}

@test "in-capsule data beyond IOCCSZ and a PLEN past every limit: Data Transfer Limit Exceeded" {
	bad icd-too-big
	[ "$output" = $'termreq fes=0x05 fei=0\nclosed' ]
	bad plen-huge
	[ "$output" = $'termreq fes=0x05 fei=0\nclosed' ]
	others_unaffected
}

@test "digests: a header digest mismatch is fatal; a data digest mismatch fails only its command" {
	bad hdgst-digest
	[ "$output" = $'termreq fes=0x03 fei=0\nclosed' ]
	# In-capsule data: Transient Transport Error, then the same queue serves a good write.
	bad ddgst-digest
	[ "$output" = $'status sct=0 sc=0x22 dw0=0x00000000\nstatus sct=0 sc=0x00 dw0=0x00000000' ]
	# H2CData after R2T: likewise.
	bad h2c-ddgst-digest
	[ "${lines[1]}" = "status sct=0 sc=0x22 dw0=0x00000000" ]
	[ "${lines[2]}" = "status sct=0 sc=0x00 dw0=0x00000000" ]
	grep -q "association ended: queue 0: header digest mismatch" "$LEAPD_LOG"
	others_unaffected
}

@test "H2CData: no R2T, wrong CCCID, wrong offset, outside the R2T, DATAL vs length, for a finished command; SQ overflow" {
	bad h2c-no-r2t
	[ "$output" = $'termreq fes=0x01 fei=10\nclosed' ]
	bad h2c-cccid
	[ "${lines[0]}" = "r2t ttag=0 r2to=0 r2tl=4096" ]
	[ "${lines[1]}" = "termreq fes=0x01 fei=8" ]
	bad h2c-offset
	[ "${lines[1]}" = "termreq fes=0x02 fei=0" ] # PDU Sequence Error
	bad h2c-range
	[ "${lines[1]}" = "termreq fes=0x04 fei=0" ] # Data Transfer Out of Range
	bad h2c-datal
	[ "${lines[1]}" = "termreq fes=0x01 fei=16" ]
	bad h2c-finished
	[ "${lines[1]}" = "status sct=0 sc=0x00 dw0=0x00000000" ]
	[ "${lines[2]}" = "termreq fes=0x01 fei=10" ]
	[ "${lines[3]}" = "closed" ]
	# 40 commands on a 32-entry queue: R2Ts for 32 at most, then the TermReq.
	bad io-sq-overflow
	[ "$(grep -c '^r2t ' <<<"$output")" -le 32 ]
	[[ "$output" == *$'termreq fes=0x02 fei=0\nclosed'* ]]
	grep -q "more than 32 commands outstanding on queue 1" "$LEAPD_LOG"
	others_unaffected
}

@test "Connect: unknown subsystem, a cntlid that is not this host's; fabrics and admin opcodes where they do not belong" {
	bad connect-unknown-subsys
	[ "$output" = "status sct=1 sc=0x82 dw0=0x00010100" ] # Invalid Parameters, SUBNQN (byte 256 of the data)
	bad connect-bad-cntlid
	[ "$output" = "status sct=1 sc=0x82 dw0=0x00010010" ] # CNTLID (byte 16 of the data)
	bad connect-io-foreign-cntlid
	[ "$output" = "status sct=1 sc=0x82 dw0=0x00010010" ]
	# c1 is held by the bystander: GOOD's controller ID is not BAD's.
	run "$TOOLS/nvmf_badhost" 127.0.0.1 "$PORT" "$NQN1" "$BAD" connect-io-foreign-cntlid
	[ "$output" = "status sct=1 sc=0x82 dw0=0x00010010" ]
	bad io-property
	[ "$output" = "status sct=1 sc=0x85 dw0=0x00000000" ] # Invalid Queue Type
	# Not bad: an SGL longer than the command needs (Linux's discard) is accepted.
	bad io-dsm-long-sgl
	[ "$output" = "status sct=0 sc=0x00 dw0=0x00000000" ]
	bad admin-create-sq
	[ "$output" = "status sct=0 sc=0x01 dw0=0x00000000" ] # Invalid Command Opcode
	grep -q "refused: no subsystem nqn.2024-01.io.leapio:nope" "$LEAPD_LOG"
	others_unaffected
}

@test "a half PDU on a live queue ends the association after the stall timeout; a silent host after KATO" {
	bad half-pdu
	[[ "$output" =~ ^closed\ after\ (9[0-9][0-9]|1[0-3][0-9][0-9])\ ms$ ]]
	grep -q "association ended: queue 0: a partial PDU stalled for 1000 ms" "$LEAPD_LOG"
	bad kato
	[ "${lines[0]}" = "status sct=0 sc=0x00 dw0=0x00000001" ]
	[[ "${lines[1]}" =~ ^closed\ after\ (9[0-9][0-9]|1[0-3][0-9][0-9])\ ms$ ]]
	others_unaffected
}

@test "too many connections: the extras are closed at once with one log line, and service resumes" {
	# The limit protects established connections, not new ones: let the bystander's
	# admin and I/O queues connect first.
	for i in $(seq 1 50); do
		[ "$(leapctl_t --json listener list | jq '[.[] | select(.type == "tcp")][0].state.connections')" -ge 2 ] && break
		sleep 0.1
	done
	bad flood
	# 16 allowed: the bystander's 2 and the tool's own first socket hold 3.
	[[ "$output" =~ ^flood\ open=([0-9]+)\ closed=([0-9]+)$ ]]
	[ "${BASH_REMATCH[1]}" -le 14 ]
	[ "${BASH_REMATCH[2]}" -ge 50 ]
	[ "$(grep -c "connections open, the listener's limit (max_connections): refusing new ones" "$LEAPD_LOG")" -eq 1 ]
	for i in $(seq 1 30); do
		grep -q "below the connection limit again" "$LEAPD_LOG" && break
		sleep 0.1
	done
	others_unaffected
}
