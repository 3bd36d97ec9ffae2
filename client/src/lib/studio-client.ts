// OpenStudio browser client: one signaling connection to a room, with keepalive and
// automatic resume. Message types come from protocol/messages.ts.
import { CLOSE_CODES, SUBPROTOCOL } from '../../../protocol/messages';
import type { ClientMessage, IceCandidate, ServerMessage } from '../../../protocol/messages';

export { SUBPROTOCOL };
export type Welcome = Extract<ServerMessage, { type: 'welcome' }>;
export type ErrorMessage = Extract<ServerMessage, { type: 'error' }>;

/** What `on('close', …)` receives. `final`: the client will not reconnect by itself. */
export interface CloseEvent {
  code: number;
  reason: string;
  final: boolean;
}

type Events = { [T in ServerMessage['type']]: Extract<ServerMessage, { type: T }> } & { close: CloseEvent };

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set<number>([
  CLOSE_CODES.normal,
  CLOSE_CODES.unauthorized,
  CLOSE_CODES.forbidden,
  CLOSE_CODES.roomNotFound,
  CLOSE_CODES.policy,
  CLOSE_CODES.roomFull,
  CLOSE_CODES.replaced,
]);

const PING_FRAME = '{"type":"ping"}';

export interface StudioClientOptions {
  /** WebSocket URL of the room, e.g. `wss://host/rooms/<roomId>/ws`. */
  url: string;
  /** Room token (host, producer or caller). */
  token: string;
  /** Keepalive period (default 20 s; the room answers without waking). */
  pingIntervalMs?: number;
  /** Longest wait between reconnect attempts (default 5 s). */
  maxBackoffMs?: number;
}

export class StudioClient {
  readonly options: Required<StudioClientOptions>;
  socket: WebSocket | null = null;
  welcome: Welcome | null = null;
  resumeToken: string | null = null;
  private handlers = new Map<string, Set<(message: never) => void>>();
  private attempt = 0;
  private stopped = false;
  /** Set by a refused resume: the next close may try one fresh join, and only one. */
  private freshJoinAllowed = false;
  private pingTimer: ReturnType<typeof setInterval> | undefined;

  constructor(options: StudioClientOptions) {
    this.options = { pingIntervalMs: 20_000, maxBackoffMs: 5_000, ...options };
  }

  /** The peer id the room gave us (stable across resumes). */
  get peerId(): string | null {
    return this.welcome?.peerId ?? null;
  }

  /** Listen for a server message type, or `close`. Returns an unsubscribe function. */
  on<T extends keyof Events>(type: T, handler: (message: Events[T]) => void): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler as (message: never) => void);
    return () => set.delete(handler as (message: never) => void);
  }

  private emit<T extends keyof Events>(type: T, message: Events[T]): void {
    for (const handler of this.handlers.get(type) ?? []) (handler as (message: Events[T]) => void)(message);
  }

  /** Connect (or reconnect); resolves with the welcome. */
  connect(): Promise<Welcome> {
    this.stopped = false;
    return new Promise((resolve, reject) => {
      const url = new URL(this.options.url);
      if (this.resumeToken) url.searchParams.set('resume', this.resumeToken);
      const socket = new WebSocket(url, [SUBPROTOCOL, this.options.token]);
      this.socket = socket;
      let welcomed = false;
      socket.onmessage = (event) => {
        const message = JSON.parse(String(event.data)) as ServerMessage;
        if (message.type === 'welcome') {
          welcomed = true;
          this.attempt = 0;
          this.welcome = message;
          this.resumeToken = message.resumeToken;
          // One frame right away: workerd completes a server-initiated close (kick, room
          // closed) only on a connection that has carried a client frame. The exact ping
          // is answered without waking the room.
          socket.send(PING_FRAME);
          this.startPing();
          resolve(message);
        }
        if (message.type === 'kicked' || message.type === 'room-closed') this.stopped = true;
        if (message.type === 'error' && message.code === 'resume-failed') {
          this.resumeToken = null;
          this.freshJoinAllowed = true;
        }
        this.emit(message.type, message as never);
      };
      socket.onclose = (event) => {
        this.stopPing();
        // A refused resume closes with 4001 but a fresh join may still work, so it is not
        // final; if that join is refused too (revoked or expired invite), it is: no reconnect loop.
        const retryFresh = this.freshJoinAllowed && !welcomed && !this.stopped;
        this.freshJoinAllowed = false;
        const final = !retryFresh && (this.stopped || FINAL_CLOSE_CODES.has(event.code));
        this.emit('close', { code: event.code, reason: event.reason, final });
        if (!welcomed) reject(new Error(`connection refused (${event.code}${event.reason ? `: ${event.reason}` : ''})`));
        if (!this.stopped && !final) this.scheduleReconnect();
      };
    });
  }

  private scheduleReconnect(): void {
    const base = Math.min(this.options.maxBackoffMs, 250 * 2 ** this.attempt);
    this.attempt += 1;
    setTimeout(
      () => {
        if (!this.stopped) this.connect().catch(() => {});
      },
      base / 2 + Math.random() * (base / 2),
    );
  }

  private startPing(): void {
    this.stopPing();
    this.pingTimer = setInterval(() => this.socket?.send(PING_FRAME), this.options.pingIntervalMs);
  }

  private stopPing(): void {
    clearInterval(this.pingTimer);
  }

  send(message: ClientMessage): void {
    if (this.socket?.readyState !== WebSocket.OPEN) throw new Error('not connected');
    this.socket.send(JSON.stringify(message));
  }

  offer(to: string, sdp: string): void {
    this.send({ type: 'offer', to, sdp });
  }

  answer(to: string, sdp: string): void {
    this.send({ type: 'answer', to, sdp });
  }

  /** `null` ends the candidates. */
  candidate(to: string, candidate: IceCandidate | null): void {
    this.send({ type: 'ice-candidate', to, candidate });
  }

  mute(peerId: string, muted: boolean): void {
    this.send({ type: 'mute', peerId, muted });
  }

  kick(peerId: string): void {
    this.send({ type: 'kick', peerId });
  }

  admit(peerId: string): void {
    this.send({ type: 'admit', peerId });
  }

  setName(name: string): void {
    this.send({ type: 'set-name', name });
  }

  closeRoom(): void {
    this.send({ type: 'close-room' });
  }

  /** Leave for good (no resume). */
  leave(): void {
    this.stopped = true;
    this.stopPing();
    if (this.socket?.readyState === WebSocket.OPEN) this.send({ type: 'leave' });
    else this.socket?.close();
  }
}
