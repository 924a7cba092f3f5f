#!/usr/bin/env bash
# SIPp as a stranger runs it against the shipped configuration (etc/sipedge.conf: the demo
# domain, digest authentication on, the demo users alice and bob, nobody trusted), with
# scenarios written the way SIPp's own are, addressing the server by the address they send to:
# REGISTER sip:[remote_ip]:[remote_port], To and From sip:USER@[remote_ip]:[remote_port], and
# only -au/-ap for the digest (so SIPp signs uri="sip:REMOTE_IP:REMOTE_PORT").
#  1. UDP: bob registers (401, then 200) as sip:bob@127.0.0.1:PORT, which is bob of the demo
#     domain; alice calls sip:bob@127.0.0.1:PORT (407, then the call), ACK and BYE in dialog.
#  2. TCP: the same over TCP connections.
source "$(dirname "$0")/lib.bash"

# The shipped file as it is, but for the users file's path (the daemon runs from $WORK) and the
# listeners (free ports instead of 8080 and 5060).
sed -e "s|\"etc/demo-users\"|\"$ROOT/etc/demo-users\"|" -e 's|^\(  web_root = \)"web";|\1"";|' \
	"$ROOT/etc/sipedge.conf" >"$WORK/sipedge.conf"
# SIPp's style: the server is named by its address.
by_address() { sed -e 's/@example\.com/@[remote_ip]:[remote_port]/g' -e 's/sip:example\.com/sip:[remote_ip]:[remote_port]/g' "$1"; }
by_address "$SCEN/reg_auth.xml" >"$WORK/reg.xml"
by_address "$SCEN/uac_auth.xml" >"$WORK/uac.xml"
grep -q 'example\.com' "$WORK/reg.xml" "$WORK/uac.xml" && { echo "a scenario still names the domain"; exit 1; }

# 1. UDP.
SIPP_AUTH=on SIPP_DOMAIN=sipedge.test start_daemon
uas_port=$(free_udp_port)
start_sipp uas -sf "$SCEN/uas.xml" -s bob -i 127.0.0.1 -p "$uas_port" -m 1 127.0.0.1:"$SIPEDGE_PORT"
run_sipp reg -sf "$WORK/reg.xml" -s bob -au bob -ap bob-password -key contact "127.0.0.1:$uas_port" \
	-i 127.0.0.1 -p "$(free_udp_port)" -m 1 127.0.0.1:"$SIPEDGE_PORT"
expect_log 'binding added: aor sip:bob@sipedge\.test'
expect_log "^Authorization: Digest username=\"bob\".*realm=\"sipedge\.test\".*uri=\"sip:127\.0\.0\.1:$SIPEDGE_PORT\""
run_sipp invite -sf "$WORK/uac.xml" -s bob -key caller alice -au alice -ap alice-password -i 127.0.0.1 \
	-p "$(free_udp_port)" -m 1 127.0.0.1:"$SIPEDGE_PORT"
wait_sipp uas
expect_log "^Proxy-Authorization: Digest username=\"alice\".*realm=\"sipedge\.test\""
expect_log "auth: INVITE sip:bob@127\.0\.0\.1 .*From sip:alice@127\.0\.0\.1:$SIPEDGE_PORT.*authenticated \(proxy\)"
expect_log '^INVITE sip:bob@127\.0\.0\.1:[0-9]+ SIP/2\.0'
stop_daemon

# 2. TCP: bob's UAS is registered over a TCP connection that then closes (the binding stays with
#    registrar.drop_bindings_on_flow_close = false); alice calls over TCP.
sed -i 's/^\(  drop_bindings_on_flow_close = \)true;/\1false;/' "$WORK/sipedge.conf"
grep -q 'drop_bindings_on_flow_close = false;' "$WORK/sipedge.conf" || { echo "the shipped file changed shape"; exit 1; }
SIPP_AUTH=on SIPP_DOMAIN=sipedge.test start_daemon --listen tcp:127.0.0.1:0
tcp_port=$(listener_port tcp)
[[ -n "$tcp_port" ]] || { echo "no tcp listener printed"; exit 1; }
uas_port=$(free_tcp_port)
start_sipp uas_tcp -sf "$(over_tcp "$SCEN/uas.xml")" -t t1 -s bob -i 127.0.0.1 -p "$uas_port" -m 1 127.0.0.1:"$tcp_port"
run_sipp reg_tcp -sf "$WORK/reg.xml" -t t1 -s bob -au bob -ap bob-password \
	-key contact "127.0.0.1:$uas_port;transport=tcp" -i 127.0.0.1 -p "$(free_tcp_port)" -m 1 127.0.0.1:"$tcp_port"
expect_log 'binding added: aor sip:bob@sipedge\.test'
run_sipp invite_tcp -sf "$WORK/uac.xml" -t t1 -s bob -key caller alice -au alice -ap alice-password \
	-i 127.0.0.1 -p "$(free_tcp_port)" -m 1 127.0.0.1:"$tcp_port"
wait_sipp uas_tcp
expect_log "auth: INVITE sip:bob@127\.0\.0\.1 .*From sip:alice@127\.0\.0\.1:$tcp_port.*authenticated \(proxy\)"
stop_daemon
echo PASS
