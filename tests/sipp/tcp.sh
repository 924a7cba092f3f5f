#!/usr/bin/env bash
# SIP over TCP (RFC 3261 §18.3): SIPp UAC over TCP -> sipedge -> SIPp UAS over TCP.
#  - the UAS is registered over TCP (a third-party REGISTER whose connection then closes, so
#    the binding is kept by registrar.drop_bindings_on_flow_close = false) with a
#    ;transport=tcp Contact: sipedge opens a connection to it, and reuses it for every call;
#  - calls are double Record-Routed (each leg is its own connection), ACK and BYE follow them;
#  - a message over tcp.max_message_size closes the connection.
source "$(dirname "$0")/lib.bash"

cat >"$WORK/sipedge.conf" <<CONF
http = { web_root = ""; };
auth = { trusted_peers = [ "127.0.0.0/8" ]; };
registrar = { drop_bindings_on_flow_close = false; };
tcp = { max_message_size = 4096; };
CONF
start_daemon --listen tcp:127.0.0.1:0
tcp_port=$(listener_port tcp)
[[ -n "$tcp_port" ]] || { echo "no tcp listener printed"; exit 1; }
uas_port=$(free_tcp_port)
# The UDP UAS scenario, expecting TCP in sipedge's Via and Record-Route.
start_sipp uas -sf "$(over_tcp "$SCEN/uas.xml")" -t t1 -s bob -i 127.0.0.1 -p "$uas_port" -m 3 \
	127.0.0.1:"$tcp_port"
run_sipp reg -sf "$SCEN/reg_contact.xml" -t t1 -s bob -key contact "127.0.0.1:$uas_port;transport=tcp" \
	-i 127.0.0.1 -p "$(free_tcp_port)" -m 1 127.0.0.1:"$tcp_port"
run_sipp uac -sf "$SCEN/uac.xml" -t t1 -s bob -key domain example.com -i 127.0.0.1 \
	-p "$(free_tcp_port)" -m 3 -r 5 127.0.0.1:"$tcp_port"
wait_sipp uas
expect_log "^INVITE sip:bob@127\.0\.0\.1:$uas_port;transport=tcp SIP/2\.0"
expect_log "^Record-Route: <sip:[0-9a-f]{32}@127\.0\.0\.1:$tcp_port;transport=tcp;lr>"
expect_log "^Route: <sip:[0-9a-f]{32}@127\.0\.0\.1:$tcp_port;transport=tcp;lr>, <sip:[0-9a-f]{32}@127\.0\.0\.1:$tcp_port;transport=tcp;lr>"
expect_log "tcp: flow [0-9]+ connected to 127\.0\.0\.1:$uas_port"
# One connection to the UAS carried all three calls.
n=$(grep -c "tcp: flow [0-9]* connecting to 127\.0\.0\.1:$uas_port" "$WORK/daemon.log")
[[ $n == 1 ]] || { echo "expected one connection to the UAS, saw $n"; exit 1; }

# An oversized message closes its connection (and nothing is answered on it).
node -e "
const s = require('net').connect($tcp_port, '127.0.0.1', () => {
  s.write('OPTIONS sip:example.com SIP/2.0\r\nX-Pad: ' + 'a'.repeat(6000) + '\r\n');
});
let got = '';
s.on('data', (d) => { got += d; });
s.on('close', () => { if (got) { console.log('unexpected answer', got); process.exit(1); } console.log('closed'); });
setTimeout(() => { console.log('not closed'); process.exit(1); }, 5000).unref();
"
expect_log "sent a message over 4096 bytes: closing"
stop_daemon
echo PASS
