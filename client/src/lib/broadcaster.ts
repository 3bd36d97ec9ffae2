// The program feed from a browser: encode the program stream with MediaRecorder (Opus) and
// send it over the room's broadcast WebSocket to the show's feed, which pushes it to Icecast.
// The feed stays up by itself: when the socket drops (network, a deploy of the Worker) it
// reconnects with bounded backoff and jitter and resumes the same show; every accepted socket,
// and every `restart-stream` from the server (it could not read the audio), starts a fresh
// recorder, whose first slice carries the Opus headers. The feed turns what it records (WebM
// or Ogg) into one continuous Ogg stream for listeners (durable-objects/opus-stream.ts).
import type { BroadcastInfo, FeedMessage } from '../../../protocol/messages';
import { SUBPROTOCOL } from './studio-client';

/** Opus in Ogg where the browser can record it, else in WebM (Chromium); the feed takes either. */
const FORMATS = [
  { format: 'ogg', mimeType: 'audio/ogg;codecs=opus' },
  { format: 'webm', mimeType: 'audio/webm;codecs=opus' },
];

/**
 * What the broadcaster is doing, for a console: `connecting` (first connection), `live`
 * (the feed accepted it, audio flowing), `reconnecting` (socket lost or refused for now,
 * retrying by itself),
 * `stopped` (by `stop()`, by a host, or another connection took over), `failed` (refused,
 * or given up: `reason` says why).
 */
export type BroadcasterState = 'connecting' | 'live' | 'reconnecting' | 'stopped' | 'failed';

export interface BroadcasterStatus {
  state: BroadcasterState;
  reason?: string;
  /** Reconnection attempts since the feed was last accepted. */
  attempt: number;
  /** The show's state as the feed reports it. */
  broadcast?: BroadcastInfo;
}

export interface BroadcasterOptions {
  /** The room's broadcast endpoint, e.g. `wss://host/rooms/<roomId>/broadcast`. */
  url: string;
  token: string;
  /** MediaRecorder slice length: shorter is less delay to listeners, more frames. */
  timesliceMs?: number;
  audioBitsPerSecond?: number;
  /** Reconnect delays double from this... */
  retryBaseMs?: number;
  /** ...up to this... */
  retryMaxMs?: number;
  /** ...for at most this many attempts in a row, then `failed`. */
  maxAttempts?: number;
  onStatus?: (status: BroadcasterStatus) => void;
}

/** Close codes after which reconnecting would not help (or is not wanted). */
function isFinal(code: number): boolean {
  return code === 1000 || code === 1011 || (code >= 4000 && code < 5000);
}

export class Broadcaster {
  readonly options: Required<Omit<BroadcasterOptions, 'onStatus'>> & Pick<BroadcasterOptions, 'onStatus'>;
  socket: WebSocket | null = null;
  recorder: MediaRecorder | null = null;
  /** The show this broadcaster resumes after a drop. */
  broadcastId: string | null = null;
  status: BroadcasterStatus = { state: 'connecting', attempt: 0 };
  private stream: MediaStream | null = null;
  private format = FORMATS[0]!;
  private stopped = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private lastError: string | undefined;
  /** How long the last refusal asked us to wait before trying again. */
  private retryAfterMs = 0;

  constructor(options: BroadcasterOptions) {
    this.options = { timesliceMs: 250, audioBitsPerSecond: 96_000, retryBaseMs: 500, retryMaxMs: 10_000, maxAttempts: 30, ...options };
  }

  /** Start sending `stream`; resolves once the feed first accepted it, rejects if that fails. */
  async start(stream: MediaStream): Promise<void> {
    const choice = FORMATS.find((f) => MediaRecorder.isTypeSupported(f.mimeType));
    if (!choice) throw new Error('this browser cannot record Opus audio');
    this.format = choice;
    this.stream = stream;
    this.stopped = false;
    await new Promise<void>((resolve, reject) => this.connect(resolve, reject));
  }

  private connect(opened?: () => void, failed?: (error: Error) => void): void {
    if (this.stopped) return;
    const url = new URL(this.options.url);
    url.searchParams.set('format', this.format.format);
    if (this.broadcastId) url.searchParams.set('resume', this.broadcastId);
    this.lastError = undefined; // what this socket's refusal (if any) says
    this.retryAfterMs = 0;
    const socket = new WebSocket(url, [SUBPROTOCOL, this.options.token]);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    // The server accepts every upgrade and refuses in an error frame, then a close: only
    // `feed-accepted` means the feed is up (the attempt succeeded, audio may flow).
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      const message = JSON.parse(event.data) as FeedMessage;
      if (message.type === 'feed-accepted') {
        this.broadcastId = message.broadcastId;
        this.setStatus({ state: 'live', attempt: 0 });
        this.startRecorder(); // every accepted socket begins a new stream, headers first
        opened?.();
      } else if (message.type === 'restart-stream') this.startRecorder();
      else if (message.type === 'broadcast-updated') this.setStatus({ ...this.status, broadcast: message.broadcast });
      else if (message.type === 'error') {
        // A refusal, before its close; a transient one (1013) says how long to wait, as on
        // the signaling socket (the Worker refuses both upgrades alike).
        this.lastError = message.message;
        this.retryAfterMs = (message.retryAfterSeconds ?? 0) * 1000;
      }
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return;
      this.stopRecorder();
      this.socket = null;
      if (this.stopped) return;
      if (isFinal(event.code)) {
        // 4010: another connection took the feed over; 1000: a host stopped it.
        const failedNow = event.code !== 1000 && event.code !== 4010;
        const reason = this.lastError ?? (event.reason || undefined);
        this.stopped = true;
        this.setStatus({ state: failedNow ? 'failed' : 'stopped', attempt: 0, ...(reason ? { reason } : {}) });
        failed?.(new Error(reason ?? `broadcast connection closed (${event.code})`));
        return;
      }
      const attempt = this.status.attempt + 1;
      if (attempt > this.options.maxAttempts) {
        this.stopped = true;
        this.setStatus({ state: 'failed', attempt, reason: 'The broadcast connection could not be restored.' });
        failed?.(new Error('broadcast connection failed'));
        return;
      }
      // Exponential backoff with jitter, so many broadcasters do not come back in step after a
      // deploy; never sooner than a refusal asked (`retryAfterSeconds` with a 1013).
      const backoff = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** (attempt - 1));
      const delay = Math.max(backoff / 2 + Math.random() * (backoff / 2), this.retryAfterMs);
      this.setStatus({ state: 'reconnecting', attempt, reason: this.lastError ?? 'The broadcast connection dropped; reconnecting.' });
      this.retryTimer = setTimeout(() => this.connect(opened, failed), delay);
    };
  }

  /** A fresh recorder on the same stream: its first slice starts a new, decodable stream. */
  private startRecorder(): void {
    this.stopRecorder();
    const socket = this.socket;
    if (!this.stream || !socket) return;
    const recorder = new MediaRecorder(this.stream, {
      mimeType: this.format.mimeType,
      audioBitsPerSecond: this.options.audioBitsPerSecond,
    });
    // Slices must reach Icecast in order; reading a Blob is asynchronous, so chain them.
    let queue = Promise.resolve();
    recorder.ondataavailable = (event) => {
      if (event.data.size === 0) return;
      queue = queue
        .then(() => event.data.arrayBuffer())
        .then((bytes) => {
          // A stopped recorder's last slice belongs to the old stream: never send it after a restart.
          if (this.recorder === recorder && socket.readyState === WebSocket.OPEN) socket.send(bytes);
        });
    };
    recorder.start(this.options.timesliceMs);
    this.recorder = recorder;
  }

  private stopRecorder(): void {
    const recorder = this.recorder;
    this.recorder = null;
    if (recorder?.state === 'recording') recorder.stop();
  }

  private setStatus(status: BroadcasterStatus): void {
    this.status = status;
    this.options.onStatus?.(status);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopRecorder();
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
    this.setStatus({ state: 'stopped', attempt: 0 });
  }
}
