#!/usr/bin/env node
// The floor: the least a relay can do with the same wire shapes as OpenStudio, on Node
// and `ws`. Rooms by URL (`/rooms/:roomId/ws`), a server-chosen peer id, a `welcome`
// acknowledgement, and relay by `to` with a server-stamped `from`. No tokens, no
// validation beyond what relaying needs, no storage, no events about other peers.
//
//   node bench/floor-server.mjs --port 9100 [--host 127.0.0.1]
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port ?? 9100);

/** roomId → (peerId → socket) */
const rooms = new Map();

const http = createServer((req, res) => {
  res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ status: req.url === '/health' ? 'ok' : 'not-found' }));
});
const wss = new WebSocketServer({ noServer: true });

http.on('upgrade', (req, socket, head) => {
  const match = /^\/rooms\/([A-Za-z0-9_-]{1,64})\/ws(?:\?|$)/.exec(req.url ?? '');
  if (!match) {
    socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => join(ws, match[1]));
});

function join(ws, roomId) {
  let room = rooms.get(roomId);
  if (!room) rooms.set(roomId, (room = new Map()));
  const peerId = randomBytes(9).toString('base64url');
  const participants = [...room.keys()].map((id) => ({ peerId: id }));
  room.set(peerId, ws);
  ws.send(JSON.stringify({ type: 'welcome', protocol: 1, roomId, peerId, participants }));

  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let message;
    try {
      message = JSON.parse(data.toString());
    } catch {
      ws.send('{"type":"error","code":"bad-json","message":"frame is not valid JSON"}');
      return;
    }
    switch (message?.type) {
      case 'offer':
      case 'answer':
      case 'ice-candidate': {
        const target = typeof message.to === 'string' ? room.get(message.to) : undefined;
        if (!target) {
          ws.send(JSON.stringify({ type: 'error', code: 'peer-not-found', message: `no peer "${message.to}"` }));
          return;
        }
        const out =
          message.type === 'ice-candidate'
            ? { type: message.type, from: peerId, candidate: message.candidate }
            : { type: message.type, from: peerId, sdp: message.sdp };
        target.send(JSON.stringify(out));
        return;
      }
      case 'ping':
        ws.send('{"type":"pong"}');
        return;
      case 'leave':
        ws.close(1000, 'left');
        return;
      default:
        ws.send('{"type":"error","code":"unknown-type","message":"unknown message type"}');
    }
  });
  ws.on('close', () => {
    room.delete(peerId);
    if (room.size === 0) rooms.delete(roomId);
  });
  ws.on('error', () => {});
}

http.listen(port, values.host, () => console.log(`floor relay listening on ${values.host}:${port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
