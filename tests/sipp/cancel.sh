#!/usr/bin/env bash
# CANCEL through sipedge over UDP: the caller CANCELs while the callee rings; sipedge answers
# the CANCEL, CANCELs its branch, and relays the callee's 487, which the caller ACKs.
source "$(dirname "$0")/lib.bash"

start_daemon
uas_port=$(free_udp_port)
start_sipp uas -sf "$SCEN/uas_cancel.xml" -s bob -i 127.0.0.1 -p "$uas_port" -m 3 127.0.0.1:"$SIPEDGE_PORT"
run_sipp reg -sf "$SCEN/reg_contact.xml" -s bob -key contact "127.0.0.1:$uas_port" \
	-i 127.0.0.1 -p "$(free_udp_port)" -m 1 127.0.0.1:"$SIPEDGE_PORT"
run_sipp uac -sf "$SCEN/uac_cancel.xml" -s bob -i 127.0.0.1 -p "$(free_udp_port)" -m 3 \
	127.0.0.1:"$SIPEDGE_PORT"
wait_sipp uas
# sipedge's own CANCEL went to the callee, and the caller's ACK for the 487 was absorbed.
expect_log '^CANCEL sip:bob@127\.0\.0\.1:[0-9]+ SIP/2\.0'
stop_daemon
echo PASS
