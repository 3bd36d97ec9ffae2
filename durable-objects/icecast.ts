/**
 * An Icecast source connection, written by hand on a TCP socket (`cloudflare:sockets`):
 * Icecast's source protocol is an HTTP PUT whose body is the raw stream for as long as the
 * show lasts, and Icecast 2.4 does not decode chunked bodies (which is all `fetch` can send
 * for a body of unknown length).
 *
 * Every way this can go wrong ends in one `SourceFault` with a kind from a fixed set; the
 * caller turns kinds into sentences. Upstream text never leaves this module.
 */
import { connect } from 'cloudflare:sockets';

export type FaultKind = 'unreachable' | 'refused-password' | 'mount-busy' | 'refused' | 'closed' | 'stalled';

export class SourceFault extends Error {
  constructor(
    readonly kind: FaultKind,
    detail: string,
  ) {
    super(detail);
  }
}

export interface IcecastTarget {
  /** Where Icecast listens for sources, e.g. `https://radio.example.org` (TLS when https). */
  url: string;
  mount: string;
  password: string;
  /** Shown by Icecast as the stream name. */
  name?: string;
}

/** Icecast must answer the source handshake within this. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/** A write Icecast has not taken within this is a stall. */
export const WRITE_TIMEOUT_MS = 4_000;
/** Audio handed to the socket but not yet taken; beyond this the source is stalled (~20 s at 96 kb/s). */
export const MAX_PENDING_BYTES = 256 * 1024;

const encoder = new TextEncoder();

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sourceHead(target: IcecastTarget, host: string): string {
  const lines = [
    `PUT ${target.mount} HTTP/1.1`,
    `Host: ${host}`,
    `Authorization: Basic ${btoa(`source:${target.password}`)}`,
    // Always Ogg/Opus: the feed writes its own stream (opus-stream.ts), whatever the browser records.
    'Content-Type: audio/ogg',
    'Ice-Public: 0',
  ];
  // Header values must not carry line breaks (the name is user input, validated upstream too).
  if (target.name) lines.push(`Ice-Name: ${target.name.replace(/[\x00-\x1f\x7f]/g, ' ')}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function refusal(status: number): SourceFault {
  if (status === 401) return new SourceFault('refused-password', 'Icecast answered 401');
  if (status === 403) return new SourceFault('mount-busy', 'Icecast answered 403');
  return new SourceFault('refused', `Icecast answered ${status}`);
}

export class IcecastSource {
  private pendingBytes = 0;
  /** Writes handed to the socket and not yet taken, oldest first. */
  private readonly inFlight: { at: number; bytes: number }[] = [];
  private ended = false;
  bytesWritten = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly writer: WritableStreamDefaultWriter<Uint8Array>,
    private readonly onFault: (fault: SourceFault) => void,
  ) {}

  /** Connect and complete the source handshake, or throw a `SourceFault`. */
  static async open(target: IcecastTarget, onFault: (fault: SourceFault) => void): Promise<IcecastSource> {
    const url = new URL(target.url);
    const secure = url.protocol === 'https:';
    const port = Number(url.port) || (secure ? 443 : 80);
    let socket: Socket | undefined;
    try {
      socket = connect({ hostname: url.hostname, port }, { secureTransport: secure ? 'on' : 'off', allowHalfOpen: false });
      const opened = socket;
      const writer = opened.writable.getWriter();
      const reader = opened.readable.getReader();
      const status = await withTimeout(
        (async () => {
          await writer.write(encoder.encode(sourceHead(target, url.host)));
          return readStatus(reader);
        })(),
        HANDSHAKE_TIMEOUT_MS,
        () => new SourceFault('stalled', 'no answer to the source handshake'),
      );
      if (status !== 200) throw refusal(status);
      const source = new IcecastSource(opened, writer, onFault);
      source.watchForEnd(reader);
      return source;
    } catch (error) {
      socket?.close().catch(() => {});
      if (error instanceof SourceFault) throw error;
      throw new SourceFault('unreachable', error instanceof Error ? error.message : String(error));
    }
  }

  /** Icecast says nothing after its answer; anything else (end, error) means the source is gone. */
  private watchForEnd(reader: ReadableStreamDefaultReader<Uint8Array>): void {
    const gone = () => this.fail(new SourceFault('closed', 'Icecast closed the source connection'));
    (async () => {
      for (;;) {
        const { done } = await reader.read();
        if (done) return gone();
      }
    })().catch(gone);
  }

  /** Hand a slice to Icecast; a write that cannot keep up is a fault, never an unbounded queue. */
  write(chunk: Uint8Array): void {
    if (this.ended) return;
    this.checkFlow();
    if (this.ended) return;
    const entry = { at: Date.now(), bytes: chunk.byteLength };
    this.inFlight.push(entry);
    this.pendingBytes += entry.bytes;
    this.writer.write(chunk).then(
      () => {
        this.inFlight.shift();
        this.pendingBytes -= entry.bytes;
        this.bytesWritten += entry.bytes;
      },
      () => this.fail(new SourceFault('closed', 'write to Icecast failed')),
    );
  }

  /** Stalled when a write waits too long or too much waits: checked on every write and by the caller's timer. */
  checkFlow(): void {
    if (this.ended) return;
    const oldest = this.inFlight[0];
    const waited = oldest ? Date.now() - oldest.at : 0;
    if (waited > WRITE_TIMEOUT_MS || this.pendingBytes > MAX_PENDING_BYTES) {
      this.fail(new SourceFault('stalled', `Icecast has not taken ${this.pendingBytes} bytes for ${waited} ms`));
    }
  }

  /** End the stream cleanly (the show stopped): what was written (its last page) goes out first. */
  close(): void {
    if (this.ended) return;
    this.ended = true;
    const closeSocket = () => void this.socket.close().catch(() => {});
    withTimeout(this.writer.close(), WRITE_TIMEOUT_MS, () => new Error('Icecast is not taking the last bytes')).then(
      closeSocket,
      closeSocket,
    );
  }

  /** Abandon the source as faulty (also used by the caller's liveness probe). */
  fail(fault: SourceFault): void {
    if (this.ended) return;
    this.ended = true;
    this.writer.abort(fault.kind).catch(() => {});
    this.socket.close().catch(() => {});
    this.onFault(fault);
  }
}

/** Read an HTTP response head from the socket and return its status code. */
async function readStatus(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<number> {
  let head = '';
  const decoder = new TextDecoder();
  while (!head.includes('\r\n\r\n') && head.length < 8192) {
    const { done, value } = await reader.read();
    if (done) break;
    head += decoder.decode(value, { stream: true });
  }
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!match) throw new SourceFault('refused', 'no HTTP answer');
  return Number(match[1]);
}

/**
 * Listeners of one mount, from Icecast's admin statistics for that mount (the source
 * password is enough for a mount's own statistics in Icecast 2.4, and hidden mounts are
 * listed there); undefined when Icecast answers but not with them (e.g. 401, 404, a redirect).
 * Also the liveness probe: it rejects only when no answer came in time (a frozen Icecast) or
 * none could (no connection); any HTTP answer proves Icecast is alive.
 */
export async function mountListeners(target: IcecastTarget, timeoutMs: number): Promise<number | undefined> {
  const url = new URL(`/admin/stats?mount=${encodeURIComponent(target.mount)}`, target.url);
  const response = await fetch(url, {
    headers: { Authorization: `Basic ${btoa(`source:${target.password}`)}` },
    signal: AbortSignal.timeout(timeoutMs),
    redirect: 'manual', // the source credentials go to Icecast only, never where it points
  });
  const body = await response.text();
  if (response.status !== 200) {
    console.error(`Icecast statistics answered ${response.status}`);
    return undefined;
  }
  const escaped = target.mount.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const block = new RegExp(`<source mount="${escaped}">([\\s\\S]*?)</source>`).exec(body)?.[1];
  const listeners = block && /<listeners>(\d+)<\/listeners>/.exec(block)?.[1];
  return listeners ? Number(listeners) : 0;
}
