#!/usr/bin/env bash
# UAC -> sipedge -> UAS over UDP: the UAS is registered (REGISTER from a third party with the
# UAS's Contact), calls are Record-Routed through sipedge, ACK and BYE follow the route set.
source "$(dirname "$0")/lib.bash"

start_daemon
uas_port=$(free_udp_port)
start_sipp uas -sf "$SCEN/uas.xml" -s bob -i 127.0.0.1 -p "$uas_port" -m 6 127.0.0.1:"$SIPEDGE_PORT"
run_sipp reg -sf "$SCEN/reg_contact.xml" -s bob -key contact "127.0.0.1:$uas_port" \
	-i 127.0.0.1 -p "$(free_udp_port)" -m 1 127.0.0.1:"$SIPEDGE_PORT"
run_sipp uac -sf "$SCEN/uac.xml" -s bob -key domain example.com -i 127.0.0.1 -p "$(free_udp_port)" -m 5 -r 5 \
	127.0.0.1:"$SIPEDGE_PORT"
# A Request-URI naming sipedge's address (as PBXs and SIPp's defaults do) means our domain.
run_sipp uac_addr -sf "$SCEN/uac.xml" -s bob -key domain "127.0.0.1:$SIPEDGE_PORT" -i 127.0.0.1 \
	-p "$(free_udp_port)" -m 1 127.0.0.1:"$SIPEDGE_PORT"
wait_sipp uas
# Retargeted to the registered Contact (§16.5), and the in-dialog BYE came by the route set.
expect_log '^INVITE sip:bob@127\.0\.0\.1:[0-9]+ SIP/2\.0'
expect_log '^Route: <sip:[0-9a-f]{32}@127\.0\.0\.1:[0-9]+;transport=udp;lr>, <sip:[0-9a-f]{32}@'
stop_daemon
echo PASS
