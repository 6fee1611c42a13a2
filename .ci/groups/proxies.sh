#!/usr/bin/env bash
# wss through proxies to the Python and Node peers: tinyproxy (HTTP CONNECT,
# with and without Basic auth), Dante (SOCKS5, names resolved by us or by
# the proxy) and Squid's https_port (TLS to the proxy, Basic auth, a
# corporate proxy's own CA); 407s named, passwords never shown.
#
#   bash .ci/groups/proxies.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "Proxies: tinyproxy (HTTP CONNECT, with and without Basic auth), Dante (SOCKS5) and Squid's https_port (TLS to the proxy, Basic auth), wss through each to the Python and Node peers"
if ! command -v tinyproxy >/dev/null 2>&1 || ! command -v danted >/dev/null 2>&1 \
    || ! command -v squid >/dev/null 2>&1 || [ ! -x /usr/lib/squid/basic_ncsa_auth ]; then
  apt_install tinyproxy dante-server squid-openssl
fi
tinyproxy -v
need_openssl
need_pki
need_venv websockets
need_node
# The proxies take no port 0: ask the system for a free one (free_port).
start_tinyproxy() { # NAME EXTRA-CONFIG-LINE; sets $px_port
  px_port=$(free_port)
  printf 'Port %s\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\nAllow 127.0.0.1\nLogLevel Info\n%s\n' \
    "$px_port" "$2" >"$work/$1.conf"
  tinyproxy -d -c "$work/$1.conf" >"$work/$1.log" 2>&1 &
  pids+=("$!")
  wait_for "$work/$1.log" 'listening on fd'
}
start_tinyproxy tinyproxy ''
tp_port=$px_port
start_tinyproxy tinyproxy_auth 'BasicAuth ann s3cret'
tpa_port=$px_port
dante_port=$(free_port)
cat >"$work/danted.conf" <<EOF
logoutput: stderr
internal: 127.0.0.1 port = $dante_port
external: 127.0.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
}
EOF
danted -f "$work/danted.conf" >"$work/danted.log" 2>&1 &
pids+=("$!")
wait_for "$work/danted.log" 'running'
# Squid as an https:// proxy: TLS on its https_port with the test PKI's
# localhost certificate, Basic auth (user ann) for every CONNECT. Squid
# drops to its own user, so its files live in a directory of their own
# that it owns. A second https_port on 127.0.0.2, a name the certificate
# lacks, checks that the proxy's name is verified.
sq=$work/squid
mkdir -p "$sq"
cp "$pki/server.pem" "$pki/server.key" "$sq/"
# A third https_port has a certificate from a CA of its own (a corporate
# proxy's), trusted with --proxy-ca (ConnectOptions::proxy_context) only.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=corporate proxy CA" -keyout "$sq/corp-ca.key" -out "$sq/corp-ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$sq/corp.key" -out "$sq/corp.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$sq/corp.ext"
openssl x509 -req -in "$sq/corp.csr" -CA "$sq/corp-ca.pem" -CAkey "$sq/corp-ca.key" \
  -CAcreateserial -days 2 -extfile "$sq/corp.ext" -out "$sq/corp.pem" >/dev/null 2>&1
printf 'ann:%s\n' "$(openssl passwd -apr1 s3cret)" >"$sq/passwd"
chmod 711 "$work"
chmod 700 "$sq"
chown -R proxy "$sq" 2>/dev/null || true
sq_port=$(free_port)
sq_port2=$(free_port)
sq_port3=$(free_port)
cat >"$sq/squid.conf" <<EOF
https_port 127.0.0.1:$sq_port tls-cert=$sq/server.pem tls-key=$sq/server.key
https_port 127.0.0.2:$sq_port2 tls-cert=$sq/server.pem tls-key=$sq/server.key
https_port 127.0.0.1:$sq_port3 tls-cert=$sq/corp.pem tls-key=$sq/corp.key
http_port 127.0.0.1:$(free_port)
auth_param basic program /usr/lib/squid/basic_ncsa_auth $sq/passwd
auth_param basic realm securenet-ci
acl authed proxy_auth REQUIRED
http_access allow localhost authed
http_access deny all
cache deny all
cache_mem 8 MB
access_log stdio:$sq/access.log
cache_log $sq/cache.log
pid_filename $sq/squid.pid
coredump_dir $sq
shutdown_lifetime 1 seconds
EOF
squid -N -f "$sq/squid.conf" >"$work/squid.out" 2>&1 &
pids+=("$!")
wait_for "$sq/cache.log" 'Accepting HTTPS Socket connections'
for peer in python node; do
  out=$work/proxy_peer_$peer.out
  : >"$out"
  if [ "$peer" = python ]; then
    "$venv/bin/python" .ci/ws_peer.py "$pki/server.pem" "$pki/server.key" on >"$out" 2>&1 &
  else
    (cd "$nodedir" && exec node ws_peer.mjs "$pki/server.pem" "$pki/server.key" on) >"$out" 2>&1 &
  fi
  pid=$!
  pids+=("$pid")
  wait_for "$out" '^listening on'
  port=$(grep -m1 '^listening on' "$out" | grep -oE '[0-9]+$')
  if [ "$peer" = python ]; then
    # The corporate proxy: its CA for the proxy alone, the PKI's for the
    # target; without --proxy-ca the proxy is refused, and its CA does not
    # vouch for the target.
    corp=$work/proxy_corp.out
    timeout 60 "$bin/client" localhost "$port" --ca "$pki/ca.pem" \
      --proxy "https://ann:s3cret@localhost:$sq_port3" --proxy-ca "$sq/corp-ca.pem" >"$corp" 2>&1 || true
    if grep -q '^verification: ok' "$corp" && grep -q 'issuer CN=' "$corp"; then
      pass "TLS through Squid with a certificate of its own CA (proxy_context), the target verified with its own trust"
    else
      fail "TLS through Squid with --proxy-ca"; cat "$corp"
    fi
    timeout 60 "$bin/client" localhost "$port" --ca "$pki/ca.pem" \
      --proxy "https://ann:s3cret@localhost:$sq_port3" >"$corp" 2>&1 || true
    if grep -q 'TLS handshake with the proxy failed' "$corp"; then
      pass "Squid's corporate certificate is refused without proxy_context"
    else
      fail "Squid's corporate certificate without --proxy-ca"; cat "$corp"
    fi
    # A target with a certificate of the proxy's CA (Squid's own https_port,
    # reached through itself) is refused: that CA is the proxy's alone.
    timeout 60 "$bin/client" localhost "$sq_port3" --ca "$pki/ca.pem" \
      --proxy "https://ann:s3cret@localhost:$sq_port3" --proxy-ca "$sq/corp-ca.pem" >"$corp" 2>&1 || true
    if grep -q 'does not lead to a trusted root' "$corp" && ! grep -q 'with the proxy' "$corp"; then
      pass "the proxy's CA in proxy_context does not vouch for a target"
    else
      fail "a target checked against the proxy's CA"; cat "$corp"
    fi
  fi
  for proxy in "http://127.0.0.1:$tp_port" "http://ann:s3cret@127.0.0.1:$tpa_port" \
      "socks5h://127.0.0.1:$dante_port" "socks5://127.0.0.1:$dante_port" \
      "https://ann:s3cret@localhost:$sq_port"; do
    shown=${proxy/ann:s3cret@/ann:***@}
    result=$work/proxy_${peer}_$(tr -c 'a-z0-9' '_' <<<"$shown").out
    timeout 120 "$bin/ws_interop" "wss://localhost:$port" "$pki/ca.pem" on "$proxy" >"$result" 2>&1 || true
    ok=$(grep -c '^ok:' "$result" || true)
    bad=$(grep -vc '^ok:' "$result" || true)
    if [ "$ok" -gt 0 ] && [ "$bad" -eq 0 ]; then
      pass "wss to the $peer peer through $shown: $ok checks"
    else
      fail "wss to the $peer peer through $shown"; cat "$result"
    fi
  done
  kill "$pid" 2>/dev/null || true
done
if grep -q 'CONNECT localhost:' "$work/tinyproxy.log" "$work/tinyproxy_auth.log" 2>/dev/null \
    || grep -qi 'connect.*localhost' "$work/tinyproxy.log"; then
  pass "tinyproxy was asked for the target by name (SNI and verification are for localhost)"
else
  fail "tinyproxy did not see CONNECT localhost"; tail -20 "$work/tinyproxy.log"
fi
noauth=$work/proxy_noauth.out
timeout 30 "$bin/ws_interop" "wss://localhost:1" "$pki/ca.pem" on "http://127.0.0.1:$tpa_port" >"$noauth" 2>&1 || true
if grep -q '407' "$noauth" && grep -q 'none were sent' "$noauth"; then
  pass "tinyproxy's 407 without credentials is named as such"
else
  fail "407 from tinyproxy"; cat "$noauth"
fi
wrong=$work/proxy_wrongauth.out
timeout 30 "$bin/ws_interop" "wss://localhost:1" "$pki/ca.pem" on "http://ann:wrong@127.0.0.1:$tpa_port" >"$wrong" 2>&1 || true
if grep -q 'refused the user and password' "$wrong" && ! grep -q 'wrong' "$wrong"; then
  pass "tinyproxy's 407 with wrong credentials is named, and the password is not shown"
else
  fail "407 with wrong credentials"; cat "$wrong"
fi
if grep -q 'TCP_TUNNEL/200 .* CONNECT localhost:.* ann ' "$sq/access.log"; then
  pass "Squid opened the tunnels inside its TLS for user ann, asked for the target by name"
else
  fail "Squid's access log shows no authenticated tunnel"; tail -20 "$sq/access.log" "$sq/cache.log"
fi
sq_noauth=$work/proxy_squid_noauth.out
timeout 30 "$bin/ws_interop" "wss://localhost:1" "$pki/ca.pem" on "https://localhost:$sq_port" >"$sq_noauth" 2>&1 || true
if grep -q '407' "$sq_noauth" && grep -q 'none were sent' "$sq_noauth"; then
  pass "Squid's 407 over its TLS without credentials is named as such"
else
  fail "407 from Squid"; cat "$sq_noauth"
fi
# The proxy's certificate is checked for the name the proxy is reached by:
# the PKI's certificate does not name 127.0.0.2.
sq_name=$work/proxy_squid_name.out
timeout 30 "$bin/client" localhost 1 --ca "$pki/ca.pem" --proxy "https://ann:s3cret@127.0.0.2:$sq_port2" >"$sq_name" 2>&1 || true
if grep -q 'TLS handshake with the proxy failed' "$sq_name" && ! grep -q 's3cret' "$sq_name"; then
  pass "Squid's certificate checked for the proxy's own name (refused for 127.0.0.2), no password shown"
else
  fail "Squid reached by a name its certificate lacks"; cat "$sq_name"
fi
group_result "proxy interop"
