/**
 * `GET /rooms/:roomId/broadcast`, the program feed: binary frames of encoded audio (Ogg/Opus
 * or WebM/Opus from the browser's MediaRecorder) arrive on a WebSocket and are written, as
 * they come, into an Icecast source connection. The source password stays here, server side.
 *
 * The feed lives in the Worker, not in the room's Durable Object: a Worker holding a socket
 * is billed for CPU only, while a Durable Object would stay awake (billed for duration) for
 * the whole show. The room only learns the state (RPC) and answers whether to stop.
 *
 * Icecast's source protocol is an HTTP PUT whose body is the raw stream for as long as the
 * show lasts. Icecast 2.4 does not decode chunked bodies (it would read the chunk framing
 * as audio), and `fetch` can only stream a body of unknown length chunked, so the request
 * is written by hand on a TCP socket (`cloudflare:sockets`).
 */
import { connect } from 'cloudflare:sockets';
import type { IRequest } from 'itty-router';
import { rejectUpgrade } from '../durable-objects/transport';
import { CLOSE_CODES, type BroadcastInfo, type Role } from '../protocol/messages';
import { readConfig } from './config';
import { roomStub } from './rooms';
import { checkUpgrade } from './upgrade';

/** How often a running feed tells the room it is alive and asks whether to stop. */
export const BROADCAST_HEARTBEAT_MS = 5_000;
export interface IcecastTarget {
  /** Base URL Icecast listens on for sources, e.g. `http://127.0.0.1:8000`. */
  url: string;
  mount: string;
  password: string;
  /** What listeners open, e.g. `https://radio.example.org/live.ogg`. */
  listenUrl: string;
}

export const BROADCAST_FORMATS = { ogg: 'audio/ogg', webm: 'audio/webm' } as const;
export type BroadcastFormat = keyof typeof BROADCAST_FORMATS;

const encoder = new TextEncoder();

/** Read an HTTP response head from the socket and return its status code. */
async function readStatus(readable: ReadableStream<Uint8Array>): Promise<number> {
  const reader = readable.getReader();
  let head = '';
  const decoder = new TextDecoder();
  while (!head.includes('\r\n\r\n') && head.length < 8192) {
    const { done, value } = await reader.read();
    if (done) break;
    head += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!match) throw new Error('Icecast sent no HTTP answer');
  return Number(match[1]);
}

/** Icecast's answers to a source, in words a host can act on. */
function describeRefusal(status: number): string {
  if (status === 401) return 'Icecast refused the source password';
  if (status === 403) return 'the Icecast mount is busy or not allowed';
  return `Icecast answered ${status}`;
}

/** Audio kept while Icecast has not answered yet (the first slices carry the Opus headers). */
const MAX_EARLY_BYTES = 1024 * 1024;

export class BroadcastRelay {
  private writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  private early: Uint8Array[] = [];
  private earlyBytes = 0;
  private finished = false;
  info: BroadcastInfo;

  constructor(
    private readonly socket: WebSocket,
    private readonly target: IcecastTarget,
    private readonly format: BroadcastFormat,
    private readonly meta: { by: Role; name?: string },
    private readonly onChange: (info: BroadcastInfo) => void,
  ) {
    this.info = { state: 'connecting', by: meta.by, listenUrl: target.listenUrl };
  }

  /** Start pushing; resolves once Icecast has accepted or refused the source. */
  async start(): Promise<void> {
    this.socket.binaryType = 'arraybuffer'; // the standard default is Blob
    this.socket.addEventListener('message', (event) => {
      if (typeof event.data === 'string' || this.finished) return; // audio is binary only
      this.push(new Uint8Array(event.data));
    });
    this.socket.addEventListener('close', () => this.stop());
    this.socket.addEventListener('error', () => this.stop());
    this.onChange(this.info);

    try {
      const url = new URL(this.target.url);
      const secure = url.protocol === 'https:';
      const port = Number(url.port) || (secure ? 443 : 80);
      const tcp = connect({ hostname: url.hostname, port }, { secureTransport: secure ? 'on' : 'off', allowHalfOpen: false });
      const writer = tcp.writable.getWriter();
      await writer.write(encoder.encode(this.requestHead(url.host)));
      const status = await readStatus(tcp.readable);
      if (status !== 200) {
        await writer.close().catch(() => {});
        return this.fail(describeRefusal(status));
      }
      if (this.finished) return void writer.close().catch(() => {});
      this.writer = writer;
      for (const chunk of this.early) this.push(chunk);
      this.early = [];
      this.set({ state: 'live', by: this.meta.by, listenUrl: this.target.listenUrl });
    } catch (error) {
      this.fail(`cannot reach Icecast (${error instanceof Error ? error.message : String(error)})`);
    }
  }

  /** Write a slice to Icecast, or keep it, in order, until Icecast has accepted the source. */
  private push(chunk: Uint8Array): void {
    if (this.writer) {
      this.writer.write(chunk).catch(() => this.fail('Icecast stopped reading the stream'));
      return;
    }
    this.earlyBytes += chunk.byteLength;
    if (this.earlyBytes > MAX_EARLY_BYTES) return this.fail('Icecast did not answer before the feed filled its buffer');
    this.early.push(chunk);
  }

  private requestHead(host: string): string {
    const lines = [
      `PUT ${this.target.mount} HTTP/1.1`,
      `Host: ${host}`,
      `Authorization: Basic ${btoa(`source:${this.target.password}`)}`,
      `Content-Type: ${BROADCAST_FORMATS[this.format]}`,
      'Ice-Public: 0',
    ];
    // Header values must not carry line breaks (the name is user input, validated upstream too).
    if (this.meta.name) lines.push(`Ice-Name: ${this.meta.name.replace(/[\x00-\x1f\x7f]/g, ' ')}`);
    return `${lines.join('\r\n')}\r\n\r\n`;
  }

  /** End the broadcast cleanly (the broadcaster closed its socket, or a host stopped it). */
  stop(): void {
    if (this.finished) return;
    this.finished = true;
    this.writer?.close().catch(() => {});
    this.closeSocket(1000, 'broadcast stopped');
    this.set({ state: 'idle' });
  }

  private fail(error: string): void {
    if (this.finished) return;
    this.finished = true;
    this.writer?.abort(error).catch(() => {});
    this.closeSocket(1011, error);
    this.set({ state: 'error', by: this.meta.by, error });
  }

  private closeSocket(code: number, reason: string): void {
    try {
      this.socket.close(code, reason.slice(0, 120));
    } catch {
      // already closed
    }
  }

  private set(info: BroadcastInfo): void {
    this.info = info;
    this.onChange(info);
  }
}

export async function broadcastFeed(request: IRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
  const checked = await checkUpgrade(request, env);
  if (checked instanceof Response) return checked;
  const { roomId, claims, protocol } = checked;
  const format = typeof request.query.format === 'string' ? request.query.format : 'ogg';
  if (!(format in BROADCAST_FORMATS)) {
    const formats = Object.keys(BROADCAST_FORMATS).join(', ');
    return rejectUpgrade('invalid-message', CLOSE_CODES.forbidden, `format must be one of ${formats}`, protocol);
  }
  const config = readConfig(env);
  const password = (env as { ICECAST_SOURCE_PASSWORD?: string }).ICECAST_SOURCE_PASSWORD;
  if (!config.icecastUrl || !password) {
    const message = 'this deployment has no Icecast configured (ICECAST_URL, ICECAST_SOURCE_PASSWORD)';
    return rejectUpgrade('broadcast-unavailable', CLOSE_CODES.forbidden, message, protocol);
  }
  const room = roomStub(env, roomId);
  const begun = await room.beginBroadcast(claims);
  if (!begun.ok) return rejectUpgrade(begun.code, begun.closeCode, begun.message, protocol);

  const { 0: client, 1: server } = new WebSocketPair();
  server.accept();
  const target = { url: config.icecastUrl, mount: config.icecastMount, password, listenUrl: config.icecastListenUrl };
  const meta = { by: claims.role, ...(begun.name === undefined ? {} : { name: begun.name }) };
  // State reports reach the room in order; each answer says whether a host asked to stop.
  let reports: Promise<void> = Promise.resolve();
  const report = (info: BroadcastInfo) => {
    reports = reports
      .then(() => room.broadcastChanged(begun.id, info))
      .then((answer) => {
        if (answer.stop) relay.stop();
      })
      .catch((error) => console.error('broadcast: cannot reach the room', error));
    ctx.waitUntil(reports);
  };
  const relay: BroadcastRelay = new BroadcastRelay(server, target, format as BroadcastFormat, meta, (info) => {
    if (info.state === 'idle' || info.state === 'error') clearInterval(heartbeat);
    report(info);
  });
  const heartbeat = setInterval(() => report(relay.info), BROADCAST_HEARTBEAT_MS);
  ctx.waitUntil(relay.start());
  const headers = protocol ? { 'Sec-WebSocket-Protocol': protocol } : undefined;
  return new Response(null, { status: 101, webSocket: client, headers });
}
