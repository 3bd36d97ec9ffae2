/**
 * WebSocket plumbing the Worker and the Durable Objects share: sending frames, closing with
 * codes, refusing an upgrade, frame sizes and the per-connection token bucket. No protocol
 * decisions are made here.
 */
import { CLOSE_CODES, REFUSAL_CLOSE_CODES, type ErrorCode, type ServerMessage } from '../protocol/messages';

export function send(ws: WebSocket, message: ServerMessage): void {
  sendRaw(ws, JSON.stringify(message));
}

export function sendRaw(ws: WebSocket, frame: string): void {
  try {
    ws.send(frame);
  } catch {
    // The socket is already closing; its close handler does the bookkeeping.
  }
}

export function sendError(ws: WebSocket, code: ErrorCode, message: string, extra?: { retryAfterSeconds: number }): void {
  send(ws, { type: 'error', code, message, ...extra });
}

export function close(ws: WebSocket, code: number, reason: string): void {
  try {
    // Close reasons are limited to 123 bytes by the WebSocket protocol.
    ws.close(code, reason.slice(0, 120));
  } catch {
    // Already closed.
  }
}

/**
 * Refuse a WebSocket upgrade the way a browser can understand: accept it, send an `error`
 * frame, then close with a code (a browser cannot read an HTTP error on an upgrade).
 * `protocol` is echoed when the client offered one, or browsers fail the handshake first.
 */
export function rejectUpgrade(code: ErrorCode, message: string, protocol?: string | null, extra?: { retryAfterSeconds: number }): Response {
  const { 0: client, 1: server } = new WebSocketPair();
  server.accept();
  sendError(server, code, message, extra);
  close(server, REFUSAL_CLOSE_CODES[code] ?? CLOSE_CODES.forbidden, message);
  const headers = protocol ? { 'Sec-WebSocket-Protocol': protocol } : undefined;
  return new Response(null, { status: 101, webSocket: client, headers });
}

const encoder = new TextEncoder();

export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/** Is the UTF-8 form of `text` longer than `maxBytes`? Encodes only when the cheap bound is not enough. */
export function exceedsBytes(text: string, maxBytes: number): boolean {
  if (text.length > maxBytes) return true;
  if (text.length * 3 <= maxBytes) return false;
  return utf8Length(text) > maxBytes;
}

/** Refusals this far apart are separate runs: the strike count starts over. */
export const STRIKE_RESET_MS = 2_000;

/**
 * Token bucket per connection. Kept in memory: it starts full again after the room
 * hibernates, which only happens once the connection has been quiet.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  /**
   * Refusals (rate or size) in the current run: a run ends only after STRIKE_RESET_MS
   * without a refusal, so a flood a little above the refill (where every other frame is
   * accepted) still adds up and is closed.
   */
  strikes = 0;
  private struckAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
    this.updatedAt = Date.now();
  }

  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Count a refusal; returns the strikes in this run (1: the run just began). */
  strike(now = Date.now()): number {
    if (now - this.struckAt > STRIKE_RESET_MS) this.strikes = 0;
    this.struckAt = now;
    return ++this.strikes;
  }
}
