#!/usr/bin/env bash
# tshark captures a session between our client and server on lo and
# decrypts it with our client's key_log lines, and cannot without them.
#
#   bash .ci/groups/tshark.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "tshark decrypts a captured session with our key_log lines"
if ! command -v tshark >/dev/null 2>&1; then
  apt_install tshark
fi
tshark --version | sed -n 1p
need_pki
server_out=$work/tshark_server.out
: >"$server_out"
"$bin/server" --cert "$pki/server.pem" --key "$pki/server.key" --max 1 >"$server_out" 2>&1 &
pids+=("$!")
wait_for "$server_out" '^listening on'
port=$(grep -m1 '^listening on' "$server_out" | grep -oE '[0-9]+$')
capture_log=$work/tshark_capture.log
: >"$capture_log"
tshark -i lo -f "tcp port $port" -w "$work/session.pcapng" >"$capture_log" 2>&1 &
tshark_pid=$!
pids+=("$tshark_pid")
wait_for "$capture_log" 'Capture started|Capturing on'
secret="securenet-secret-$RANDOM$RANDOM"
timeout 30 "$bin/client" localhost "$port" --ca "$pki/ca.pem" --keylog "$work/tshark.keys" \
  --send "$secret" >"$work/tshark_client.out" 2>&1
grep -q "received: $secret" "$work/tshark_client.out"
# Let tshark write the last packets, then stop it.
for _ in $(seq 50); do
  [ "$(tshark -r "$work/session.pcapng" -Y 'tcp.flags.fin == 1' 2>/dev/null | wc -l)" -ge 2 ] && break
  sleep 0.1
done
kill -INT "$tshark_pid" 2>/dev/null || true
wait "$tshark_pid" 2>/dev/null || true
decrypted=$(tshark -r "$work/session.pcapng" -o "tls.keylog_file:$work/tshark.keys" -q \
  -z follow,tls,ascii,0 2>/dev/null)
without=$(tshark -r "$work/session.pcapng" -q -z follow,tls,ascii,0 2>/dev/null)
echo "captured $(tshark -r "$work/session.pcapng" 2>/dev/null | wc -l) packets, $(wc -l <"$work/tshark.keys") key_log lines"
if grep -q "$secret" <<<"$decrypted" && ! grep -q "$secret" <<<"$without"; then
  pass "tshark decrypted the application data with our key_log (and not without it)"
else
  echo "$decrypted"
  fail "tshark did not decrypt the session with our key_log"
fi
group_result tshark
