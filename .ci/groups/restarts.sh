#!/usr/bin/env bash
# Restarts that drop nothing, and shutdown (issue 30): 20 client threads
# (examples/fleet_load) doing request/response on fresh, resumed TLS
# connections while servers (examples/fleet_server) are replaced, counting
# every failed request; each must be 0.
#
# 1. SO_REUSEPORT hand-over on one port, no balancer: start the new
#    process on the port, SIGTERM the old one (net.ipv4.tcp_migrate_req=1
#    moves the connections queued on the old socket to the new one).
# 2. An inherited descriptor (.ci/handover.py keeps the socket, as systemd
#    socket activation does, and starts each generation on it).
# 3. HAProxy in front of two servers sharing ticket keys, each replaced in
#    turn (SO_REUSEPORT) for 30 s; HAProxy's health checks (`check`,
#    `check-send-proxy`: a PROXY v2 LOCAL header) are counted by the
#    servers as health checks, none as failures; sessions still resume
#    after the restarts.
#
#   bash .ci/groups/restarts.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

need_pki
cert=(--cert "$pki/server.pem" --key "$pki/server.key")
openssl rand 48 >"$work/ticket.keys" 2>/dev/null || head -c 48 /dev/urandom >"$work/ticket.keys"

step "net.ipv4.tcp_migrate_req=1 for this group (the old socket's queue moves to the new one)"
# Put back as it was when the group ends, however it ends.
migrate_was=$(sysctl -n net.ipv4.tcp_migrate_req 2>/dev/null || true)
restore_migrate() {
  if [ -n "$migrate_was" ]; then sysctl -qw "net.ipv4.tcp_migrate_req=$migrate_was" 2>/dev/null || true; fi
  cleanup
}
trap restore_migrate EXIT
if sysctl -qw net.ipv4.tcp_migrate_req=1 2>/dev/null; then
  echo "set (was $migrate_was; put back at the end)"
else
  echo "note: cannot set net.ipv4.tcp_migrate_req (not root, or a kernel before 5.14): queued connections may be reset"
fi

# Starts a fleet_server (NAME, then its options) in the background; waits
# for its "listening on" line.
start_server() {
  local name=$1
  shift
  # timeout forwards our SIGTERM to the server, and bounds a hung one.
  timeout 300 "$bin/fleet_server" "${cert[@]}" --name "$name" "$@" >"$work/$name.out" 2>&1 &
  pids+=("$!")
  eval "pid_$name=$!"
  wait_for "$work/$name.out" '^listening on'
}

# SIGTERMs server NAME and waits for it to exit; checks its last lines:
# no failed connection, and a shutdown line.
retire() {
  local name=$1 pid
  pid=$(eval "echo \$pid_$name")
  kill -TERM "$pid"
  wait "$pid" || fail "$name exited with an error"
  if grep -q '^failed connections: 0$' "$work/$name.out" && grep -q '^shutdown: ' "$work/$name.out"; then
    pass "$name shut down: $(grep '^shutdown: ' "$work/$name.out"); $(grep '^served: ' "$work/$name.out")"
  else
    fail "$name's shutdown"; cat "$work/$name.out"
  fi
}

# Starts fleet_load (OUT, then its options) in the background, bounded.
start_load() {
  local out=$1
  shift
  timeout 300 "$bin/fleet_load" --ca "$pki/ca.pem" --threads 20 "$@" >"$out" 2>&1 &
  load=$!
  pids+=("$load")
}

# Checks the load's count of failed requests (its exit status: it also
# fails with no request at all), that each server NAME... answered, and
# that sessions resumed in its last seconds.
check_load() {
  local what=$1 out=$2
  shift 2
  if wait "$load"; then
    pass "$what: $(grep '^requests: ' "$out")"
  else
    fail "$what"; cat "$out"
  fi
  for name in "$@"; do
    if grep -q "^answered by $name: " "$out"; then
      pass "$(grep "^answered by $name: " "$out") requests"
    else
      fail "$name answered no request"; cat "$out"
    fi
  done
  local late
  late=$(grep -E '^last [0-9]+ s: ' "$out" || true)
  if [[ "$late" =~ ([0-9]+)\ resumed ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]; then
    pass "sessions resume after the restarts ($late)"
  else
    fail "no resumption after the restarts ($late)"
  fi
}

step "SO_REUSEPORT hand-over on one port, no balancer: 20 threads for 12 s, two restarts"
port=$(free_port)
start_server r1 --port "$port" --shared --ticket-keys "$work/ticket.keys"
start_load "$work/load_reuseport.out" --port "$port" --seconds 12 --late 3
sleep 3
start_server r2 --port "$port" --shared --ticket-keys "$work/ticket.keys"
retire r1
sleep 3
start_server r3 --port "$port" --shared --ticket-keys "$work/ticket.keys"
retire r2
check_load "no failed request across two SO_REUSEPORT hand-overs" "$work/load_reuseport.out" r1 r2 r3
retire r3

step "An inherited descriptor (socket activation): 20 threads for 12 s, three generations on one socket"
port=$(free_port)
timeout 300 python3 .ci/handover.py "$port" 3 5 "$work" -- \
  "$bin/fleet_server" "${cert[@]}" --systemd --name "gen{gen}" --ticket-keys "$work/ticket.keys" \
  >"$work/handover.out" 2>&1 &
supervisor=$!
pids+=("$supervisor")
wait_for "$work/handover.out" '^generation 1 listening'
start_load "$work/load_handover.out" --port "$port" --seconds 13 --late 2
check_load "no failed request across two hand-overs of an inherited socket" "$work/load_handover.out" gen1 gen2 gen3
if wait "$supervisor"; then
  pass "every generation exited cleanly: $(grep -c 'exited with 0' "$work/handover.out") of 3"
else
  fail "a generation"; cat "$work/handover.out" "$work"/gen-*.out
fi
for g in 1 2 3; do
  if grep -q '^failed connections: 0$' "$work/gen-$g.out"; then
    pass "generation $g: $(grep '^shutdown: ' "$work/gen-$g.out")"
  else
    fail "generation $g"; cat "$work/gen-$g.out"
  fi
done

step "HAProxy rolling restart: two servers replaced in turn under 20 threads for 30 s"
if ! command -v haproxy >/dev/null 2>&1; then
  apt_install haproxy
fi
port_a=$(free_port)
port_b=$(free_port)
fe=$(free_port)
ha=(--proxy-protocol v2 --shared --ticket-keys "$work/ticket.keys")
start_server a1 --port "$port_a" "${ha[@]}"
start_server b1 --port "$port_b" "${ha[@]}"
cat >"$work/haproxy_restarts.cfg" <<EOF
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$fe
  default_backend servers
backend servers
  balance roundrobin
  server a 127.0.0.1:$port_a send-proxy-v2 check check-send-proxy inter 500ms
  server b 127.0.0.1:$port_b send-proxy-v2 check check-send-proxy inter 500ms
EOF
haproxy -db -f "$work/haproxy_restarts.cfg" >"$work/haproxy_restarts.log" 2>&1 &
pids+=("$!")
wait_listening "$fe"
start_load "$work/load_haproxy.out" --port "$fe" --seconds 30 --late 5
sleep 7
start_server a2 --port "$port_a" "${ha[@]}"
retire a1
sleep 7
start_server b2 --port "$port_b" "${ha[@]}"
retire b1
check_load "no failed request through HAProxy while both servers were replaced" "$work/load_haproxy.out" a1 a2 b1 b2
for name in a1 b1; do
  checks=$(grep -oE '^health checks: [0-9]+' "$work/$name.out" | grep -oE '[0-9]+$' || echo 0)
  if [ "$checks" -gt 0 ]; then
    pass "$name counted HAProxy's $checks health checks as health checks, and no failed connection"
  else
    fail "$name saw no health check"; cat "$work/$name.out"
  fi
done
retire a2
retire b2

group_result restarts
