#!/usr/bin/env bats
# SPDX-License-Identifier: BSD-3-Clause
#
# leapd's control plane end to end: a real leapd started from a config,
# driven only through leapctl (and a raw socket client for malformed input).
# Covers bdev/ctrl/ns lifecycles with values checked, config_save round
# trips, startup config failures, JSON-RPC errors on the wire, log level,
# reactors from a CPU list, and SIGTERM -> exit 0.

load helpers

setup() {
	leapd_dir
}

teardown() {
	leapd_teardown
}

# mem + null backends from a startup config.
write_base_config() {
	cat >"$LEAPD_DIR/base.json" <<-'EOF'
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 8388608}},
	  {"method": "bdev_create",
	   "params": {"name": "n0", "type": "null", "size": 1073741824, "block_size": 4096}}
	]
	EOF
}

@test "leapd starts from a config; bdev list shows its values" {
	write_base_config
	leapd_start "$LEAPD_DIR/base.json"
	run leapctl_t --json bdev list
	[ "$status" -eq 0 ]
	[ "$(jq length <<<"$output")" -eq 2 ]
	[ "$(jq -r '.[0].name' <<<"$output")" = m0 ]
	[ "$(jq -r '.[0].type' <<<"$output")" = mem ]
	[ "$(jq -r '.[0].size' <<<"$output")" -eq 8388608 ]
	[ "$(jq -r '.[0].block_size' <<<"$output")" -eq 512 ]
	[ "$(jq -r '.[1].name' <<<"$output")" = n0 ]
	[ "$(jq -r '.[1].block_size' <<<"$output")" -eq 4096 ]
	[ "$(jq -r '.[1].blocks' <<<"$output")" -eq 262144 ]
	# The human table has the same rows.
	run leapctl_t bdev list
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == NAME*TYPE*SIZE* ]]
	[[ "${lines[1]}" == m0*mem*8.0M* ]]
	[[ "${lines[2]}" == n0*null*1.0G*4096* ]]
	leapd_stop
}

@test "bdev create, list and delete for mem, null and uring" {
	leapd_start
	run leapctl_t bdev create mem1 --type mem --size 4M --block-size 4096
	[ "$status" -eq 0 ]
	run leapctl_t bdev create null1 --type null --size 1G
	[ "$status" -eq 0 ]
	run leapctl_t --json bdev create file1 --type uring --path "$LEAPD_DIR/file1.img" --size 16M
	[ "$status" -eq 0 ]
	[ "$(jq -r .size <<<"$output")" -eq 16777216 ]
	[ "$(jq -r .path <<<"$output")" = "$LEAPD_DIR/file1.img" ]
	# The uring backend made (or grew) the file to the requested size.
	[ "$(stat -c %s "$LEAPD_DIR/file1.img")" -eq 16777216 ]

	run leapctl_t --json bdev list
	[ "$(jq -c '[.[] | [.name, .type, .size, .block_size]]' <<<"$output")" = \
		'[["mem1","mem",4194304,4096],["null1","null",1073741824,512],["file1","uring",16777216,512]]' ]
	run leapctl_t --json bdev list null1
	[ "$(jq -r '.[0].name' <<<"$output")" = null1 ]
	[ "$(jq length <<<"$output")" -eq 1 ]

	run leapctl_t bdev create mem1 --type mem --size 4M
	[ "$status" -eq 1 ]
	[[ "$output" == *"bdev 'mem1' already exists"* ]]

	run leapctl_t bdev delete null1
	[ "$status" -eq 0 ]
	run leapctl_t --json bdev list
	[ "$(jq -c '[.[].name]' <<<"$output")" = '["mem1","file1"]' ]
	run leapctl_t bdev delete null1
	[ "$status" -eq 1 ]
	[[ "$output" == *"bdev 'null1' not found"* ]]
	leapd_stop
}

@test "controllers and namespaces: defaults, ranges, references" {
	write_base_config
	leapd_start "$LEAPD_DIR/base.json"
	run leapctl_t --json ctrl add c0
	[ "$status" -eq 0 ]
	[ "$(jq -r .nqn <<<"$output")" = "nqn.2024-01.io.leapio:c0" ]
	[ "$(jq -r .max_qpairs <<<"$output")" -eq 4 ]
	[ "$(jq -r .max_queue_size <<<"$output")" -eq 256 ]
	serial0=$(jq -r .serial <<<"$output")
	[ -n "$serial0" ]
	run leapctl_t ctrl add c1 --nqn nqn.2026-01.test:c1 --max-qpairs 2 --max-queue-size 64 --serial SN-C1
	[ "$status" -eq 0 ]
	run leapctl_t ctrl add c2 --nqn nqn.2026-01.test:c1
	[ "$status" -eq 1 ]
	[[ "$output" == *"already used by ctrl 'c1'"* ]]
	run leapctl_t ctrl add c2 --max-qpairs 0
	[ "$status" -eq 1 ]
	[[ "$output" == *"'max_qpairs' must be in [1, 64]"* ]]

	# Whole bdev by default; nsid 1 is the lowest free.
	run leapctl_t --json ns add c0 m0
	[ "$status" -eq 0 ]
	[ "$(jq -c '[.nsid, .offset, .size, .lba_size, .blocks]' <<<"$output")" = '[1,0,8388608,512,16384]' ]
	# Two ranges of the null bdev for c1, 4 KiB LBAs, explicit nsid.
	run leapctl_t ns add c1 n0 --nsid 5 --size 512M
	[ "$status" -eq 0 ]
	run leapctl_t --json ns add c1 n0 --offset 512M --lba-size 4096
	[ "$status" -eq 0 ]
	[ "$(jq -c '[.nsid, .offset, .size]' <<<"$output")" = '[1,536870912,536870912]' ]
	# Overlapping an existing range is refused, and so are bad geometries.
	run leapctl_t ns add c0 n0 --offset 256M --size 4K
	[ "$status" -eq 1 ]
	[[ "$output" == *"overlap nsid 5 of ctrl 'c1'"* ]]
	run leapctl_t ns add c0 m0 --nsid 1
	[ "$status" -eq 1 ]
	[[ "$output" == *"already has nsid 1"* ]]
	run leapctl_t ns add c0 n0 --lba-size 512
	[ "$status" -eq 1 ]
	[[ "$output" == *"'lba_size'"* ]]
	run leapctl_t ns add c0 nope
	[ "$status" -eq 1 ]
	[[ "$output" == *"bdev 'nope' not found"* ]]

	run leapctl_t --json ns list
	[ "$(jq -c '[.[] | [.ctrl, .nsid, .bdev]]' <<<"$output")" = '[["c0",1,"m0"],["c1",1,"n0"],["c1",5,"n0"]]' ]
	run leapctl_t --json ctrl list c1
	[ "$(jq -c '.[0] | [.serial, .max_qpairs, .max_queue_size, .nsids]' <<<"$output")" = '["SN-C1",2,64,[1,5]]' ]
	run leapctl_t ns list c1
	[ "${#lines[@]}" -eq 3 ]
	[[ "${lines[2]}" == c1*5*n0*0*512.0M*4096* ]]

	# A bdev in use cannot go; namespaces hold it.
	run leapctl_t bdev delete n0
	[ "$status" -eq 1 ]
	[[ "$output" == *"used by 2 namespace(s)"* ]]
	[ "$(leapctl_t --json bdev list n0 | jq -r '.[0].namespaces')" -eq 2 ]
	run leapctl_t ns remove c1 5
	[ "$status" -eq 0 ]
	run leapctl_t ns remove c1 5
	[ "$status" -eq 1 ]
	[[ "$output" == *"has no nsid 5"* ]]
	run leapctl_t ctrl delete c1
	[ "$status" -eq 0 ]
	[ "$(leapctl_t --json bdev list n0 | jq -r '.[0].namespaces')" -eq 0 ]
	run leapctl_t bdev delete n0
	[ "$status" -eq 0 ]
	run leapctl_t --json ctrl list
	[ "$(jq -c '[.[].name]' <<<"$output")" = '["c0"]' ]
	# The default serial is stable: same name, same serial.
	leapctl_t ctrl delete c0
	[ "$(leapctl_t --json ctrl add c0 | jq -r .serial)" = "$serial0" ]
	leapd_stop
}

@test "invalid params name the bad field" {
	leapd_start
	run leapctl_t bdev create x --type floppy --size 1M
	[ "$status" -eq 1 ]
	# Every module leapd has is named (the list grows with the modules linked).
	[[ "$output" == *"'type' must be "*", got 'floppy'"* ]]
	for t in $(leapctl_t --json bdev types | jq -r '.[]'); do
		[[ "$output" == *"$t"* ]]
	done
	[[ "$output" == *"-32602"* ]]
	run leapctl_t bdev create x --type mem --size 1000
	[ "$status" -eq 1 ]
	[[ "$output" == *"'size' 1000 is not a multiple"* ]]
	run leapctl_t bdev create x --type uring --size 1M
	[ "$status" -eq 1 ]
	[[ "$output" == *"'path' is required"* ]]
	run leapctl_t rpc bdev_create '{"name":"x","type":"mem","size":4096,"colour":"red"}'
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown field 'colour'"* ]]
	run leapctl_t rpc bdev_create '{"name":"x","type":"mem","size":"big"}'
	[ "$status" -eq 1 ]
	[[ "$output" == *"'size' must be a non-negative integer"* ]]
	run leapctl_t log level loud
	[ "$status" -eq 1 ]
	[[ "$output" == *"'level' must be"* ]]
	# Nothing was created by any of that.
	run leapctl_t --json bdev list
	[ "$output" = "[]" ]
	leapd_stop
}

@test "leapctl usage errors exit 2 and --help works at every level" {
	run "$LEAPCTL" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"bdev"*"create"* ]]
	run "$LEAPCTL" bdev --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"delete"* ]]
	run "$LEAPCTL" bdev create --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--block-size"* ]]
	run "$LEAPCTL" ns add --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--lba-size"* ]]
	run "$LEAPCTL" bdev frobnicate
	[ "$status" -eq 2 ]
	run "$LEAPCTL" bdev create x --type mem --size 12Q
	[ "$status" -eq 2 ]
	[[ "$output" == *"must be a size"* ]]
	run "$LEAPCTL" -r "$LEAPD_DIR/nobody.sock" info
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot connect"* ]]
}

@test "config_save round trip reproduces the running state" {
	write_base_config
	leapd_start "$LEAPD_DIR/base.json"
	leapctl_t bdev create file1 --type uring --path "$LEAPD_DIR/f.img" --size 8M --buffered
	leapctl_t ctrl add c0 --max-qpairs 8
	leapctl_t ctrl add c1 --nqn nqn.2026-01.test:one --serial S1
	leapctl_t ns add c0 m0 --size 4M
	leapctl_t ns add c0 file1 --nsid 3 --lba-size 4096
	leapctl_t ns add c1 m0 --offset 4M
	leapctl_t log level warn
	run leapctl_t config save "$LEAPD_DIR/saved.json"
	[ "$status" -eq 0 ]
	[ -f "$LEAPD_DIR/saved.json" ]
	# No temporary file left next to it.
	[ "$(ls "$LEAPD_DIR" | grep -c tmp)" -eq 0 ]
	before_bdevs=$(leapctl_t --json bdev list)
	before_ctrls=$(leapctl_t --json ctrl list)
	before_ns=$(leapctl_t --json ns list)
	before_cfg=$(leapctl_t config save)
	[ "$(jq length <<<"$before_ns")" -eq 3 ]
	json_eq "$before_cfg" "$(cat "$LEAPD_DIR/saved.json")"
	leapd_stop

	leapd_start "$LEAPD_DIR/saved.json"
	after_bdevs=$(leapctl_t --json bdev list)
	after_cfg=$(leapctl_t config save)
	json_eq "$before_bdevs" "$after_bdevs"
	json_eq "$before_ctrls" "$(leapctl_t --json ctrl list)"
	json_eq "$before_ns" "$(leapctl_t --json ns list)"
	json_eq "$before_cfg" "$after_cfg"
	[ "$(leapctl_t --json info | jq -r .log_level)" = warn ]
	[ "$(jq -r '.[] | select(.name=="file1") | .buffered' <<<"$after_bdevs")" = true ]
	leapd_stop
}

@test "a failing startup config exits non-zero naming the call" {
	cat >"$LEAPD_DIR/bad.json" <<-'EOF'
	[
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 4096}},
	  {"method": "bdev_create", "params": {"name": "m0", "type": "mem", "size": 4096}}
	]
	EOF
	run timeout 10 "$LEAPD" --foreground -r "$LEAPD_RPC" -s "$LEAPD_TENANT" -c "$LEAPD_DIR/bad.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"call #1 (bdev_create)"*"already exists"* ]]
	[ ! -e "$LEAPD_RPC" ]

	printf '{"method": "bdev_list"}' >"$LEAPD_DIR/notarray.json"
	run timeout 10 "$LEAPD" --foreground -r "$LEAPD_RPC" -s "$LEAPD_TENANT" -c "$LEAPD_DIR/notarray.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"must be a JSON array"* ]]

	printf '[{"method": "bdev_list"},\n {"method": "nope"}]' >"$LEAPD_DIR/nomethod.json"
	run timeout 10 "$LEAPD" --foreground -r "$LEAPD_RPC" -s "$LEAPD_TENANT" -c "$LEAPD_DIR/nomethod.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"call #1 (nope)"*"not found"* ]]

	printf '[{"method": "bdev_list"' >"$LEAPD_DIR/broken.json"
	run timeout 10 "$LEAPD" --foreground -r "$LEAPD_RPC" -s "$LEAPD_TENANT" -c "$LEAPD_DIR/broken.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"broken.json:1:"* ]]
}

@test "daemonized leapd reports a config failure through its exit status" {
	printf '[{"method": "nope"}]' >"$LEAPD_DIR/bad.json"
	run timeout 10 "$LEAPD" -r "$LEAPD_RPC" -s "$LEAPD_TENANT" -l "$LEAPD_LOG" -c "$LEAPD_DIR/bad.json"
	[ "$status" -eq 1 ]
	grep -q "call #0 (nope)" "$LEAPD_LOG"
}

@test "malformed JSON-RPC on the socket is answered and the daemon keeps serving" {
	write_base_config
	leapd_start "$LEAPD_DIR/base.json"
	run leapctl_t rpc --raw '{"jsonrpc": "2.0", "method": "bdev_list", "id": 1 garbage'
	[ "$status" -eq 1 ]
	[ "$(jq -r .error.code <<<"$output")" -eq -32700 ]
	[ "$(jq -r .id <<<"$output")" = null ]
	# Truncated request, then end of stream: still a parse error, not silence.
	run leapctl_t rpc --raw '{"jsonrpc": "2.0", "method": "bdev_li'
	[ "$(jq -r .error.code <<<"$output")" -eq -32700 ]
	run leapctl_t rpc --raw '{"jsonrpc": "1.0", "method": "bdev_list", "id": 2}'
	[ "$(jq -r .error.code <<<"$output")" -eq -32600 ]
	run leapctl_t rpc --raw '{"jsonrpc": "2.0", "method": "bdev_frob", "id": 3}'
	[ "$(jq -r .error.code <<<"$output")" -eq -32601 ]
	[ "$(jq -r .id <<<"$output")" -eq 3 ]
	run leapctl_t rpc --raw '[]'
	[ "$(jq -r .error.code <<<"$output")" -eq -32600 ]
	# A bad line followed by a good one on the same connection: both answered, in order.
	run leapctl_t rpc --raw $'nonsense\n{"jsonrpc":"2.0","method":"bdev_list","id":"x"}\n'
	[ "${#lines[@]}" -eq 2 ]
	[ "$(jq -r .error.code <<<"${lines[0]}")" -eq -32700 ]
	[ "$(jq -r '.result | length' <<<"${lines[1]}")" -eq 2 ]
	# A batch with a notification and an error.
	run leapctl_t rpc --raw '[{"jsonrpc":"2.0","method":"bdev_list","params":{"name":"m0"},"id":1},
		{"jsonrpc":"2.0","method":"log_set_level","params":{"level":"info"}},
		{"jsonrpc":"2.0","method":"bdev_delete","params":{"name":"zz"},"id":2}]'
	[ "$(jq length <<<"$output")" -eq 2 ]
	[ "$(jq -r '.[0].result[0].name' <<<"$output")" = m0 ]
	[ "$(jq -r '.[1].error.code' <<<"$output")" -eq -2 ]
	[ "$(jq -r '.[1].error.message' <<<"$output")" = "bdev 'zz' not found" ]
	# Pure notification: no answer at all, and it took effect.
	run leapctl_t rpc --raw '{"jsonrpc":"2.0","method":"log_set_level","params":{"level":"error"}}'
	[ "$output" = "" ]
	[ "$(leapctl_t --json info | jq -r .log_level)" = error ]
	if command -v python3 >/dev/null; then
		# Binary junk, an oversized request, and a client that vanishes mid-request.
		python3 - "$LEAPD_RPC" <<-'PY'
		import socket, sys
		def conn():
		    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		    s.connect(sys.argv[1]); s.settimeout(10); return s
		s = conn(); s.sendall(b"\x00\xff\xfe{]]\n"); assert b"-32700" in s.recv(4096); s.close()
		s = conn(); s.sendall(b'{"jsonrpc":"2.0","method":"bdev_list","id":1,"x":"')
		s.close()
		s = conn()
		try:
		    s.sendall(b'[' + b'1,' * (3 << 20))
		except (BrokenPipeError, ConnectionResetError):
		    pass
		data = b""
		try:
		    while b"\n" not in data:
		        chunk = s.recv(4096)
		        if not chunk:
		            break
		        data += chunk
		except ConnectionResetError:
		    pass
		assert b"-32700" in data and b"larger than" in data, data
		s.close()
		PY
	fi
	run leapctl_t --json bdev list
	[ "$status" -eq 0 ]
	[ "$(jq length <<<"$output")" -eq 2 ]
	leapd_stop
}

@test "reactors follow the CPU list" {
	if [ "$(nproc)" -lt 2 ]; then
		skip "needs 2 CPUs, have $(nproc)"
	fi
	leapd_start "" -m 0-1
	run leapctl_t --json reactor list
	[ "$status" -eq 0 ]
	[ "$(jq -c '[.[].cpu]' <<<"$output")" = '[0,1]' ]
	[ "$(leapctl_t --json info | jq -r .reactors)" -eq 2 ]
	leapd_stop
	run timeout 10 "$LEAPD" --foreground -r "$LEAPD_RPC" -s "$LEAPD_TENANT" -m 0,0
	[ "$status" -eq 1 ]
	[[ "$output" == *"bad CPU list"* ]]
}

@test "SIGTERM stops leapd with status 0 and removes its socket" {
	leapd_start
	leapctl_t bdev create f --type uring --path "$LEAPD_DIR/f.img" --size 1M
	[ -S "$LEAPD_RPC" ]
	pid=$LEAPD_PID
	leapd_stop
	! kill -0 "$pid" 2>/dev/null
	[ ! -e "$LEAPD_RPC" ]
	grep -q "stopped" "$LEAPD_LOG"
	# The same paths are usable again at once.
	leapd_start
	leapd_stop
}
