# Shared helpers for the SIPp scenario scripts (sourced, not run).
#   start_daemon [extra sipedge args...]  starts $SIPEDGE_BIN on a free UDP port of 127.0.0.1;
#                                         sets DAEMON_PID and SIPEDGE_PORT
#   stop_daemon                           SIGTERM; fails on an unclean exit or a sanitizer report
#   free_udp_port [host]                  prints a free UDP port
#   free_tcp_port [host]                  prints a free TCP port
#   listener_port PROTO                   the port of the daemon's first PROTO listener (tcp, tls…)
#   DNAME=b start_daemon …                a second daemon: $WORK/b.conf, b.out, b.log
#   SIPP_DOMAIN=d start_daemon …          the daemon's domain (default example.com)
#   run_sipp NAME args...                 sipp in the foreground, logs kept under $WORK
#   over_tcp SCENARIO                     a TCP copy of a UDP scenario (prints its path)
#   expect_log REGEX                      the daemon's log must match
set -euo pipefail
SIPP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SIPP_DIR/../.." && pwd)
SIPEDGE_BIN=${SIPEDGE_BIN:-$ROOT/build/sipedge}
SCEN=$SIPP_DIR/scenarios
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sipedge-sipp.XXXXXX")
DAEMON_PID=
BG_PIDS=()

free_udp_port() {
	node -e "const s=require('dgram').createSocket('${1:-127.0.0.1}'.includes(':')?'udp6':'udp4');
		s.bind(0,'${1:-127.0.0.1}',()=>{console.log(s.address().port);s.close();})"
}

free_tcp_port() {
	node -e "const s=require('net').createServer();
		s.listen(0,'${1:-127.0.0.1}',()=>{console.log(s.address().port);s.close();})"
}

# listener_port PROTO [NAME]: from the "listening PROTO HOST:PORT" lines the daemon printed.
listener_port() {
	sed -nE "s/^listening $1 .*:([0-9]+)\$/\1/p" "$WORK/${2:-${DNAME:-daemon}}.out" | head -1
}

cleanup() {
	local pid
	for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	if [[ -n "$DAEMON_PID" ]]; then kill -KILL "$DAEMON_PID" 2>/dev/null || true; fi
	if [[ -n "${OTHER_PID:-}" ]]; then kill -KILL "$OTHER_PID" 2>/dev/null || true; fi
	if [[ -z "${KEEP_WORK:-}" ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The config the scenarios use: write your own to $WORK/sipedge.conf before start_daemon to change it.
start_daemon() {
	local host=${LISTEN_HOST:-127.0.0.1} spec name=${DNAME:-daemon}
	local conf="$WORK/${DNAME:-sipedge}.conf" out="$WORK/$name.out" log="$WORK/$name.log"
	# SIPP_AUTH=on: digest authentication as configured (users file in the config); else --no-auth.
	local auth_args=(--no-auth)
	[[ ${SIPP_AUTH:-} == on ]] && auth_args=()
	# SIPp plays the SIP network: trusted by address, as a PBX or carrier would be.
	[[ -f "$conf" ]] || printf 'http = { web_root = ""; };\n' >"$conf"
	grep -q trusted_peers "$conf" ||
		printf 'auth = { trusted_peers = [ "127.0.0.0/8", "::1" ]; };\n' >>"$conf"
	if [[ $host == *:* ]]; then spec="udp:[$host]:0"; else spec="udp:$host:0"; fi
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87 \
		"$SIPEDGE_BIN" -c "$conf" --listen "$spec" --domain "${SIPP_DOMAIN:-example.com}" \
		"${auth_args[@]}" --log-level debug "$@" >"$out" 2>"$log" &
	DAEMON_PID=$!
	local i
	# udp listeners open last: once one is printed, every listener is.
	for i in $(seq 1 150); do
		if grep -q '^listening udp ' "$out"; then break; fi
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			echo "daemon exited before listening:"; cat "$log"; return 1
		fi
		sleep 0.1
	done
	SIPEDGE_PORT=$(listener_port udp "$name")
	[[ -n "$SIPEDGE_PORT" ]] || { echo "daemon did not print its listener"; cat "$log"; return 1; }
	echo "sipedge pid $DAEMON_PID on udp $host:$SIPEDGE_PORT"
}

stop_daemon() {
	local rc=0 log="$WORK/${DNAME:-daemon}.log"
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	if grep -Eq 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$log"; then
		echo "sanitizer report:"; grep -A30 -E 'Sanitizer|runtime error' "$log" | head -80
		return 1
	fi
	if ((rc != 0)); then echo "daemon exit $rc"; tail -40 "$log"; return 1; fi
	grep -q 'sipedge stopped' "$log" || { echo "no clean stop"; return 1; }
}

# run_sipp NAME [sipp args]: runs in the foreground, fails the script (with logs) if sipp fails.
run_sipp() {
	local name=$1; shift
	local rc=0
	(cd "$WORK" && sipp -nostdin -trace_err -error_file "$WORK/$name.err" -trace_msg \
		-message_file "$WORK/$name.msg" -timeout 60s -timeout_error "$@" \
		>"$WORK/$name.out" 2>&1) || rc=$?
	if ((rc != 0)); then
		echo "sipp $name failed (exit $rc)"
		tail -30 "$WORK/$name.out"; [[ -f "$WORK/$name.err" ]] && tail -60 "$WORK/$name.err"
		echo "--- daemon log"; tail -60 "$WORK/daemon.log"
		return 1
	fi
	echo "sipp $name ok"
}

# start_sipp NAME [sipp args]: in the background (a UAS); wait_sipp NAME collects its result.
declare -A SIPP_PIDS
start_sipp() {
	local name=$1; shift
	(cd "$WORK" && exec sipp -nostdin -trace_err -error_file "$WORK/$name.err" -trace_msg \
		-message_file "$WORK/$name.msg" -timeout 60s -timeout_error "$@" \
		>"$WORK/$name.out" 2>&1) &
	SIPP_PIDS[$name]=$!
	BG_PIDS+=($!)
	sleep 0.3
}

wait_sipp() {
	local name=$1 rc=0
	wait "${SIPP_PIDS[$name]}" || rc=$?
	if ((rc != 0)); then
		echo "sipp $name failed (exit $rc)"
		tail -30 "$WORK/$name.out"; [[ -f "$WORK/$name.err" ]] && tail -60 "$WORK/$name.err"
		echo "--- daemon log"; tail -60 "$WORK/daemon.log"
		return 1
	fi
	echo "sipp $name ok"
}

# over_tcp SCENARIO: the scenario's copy under $WORK with TCP in its Via and Record-Route
# (SIPp scenarios are written for UDP); prints the copy's path.
over_tcp() {
	local out="$WORK/$(basename "${1%.xml}")_tcp.xml"
	sed -e 's/transport=udp;lr/transport=tcp;lr/' -e 's#SIP/2.0/UDP #SIP/2.0/TCP #' "$1" >"$out"
	echo "$out"
}

expect_log() {
	local log="$WORK/${DNAME:-daemon}.log"
	if ! grep -Eq "$1" "$log"; then
		echo "$(basename "$log") lacks /$1/"; tail -40 "$log"; return 1
	fi
}
