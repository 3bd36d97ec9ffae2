// The Durable Object floor. Same platform path as OpenStudio — Worker → room Durable
// Object → hibernatable WebSocket, ping answered by the runtime — and nothing else: no
// tokens, no validation beyond what relaying needs, no storage, no rate limit, no events
// about other peers. What it costs is what the platform costs.
import { DurableObject } from 'cloudflare:workers';

export class Room extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    /** peerId → socket, rebuilt after hibernation from the sockets' attachments. */
    this.sockets = new Map();
    this.peerOf = new Map();
    for (const ws of ctx.getWebSockets()) this.track(ws, ws.deserializeAttachment().peerId);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
  }

  track(ws, peerId) {
    this.sockets.set(peerId, ws);
    this.peerOf.set(ws, peerId);
  }

  async fetch(request) {
    const { 0: client, 1: server } = new WebSocketPair();
    const peerId = crypto.randomUUID().replaceAll('-', '').slice(0, 12);
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ peerId });
    const participants = [...this.sockets.keys()].map((id) => ({ peerId: id }));
    this.track(server, peerId);
    server.send(JSON.stringify({ type: 'welcome', protocol: 1, peerId, participants }));
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, data) {
    const peerId = this.peerOf.get(ws);
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      ws.send('{"type":"error","code":"bad-json","message":"frame is not valid JSON"}');
      return;
    }
    switch (message?.type) {
      case 'offer':
      case 'answer':
      case 'ice-candidate': {
        const target = typeof message.to === 'string' ? this.sockets.get(message.to) : undefined;
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
      case 'leave':
        this.forget(ws);
        ws.close(1000, 'left');
        return;
      default:
        ws.send('{"type":"error","code":"unknown-type","message":"unknown message type"}');
    }
  }

  forget(ws) {
    const peerId = this.peerOf.get(ws);
    this.peerOf.delete(ws);
    if (peerId !== undefined && this.sockets.get(peerId) === ws) this.sockets.delete(peerId);
  }

  async webSocketClose(ws) {
    this.forget(ws);
  }

  async webSocketError(ws) {
    this.forget(ws);
  }
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === '/health') return Response.json({ status: 'ok' });
    const match = /^\/rooms\/([A-Za-z0-9_-]{1,64})\/ws$/.exec(pathname);
    if (!match || request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return Response.json({ error: { code: 'not-found', message: 'no such endpoint' } }, { status: 404 });
    }
    return env.ROOMS.get(env.ROOMS.idFromName(match[1])).fetch(request);
  },
};
