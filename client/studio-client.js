// OpenStudio browser client: one signaling connection to a room, with keepalive and
// automatic resume. Plain ES module (no build step); types come from protocol/messages.ts
// through JSDoc and are checked by `npm run typecheck`.

/** @typedef {import('../protocol/messages').ServerMessage} ServerMessage */
/** @typedef {import('../protocol/messages').ClientMessage} ClientMessage */
/** @typedef {Extract<ServerMessage, { type: 'welcome' }>} Welcome */
/** @typedef {import('../protocol/messages').IceCandidate} IceCandidate */

export const SUBPROTOCOL = 'openstudio.v1';

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set([1000, 4001, 4003, 4004, 4008, 4009, 4010]);

const PING_FRAME = '{"type":"ping"}';

/**
 * @typedef {object} StudioClientOptions
 * @property {string} url WebSocket URL of the room, e.g. `wss://host/rooms/<roomId>/ws`
 * @property {string} token room token (host, producer or caller)
 * @property {number} [pingIntervalMs] keepalive period (default 20 s; the room answers without waking)
 * @property {number} [maxBackoffMs] longest wait between reconnect attempts (default 5 s)
 */

export class StudioClient {
  /** @param {StudioClientOptions} options */
  constructor(options) {
    this.options = { pingIntervalMs: 20_000, maxBackoffMs: 5_000, ...options };
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {Welcome | null} */
    this.welcome = null;
    /** @type {string | null} */
    this.resumeToken = null;
    /** @type {Map<string, Set<(message: any) => void>>} */
    this.handlers = new Map();
    this.attempt = 0;
    this.stopped = false;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
  }

  /** The peer id the room gave us (stable across resumes). */
  get peerId() {
    return this.welcome?.peerId ?? null;
  }

  /**
   * Listen for a server message type, or `close` (`{code, reason, final}`).
   * @template {ServerMessage['type'] | 'close'} T
   * @param {T} type
   * @param {(message: T extends ServerMessage['type'] ? Extract<ServerMessage, { type: T }> : { code: number, reason: string, final: boolean }) => void} handler
   * @returns {() => void} unsubscribe
   */
  on(type, handler) {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  /** @param {string} type @param {unknown} message */
  emit(type, message) {
    for (const handler of this.handlers.get(type) ?? []) handler(message);
  }

  /** Connect (or reconnect); resolves with the welcome. @returns {Promise<Welcome>} */
  connect() {
    this.stopped = false;
    return new Promise((resolve, reject) => {
      const url = new URL(this.options.url);
      if (this.resumeToken) url.searchParams.set('resume', this.resumeToken);
      const socket = new WebSocket(url, [SUBPROTOCOL, this.options.token]);
      this.socket = socket;
      let welcomed = false;
      socket.onmessage = (event) => {
        /** @type {ServerMessage} */
        const message = JSON.parse(String(event.data));
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
        if (message.type === 'error' && message.code === 'resume-failed') this.resumeToken = null;
        this.emit(message.type, message);
      };
      socket.onclose = (event) => {
        this.stopPing();
        const final = this.stopped || FINAL_CLOSE_CODES.has(event.code);
        this.emit('close', { code: event.code, reason: event.reason, final });
        if (!welcomed) reject(new Error(`connection refused (${event.code}${event.reason ? `: ${event.reason}` : ''})`));
        // A refused resume closes with 4001 but a fresh join may still work.
        const retryFresh = event.code === 4001 && !welcomed && this.resumeToken === null && this.welcome !== null;
        if (!this.stopped && (!final || retryFresh)) this.scheduleReconnect();
      };
    });
  }

  scheduleReconnect() {
    const base = Math.min(this.options.maxBackoffMs, 250 * 2 ** this.attempt);
    this.attempt += 1;
    setTimeout(() => {
      if (!this.stopped) this.connect().catch(() => {});
    }, base / 2 + Math.random() * (base / 2));
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => this.socket?.send(PING_FRAME), this.options.pingIntervalMs);
  }

  stopPing() {
    clearInterval(this.pingTimer);
  }

  /** @param {ClientMessage} message */
  send(message) {
    if (this.socket?.readyState !== WebSocket.OPEN) throw new Error('not connected');
    this.socket.send(JSON.stringify(message));
  }

  /** @param {string} to @param {string} sdp */
  offer(to, sdp) {
    this.send({ type: 'offer', to, sdp });
  }

  /** @param {string} to @param {string} sdp */
  answer(to, sdp) {
    this.send({ type: 'answer', to, sdp });
  }

  /** @param {string} to @param {IceCandidate | null} candidate `null` ends the candidates */
  candidate(to, candidate) {
    this.send({ type: 'ice-candidate', to, candidate });
  }

  /** @param {string} peerId @param {boolean} muted */
  mute(peerId, muted) {
    this.send({ type: 'mute', peerId, muted });
  }

  /** @param {string} peerId */
  kick(peerId) {
    this.send({ type: 'kick', peerId });
  }

  /** @param {string} peerId */
  admit(peerId) {
    this.send({ type: 'admit', peerId });
  }

  /** @param {string} name */
  setName(name) {
    this.send({ type: 'set-name', name });
  }

  closeRoom() {
    this.send({ type: 'close-room' });
  }

  /** Leave for good (no resume). */
  leave() {
    this.stopped = true;
    this.stopPing();
    if (this.socket?.readyState === WebSocket.OPEN) this.send({ type: 'leave' });
    else this.socket?.close();
  }
}
