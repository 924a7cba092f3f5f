#!/usr/bin/env bash
# Routing to the network over UDP: calls to another domain go to routing.upstreams in order.
#  1. the first upstream is dead (no answer within routing.upstream_timeout), the second answers
#     503, the third takes the call; ACK and BYE follow the Record-Route set.
#  2. a user of our domain that is not registered goes upstream too (routing.unregistered_users).
#  3. when no upstream answers, the caller gets sipedge's own 503.
source "$(dirname "$0")/lib.bash"

dead=$(free_udp_port)
busy=$(free_udp_port)
good=$(free_udp_port)
cat >"$WORK/sipedge.conf" <<CONF
http = { web_root = ""; };
auth = { trusted_peers = [ "127.0.0.0/8" ]; };
routing = {
  upstreams = [ "sip:127.0.0.1:$dead;transport=udp", "sip:127.0.0.1:$busy;transport=udp",
                "sip:127.0.0.1:$good" ];
  foreign_domains = true;
  unregistered_users = true;
  upstream_timeout = 800;
};
CONF
start_daemon
start_sipp busy -sf "$SCEN/uas_503.xml" -i 127.0.0.1 -p "$busy" -m 2 127.0.0.1:"$SIPEDGE_PORT"
start_sipp good -sf "$SCEN/uas.xml" -s pbx -i 127.0.0.1 -p "$good" -m 2 127.0.0.1:"$SIPEDGE_PORT"
run_sipp uac -sf "$SCEN/uac.xml" -s dave -key domain pbx.example.net -i 127.0.0.1 \
	-p "$(free_udp_port)" -m 1 127.0.0.1:"$SIPEDGE_PORT"
run_sipp uac_local -sf "$SCEN/uac.xml" -s nobody -key domain example.com -i 127.0.0.1 \
	-p "$(free_udp_port)" -m 1 127.0.0.1:"$SIPEDGE_PORT"
wait_sipp busy
wait_sipp good
expect_log "upstream sip:127\.0\.0\.1:$dead;transport=udp failed \(408, no response\), trying the next"
expect_log "upstream sip:127\.0\.0\.1:$busy;transport=udp failed \(503\), trying the next"
# The Request-URI stays (sipedge is an outbound proxy here, not a registrar).
expect_log '^INVITE sip:dave@pbx\.example\.net SIP/2\.0'
stop_daemon

# 3. Nobody home.
cat >"$WORK/sipedge.conf" <<CONF
http = { web_root = ""; };
auth = { trusted_peers = [ "127.0.0.0/8" ]; };
routing = {
  upstreams = [ "sip:127.0.0.1:$dead;transport=udp", "sip:127.0.0.1:$busy;transport=udp" ];
  upstream_timeout = 500;
};
CONF
start_daemon
run_sipp uac_503 -sf "$SCEN/uac_503.xml" -s dave -key domain pbx.example.net -i 127.0.0.1 \
	-p "$(free_udp_port)" -m 2 127.0.0.1:"$SIPEDGE_PORT"
expect_log 'failed \(408, no response\), none left'
# Without an upstream for unregistered users, our own domain still answers 404.
stop_daemon
echo PASS
