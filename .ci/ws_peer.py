"""A wss test server on Python's websockets, for securenet's interop checks.

usage: ws_peer.py CERT KEY on|off
Prints "listening on PORT". Path /401 is refused with 401 and a body. The
text "headers" is answered with the request's X-List, Authorization and
Origin as JSON; "close:CODE:REASON" closes with that code; anything else is
echoed. Subprotocol: chat.v1 if the client offers it.
"""
import asyncio
import json
import ssl
import sys
from http import HTTPStatus

from websockets.asyncio.server import serve

cert, key, compression = sys.argv[1], sys.argv[2], sys.argv[3]


def process_request(connection, request):
    if request.path == "/401":
        return connection.respond(HTTPStatus.UNAUTHORIZED, "no entry\n")
    return None


async def handler(ws):
    headers = ws.request.headers
    async for message in ws:
        if message == "headers":
            await ws.send(json.dumps({
                "x-list": headers.get_all("X-List"),
                "authorization": headers.get("Authorization"),
                "origin": headers.get("Origin"),
            }))
        elif isinstance(message, str) and message.startswith("close:"):
            _, code, reason = message.split(":", 2)
            await ws.close(int(code), reason)
        else:
            await ws.send(message)


async def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    async with serve(
        handler, "127.0.0.1", 0, ssl=ctx, subprotocols=["chat.v1"],
        compression="deflate" if compression.startswith("on") else None,
        process_request=process_request, max_size=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on {port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
