// OpenStudio browser client: one signaling connection to a room, with keepalive, automatic
// resume, and its sends paced within the room's own limits (the welcome says them), so a
// burst of its own (a full-mesh join, an ICE restart of every connection) is delayed a
// little rather than refused. Message types come from protocol/messages.ts.
import { CLOSE_CODES, SUBPROTOCOL } from '../../../protocol/messages';
import type { ClientMessage, IceCandidate, IceServersInfo, ServerMessage } from '../../../protocol/messages';

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

/** Pace at this share of the room's limits: frames sent evenly may still arrive bunched. */
const LIMIT_MARGIN = 0.8;

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
  /** Frames waiting for the send budget, in order, and when the budget was last counted. */
  private outbox: string[] = [];
  private budget!: { tokens: number; perSecond: number; burst: number; at: number };
  private drainTimer: ReturnType<typeof setTimeout> | undefined;
  /** A transient refusal (1013) said how long to wait before coming back. */
  private retryAfterMs = 0;

  constructor(options: StudioClientOptions) {
    this.options = { pingIntervalMs: 20_000, maxBackoffMs: 5_000, ...options };
    this.resetBudget(undefined);
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
          this.resetBudget(message.limits);
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
        if (message.type === 'error' && message.retryAfterSeconds !== undefined) this.retryAfterMs = message.retryAfterSeconds * 1000;
        // Paced sends never trip the limit; if one does anyway (a room with other limits), say so.
        if (message.type === 'error' && message.code === 'rate-limited') console.warn(`signaling: ${message.message}`);
        this.emit(message.type, message as never);
      };
      socket.onclose = (event) => {
        this.stopPing();
        // What was not sent is redone after the resume (the mesh reconciles), never sent late.
        this.outbox = [];
        clearTimeout(this.drainTimer);
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
    // A refusal that named its wait (too many joins from this network) is honoured, with jitter.
    const wait = this.retryAfterMs > 0 ? this.retryAfterMs * (1 + Math.random() * 0.2) : base / 2 + Math.random() * (base / 2);
    this.retryAfterMs = 0;
    setTimeout(() => {
      if (!this.stopped) this.connect().catch(() => {});
    }, wait);
  }

  private startPing(): void {
    this.stopPing();
    this.pingTimer = setInterval(() => this.socket?.send(PING_FRAME), this.options.pingIntervalMs);
  }

  private stopPing(): void {
    clearInterval(this.pingTimer);
  }

  /** Send a message, now or as soon as the room's rate limit allows; throws when not connected. */
  send(message: ClientMessage): void {
    if (this.socket?.readyState !== WebSocket.OPEN) throw new Error('not connected');
    this.outbox.push(JSON.stringify(message));
    this.drain();
  }

  /** Frames waiting for the send budget. */
  get queued(): number {
    return this.outbox.length;
  }

  private resetBudget(limits: { messagesPerSecond: number; messageBurst: number } | undefined): void {
    // A room that did not say (an older server) gets the documented defaults.
    const perSecond = (limits?.messagesPerSecond ?? 50) * LIMIT_MARGIN;
    const burst = Math.max(1, Math.floor((limits?.messageBurst ?? 100) * LIMIT_MARGIN));
    this.budget = { tokens: burst, perSecond, burst, at: Date.now() };
  }

  private drain(): void {
    const socket = this.socket;
    if (socket?.readyState !== WebSocket.OPEN) return;
    const budget = this.budget;
    const now = Date.now();
    budget.tokens = Math.min(budget.burst, budget.tokens + ((now - budget.at) / 1000) * budget.perSecond);
    budget.at = now;
    while (this.outbox.length > 0 && budget.tokens >= 1) {
      budget.tokens -= 1;
      socket.send(this.outbox.shift()!);
    }
    clearTimeout(this.drainTimer);
    if (this.outbox.length > 0)
      this.drainTimer = setTimeout(() => this.drain(), Math.ceil(((1 - budget.tokens) / budget.perSecond) * 1000));
  }

  /** Fresh TURN credentials over this connection (no token needed: the session is the proof). */
  refreshIce(timeoutMs = 10_000): Promise<IceServersInfo> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (off(), reject(new Error('no answer to refresh-ice'))), timeoutMs);
      const off = this.on('ice-servers', (message) => {
        clearTimeout(timer);
        off();
        resolve({ iceServers: message.iceServers, expiresAt: message.iceExpiresAt });
      });
      try {
        this.send({ type: 'refresh-ice' });
      } catch (error) {
        clearTimeout(timer);
        off();
        reject(error);
      }
    });
  }

  /**
   * Ask for the room's clock (answered with a `clock` frame). Sent at once, past the pacing
   * queue: the time it was sent is its content.
   */
  askClock(): void {
    const socket = this.socket;
    if (socket?.readyState !== WebSocket.OPEN) return;
    this.budget.tokens -= 1;
    socket.send(JSON.stringify({ type: 'clock', sent: performance.timeOrigin + performance.now() } satisfies ClientMessage));
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
    // Straight out, past anything still queued: nothing after a leave matters.
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: 'leave' } satisfies ClientMessage));
    else this.socket?.close();
  }
}
