#!/usr/bin/env bash
# A TLS trunk between two sipedges (Debian's SIPp has no TLS): SIPp UAC over TCP -> edge
# -> TLS -> core -> SIPp UAS over UDP, the configuration of doc/deployment.md "TLS trunk".
#  - the core listens on tls with its certificate; the edge routes to it by
#    routing.upstreams "sip:…;transport=tls" and verifies that certificate against tls.ca;
#  - TLS below 1.2 is refused;
#  - with a tls.ca that did not sign the core's certificate, the connection fails and the
#    caller gets 503.
source "$(dirname "$0")/lib.bash"

cert() { # cert NAME: a self-signed certificate for 127.0.0.1, its own CA
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$WORK/$1.key" -out "$WORK/$1.pem" 2>/dev/null
}
cert core
cert stranger

# The core: the carrier side, TLS in, the UAS behind it over UDP.
uas_port=$(free_udp_port)
cat >"$WORK/b.conf" <<CONF
http = { web_root = ""; };
auth = { trusted_peers = [ "127.0.0.0/8" ]; };
tls = { cert = "$WORK/core.pem"; key = "$WORK/core.key"; };
routing = { upstreams = [ "sip:127.0.0.1:$uas_port;transport=udp" ]; };
CONF
DNAME=b start_daemon --listen tls:127.0.0.1:0
OTHER_PID=$DAEMON_PID
DAEMON_PID=
core_tls=$(listener_port tls b)
[[ -n "$core_tls" ]] || { echo "no tls listener printed"; exit 1; }

# TLS 1.2 and later only.
if openssl s_client -connect "127.0.0.1:$core_tls" -tls1_1 </dev/null >"$WORK/tls11.out" 2>&1; then
	echo "TLS 1.1 was accepted"; exit 1
fi
openssl s_client -connect "127.0.0.1:$core_tls" -tls1_2 -CAfile "$WORK/core.pem" -verify_return_error \
	</dev/null >"$WORK/tls12.out" 2>&1 || { echo "TLS 1.2 refused"; cat "$WORK/tls12.out"; exit 1; }

# The edge: TCP in from the UAC, the trunk to the core over TLS.
edge_conf() {
	cat >"$WORK/sipedge.conf" <<CONF
http = { web_root = ""; };
auth = { trusted_peers = [ "127.0.0.0/8" ]; };
tls = { ca = "$WORK/$1.pem"; verify_peer = true; };
routing = { upstreams = [ "sip:127.0.0.1:$core_tls;transport=tls" ]; upstream_timeout = 2000; };
CONF
}
edge_conf core
start_daemon --listen tcp:127.0.0.1:0
edge_tcp=$(listener_port tcp)
start_sipp uas -sf "$SCEN/uas.xml" -s pbx -i 127.0.0.1 -p "$uas_port" -m 2 127.0.0.1:"$SIPEDGE_PORT"
run_sipp uac -sf "$SCEN/uac.xml" -t t1 -s 7001 -key domain pbx.example.net -i 127.0.0.1 \
	-p "$(free_tcp_port)" -m 2 -r 5 127.0.0.1:"$edge_tcp"
wait_sipp uas
expect_log "tls: flow [0-9]+ connected to 127\.0\.0\.1:$core_tls"
expect_log "^Record-Route: <sip:[0-9a-f]{32}@127\.0\.0\.1:[0-9]+;transport=tls;lr>"
n=$(grep -c "tls: flow [0-9]* connecting to 127\.0\.0\.1:$core_tls" "$WORK/daemon.log")
[[ $n == 1 ]] || { echo "expected one trunk connection, saw $n"; exit 1; }
DNAME=b expect_log "flow [0-9]+ open: tls from 127\.0\.0\.1"
DNAME=b expect_log "^Via: SIP/2\.0/TLS 127\.0\.0\.1:[0-9]+;branch=z9hG4bK"
stop_daemon

# A CA that did not sign the core's certificate: no trunk, the caller gets 503.
edge_conf stranger
start_daemon --listen tcp:127.0.0.1:0
edge_tcp=$(listener_port tcp)
run_sipp uac_503 -sf "$SCEN/uac_503.xml" -t t1 -s 7001 -key domain pbx.example.net -i 127.0.0.1 \
	-p "$(free_tcp_port)" -m 1 127.0.0.1:"$edge_tcp"
expect_log "tls: connection to 127\.0\.0\.1:$core_tls failed"
expect_log "failed \(480, no response\), none left"
stop_daemon

DAEMON_PID=$OTHER_PID
OTHER_PID=
DNAME=b stop_daemon
echo PASS
