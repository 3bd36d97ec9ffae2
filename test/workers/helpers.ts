/**
 * Test clients for the Worker running in workerd: HTTP calls through the Worker's own
 * fetch handler, and WebSocket clients that queue every frame they receive.
 */
import { env, exports } from 'cloudflare:workers';
import { afterEach } from 'vitest';
import type { Role, ServerMessage } from '../../protocol/messages';
import { checkFrame, FeedMessageSchema, ServerMessageSchema } from '../../protocol/server-messages';

export const ORIGIN = 'https://studio.example';

/**
 * Each request comes from its own client address unless a test names one: the per-client
 * rate limits are exercised by their own tests, not by every test sharing one address.
 */
export function clientIp(): string {
  return `198.51.100.${Math.floor(Math.random() * 254) + 1}-${crypto.randomUUID().slice(0, 8)}`;
}

export function call(path: string, init: RequestInit & { ip?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('CF-Connecting-IP')) headers.set('CF-Connecting-IP', init.ip ?? clientIp());
  return exports.default.fetch(new Request(`${ORIGIN}${path}`, { ...init, headers }));
}

export interface CreatedRoom {
  roomId: string;
  tokens: Record<Role, string>;
  expiresAt: number;
}

export async function createRoom(body: Record<string, unknown> = {}): Promise<CreatedRoom> {
  const response = await call('/rooms', { method: 'POST', body: JSON.stringify(body) });
  if (response.status !== 201) throw new Error(`POST /rooms → ${response.status} ${await response.text()}`);
  return (await response.json()) as CreatedRoom;
}

export function roomStub(roomId: string) {
  return env.ROOMS.get(env.ROOMS.idFromName(roomId));
}

type Frame = ServerMessage & Record<string, unknown>;

/**
 * The workers project treats a socket silent for PEER_SILENCE_SECONDS (3 s there) as lost,
 * so test clients ping as the client library does, only faster, until `goSilent()`.
 */
const KEEPALIVE_MS = 1000;
const PING_FRAME = '{"type":"ping"}';

/** Frames that did not match the protocol, from any test client: each test ends by checking. */
const offProtocol: string[] = [];
afterEach(() => {
  const found = offProtocol.splice(0);
  if (found.length > 0) throw new Error(`${found.length} frame(s) off the protocol; first: ${found[0]}`);
});

export class TestClient {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];
  private cursor = 0;
  private keepalive: ReturnType<typeof setInterval> | undefined;
  /** Keepalive pings not yet answered: that many pongs are not test frames. */
  private keepalivePongs = 0;

  constructor(
    readonly ws: WebSocket,
    readonly response: Response,
  ) {
    ws.addEventListener('message', (event) => {
      const frame = JSON.parse(event.data as string) as Frame;
      try {
        checkFrame(ServerMessageSchema, frame);
      } catch (error) {
        offProtocol.push((error as Error).message);
      }
      // Pongs are all alike: drop as many as keepalive pings were sent.
      if (frame.type === 'pong' && this.keepalivePongs > 0) {
        this.keepalivePongs -= 1;
        return;
      }
      this.frames.push(frame);
      this.wake();
    });
    ws.addEventListener('close', (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.goSilent();
      this.wake();
    });
    this.keepalive = setInterval(() => {
      try {
        this.ws.send(PING_FRAME);
        this.keepalivePongs += 1;
      } catch {
        this.goSilent();
      }
    }, KEEPALIVE_MS);
  }

  /** Stop the keepalive pings: the connection stays open but says nothing, as after a network loss. */
  goSilent(): void {
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    this.keepalive = undefined;
  }

  private wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async until<T>(check: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.slice(this.cursor))}`);
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** The next unread frame (optionally of a given type, skipping nothing: it must match). */
  async next<T extends Frame['type']>(type?: T): Promise<Extract<Frame, { type: T }>> {
    const frame = await this.until(() => this.frames[this.cursor], `a frame${type ? ` of type ${type}` : ''}`);
    this.cursor += 1;
    if (type && frame.type !== type) throw new Error(`expected ${type}, got ${JSON.stringify(frame)}`);
    return frame as Extract<Frame, { type: T }>;
  }

  /** Skip ahead to the next frame of `type`. */
  async nextOf<T extends Frame['type']>(type: T, timeoutMs?: number): Promise<Extract<Frame, { type: T }>> {
    const frame = await this.until(
      () => {
        const i = this.frames.findIndex((f, index) => index >= this.cursor && f.type === type);
        if (i === -1) return undefined;
        this.cursor = i + 1;
        return this.frames[i];
      },
      `a ${type} frame`,
      timeoutMs,
    );
    return frame as Extract<Frame, { type: T }>;
  }

  /** Frames received after the cursor, without consuming them. */
  unread(): Frame[] {
    return this.frames.slice(this.cursor);
  }

  /** A position in everything this client has received; `since(mark)` lists what came after. */
  mark(): number {
    return this.frames.length;
  }

  /** Every frame received after `mark`, read or not. */
  since(mark: number): Frame[] {
    return this.frames.slice(mark);
  }

  /**
   * One round trip through the room: a ping the room itself answers (not the exact
   * auto-response string). Its pong is taken out of `frames`, and nothing is read.
   */
  async roundTrip(): Promise<void> {
    const from = this.frames.length;
    this.send({ type: 'ping', n: 1 });
    const index = await this.until(() => {
      const i = this.frames.findIndex((f, at) => at >= from && f.type === 'pong');
      return i === -1 ? undefined : i;
    }, 'the pong of a round trip');
    this.frames.splice(index, 1);
    if (this.cursor > index) this.cursor -= 1;
  }

  async waitClosed(): Promise<{ code: number; reason: string }> {
    return this.until(() => this.closed ?? undefined, 'close');
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  close(code = 1000): void {
    this.goSilent();
    try {
      this.ws.close(code);
    } catch {
      /* already closed */
    }
  }
}

export interface ConnectOptions {
  token?: string;
  protocol?: string[];
  origin?: string;
  resume?: string;
  roomId?: string;
  ip?: string;
  /** Upload credentials a reloaded page presents to keep its tracks (`?track=`). */
  tracks?: string[];
}

export async function connect(roomId: string, options: ConnectOptions): Promise<TestClient> {
  const url = new URL(`${ORIGIN}/rooms/${roomId}/ws`);
  if (options.token) url.searchParams.set('token', options.token);
  if (options.resume) url.searchParams.set('resume', options.resume);
  for (const track of options.tracks ?? []) url.searchParams.append('track', track);
  const headers: Record<string, string> = { Upgrade: 'websocket', 'CF-Connecting-IP': options.ip ?? clientIp() };
  if (options.protocol) headers['Sec-WebSocket-Protocol'] = options.protocol.join(', ');
  if (options.origin) headers.Origin = options.origin;
  const response = await exports.default.fetch(new Request(url, { headers }));
  const ws = response.webSocket;
  if (!ws) throw new Error(`no WebSocket in response: ${response.status} ${await response.text()}`);
  ws.accept();
  return new TestClient(ws, response);
}

/** Join and read the welcome. */
export async function join(roomId: string, token: string, tracks?: string[]) {
  const client = await connect(roomId, { token, ...(tracks ? { tracks } : {}) });
  const welcome = await client.next('welcome');
  return { client, welcome, peerId: welcome.peerId };
}

/**
 * Make sure the room has handled everything these clients sent so far, and that each has
 * received everything the room sent it before that: one round trip per client, in order.
 * For "nobody else received anything", settle the sender first, then the observers, and
 * look at `observer.since(mark)` with a mark taken before the sender acted.
 */
export async function settle(...clients: TestClient[]): Promise<void> {
  for (const client of clients) await client.roundTrip();
}

/** Open the program feed through the Worker, as a broadcaster does; every text frame is checked against the protocol. */
export async function openFeed(roomId: string, token: string, resume?: string) {
  const response = await call(`/rooms/${roomId}/broadcast?token=${token}${resume ? `&resume=${resume}` : ''}`, {
    headers: { Upgrade: 'websocket' },
  });
  const ws = response.webSocket!;
  ws.accept();
  const frames: any[] = [];
  ws.addEventListener('message', (e) => {
    const frame = JSON.parse(e.data as string);
    try {
      checkFrame(FeedMessageSchema, frame);
    } catch (error) {
      offProtocol.push((error as Error).message);
    }
    frames.push(frame);
  });
  const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
  return { ws, frames, closed };
}

/** Wait until `check` gives a value (polling), or fail naming `what`. */
export async function until<T>(check: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
