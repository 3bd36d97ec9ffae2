// One benchmark peer: a `ws` client that joins a room, measures the time to the server's
// acknowledgement, then hands every relayed frame to `onRelay`.
import WebSocket from 'ws';
import { nowUs } from './payloads.mjs';

export class Peer {
  constructor(adapter, base, { deflate = true } = {}) {
    this.adapter = adapter;
    this.base = base;
    this.deflate = deflate;
    this.ws = null;
    this.peerId = null;
    this.joinMs = NaN;
    /** (relayed: {kind, from, sentAt}, receivedAtUs) => void */
    this.onRelay = null;
    this.closed = false;
  }

  /** Open the socket and wait for the acknowledgement; resolves with the join latency (ms). */
  join(room, timeoutMs = 15_000) {
    const { url, peerId, headers } = this.adapter.joinUrl(this.base, room);
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const ws = new WebSocket(url, { perMessageDeflate: this.deflate, handshakeTimeout: timeoutMs, headers });
      this.ws = ws;
      let acked = false;
      const timer = setTimeout(
        () => fail(new Error(`no acknowledgement within ${timeoutMs} ms (${url.replace(/token=[^&]+/, 'token=…')})`)),
        timeoutMs,
      );
      const fail = (error) => {
        clearTimeout(timer);
        if (!acked) {
          acked = true;
          ws.terminate();
          reject(error);
        }
      };
      ws.on('message', (data) => {
        const t = nowUs();
        let message;
        try {
          message = JSON.parse(data.toString());
        } catch {
          return fail(new Error('server sent a non-JSON frame'));
        }
        if (!acked) {
          let result;
          try {
            result = this.adapter.ack(message);
          } catch (error) {
            return fail(error);
          }
          if (result) {
            acked = true;
            clearTimeout(timer);
            this.joinMs = performance.now() - t0;
            this.peerId = typeof result === 'string' ? result : peerId;
            resolve(this.joinMs);
          }
          return;
        }
        const relayed = this.adapter.relayed(message);
        if (relayed && this.onRelay) this.onRelay(relayed, t);
      });
      ws.on('error', (error) => fail(error));
      ws.on('close', (code, reason) => {
        this.closed = true;
        if (!acked) fail(new Error(`closed before acknowledgement: ${code} ${reason}`));
      });
    });
  }

  send(frame) {
    this.ws.send(frame);
  }

  /** Leave cleanly (protocol `leave` where there is one), wait for the close, bounded. */
  async leave(timeoutMs = 3000) {
    const ws = this.ws;
    if (!ws || this.closed || ws.readyState === WebSocket.CLOSED) return;
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, timeoutMs);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        if (this.adapter.leaveFrame && ws.readyState === WebSocket.OPEN) ws.send(this.adapter.leaveFrame);
        else ws.close(1000);
      } catch {
        ws.terminate();
      }
    });
  }
}

/** Run `fn` over `items` with at most `concurrency` at once; results in input order. */
export async function pool(items, concurrency, fn) {
  const results = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return results;
}

export async function leaveAll(peers, concurrency = 64) {
  await pool(peers, concurrency, (p) => p.leave());
}
