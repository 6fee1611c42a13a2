#!/usr/bin/env bash
# ACME against Pebble, Let's Encrypt's test CA (Debian's pebble 2.4, with
# pebble-challtestsrv as its DNS, answering 127.0.0.1 for every name):
# examples/acme_server starts with no certificate, gets one for two names
# through TLS-ALPN-01 answered by the listener itself, serves it to
# openssl s_client (verified against Pebble's root); a restart reuses the
# cached certificate without a new order; two servers behind HAProxy (TCP
# mode) share one cache directory (one orders, Pebble validates through
# HAProxy, both serve the result); a CA that requires External Account
# Binding refuses an account without it and gives one with it; a
# 30-second certificate is renewed. Pebble rejects 20 % of good nonces
# (its default is 5 %), so the badNonce retry runs on every run.
#
#   bash .ci/groups/acme.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "ACME (RFC 8555, TLS-ALPN-01) against Pebble: issue, serve, restart, a fleet behind HAProxy, EAB, renewal"
command -v pebble >/dev/null 2>&1 || apt_install pebble
command -v haproxy >/dev/null 2>&1 || apt_install haproxy
command -v curl >/dev/null 2>&1 || apt_install curl
need_openssl
cargo build --quiet --features acme --example acme_server
server=${CARGO_TARGET_DIR:-target}/debug/examples/acme_server
dpkg-query -W -f='pebble ${Version}\n' pebble 2>/dev/null || true

# Pebble's own HTTPS (its API and management interface) needs a
# certificate for 127.0.0.1: made here, with its CA, which the ACME client
# is told to trust (AcmeOptions::ca_certificates).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=wfe-ca \
  -keyout "$work/wfe-ca.key" -out "$work/wfe-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$work/wfe.key" -out "$work/wfe.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$work/wfe.ext"
openssl x509 -req -in "$work/wfe.csr" -CA "$work/wfe-ca.pem" -CAkey "$work/wfe-ca.key" \
  -CAcreateserial -days 2 -extfile "$work/wfe.ext" -out "$work/wfe.pem" 2>/dev/null

# The port Pebble validates TLS-ALPN-01 on (its `tlsPort`): what port 443
# is on the internet. A server, or HAProxy, listens there.
tls_port=$(free_port)
dns_port=$(free_port)
"$(command -v pebble-challtestsrv)" -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
  -dns01 "127.0.0.1:$dns_port" -http01 "" -https01 "" -tlsalpn01 "" \
  -management "127.0.0.1:$(free_port)" >"$work/challtestsrv.log" 2>&1 &
pids+=("$!")

# start_pebble NAME EXTRA_JSON: a Pebble on free ports; sets dir_NAME
# (directory URL), root_NAME (its root's PEM file), log_NAME.
start_pebble() {
  local name=$1 extra=$2 api mgmt
  api=$(free_port)
  mgmt=$(free_port)
  cat >"$work/pebble-$name.json" <<EOF
{"pebble": {"listenAddress": "127.0.0.1:$api", "managementListenAddress": "127.0.0.1:$mgmt",
  "certificate": "$work/wfe.pem", "privateKey": "$work/wfe.key",
  "httpPort": $(free_port), "tlsPort": $tls_port, "ocspResponderURL": "" $extra}}
EOF
  PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=20 \
    pebble -config "$work/pebble-$name.json" -dnsserver "127.0.0.1:$dns_port" >"$work/pebble-$name.log" 2>&1 &
  pids+=("$!")
  wait_for "$work/pebble-$name.log" 'Listening on'
  printf -v "dir_$name" '%s' "https://127.0.0.1:$api/dir"
  printf -v "log_$name" '%s' "$work/pebble-$name.log"
  curl -sf --cacert "$work/wfe-ca.pem" "https://127.0.0.1:$mgmt/roots/0" >"$work/root-$name.pem"
  printf -v "root_$name" '%s' "$work/root-$name.pem"
}
start_pebble main ""
# Pebble's example EAB key, and certificates that live 30 seconds.
eab_kid=kid-1
eab_key=zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W
start_pebble eab ", \"externalAccountBindingRequired\": true, \"externalAccountMACKeys\": {\"$eab_kid\": \"$eab_key\"}, \"certificateValidityPeriod\": 30"
# shellcheck disable=SC2154 # set by start_pebble through printf -v
dir_main=$dir_main root_main=$root_main log_main=$log_main dir_eab=$dir_eab root_eab=$root_eab

# serve NAME CACHE DIRECTORY PORT [FLAGS...]: an acme_server in the
# background, its output in $work/NAME.out; sets pid_NAME.
serve() {
  local name=$1 cache=$2 directory=$3 port=$4
  shift 4
  "$server" --domain a.test --domain b.test --cache "$cache" --directory "$directory" \
    --ca-file "$work/wfe-ca.pem" --accept-terms --contact ci@example.com --addr 127.0.0.1 \
    --port "$port" --name "$name" --log "$@" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=("$!")
  printf -v "pid_$name" '%s' "$!"
  wait_for "$work/$name.out" '^listening on'
}

# wait_lines FILE PATTERN N SECONDS: until FILE has N lines matching.
wait_lines() {
  local file=$1 pattern=$2 n=$3 secs=$4
  for _ in $(seq $((secs * 10))); do
    [ "$(grep -cE "$pattern" "$file" 2>/dev/null || true)" -ge "$n" ] && return 0
    sleep 0.1
  done
  return 1
}

# verify PORT NAME ROOT: openssl s_client verifies NAME's certificate
# against ROOT; prints the leaf's serial on success.
verify() {
  local out
  out=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$2" -CAfile "$3" \
    -verify_return_error -verify_hostname "$2" 2>&1) || true
  if grep -q 'Verify return code: 0 (ok)' <<<"$out"; then
    openssl x509 -noout -serial <<<"$out" 2>/dev/null
    return 0
  fi
  echo "$out" | tail -5 >&2
  return 1
}

# get PORT: one HTTPS request (certificate not checked: the answer is the point).
get() {
  printf 'GET / HTTP/1.1\r\nHost: a.test\r\n\r\n' |
    timeout 10 openssl s_client -quiet -connect "127.0.0.1:$1" -servername a.test 2>/dev/null | tail -1
}

orders() { grep -c 'Added order' "$1" || true; }

# 1. No certificate at start: one is ordered for both names and served.
serve one "$work/cache" "$dir_main" "$tls_port"
if wait_lines "$work/one.out" '^certificate for \["a.test", "b.test"\]' 1 60; then
  pass "a server that starts with no certificate obtains one for a.test and b.test (TLS-ALPN-01 answered by the listener)"
else
  fail "no certificate obtained"; cat "$work/one.out" "$work/one.log"; tail -30 "$log_main"
fi
for name in a.test b.test; do
  if serial=$(verify "$tls_port" "$name" "$root_main"); then
    pass "openssl s_client verifies $name against Pebble's root ($serial)"
  else
    fail "openssl s_client did not verify $name"
  fi
done
if [ "$(get "$tls_port")" = "hello from one" ]; then
  pass "the server answers HTTPS with the ACME certificate"
else
  fail "no HTTPS answer"
fi
modes=$(stat -c '%a %n' "$work/cache"/*.pem "$work/cache"/account-*.key | awk '{print $1}' | sort -u | tr '\n' ' ')
if [ "$modes" = "600 " ] && [ "$(stat -c %a "$work/cache")" = 700 ]; then
  pass "the cache's key files are readable by their owner only (600, directory 700)"
else
  fail "cache permissions: $modes"; ls -la "$work/cache"
fi

# 2. A restart serves the cached certificate and orders nothing.
before=$(orders "$log_main")
kill "$pid_one"; wait "$pid_one" 2>/dev/null || true
serve two "$work/cache" "$dir_main" "$tls_port"
wait_lines "$work/two.out" '^certificate for' 1 10 || true
if serial=$(verify "$tls_port" a.test "$root_main") && wait_lines "$work/two.out" '^certificate for' 1 1 \
    && [ "$(orders "$log_main")" = "$before" ]; then
  pass "a restart serves the cached certificate from its first connection, with no new order ($before orders in Pebble's log before and after)"
else
  fail "restart: orders $before -> $(orders "$log_main")"; cat "$work/two.out"
fi
kill "$pid_two"; wait "$pid_two" 2>/dev/null || true

# 3. A fleet: two servers behind HAProxy (TCP mode, on the validation
# port) share a new cache directory. One orders; Pebble's validations go
# through HAProxy to either; both serve the certificate.
before=$(orders "$log_main")
port_a=$(free_port)
port_b=$(free_port)
cat >"$work/haproxy.cfg" <<EOF
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$tls_port
  default_backend be
backend be
  balance roundrobin
  server a 127.0.0.1:$port_a
  server b 127.0.0.1:$port_b
EOF
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=("$!")
wait_listening "$tls_port"
serve fleet_a "$work/shared" "$dir_main" "$port_a"
serve fleet_b "$work/shared" "$dir_main" "$port_b"
if wait_lines "$work/fleet_a.out" '^certificate for' 1 60 && wait_lines "$work/fleet_b.out" '^certificate for' 1 30; then
  pass "two servers sharing a cache directory both serve the certificate"
else
  fail "fleet: not both served"; cat "$work"/fleet_*.out "$work"/fleet_*.log
fi
if [ "$(orders "$log_main")" = $((before + 1)) ]; then
  pass "the fleet made one order between them (the cache directory's lock)"
else
  fail "fleet orders: $before -> $(orders "$log_main")"
fi
# Round-robin: two verifications reach one server each, then two requests.
answers=""
for _ in 1 2; do
  verify "$tls_port" b.test "$root_main" >/dev/null && answers="$answers verified"
done
for _ in 1 2; do
  answers="$answers $(get "$tls_port" | awk '{print $3}')"
done
if [ "$(grep -o verified <<<"$answers" | wc -l)" = 2 ] && grep -q fleet_a <<<"$answers" && grep -q fleet_b <<<"$answers"; then
  pass "through HAProxy, both servers answer with the verified certificate (${answers# })"
else
  fail "through HAProxy: answers '$answers'"; cat "$work/haproxy.log"
fi
validated=$(grep -ch 'TLS-ALPN-01 validation' "$work/fleet_a.log" "$work/fleet_b.log" | paste -sd' ')
echo "validations answered by fleet_a and fleet_b: $validated"

# 4. External Account Binding: refused without, given with.
serve noeab "$work/cache-noeab" "$dir_eab" "$(free_port)"
if wait_lines "$work/noeab.out" '^acme failed: .*External Account Binding' 1 30; then
  pass "a CA that requires EAB: an account without it fails with a message that says what to set"
else
  fail "no EAB error"; cat "$work/noeab.out" "$work/noeab.log"
fi
kill "$pid_noeab"; wait "$pid_noeab" 2>/dev/null || true
kill "$pid_fleet_a" "$pid_fleet_b" 2>/dev/null || true
wait "$pid_fleet_a" "$pid_fleet_b" 2>/dev/null || true
# The EAB Pebble validates on the same port: a server of its own there.
for p in "${pids[@]}"; do
  if ps -o comm= -p "$p" 2>/dev/null | grep -q haproxy; then kill "$p"; wait "$p" 2>/dev/null || true; fi
done
serve eab "$work/cache-eab" "$dir_eab" "$tls_port" --eab "$eab_kid:$eab_key"
if wait_lines "$work/eab.out" '^certificate for' 1 60; then
  pass "with External Account Binding (Pebble's example key) the account is made and a certificate issued"
else
  fail "EAB: no certificate"; cat "$work/eab.out" "$work/eab.log"
fi
first=$(verify "$tls_port" a.test "$root_eab" || true)

# 5. Renewal: the 30-second certificate is renewed two thirds in.
if wait_lines "$work/eab.out" '^certificate for' 2 60 && second=$(verify "$tls_port" a.test "$root_eab") \
    && [ -n "$first" ] && [ "$first" != "$second" ]; then
  pass "a 30-second certificate is renewed before it expires and the new one is served ($first -> $second)"
else
  fail "renewal"; cat "$work/eab.out" "$work/eab.log"
fi

retries=$(cat "$work"/*.log | grep -c 'refused the nonce' || true)
if [ "$retries" -gt 0 ]; then
  pass "badNonce answers were retried with a fresh nonce ($retries times; Pebble rejects 20 % of nonces)"
else
  fail "no badNonce retry seen"
fi
failures=$(cat "$work"/one.out "$work"/two.out "$work"/fleet_*.out "$work"/eab.out | grep -c '^acme failed' || true)
if [ "$failures" -eq 0 ]; then
  pass "no failure reported by the servers that had a CA to talk to"
else
  fail "$failures failures reported"; grep -h '^acme failed' "$work"/*.out
fi
group_result "acme (pebble)"
