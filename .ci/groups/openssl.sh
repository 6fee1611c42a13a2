#!/usr/bin/env bash
# Interop with the openssl CLI, a peer nobody here wrote: our client against
# s_server and our server against s_client (both TLS versions, ALPN, client
# certificates, key_log, KeyUpdate), keys, bundles, certificates, OCSP
# responses and CRLs made by openssl, the alerts it logs, socket activation.
#
#   bash .ci/groups/openssl.sh
set -euo pipefail
# shellcheck source=.ci/lib.sh
. "$(dirname "$0")/../lib.sh"

step "interop with the openssl CLI"
need_openssl
openssl version
need_pki

# Our client against openssl s_server (ALPN, client certificate required),
# with our key_log lines compared to s_server -keylogfile's.
for version in tls1_2 tls1_3; do
  out=$work/s_server_$version.out
  : >"$out"
  openssl s_server -accept 0 -naccept 1 -"$version" \
    -cert "$pki/server.pem" -key "$pki/server.key" \
    -Verify 1 -CAfile "$pki/ca.pem" -alpn h2,http/1.1 \
    -keylogfile "$work/server_$version.keys" -rev >"$out" 2>&1 </dev/null &
  pids+=("$!")
  wait_for "$out" '^ACCEPT'
  port=$(grep -m1 '^ACCEPT' "$out" | grep -oE '[0-9]+$')
  client_out=$work/client_$version.out
  if timeout 30 "$bin/client" localhost "$port" --ca "$pki/ca.pem" --alpn h2 \
      --cert "$pki/client.pem" --key "$pki/client.key" \
      --keylog "$work/client_$version.keys" --send $'hello\n' >"$client_out" 2>&1; then
    want_version=$([ "$version" = tls1_2 ] && echo TLSv1.2 || echo TLSv1.3)
    if grep -q "protocol: $want_version" "$client_out" && grep -q '^alpn: h2$' "$client_out" \
        && grep -q '^received: olleh' "$client_out"; then
      pass "our client -> openssl s_server -$version, ALPN h2, client certificate"
    else
      fail "our client -> openssl s_server -$version: unexpected output"; cat "$client_out"
    fi
  else
    fail "our client -> openssl s_server -$version"; cat "$client_out"; cat "$out"
  fi
  wait "${pids[-1]}" 2>/dev/null || true
  if diff <(grep -v '^#' "$work/server_$version.keys" | sort) <(sort "$work/client_$version.keys") >/dev/null; then
    pass "key_log lines equal s_server -keylogfile's ($version, $(wc -l <"$work/client_$version.keys") lines)"
  else
    fail "key_log differs from s_server -keylogfile ($version)"
    diff <(grep -v '^#' "$work/server_$version.keys" | sort) <(sort "$work/client_$version.keys") || true
  fi
done

# A KeyUpdate from openssl s_server (typing K asks for ours back) reaches our
# split client's read half, which owes a KeyUpdate of its own: it must reach
# the server before what our write half sends next.
fifo=$work/keyupdate.fifo
mkfifo "$fifo"
ku_out=$work/keyupdate_server.out
: >"$ku_out"
openssl s_server -msg -accept 0 -naccept 1 -tls1_3 -cert "$pki/server.pem" \
  -key "$pki/server.key" <"$fifo" >"$ku_out" 2>&1 &
pids+=("$!")
exec 3>"$fifo"
wait_for "$ku_out" '^ACCEPT'
port=$(grep -m1 '^ACCEPT' "$ku_out" | grep -oE '[0-9]+$')
ku_client=$work/keyupdate_client.out
timeout 60 "$bin/split_client" localhost "$port" --ca "$pki/ca.pem" >"$ku_client" 2>&1 &
ku_pid=$!
if wait_for "$ku_out" '^before$'; then
  printf 'K\n' >&3
  wait_for "$ku_out" '>>> .*KeyUpdate' || true
  printf 'update-now\n' >&3
  wait_for "$ku_out" '^after$' || true
fi
wait "$ku_pid" 2>/dev/null || true
exec 3>&-
if grep -q '^received: update-now' "$ku_client" && grep -q '^after$' "$ku_out" \
    && [ "$(grep -c 'KeyUpdate' "$ku_out")" -ge 2 ] \
    && awk '/<<< .*KeyUpdate/ {k = 1} /^after$/ {exit !k}' "$ku_out"; then
  pass "openssl s_server KeyUpdate (update requested) -> our split client answers it before its next write"
else
  fail "KeyUpdate with our split client"; grep -E 'KeyUpdate|^before|^after|ERROR' "$ku_out"; cat "$ku_client"
fi

# openssl s_client against our server, which requires a client certificate.
server_out=$work/server.out
: >"$server_out"
"$bin/server" --cert "$pki/server.pem" --key "$pki/server.key" --client-ca "$pki/ca.pem" \
  --require-client-cert --alpn h2,http/1.1 --once --max 3 >"$server_out" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_for "$server_out" '^listening on'
port=$(grep -m1 '^listening on' "$server_out" | grep -oE '[0-9]+$')
for version in tls1_2 tls1_3; do
  s_client_out=$work/s_client_$version.out
  printf 'ping-%s\n' "$version" | timeout 30 openssl s_client -connect "127.0.0.1:$port" \
    -"$version" -servername localhost -CAfile "$pki/ca.pem" -verify_return_error \
    -cert "$pki/client.pem" -key "$pki/client.key" -alpn h2 -ign_eof >"$s_client_out" 2>&1 || true
  if grep -q "ping-$version" "$s_client_out" && grep -q 'Verify return code: 0 (ok)' "$s_client_out" \
      && grep -q 'ALPN protocol: h2' "$s_client_out"; then
    pass "openssl s_client -$version -> our server (client certificate required)"
  else
    fail "openssl s_client -$version -> our server"; cat "$s_client_out"; cat "$server_out"
  fi
done
# Without a client certificate the handshake must fail, and our server says why.
printf 'nocert\n' | timeout 30 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
  -CAfile "$pki/ca.pem" -ign_eof >"$work/s_client_nocert.out" 2>&1 || true
wait "$server_pid" 2>/dev/null || true
if ! grep -q 'nocert' "$work/s_client_nocert.out" && grep -q 'sent no certificate' "$server_out"; then
  pass "openssl s_client without a client certificate is refused, and the server says why"
else
  fail "a client without a certificate was not refused clearly"; cat "$work/s_client_nocert.out"; cat "$server_out"
fi
if grep -q 'client-certificate=CN=securenet test client' "$server_out"; then
  pass "our server reports the client certificate's subject"
else
  fail "our server did not report the client certificate"; cat "$server_out"
fi

# Keys and bundles made by openssl: an encrypted PKCS#8 key (PBES2) and a
# PKCS#12 bundle, loaded by our server, checked with s_client.
openssl pkcs8 -topk8 -in "$pki/server.key" -out "$work/server.enc.pem" -passout pass:s3cret
openssl pkcs12 -export -in "$pki/server.pem" -inkey "$pki/server.key" -certfile "$pki/ca.pem" \
  -passout pass:s3cret -out "$work/server.p12"
for kind in encrypted-pkcs8 pkcs12; do
  out=$work/server_$kind.out
  : >"$out"
  if [ "$kind" = pkcs12 ]; then
    args=(--pfx "$work/server.p12" --password s3cret)
  else
    args=(--cert "$pki/server.pem" --key "$work/server.enc.pem" --password s3cret)
  fi
  "$bin/server" "${args[@]}" --once --max 1 >"$out" 2>&1 &
  pid=$!
  pids+=("$pid")
  if wait_for "$out" '^listening on'; then
    port=$(grep -m1 '^listening on' "$out" | grep -oE '[0-9]+$')
    printf 'hello-%s\n' "$kind" | timeout 30 openssl s_client -connect "127.0.0.1:$port" \
      -servername localhost -CAfile "$pki/ca.pem" -verify_return_error -ign_eof \
      >"$work/s_client_$kind.out" 2>&1 || true
    if grep -q "hello-$kind" "$work/s_client_$kind.out"; then
      pass "our server with an openssl-made $kind key (password)"
    else
      fail "our server with an openssl-made $kind key"; cat "$work/s_client_$kind.out"; cat "$out"
    fi
  else
    fail "our server did not start with an openssl-made $kind key"; cat "$out"
  fi
  wait "$pid" 2>/dev/null || true
done

# Certificates made by the openssl CLI. A self-signed `req -x509`
# certificate (CA:TRUE) is trusted as itself on both sides; the alerts our
# verifiers send are the ones openssl logs; an RSA-1024 root is named weak;
# pins match openssl's SPKI hash; --system reads SSL_CERT_FILE.
ossl=$work/ossl
mkdir -p "$ossl/db"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$ossl/self.key" -out "$ossl/self.pem" -days 30 2>/dev/null
for who in selfclient strangerclient; do
  openssl req -x509 "${ec[@]}" -subj "/CN=$who" -keyout "$ossl/$who.key" -out "$ossl/$who.pem" \
    -days 30 2>/dev/null
done
# A CA whose certificates can have any validity (openssl ca -startdate/-enddate).
openssl req -x509 "${ec[@]}" -subj /CN=ci-ca -keyout "$ossl/ca.key" -out "$ossl/ca.pem" -days 30 2>/dev/null
: >"$ossl/db/index.txt"
echo 01 >"$ossl/db/serial"
cat >"$ossl/ca.cnf" <<EOF
[ca]
default_ca = ci
[ci]
database = $ossl/db/index.txt
new_certs_dir = $ossl/db
serial = $ossl/db/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
crlnumber = $ossl/db/crlnumber
default_crl_days = 2
[any]
commonName = supplied
EOF
echo 01 >"$ossl/db/crlnumber"
issue_expired() { # NAME EXTENDED-KEY-USAGE SUBJECT-ALT-NAME
  openssl req -new "${ec[@]}" -subj "/CN=$1" -addext "subjectAltName=$3" \
    -addext "extendedKeyUsage=$2" -keyout "$ossl/$1.key" -out "$ossl/$1.csr" 2>/dev/null
  openssl ca -batch -notext -config "$ossl/ca.cnf" -cert "$ossl/ca.pem" -keyfile "$ossl/ca.key" \
    -in "$ossl/$1.csr" -out "$ossl/$1.pem" -startdate 20000101000000Z -enddate 20010101000000Z \
    2>/dev/null
}
issue_expired expired-server serverAuth DNS:localhost
issue_expired expired-client clientAuth DNS:client
openssl req -x509 -newkey rsa:1024 -nodes -subj /CN=weak-root -keyout "$ossl/weak.key" \
  -out "$ossl/weak.pem" -days 30 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$ossl/weakleaf.key" -out "$ossl/weakleaf.csr" 2>/dev/null
openssl x509 -req -in "$ossl/weakleaf.csr" -CA "$ossl/weak.pem" -CAkey "$ossl/weak.key" \
  -CAcreateserial -days 30 -copy_extensions copy -out "$ossl/weakleaf.pem" 2>/dev/null
self_pin=sha256//$(openssl x509 -in "$ossl/self.pem" -pubkey -noout | openssl pkey -pubin -outform der \
  | openssl dgst -sha256 -binary | base64)

# One openssl s_server connection with CERT and KEY; sets $port, output in $sv.
s_server_once() {
  sv=$work/s_server_$1.out
  : >"$sv"
  openssl s_server -accept 0 -naccept 1 -rev -cert "$2" -key "$3" >"$sv" 2>&1 </dev/null &
  sv_pid=$!
  pids+=("$sv_pid")
  wait_for "$sv" '^ACCEPT'
  port=$(grep -m1 '^ACCEPT' "$sv" | grep -oE '[0-9]+$')
}
# Our client against it with ARGS...; output in $cl; the s_server has ended.
our_client() {
  cl=$work/client_$1.out
  shift
  timeout 30 "$bin/client" localhost "$port" "$@" >"$cl" 2>&1 || true
  wait "$sv_pid" 2>/dev/null || true
}

s_server_once self "$ossl/self.pem" "$ossl/self.key"
our_client self --ca "$ossl/self.pem"
if grep -q '^verification: ok' "$cl"; then
  pass "our client trusts an openssl req -x509 certificate (CA:TRUE) added with set_trusted_certificates"
else
  fail "openssl req -x509 certificate not trusted as itself"; cat "$cl"
fi

s_server_once pin "$ossl/self.pem" "$ossl/self.key"
our_client pin --ca "$ossl/self.pem" --pin "$self_pin"
s_server_once badpin "$ossl/self.pem" "$ossl/self.key"
our_client badpin --ca "$ossl/self.pem" --pin sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
if grep -q '^verification: ok' "$work/client_pin.out" \
    && grep -q 'no key in the certificate chain matches a pinned key' "$cl" \
    && grep -qiE 'access denied|alert number 49' "$sv"; then
  pass "pin_sha256 matches openssl's SPKI SHA-256 ($self_pin); a wrong pin fails and s_server logs access_denied"
else
  fail "pinning against openssl's SPKI hash"; cat "$work/client_pin.out" "$cl" "$sv"
fi

s_server_once expired "$ossl/expired-server.pem" "$ossl/expired-server.key"
our_client expired --ca "$ossl/ca.pem"
if grep -q 'CN=expired-server has expired (not after 2001-01-01' "$cl" \
    && grep -qiE 'alert certificate expired|alert number 45' "$sv"; then
  pass "our client names the expired certificate and s_server logs the certificate_expired alert"
else
  fail "expired server certificate: message or alert"; cat "$cl" "$sv"
fi

s_server_once weak "$ossl/weakleaf.pem" "$ossl/weakleaf.key"
our_client weak --ca "$ossl/weak.pem"
if grep -q 'an RSA key of 1024 bits' "$cl" && grep -q 'CN=weak-root' "$cl"; then
  pass "an RSA-1024 root is reported as a weak key, naming the root"
else
  fail "RSA-1024 root"; cat "$cl"
fi

s_server_once system "$pki/server.pem" "$pki/server.key"
SSL_CERT_FILE=$pki/ca.pem our_client system --system
if grep -q '^verification: ok' "$cl"; then
  pass "SecurityContext::system() trusts SSL_CERT_FILE"
else
  fail "--system with SSL_CERT_FILE"; cat "$cl"
fi

# OCSP stapling with a response made by `openssl ocsp` for a certificate of
# the openssl CA: our server staples it (s_client -status shows it), and
# our client receives what s_server -status_file staples.
openssl req -new "${ec[@]}" -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -addext extendedKeyUsage=serverAuth -keyout "$ossl/ocsp-leaf.key" -out "$ossl/ocsp-leaf.csr" 2>/dev/null
openssl ca -batch -notext -config "$ossl/ca.cnf" -cert "$ossl/ca.pem" -keyfile "$ossl/ca.key" \
  -in "$ossl/ocsp-leaf.csr" -out "$ossl/ocsp-leaf.pem" -days 30 2>/dev/null
openssl ocsp -index "$ossl/db/index.txt" -rsigner "$ossl/ca.pem" -rkey "$ossl/ca.key" -CA "$ossl/ca.pem" \
  -issuer "$ossl/ca.pem" -cert "$ossl/ocsp-leaf.pem" -respout "$ossl/ocsp.der" -ndays 1 -no_nonce \
  >/dev/null 2>&1
ocsp_out=$work/server_ocsp.out
: >"$ocsp_out"
"$bin/server" --cert "$ossl/ocsp-leaf.pem" --key "$ossl/ocsp-leaf.key" --ocsp "$ossl/ocsp.der" \
  --once --max 1 >"$ocsp_out" 2>&1 &
ocsp_pid=$!
pids+=("$ocsp_pid")
wait_for "$ocsp_out" '^listening on'
port=$(grep -m1 '^listening on' "$ocsp_out" | grep -oE '[0-9]+$')
printf 'hello-ocsp\n' | timeout 30 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
  -CAfile "$ossl/ca.pem" -status -ign_eof >"$work/s_client_ocsp.out" 2>&1 || true
wait "$ocsp_pid" 2>/dev/null || true
if grep -q 'OCSP Response Status: successful' "$work/s_client_ocsp.out" \
    && grep -q 'Cert Status: good' "$work/s_client_ocsp.out"; then
  pass "openssl s_client -status sees the OCSP response our server staples"
else
  fail "OCSP stapling by our server"; cat "$work/s_client_ocsp.out" "$ocsp_out"
fi
# A CRL made by `openssl ca -gencrl` revoking a leaf for keyCompromise:
# our client names the certificate, the revocation date and the reason.
openssl req -new "${ec[@]}" -subj /CN=revoked-server -addext subjectAltName=DNS:localhost \
  -addext extendedKeyUsage=serverAuth -keyout "$ossl/revoked.key" -out "$ossl/revoked.csr" 2>/dev/null
openssl ca -batch -notext -config "$ossl/ca.cnf" -cert "$ossl/ca.pem" -keyfile "$ossl/ca.key" \
  -in "$ossl/revoked.csr" -out "$ossl/revoked.pem" -days 30 2>/dev/null
openssl ca -batch -config "$ossl/ca.cnf" -cert "$ossl/ca.pem" -keyfile "$ossl/ca.key" \
  -revoke "$ossl/revoked.pem" -crl_reason keyCompromise 2>/dev/null
openssl ca -batch -config "$ossl/ca.cnf" -cert "$ossl/ca.pem" -keyfile "$ossl/ca.key" \
  -gencrl -out "$ossl/ca.crl" 2>/dev/null
s_server_once revoked "$ossl/revoked.pem" "$ossl/revoked.key"
our_client revoked --ca "$ossl/ca.pem" --crl "$ossl/ca.crl"
if grep -qE 'the certificate CN=revoked-server has been revoked \(on 20[0-9-]+ [0-9:]+ UTC, keyCompromise\)' "$cl"; then
  pass "a certificate revoked by an openssl CRL is named, with its revocation date and reason"
else
  fail "a certificate revoked by an openssl CRL"; cat "$cl"; openssl crl -in "$ossl/ca.crl" -noout -text
fi
s_server_once notrevoked "$ossl/ocsp-leaf.pem" "$ossl/ocsp-leaf.key"
our_client notrevoked --ca "$ossl/ca.pem" --crl "$ossl/ca.crl"
if grep -q '^verification: ok' "$cl"; then
  pass "a certificate the openssl CRL does not list connects"
else
  fail "a certificate not on the openssl CRL"; cat "$cl"
fi
# set_crls_required: the same CRL re-issued already expired (openssl ca
# -crl_nextupdate in the past) is refused, the current one is accepted.
openssl ca -batch -config "$ossl/ca.cnf" -cert "$ossl/ca.pem" -keyfile "$ossl/ca.key" -gencrl \
  -crl_lastupdate 20000101000000Z -crl_nextupdate 20010101000000Z -out "$ossl/stale.crl" 2>/dev/null
s_server_once stale "$ossl/ocsp-leaf.pem" "$ossl/ocsp-leaf.key"
our_client stale --ca "$ossl/ca.pem" --crl "$ossl/stale.crl" --crl-required
if grep -q 'passed its nextUpdate time, 2001-01-01 00:00:00 UTC' "$cl"; then
  pass "with set_crls_required, an expired openssl CRL fails closed, its nextUpdate named"
else
  fail "an expired openssl CRL with set_crls_required"; cat "$cl"
fi
s_server_once current "$ossl/ocsp-leaf.pem" "$ossl/ocsp-leaf.key"
our_client current --ca "$ossl/ca.pem" --crl "$ossl/ca.crl" --crl-required
if grep -q '^verification: ok' "$cl"; then
  pass "with set_crls_required, a current openssl CRL that does not list the certificate connects"
else
  fail "a current openssl CRL with set_crls_required"; cat "$cl"
fi
sv=$work/s_server_ocsp.out
: >"$sv"
openssl s_server -accept 0 -naccept 1 -rev -cert "$ossl/ocsp-leaf.pem" -key "$ossl/ocsp-leaf.key" \
  -status_file "$ossl/ocsp.der" >"$sv" 2>&1 </dev/null &
sv_pid=$!
pids+=("$sv_pid")
wait_for "$sv" '^ACCEPT'
port=$(grep -m1 '^ACCEPT' "$sv" | grep -oE '[0-9]+$')
our_client ocsp --ca "$ossl/ca.pem"
ocsp_size=$(wc -c <"$ossl/ocsp.der")
if grep -q "^ocsp: $ocsp_size bytes stapled" "$cl"; then
  pass "our client receives the $ocsp_size-byte OCSP response openssl s_server staples"
else
  fail "OCSP response from s_server"; cat "$cl" "$sv"
fi

# openssl s_client against our server requiring client certificates from
# the openssl CA or exactly selfclient.pem.
cat "$ossl/ca.pem" "$ossl/selfclient.pem" >"$ossl/client-cas.pem"
alert_out=$work/server_alerts.out
: >"$alert_out"
"$bin/server" --cert "$pki/server.pem" --key "$pki/server.key" --client-ca "$ossl/client-cas.pem" \
  --require-client-cert --once --max 3 >"$alert_out" 2>&1 &
alert_pid=$!
pids+=("$alert_pid")
wait_for "$alert_out" '^listening on'
port=$(grep -m1 '^listening on' "$alert_out" | grep -oE '[0-9]+$')
s_client_as() { # WHO
  printf 'hello-%s\n' "$1" | timeout 30 openssl s_client -connect "127.0.0.1:$port" \
    -servername localhost -CAfile "$pki/ca.pem" -cert "$ossl/$1.pem" -key "$ossl/$1.key" \
    -ign_eof >"$work/s_client_$1.out" 2>&1 || true
}
s_client_as selfclient
s_client_as expired-client
s_client_as strangerclient
wait "$alert_pid" 2>/dev/null || true
if grep -q 'hello-selfclient' "$work/s_client_selfclient.out"; then
  pass "our server trusts an openssl req -x509 client certificate added with set_client_authorities"
else
  fail "self-signed client certificate not trusted as itself"; cat "$work/s_client_selfclient.out" "$alert_out"
fi
if grep -qiE 'alert certificate expired|alert number 45' "$work/s_client_expired-client.out" \
    && grep -q 'CN=expired-client has expired' "$alert_out"; then
  pass "openssl s_client logs certificate_expired from our server, which names the certificate"
else
  fail "expired client certificate: alert or message"; cat "$work/s_client_expired-client.out" "$alert_out"
fi
if grep -qiE 'alert unknown ca|alert number 48' "$work/s_client_strangerclient.out" \
    && grep -q 'self-signed (CN=strangerclient)' "$alert_out"; then
  pass "openssl s_client logs unknown_ca for an untrusted client certificate"
else
  fail "untrusted client certificate: alert or message"; cat "$work/s_client_strangerclient.out" "$alert_out"
fi

# Socket activation: systemd-socket-activate binds the port and passes the
# socket; our server serves it (listen_fds + SecureListener::from_fd).
if ! command -v systemd-socket-activate >/dev/null 2>&1; then
  apt_install systemd >/dev/null 2>&1 || true
fi
if command -v systemd-socket-activate >/dev/null 2>&1; then
  act_port=$(free_port)
  act_out=$work/server_activated.out
  : >"$act_out"
  systemd-socket-activate -l "127.0.0.1:$act_port" "$bin/server" --systemd --cert "$pki/server.pem" \
    --key "$pki/server.key" --once --max 1 >"$act_out" 2>&1 &
  act_pid=$!
  pids+=("$act_pid")
  wait_for "$act_out" 'Listening on'
  printf 'hello-activated\n' | timeout 30 openssl s_client -connect "127.0.0.1:$act_port" \
    -servername localhost -CAfile "$pki/ca.pem" -verify_return_error -ign_eof \
    >"$work/s_client_activated.out" 2>&1 || true
  wait "$act_pid" 2>/dev/null || true
  if grep -q 'hello-activated' "$work/s_client_activated.out" && grep -q 'listening on 127.0.0.1' "$act_out"; then
    pass "our server serves a socket passed by systemd-socket-activate (listen_fds, from_fd)"
  else
    fail "socket activation"; cat "$act_out" "$work/s_client_activated.out"
  fi
else
  fail "systemd-socket-activate is not available"
fi
group_result "openssl interop"
