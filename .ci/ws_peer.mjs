// A wss test server on Node's ws, for securenet's interop checks.
// usage: node ws_peer.mjs CERT KEY on|off  (same protocol as ws_peer.py)
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { WebSocketServer } from 'ws';

const [cert, key, compression] = process.argv.slice(2);
const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) });
const wss = new WebSocketServer({
  server,
  perMessageDeflate: compression.startsWith('on'),
  handleProtocols: (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false),
  verifyClient: (info, done) => (info.req.url === '/401' ? done(false, 401, 'no entry') : done(true)),
});
wss.on('connection', (ws, req) => {
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    if (text === 'headers') {
      ws.send(JSON.stringify({
        'x-list': req.headers['x-list'],
        authorization: req.headers.authorization,
        origin: req.headers.origin,
      }));
    } else if (text !== null && text.startsWith('close:')) {
      const [, code, ...reason] = text.split(':');
      ws.close(Number(code), reason.join(':'));
    } else {
      ws.send(data, { binary: isBinary });
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
