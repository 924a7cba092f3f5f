#!/usr/bin/env bash
# UDP retransmissions through sipedge (RFC 3261 §17):
#  1. a slow callee: sipedge retransmits the INVITE (Timer A); the caller's own INVITE copy is
#     absorbed and answered with 100 again; the 486 is retransmitted until the ACK (Timer G),
#     whose first copy the caller "loses".
#  2. calls whose caller drops 10% of its datagrams (sipp -lost 10) still all complete.
source "$(dirname "$0")/lib.bash"

start_daemon
uas_port=$(free_udp_port)
start_sipp uas -sf "$SCEN/uas_busy_slow.xml" -s bob -i 127.0.0.1 -p "$uas_port" -m 1 127.0.0.1:"$SIPEDGE_PORT"
run_sipp reg -sf "$SCEN/reg_contact.xml" -s bob -key contact "127.0.0.1:$uas_port" \
	-i 127.0.0.1 -p "$(free_udp_port)" -m 1 127.0.0.1:"$SIPEDGE_PORT"
run_sipp uac -sf "$SCEN/uac_busy_lost_ack.xml" -s bob -i 127.0.0.1 -p "$(free_udp_port)" -m 1 \
	127.0.0.1:"$SIPEDGE_PORT"
wait_sipp uas
sent=$(grep -cE '^INVITE sip:bob@127\.0\.0\.1:[0-9]+ SIP/2\.0' "$WORK/daemon.log" || true)
echo "INVITE sent to the callee $sent times"
((sent >= 3)) || { echo "expected Timer A retransmissions at 0.5 s and 1.5 s"; exit 1; }
expect_log 'retransmission from 127\.0\.0\.1:[0-9]+ absorbed'
busy=$(grep -cE '^SIP/2\.0 486 Busy Here' "$WORK/daemon.log" || true)
echo "486 seen $busy times (received once, sent at least twice)"
((busy >= 3)) || { echo "expected the 486 to be retransmitted (Timer G)"; exit 1; }

# 2. The caller's SIPp drops 10% of what it sends (INVITE, ACK, BYE): its own retransmissions,
#    sipedge's absorbing server transactions and the callee's 2xx retransmissions recover all.
uas_port=$(free_udp_port)
start_sipp uas2 -sf "$SCEN/uas.xml" -s carol -i 127.0.0.1 -p "$uas_port" -m 10 127.0.0.1:"$SIPEDGE_PORT"
run_sipp reg2 -sf "$SCEN/reg_contact.xml" -s carol -key contact "127.0.0.1:$uas_port" \
	-i 127.0.0.1 -p "$(free_udp_port)" -m 1 127.0.0.1:"$SIPEDGE_PORT"
run_sipp uac2 -sf "$SCEN/uac.xml" -s carol -key domain example.com -i 127.0.0.1 -p "$(free_udp_port)" -m 10 -r 5 -lost 10 \
	127.0.0.1:"$SIPEDGE_PORT"
wait_sipp uas2
grep -E 'Successful call' "$WORK/uac2.out" | tail -1
stop_daemon
echo PASS
