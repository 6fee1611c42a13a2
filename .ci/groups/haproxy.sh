#!/usr/bin/env bash
# HAProxy in TCP mode with send-proxy and send-proxy-v2 in front of two of
# our servers each: they report our client's own address, round-robin reaches
# both, and a session made on one resumes on the other (shared ticket keys).
#
#   bash .ci/groups/haproxy.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "HAProxy in TCP mode (send-proxy, send-proxy-v2) in front of two securenet servers each, sharing ticket keys"
if ! command -v haproxy >/dev/null 2>&1; then
  apt_install haproxy
fi
# sed reads to the end: `head` would close the pipe early, and under
# pipefail the writer's SIGPIPE (141) would end the run.
haproxy -v | sed -n 1p
need_openssl
need_pki
declare -A ha_port
openssl rand 48 >"$work/ticket.keys"
for name in v1a v1b v2a v2b; do
  out=$work/ha_server_$name.out
  : >"$out"
  "$bin/server" --cert "$pki/server.pem" --key "$pki/server.key" --proxy-protocol "${name:0:2}" \
    --ticket-keys "$work/ticket.keys" --once --max 3 >"$out" 2>&1 &
  pids+=("$!")
  wait_for "$out" '^listening on'
  ha_port[$name]=$(grep -m1 '^listening on' "$out" | grep -oE '[0-9]+$')
done
fe_v1=$(free_port)
fe_v2=$(free_port)
cat >"$work/haproxy.cfg" <<EOF
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe_v1
  bind 127.0.0.1:$fe_v1
  default_backend be_v1
backend be_v1
  balance roundrobin
  server a 127.0.0.1:${ha_port[v1a]} send-proxy
  server b 127.0.0.1:${ha_port[v1b]} send-proxy
frontend fe_v2
  bind 127.0.0.1:$fe_v2
  default_backend be_v2
backend be_v2
  balance roundrobin
  server a 127.0.0.1:${ha_port[v2a]} send-proxy-v2
  server b 127.0.0.1:${ha_port[v2b]} send-proxy-v2
EOF
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=("$!")
wait_listening "$fe_v1"
wait_listening "$fe_v2"
for version in v1 v2; do
  fe=$([ "$version" = v1 ] && echo "$fe_v1" || echo "$fe_v2")
  for i in 1 2; do
    out=$work/ha_client_${version}_$i.out
    timeout 30 "$bin/client" localhost "$fe" --ca "$pki/ca.pem" --send "hello-$version-$i" >"$out" 2>&1 || true
    local_addr=$(grep -m1 '^local address: ' "$out" | sed 's/^local address: //')
    if grep -q "^received: hello-$version-$i" "$out" && [ -n "$local_addr" ] \
        && grep -qF "$local_addr: TLSv1" "$work/ha_server_${version}a.out" "$work/ha_server_${version}b.out"; then
      pass "through HAProxy send-proxy$([ "$version" = v2 ] && echo -v2): the server reports our client's own address ($local_addr)"
    else
      fail "through HAProxy ($version, connection $i)"; cat "$out" "$work/ha_server_${version}"*.out "$work/haproxy.log"
    fi
  done
  if grep -q ': TLSv1' "$work/ha_server_${version}a.out" && grep -q ': TLSv1' "$work/ha_server_${version}b.out"; then
    pass "HAProxy round-robin ($version) reached both servers"
  else
    fail "round-robin ($version)"; cat "$work/ha_server_${version}"*.out
  fi
  # Round-robin sends the second connection to the other server: it
  # resumes the session the first made, with the shared ticket keys.
  again=$work/ha_client_${version}_again.out
  timeout 30 "$bin/client" localhost "$fe" --ca "$pki/ca.pem" --send "again-$version" --again \
    >"$again" 2>&1 || true
  if grep -q '^resumed: false' "$again" && grep -q '^again: resumed true' "$again"; then
    pass "a session made on one server resumes on the other through HAProxy ($version, shared ticket keys)"
  else
    fail "resumption across servers ($version)"; cat "$again"
  fi
done
group_result "haproxy interop"
