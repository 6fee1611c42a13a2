"""Writes seed inputs for the fuzz targets: DIR/<target>/<name>.

usage: python3 seeds.py PKI_DIR DIR   (PKI_DIR from `cargo run --example make_pki`)
"""
import base64
import os
import sys

pki, out = sys.argv[1], sys.argv[2]


def read(name):
    with open(os.path.join(pki, name), "rb") as f:
        return f.read()


def der(pem):
    body = b"".join(l for l in pem.splitlines() if l and not l.startswith(b"-----"))
    return base64.b64decode(body)


def write(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


ca, cert, key = read("ca.pem"), read("server.pem"), read("server.key")
for mode, name, data in [
    (0, "trust-pem", ca), (0, "trust-der", der(ca)), (1, "chain-pem", cert + ca),
    (1, "chain-der", der(cert)), (2, "key-pem", key), (2, "key-der", der(key)),
    (3, "authorities", ca), (7, "chain-and-key", cert + b"\0" + key),
]:
    write("context_pem", name, bytes([mode]) + data)
for name in ("ca.pem", "server.pem", "client.pem"):
    write("x509_certificate", name, der(read(name)))

frames = {
    "text": b"\x00\x81\x05hello",
    "fragments": b"\x00\x01\x03hel\x89\x02hi\x80\x02lo",
    "binary-16bit": b"\x00\x82\x7e\x00\x80" + bytes(range(128)),
    "close": b"\x00\x88\x05\x03\xe8bye",
    "deflate": b"\x01\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00\xc1\x05\xf2\x00\x11\x00\x00",
    "deflate-fragments": b"\x02\x41\x03\xf2\x48\xcd\x80\x04\xc9\xc9\x07\x00",
}
for name, data in frames.items():
    write("websocket_frames", name, data)

upgrade = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
           b"Sec-WebSocket-Protocol: chat\r\n\r\n")
refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nnope!"
for name, url, response in [
    ("upgrade", b"wss://example.test:8443/chat?room=1", upgrade),
    ("refused", b"ws://[::1]:80/", refused),
    ("userinfo", b"wss://user:pw@example.test/", upgrade),
]:
    write("websocket_url_headers", name, url + b"\0X-Token\0abc\0chat\0" + response)

request = (b"GET /chat?room=1 HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\nOrigin: https://app.example\r\n"
           b"Sec-WebSocket-Protocol: v2, chat\r\n")
masked_text = b"\x81\x85\x01\x02\x03\x04" + bytes(b ^ m for b, m in zip(b"hello", b"\x01\x02\x03\x04\x01"))
for name, mode, data in [
    ("plain", 0, request + b"\r\n" + masked_text),
    ("deflate", 1, request + b"Sec-WebSocket-Extensions: permessage-deflate; "
                             b"client_max_window_bits\r\n\r\n" + masked_text),
    ("origin-refused", 2, request.replace(b"app.example", b"evil.example") + b"\r\n"),
    ("post", 0, request.replace(b"GET", b"POST") + b"\r\n"),
    ("bad-version", 0x80, request.replace(b"Version: 13", b"Version: 8") + b"\r\n"),
]:
    write("websocket_accept", name, bytes([mode]) + data)

# ClientHellos from Python's ssl (OpenSSL): with SNI and ALPN, and
# without; first byte: bit 0 several ALPN configurations, the rest the
# size of the pieces the bytes come in (0 and 1: one byte at a time).
import ssl

for sni, alpn, name in [("localhost", ["h2", "http/1.1"], "sni-alpn"), (None, None, "plain")]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    for mode in (0, 1, 2 * 200, 2 * 100 + 1):
        write("tls_server", f"{name}-{mode % 256}", bytes([mode % 256]) + hello)
