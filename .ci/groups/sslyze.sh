#!/usr/bin/env bash
# sslyze against our example server with nothing but a certificate and key
# (a SecureListener's defaults): Mozilla's "intermediate" profile is
# required, "modern" is reported.
#
#   bash .ci/groups/sslyze.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "sslyze: a SecureListener with its default configuration, Mozilla profiles"
need_pki
need_venv sslyze
server_out=$work/sslyze_server.out
: >"$server_out"
# The example server with nothing but a certificate and key: the defaults.
"$bin/server" --cert "$pki/server.pem" --key "$pki/server.key" >"$server_out" 2>&1 &
sslyze_server=$!
pids+=("$sslyze_server")
wait_for "$server_out" '^listening on'
port=$(grep -m1 '^listening on' "$server_out" | grep -oE '[0-9]+$')
# Our test CA is given as the trust store; the leaf lives 11 months (< 366 days).
if "$venv/bin/sslyze" --certinfo_ca_file "$pki/ca.pem" --mozilla_config=intermediate \
    "localhost:$port" >"$work/sslyze_intermediate.out" 2>&1; then
  grep -E 'Cipher Suites:|accepted the following|rejected all|Supported curves|Compliant' \
    "$work/sslyze_intermediate.out"
  pass "Mozilla intermediate: compliant"
else
  cat "$work/sslyze_intermediate.out"
  fail "not compliant with Mozilla's intermediate profile"
  group_result sslyze # fails: the group ends here
fi
echo "Mozilla modern (reported, not required: the default keeps TLS 1.2 for older clients):"
"$venv/bin/sslyze" --certinfo_ca_file "$pki/ca.pem" --mozilla_config=modern "localhost:$port" \
  >"$work/sslyze_modern.out" 2>&1 || true
sed -n '/COMPLIANCE AGAINST/,$p' "$work/sslyze_modern.out" | grep -E 'compliant|Compliant|\*' || true
kill "$sslyze_server" 2>/dev/null || true
group_result sslyze
