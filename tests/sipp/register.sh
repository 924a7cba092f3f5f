#!/usr/bin/env bash
# UDP REGISTER with SIPp: 423 + Min-Expires, add, query, Contact: * (400 unless Expires: 0, then
# every binding gone), rport/received in the answers; IPv4 and IPv6.
source "$(dirname "$0")/lib.bash"

start_daemon
run_sipp register4 -sf "$SCEN/register.xml" -s alice -i 127.0.0.1 -p "$(free_udp_port)" \
	-m 3 127.0.0.1:"$SIPEDGE_PORT"
expect_log 'REGISTER sip:alice@example.com .*refused: 423'
expect_log 'binding removed \(unregistered\): aor sip:alice@example.com'
stop_daemon

LISTEN_HOST=::1 start_daemon
run_sipp register6 -sf "$SCEN/register.xml" -s bob -i ::1 -p "$(free_udp_port ::1)" \
	-m 1 "[::1]:$SIPEDGE_PORT"
expect_log 'binding removed \(unregistered\): aor sip:bob@example.com'
stop_daemon
echo PASS
