#!/usr/bin/env bash
# WebSocket interop over wss: our client (examples/ws_interop) against the
# Python websockets and Node ws servers (.ci/ws_peer.py, .ci/ws_peer.mjs),
# with permessage-deflate on, on with a 9-bit window, and off; each ok: line
# of ws_interop counts as a passed check.
#
#   bash .ci/groups/websocket.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "WebSocket interop: Python websockets and Node ws servers over wss"
need_pki
need_venv websockets
need_node
for peer in python node; do
  for compression in on on9 off; do
    out=$work/peer_${peer}_$compression.out
    : >"$out"
    if [ "$peer" = python ]; then
      "$venv/bin/python" .ci/ws_peer.py "$pki/server.pem" "$pki/server.key" "$compression" >"$out" 2>&1 &
    else
      (cd "$nodedir" && exec node ws_peer.mjs "$pki/server.pem" "$pki/server.key" "$compression") >"$out" 2>&1 &
    fi
    pid=$!
    pids+=("$pid")
    wait_for "$out" '^listening on'
    port=$(grep -m1 '^listening on' "$out" | grep -oE '[0-9]+$')
    result=$work/interop_${peer}_$compression.out
    timeout 120 "$bin/ws_interop" "wss://localhost:$port" "$pki/ca.pem" "$compression" >"$result" 2>&1 || true
    sed "s/^/[$peer, deflate $compression] /" "$result"
    ok=$(grep -c '^ok:' "$result" || true)
    bad=$(grep -vc '^ok:' "$result" || true)
    passed=$((passed + ok))
    failed=$((failed + bad))
    [ "$ok" -gt 0 ] || failed=$((failed + 1))
    kill "$pid" 2>/dev/null || true
  done
done
group_result "websocket interop"
