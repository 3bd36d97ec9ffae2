/**
 * One Durable Object per room: a state machine over the room's participants.
 *
 * State lives in the object's SQLite storage (room settings, participants, messages held
 * for peers that are reconnecting) and is rebuilt in the constructor, so hibernation and
 * eviction lose nothing. Live sockets are found again through `ctx.getWebSockets()` and
 * their attachments. Relaying to a connected peer touches no storage; relaying to one that
 * is reconnecting stores the frame until it resumes.
 */
import { DurableObject } from 'cloudflare:workers';
import {
  CLOSE_CODES,
  PROTOCOL_VERSION,
  parseClientMessage,
  type BroadcastInfo,
  type ClientMessage,
  type ErrorCode,
  type LeaveReason,
  type Participant,
  type RelayMessage,
  type Role,
  type RoomInfo,
  type ServerMessage,
} from '../protocol/messages';
import { readConfig, requireSecret, type Config } from '../server/config';
import { iceServersFor } from '../server/ice';
import { randomId } from '../server/random';
import { UPGRADE_HEADERS, type AuthorizeResult, type BeginBroadcastResult, type CreateRoomSettings, type TokenActor } from '../protocol/handoff';
import { isRole, ROLE_TABLE } from '../protocol/roles';
import { isRunning, REASONS } from './broadcast-state';
import { canSee, canSignal, decideAdmit, decideCloseRoom, decideKick, decideMute, decideSeat } from './policy';
import {
  close,
  exceedsBytes,
  rejectUpgrade,
  send,
  sendError,
  sendRaw,
  TokenBucket,
  utf8Length,
  type SocketAttachment,
} from '../server/websocket';

interface RoomState extends RoomInfo {
  closed: boolean;
  /** Invite generation per role; tokens of an older generation are refused. */
  generations: Record<Role, number>;
  /**
   * The program feed: which one holds the room, its last state, a host's stop request, and
   * the lineage of the token that runs it (a kick of that person stops it).
   */
  broadcast?: { id: string; info: BroadcastInfo; stop?: boolean; lineage?: string[] };
  /** When the room was created or last became empty (for idle expiry). */
  activeAt: number;
}

interface PeerRecord extends Participant {
  resumeToken: string;
  /** Id of the token it joined with; a kick bars that token (and what it minted) from the air. */
  tokenId: string;
  /** That token's id and its minters' ids (absent in records from before lineages: `[tokenId]`). */
  lineage?: string[];
  /** Set while the socket is gone and the grace period runs. */
  disconnectedAt: number | null;
}

/** Per-socket memory: its attachment, its frame budget and its budget for state changes. */
interface Connection {
  attachment: SocketAttachment;
  bucket: TokenBucket;
  /** Name and mute changes: each one is stored and fanned out to everyone, so they have a budget of their own. */
  changes: TokenBucket;
}

/** Name and mute changes a connection may make: a burst (a "Mute all"), then a steady few a second. */
export const STATE_CHANGE_BURST = 20;
export const STATE_CHANGES_PER_SECOND = 2;

/**
 * A running feed reports at least every 8 s (FEED_HEARTBEAT_MS). Without a report for this
 * long it is shown `reconnecting` (and no longer blocks a new feed)...
 */
export const BROADCAST_STALE_MS = 20_000;
/** ...and without one for this long it is over (`error`): the state follows reality. */
export const BROADCAST_LOST_MS = 60_000;


const SCHEMA = `
  CREATE TABLE IF NOT EXISTS room (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS peers (peer_id TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, peer_id TEXT NOT NULL, frame TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS outbox_peer ON outbox (peer_id, seq);
  CREATE TABLE IF NOT EXISTS kicked (token_id TEXT PRIMARY KEY) WITHOUT ROWID;
`;

function publicView(peer: PeerRecord): Participant {
  const { peerId, role, name, muted, mutedBy, connected, waiting } = peer;
  return name === undefined
    ? { peerId, role, muted, mutedBy, connected, waiting }
    : { peerId, role, name, muted, mutedBy, connected, waiting };
}

export class Room extends DurableObject<Env> {
  private readonly config: Config;
  private readonly sql: SqlStorage;
  private room: RoomState | null = null;
  private readonly peers = new Map<string, PeerRecord>();
  private readonly sockets = new Map<string, WebSocket>();
  /** Per-socket memory: its attachment and rate bucket (rebuilt from the attachment after hibernation). */
  private readonly connections = new WeakMap<WebSocket, Connection>();
  /** Frames held for each reconnecting peer: how many, and their size in UTF-8 bytes. */
  private readonly queued = new Map<string, { count: number; bytes: number }>();
  /**
   * Last report from the show's feed. Not persisted (a heartbeat would cost a write every
   * few seconds): after a restart of this object it counts from the restart, which only
   * delays the staleness verdict by one period.
   */
  private broadcastSeenAt = Date.now();
  /** The alarm as last set by this instance: a time, none (null), or not known yet (undefined). */
  private alarmAt: number | null | undefined = undefined;
  /** Frames this instance has handled; shows that pings never wake a hibernated room. */
  framesHandled = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = readConfig(env);
    this.sql = ctx.storage.sql;
    // Answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    this.load();
  }

  private load(): void {
    this.alarmAt = undefined;
    this.sql.exec(SCHEMA);
    const row = this.sql.exec<{ data: string }>('SELECT data FROM room WHERE id = 1').toArray()[0];
    this.room = row ? (JSON.parse(row.data) as RoomState) : null;
    this.peers.clear();
    for (const { data } of this.sql.exec<{ data: string }>('SELECT data FROM peers')) {
      const peer = JSON.parse(data) as PeerRecord;
      this.peers.set(peer.peerId, peer);
    }
    this.queued.clear();
    for (const { peer_id, count, bytes } of this.sql.exec<{ peer_id: string; count: number; bytes: number }>(
      'SELECT peer_id, COUNT(*) AS count, SUM(LENGTH(CAST(frame AS BLOB))) AS bytes FROM outbox GROUP BY peer_id',
    )) {
      this.queued.set(peer_id, { count, bytes });
    }
    this.sockets.clear();
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = ws.deserializeAttachment() as SocketAttachment | null;
      if (attachment && this.peers.has(attachment.peerId)) this.sockets.set(attachment.peerId, ws);
      else close(ws, CLOSE_CODES.forbidden, 'session no longer exists');
    }
  }

  // ---- persistence ----------------------------------------------------------------

  private saveRoom(room: RoomState): void {
    this.room = room;
    this.sql.exec('INSERT OR REPLACE INTO room (id, data) VALUES (1, ?)', JSON.stringify(room));
  }

  private savePeer(peer: PeerRecord): void {
    this.peers.set(peer.peerId, peer);
    this.sql.exec('INSERT OR REPLACE INTO peers (peer_id, data) VALUES (?, ?)', peer.peerId, JSON.stringify(peer));
  }

  private deletePeer(peerId: string): void {
    const hadQueue = this.queued.has(peerId);
    this.peers.delete(peerId);
    this.sockets.delete(peerId);
    this.queued.delete(peerId);
    this.sql.exec('DELETE FROM peers WHERE peer_id = ?', peerId);
    if (hadQueue) this.sql.exec('DELETE FROM outbox WHERE peer_id = ?', peerId);
  }

  private touch(): void {
    if (this.room) this.saveRoom({ ...this.room, activeAt: Date.now() });
  }

  // ---- RPC from the Worker ----------------------------------------------------------

  async create(settings: CreateRoomSettings): Promise<RoomInfo> {
    if (this.room) throw new Error('room already exists');
    const now = Date.now();
    const room: RoomState = {
      roomId: settings.roomId,
      ...(settings.name === undefined ? {} : { name: settings.name }),
      lobby: settings.lobby,
      maxParticipants: settings.maxParticipants,
      createdAt: now,
      closed: false,
      generations: { host: 0, producer: 0, caller: 0 },
      activeAt: now,
    };
    this.saveRoom(room);
    await this.scheduleAlarm();
    return this.info(room);
  }

  /**
   * Is this token (already signature-checked) still good here? Staff tokens that were
   * kicked, or minted from one that was, are refused everywhere; a kicked caller's may still
   * join, into the lobby.
   */
  async authorize(actor: TokenActor): Promise<AuthorizeResult> {
    const room = this.room;
    if (!room || room.closed) {
      return { ok: false, code: 'room-not-found', message: 'room does not exist or was closed' };
    }
    if (room.generations[actor.role] !== actor.generation) {
      return { ok: false, code: 'token-revoked', message: `${actor.role} invites of this room were revoked` };
    }
    if (actor.role !== 'caller' && this.barred(actor.lineage)) {
      return { ok: false, code: 'forbidden', message: 'this invite was kicked from the room; ask the host for a new one' };
    }
    return { ok: true };
  }

  /** Was this token, or one that minted it, kicked? */
  private barred(lineage: readonly string[]): boolean {
    if (lineage.length === 0) return false;
    const marks = lineage.map(() => '?').join(',');
    return this.sql.exec(`SELECT 1 FROM kicked WHERE token_id IN (${marks}) LIMIT 1`, ...lineage).toArray().length > 0;
  }

  /** Current invite generation of `role`, for minting a token; host only. */
  async generationFor(actor: TokenActor, role: Role): Promise<AuthorizeResult & { generation?: number }> {
    const check = await this.authorize(actor);
    if (!check.ok) return check;
    if (!ROLE_TABLE[actor.role].manageInvites) {
      return { ok: false, code: 'forbidden', message: 'only a host can manage invites' };
    }
    return { ok: true, generation: this.room!.generations[role] };
  }

  /** Revoke every outstanding invite of `role`; returns the new generation. Host only. */
  async revoke(actor: TokenActor, role: Role): Promise<AuthorizeResult & { generation?: number }> {
    const check = await this.generationFor(actor, role);
    if (!check.ok) return check;
    const room = this.room!;
    const generation = room.generations[role] + 1;
    this.saveRoom({ ...room, generations: { ...room.generations, [role]: generation } });
    return { ok: true, generation };
  }

  private info(room: RoomState): RoomInfo {
    const { roomId, name, lobby, maxParticipants, createdAt } = room;
    return name === undefined ? { roomId, lobby, maxParticipants, createdAt } : { roomId, name, lobby, maxParticipants, createdAt };
  }

  // ---- joining ----------------------------------------------------------------------

  override async fetch(request: Request): Promise<Response> {
    const role = request.headers.get(UPGRADE_HEADERS.role) as Role | null;
    const generation = Number(request.headers.get(UPGRADE_HEADERS.generation));
    const tokenId = request.headers.get(UPGRADE_HEADERS.tokenId);
    const lineage = (request.headers.get(UPGRADE_HEADERS.lineage) ?? '').split(',').filter(Boolean);
    const protocol = request.headers.get(UPGRADE_HEADERS.protocol);
    if (!role || !isRole(role) || !tokenId || request.headers.get('Upgrade') !== 'websocket') {
      return new Response('expected a WebSocket upgrade from the Worker', { status: 400 });
    }
    const url = new URL(request.url);
    const resumeToken = url.searchParams.get('resume');
    const room = this.room;
    if (!room || room.closed) {
      return rejectUpgrade('room-not-found', 'room does not exist or was closed', protocol);
    }
    if (resumeToken) return this.resume(role, resumeToken, protocol);

    const auth = await this.authorize({ role, generation, lineage });
    if (!auth.ok) return rejectUpgrade(auth.code, auth.message, protocol);
    const kicked = this.barred(lineage);
    // A staff member joining afresh (a reloaded page) takes over its own seat still in its grace period.
    if (role !== 'caller') {
      const ghost = [...this.peers.values()].find((p) => p.tokenId === tokenId && p.role === role && !p.connected);
      if (ghost) this.removePeer(ghost, 'left');
    }
    const seat = decideSeat(role, [...this.peers.values()], Math.min(room.maxParticipants, this.config.maxParticipants), this.config.staffSeats);
    if (!seat.ok) return rejectUpgrade('room-full', seat.reason, protocol);

    const peer: PeerRecord = {
      peerId: randomId(9),
      role,
      muted: false,
      mutedBy: null,
      connected: true,
      // A caller whose invite was kicked waits in the lobby until staff admit it again.
      waiting: role === 'caller' && (room.lobby || kicked),
      resumeToken: randomId(24),
      tokenId,
      lineage,
      disconnectedAt: null,
    };
    const response = this.accept(peer, protocol);
    this.savePeer(peer);
    await this.sendWelcome(peer, false);
    this.broadcast(peer, { type: 'peer-joined', participant: publicView(peer) });
    await this.scheduleAlarm();
    return response;
  }

  private async resume(role: Role, resumeToken: string, protocol: string | null): Promise<Response> {
    const peer = [...this.peers.values()].find((p) => p.resumeToken === resumeToken);
    if (!peer || peer.role !== role) {
      return rejectUpgrade('resume-failed', 'resume token is unknown or expired; join again without it', protocol);
    }
    const previous = this.sockets.get(peer.peerId);
    if (previous) {
      this.sockets.delete(peer.peerId);
      close(previous, CLOSE_CODES.replaced, 'resumed on a newer connection');
    }
    const wasDisconnected = !peer.connected;
    const resumed: PeerRecord = { ...peer, connected: true, disconnectedAt: null, resumeToken: randomId(24) };
    const response = this.accept(resumed, protocol);
    this.savePeer(resumed);
    await this.sendWelcome(resumed, true);
    this.flushOutbox(resumed.peerId);
    if (wasDisconnected) this.broadcast(resumed, { type: 'participant-updated', participant: publicView(resumed) });
    await this.scheduleAlarm();
    return response;
  }

  private accept(peer: PeerRecord, protocol: string | null): Response {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [peer.peerId]);
    server.serializeAttachment({ peerId: peer.peerId, seenAt: Date.now() } satisfies SocketAttachment);
    this.sockets.set(peer.peerId, server);
    const headers = protocol ? { 'Sec-WebSocket-Protocol': protocol } : undefined;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  private async sendWelcome(peer: PeerRecord, resumed: boolean): Promise<void> {
    const ws = this.sockets.get(peer.peerId);
    if (!ws || !this.room) return;
    const ice = await iceServersFor(this.config, requireSecret(this.env, 'TURN_SECRET'), peer.peerId);
    send(ws, {
      type: 'welcome',
      protocol: PROTOCOL_VERSION,
      roomId: this.room.roomId,
      peerId: peer.peerId,
      role: peer.role,
      resumeToken: peer.resumeToken,
      resumed,
      waiting: peer.waiting,
      iceServers: ice.iceServers,
      iceExpiresAt: ice.expiresAt,
      participants: this.visibleTo(peer),
      room: this.info(this.room),
      // What this connection may send, so a client can pace itself and never trip them.
      limits: { messagesPerSecond: this.config.rateLimitPerSecond, messageBurst: this.config.rateLimitBurst, maxMessageBytes: this.config.maxMessageBytes },
      // A waiting caller learns nothing about the show but its own state.
      ...(peer.waiting ? {} : { broadcast: this.broadcastInfo() }),
    });
  }

  /** Fresh TURN credentials over the session itself: a long show outlives its tokens, not its session. */
  private async sendIceServers(peer: PeerRecord, ws: WebSocket): Promise<void> {
    const ice = await iceServersFor(this.config, requireSecret(this.env, 'TURN_SECRET'), peer.peerId);
    send(ws, { type: 'ice-servers', iceServers: ice.iceServers, iceExpiresAt: ice.expiresAt });
  }

  private visibleTo(viewer: PeerRecord): Participant[] {
    const list: Participant[] = [];
    for (const other of this.peers.values()) {
      if (other.peerId !== viewer.peerId && canSee(viewer, other)) list.push(publicView(other));
    }
    return list;
  }

  private flushOutbox(peerId: string): void {
    const ws = this.sockets.get(peerId);
    if (!ws || !this.queued.get(peerId)) return;
    for (const { frame } of this.sql.exec<{ frame: string }>('SELECT frame FROM outbox WHERE peer_id = ? ORDER BY seq', peerId)) {
      sendRaw(ws, frame);
    }
    this.sql.exec('DELETE FROM outbox WHERE peer_id = ?', peerId);
    this.queued.delete(peerId);
  }

  /** Send an event about `subject` to every connected peer allowed to see it (not itself). */
  private broadcast(subject: Participant, message: ServerMessage, includeSubject = false): void {
    const frame = JSON.stringify(message);
    for (const [peerId, ws] of this.sockets) {
      if (peerId === subject.peerId && !includeSubject) continue;
      const viewer = this.peers.get(peerId);
      if (viewer && canSee(viewer, subject)) sendRaw(ws, frame);
    }
  }

  // ---- messages ---------------------------------------------------------------------

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    this.framesHandled += 1;
    const connection = this.connection(ws);
    const peer = connection && this.peers.get(connection.attachment.peerId);
    if (!connection || !peer || this.sockets.get(peer.peerId) !== ws) {
      close(ws, CLOSE_CODES.forbidden, 'session no longer exists');
      return;
    }
    this.heardFrom(ws, connection.attachment);
    const bucket = connection.bucket;
    if (!bucket.take()) return this.strike(ws, bucket, 'rate-limited', 'too many messages; slow down');
    if (typeof data !== 'string') {
      if (data.byteLength > this.config.maxMessageBytes) {
        return this.strike(ws, bucket, 'too-large', `frame exceeds ${this.config.maxMessageBytes} bytes`);
      }
      return sendError(ws, 'invalid-message', 'binary frames are not part of the protocol; send JSON text');
    }
    if (exceedsBytes(data, this.config.maxMessageBytes)) {
      return this.strike(ws, bucket, 'too-large', `frame exceeds ${this.config.maxMessageBytes} bytes`);
    }
    const parsed = parseClientMessage(data);
    if (!parsed.ok) return sendError(ws, parsed.code, parsed.message);
    await this.handle(peer, ws, parsed.message, connection);
  }

  private connection(ws: WebSocket): Connection | undefined {
    let connection = this.connections.get(ws);
    if (!connection) {
      const attachment = ws.deserializeAttachment() as SocketAttachment | null;
      if (!attachment) return undefined;
      attachment.seenAt ??= Date.now(); // a socket accepted before the room kept this
      connection = {
        attachment,
        bucket: new TokenBucket(this.config.rateLimitPerSecond, this.config.rateLimitBurst),
        changes: new TokenBucket(STATE_CHANGES_PER_SECOND, STATE_CHANGE_BURST),
      };
      this.connections.set(ws, connection);
    }
    return connection;
  }

  /** Remember that this socket is alive (in its attachment, so hibernation keeps it; at most once a second). */
  private heardFrom(ws: WebSocket, attachment: SocketAttachment): void {
    const now = Date.now();
    if (now - attachment.seenAt < 1000) return;
    attachment.seenAt = now;
    ws.serializeAttachment(attachment);
  }

  /** Last sign of life from a socket: a frame the room handled, or a ping the runtime answered. */
  private lastHeard(ws: WebSocket): number {
    const seenAt = this.connection(ws)?.attachment.seenAt ?? 0;
    return Math.max(seenAt, this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0);
  }

  private strike(ws: WebSocket, bucket: TokenBucket, code: 'rate-limited' | 'too-large', message: string): void {
    const strikes = bucket.strike();
    if (strikes >= this.config.abuseStrikes) {
      sendError(ws, code, `${message}; closing the connection`);
      close(ws, CLOSE_CODES.policy, 'policy violation: rate or size abuse');
      return;
    }
    // Tell the client once per run of refusals, not once per refused frame.
    if (strikes === 1) sendError(ws, code, message);
  }

  /**
   * A name or mute change: one that changes nothing is dropped (nothing stored, nobody
   * told); the rest spend the connection's change budget. Refusals tell the client once a run.
   */
  private allowChange(ws: WebSocket, connection: Connection, unchanged: boolean): boolean {
    if (unchanged) return false;
    if (connection.changes.take()) return true;
    if (connection.changes.strike() === 1) sendError(ws, 'rate-limited', 'too many name or mute changes; slow down');
    return false;
  }

  private async handle(peer: PeerRecord, ws: WebSocket, message: ClientMessage, connection: Connection): Promise<void> {
    switch (message.type) {
      case 'offer':
      case 'answer':
      case 'ice-candidate':
        return this.relay(peer, ws, message);
      case 'ping':
        return send(ws, { type: 'pong' });
      case 'mute':
        return this.mute(peer, ws, message.peerId, message.muted, connection);
      case 'kick':
        return this.kick(peer, ws, message.peerId);
      case 'admit':
        return this.admit(peer, ws, message.peerId);
      case 'set-name':
        if (!this.allowChange(ws, connection, peer.name === message.name)) return;
        return this.update({ ...peer, name: message.name });
      case 'refresh-ice':
        return this.sendIceServers(peer, ws);
      case 'close-room':
        return this.closeRoom(peer, ws);
      case 'stop-broadcast':
        if (!ROLE_TABLE[peer.role].broadcast) return sendError(ws, 'forbidden', `a ${peer.role} cannot stop the broadcast`);
        return this.requestBroadcastStop();
      case 'leave':
        this.removePeer(peer, 'left');
        close(ws, CLOSE_CODES.normal, 'left');
        return this.scheduleAlarm();
    }
  }

  /** A peer the actor may address, or `undefined` after telling it `peer-not-found`. */
  private target(actor: PeerRecord, ws: WebSocket, peerId: string): PeerRecord | undefined {
    const target = this.peers.get(peerId);
    if (!target || !canSee(actor, target)) {
      sendError(ws, 'peer-not-found', `no peer "${peerId}" in this room`);
      return undefined;
    }
    return target;
  }

  private relay(from: PeerRecord, ws: WebSocket, message: RelayMessage): void {
    const to = this.target(from, ws, message.to);
    if (!to) return;
    if (!canSignal(from, to)) return sendError(ws, 'forbidden', 'you may not signal that peer');
    const frame = JSON.stringify(
      message.type === 'ice-candidate'
        ? { type: message.type, from: from.peerId, candidate: message.candidate }
        : { type: message.type, from: from.peerId, sdp: message.sdp },
    );
    const socket = this.sockets.get(to.peerId);
    if (socket) return sendRaw(socket, frame);
    // Reconnecting: keep it, in order, until the peer resumes or its grace period ends.
    // Both caps bound the storage one reconnecting peer can take.
    const { count, bytes } = this.queued.get(to.peerId) ?? { count: 0, bytes: 0 };
    const size = utf8Length(frame);
    if (count + 1 > this.config.resumeQueueMax || bytes + size > this.config.resumeQueueMaxBytes) {
      return sendError(ws, 'rate-limited', `peer "${to.peerId}" is reconnecting and has too many messages waiting`);
    }
    this.sql.exec('INSERT INTO outbox (peer_id, frame) VALUES (?, ?)', to.peerId, frame);
    this.queued.set(to.peerId, { count: count + 1, bytes: bytes + size });
  }

  private mute(actor: PeerRecord, ws: WebSocket, peerId: string, muted: boolean, connection: Connection): void {
    const target = this.target(actor, ws, peerId);
    if (!target) return;
    const decision = decideMute(actor, target, muted);
    if (!decision.ok) return sendError(ws, 'forbidden', decision.reason);
    const self = actor.peerId === target.peerId;
    // A self-mute on top of a moderator's mute keeps the moderator's (stronger) mute.
    const mutedBy = !muted ? null : self && target.mutedBy !== 'moderator' ? 'self' : 'moderator';
    if (!this.allowChange(ws, connection, target.muted === muted && target.mutedBy === mutedBy)) return;
    this.update({ ...target, muted, mutedBy });
  }

  private update(peer: PeerRecord): void {
    this.savePeer(peer);
    this.broadcast(peer, { type: 'participant-updated', participant: publicView(peer) }, true);
  }

  private async kick(actor: PeerRecord, ws: WebSocket, peerId: string): Promise<void> {
    const target = this.target(actor, ws, peerId);
    if (!target) return;
    const decision = decideKick({ ...actor, lineage: actor.lineage ?? [actor.tokenId] }, target);
    if (!decision.ok) return sendError(ws, 'forbidden', decision.reason);
    // The invite it came with stays off the air: a caller's rejoin waits in the lobby, a
    // producer's or host's is refused.
    if (target.tokenId) this.sql.exec('INSERT OR IGNORE INTO kicked (token_id) VALUES (?)', target.tokenId);
    const socket = this.sockets.get(target.peerId);
    if (socket) {
      send(socket, { type: 'kicked' });
      close(socket, CLOSE_CODES.forbidden, 'kicked');
    }
    this.removePeer(target, 'kicked');
    // A feed run with the kicked token (or one minted from it) goes off air with its owner.
    if (target.tokenId && this.room?.broadcast?.lineage?.includes(target.tokenId)) await this.requestBroadcastStop();
    return this.scheduleAlarm();
  }

  private admit(actor: PeerRecord, ws: WebSocket, peerId: string): void {
    const target = this.target(actor, ws, peerId);
    if (!target) return;
    const decision = decideAdmit(actor, target);
    if (!decision.ok) return sendError(ws, 'forbidden', decision.reason);
    const admitted: PeerRecord = { ...target, waiting: false };
    this.savePeer(admitted);
    const participant = publicView(admitted);
    const updated = JSON.stringify({ type: 'participant-updated', participant } satisfies ServerMessage);
    const joined = JSON.stringify({ type: 'peer-joined', participant } satisfies ServerMessage);
    for (const [viewerId, socket] of this.sockets) {
      const viewer = this.peers.get(viewerId);
      if (!viewer) continue;
      if (viewerId === admitted.peerId) {
        send(socket, { type: 'admitted', participants: this.visibleTo(admitted), broadcast: this.broadcastInfo() });
      } else if (canSee(viewer, target)) {
        sendRaw(socket, updated); // staff saw it waiting
      } else if (canSee(viewer, admitted)) {
        sendRaw(socket, joined); // everyone else meets it now
      }
    }
  }

  private closeRoom(actor: PeerRecord, ws: WebSocket): Promise<void> | void {
    const decision = decideCloseRoom(actor);
    if (!decision.ok) return sendError(ws, 'forbidden', decision.reason);
    for (const socket of this.sockets.values()) {
      send(socket, { type: 'room-closed' });
      close(socket, CLOSE_CODES.roomNotFound, 'room closed by the host');
    }
    for (const peerId of [...this.peers.keys()]) this.deletePeer(peerId);
    this.saveRoom({ ...this.room!, closed: true, activeAt: Date.now() });
    return this.scheduleAlarm();
  }

  private removePeer(peer: PeerRecord, reason: LeaveReason): void {
    const wasVisible = new Map<string, boolean>();
    for (const [viewerId] of this.sockets) {
      const viewer = this.peers.get(viewerId);
      if (viewer) wasVisible.set(viewerId, canSee(viewer, peer));
    }
    this.deletePeer(peer.peerId);
    // Idle expiry counts from the moment the room became empty.
    if (this.peers.size === 0) this.touch();
    const frame = JSON.stringify({ type: 'peer-left', peerId: peer.peerId, reason } satisfies ServerMessage);
    for (const [viewerId, socket] of this.sockets) {
      if (wasVisible.get(viewerId)) sendRaw(socket, frame);
    }
  }

  // ---- broadcast --------------------------------------------------------------------

  private broadcastInfo(): BroadcastInfo {
    return this.room?.broadcast?.info ?? { state: 'idle' };
  }

  /**
   * A host or producer opens a feed (the Worker asks); one per room at a time. The
   * broadcaster of the running show may take it up again after a drop with `resumeId`
   * (the broadcast id its feed socket was given).
   */
  async beginBroadcast(actor: TokenActor, resumeId?: string): Promise<BeginBroadcastResult> {
    const auth = await this.authorize(actor);
    if (!auth.ok) return auth;
    if (!ROLE_TABLE[actor.role].broadcast) {
      return { ok: false, code: 'forbidden', message: `a ${actor.role} cannot broadcast` };
    }
    const room = this.room!;
    const current = room.broadcast;
    const named = room.name === undefined ? {} : { name: room.name };
    if (resumeId !== undefined) {
      // A resume only ever takes up the same running show: a stopped or ended one stays so.
      if (!current || !isRunning(current.info) || resumeId !== current.id || current.stop) {
        return { ok: false, code: 'broadcast-ended', message: 'this broadcast has ended; go live again to start a new one' };
      }
      this.broadcastSeenAt = Date.now();
      const { since, listeners } = current.info;
      return { ok: true, id: current.id, ...named, ...(since === undefined ? {} : { since }), ...(listeners ? { peak: listeners.peak } : {}) };
    }
    if (actor.expired) {
      return { ok: false, code: 'unauthorized', message: 'token has expired' };
    }
    // A feed that stopped reporting (its object restarted, its broadcaster is gone) no longer holds the room.
    if (current && isRunning(current.info) && Date.now() - this.broadcastSeenAt < BROADCAST_STALE_MS) {
      return { ok: false, code: 'broadcast-busy', message: 'a broadcast is already running in this room' };
    }
    const id = randomId(9);
    this.broadcastSeenAt = Date.now();
    this.setBroadcast({ id, info: { state: 'connecting', by: actor.role }, lineage: actor.lineage });
    await this.scheduleAlarm();
    return { ok: true, id, ...named };
  }

  /** The feed's state report and heartbeat; the answer tells it whether to stop. */
  async broadcastChanged(id: string, info: BroadcastInfo): Promise<{ stop: boolean }> {
    const current = this.room?.broadcast;
    if (!this.room || this.room.closed || current?.id !== id) return { stop: true };
    this.broadcastSeenAt = Date.now();
    if (JSON.stringify(current.info) !== JSON.stringify(info)) {
      this.setBroadcast({ ...current, info });
      // Idle expiry counts from the end of the show, never from before it.
      if (!isRunning(info) && this.peers.size === 0) this.touch();
      await this.scheduleAlarm();
    }
    return { stop: current.stop === true };
  }

  private requestBroadcastStop(): Promise<void> | void {
    const current = this.room?.broadcast;
    if (!current || !isRunning(current.info)) return;
    // Nothing reports any more: there is no feed to tell, the show is over now.
    if (Date.now() - this.broadcastSeenAt >= BROADCAST_STALE_MS) return this.setBroadcast({ id: current.id, info: { state: 'idle' } });
    // Otherwise the feed is told at once, and the state changes when it stops. The recorded
    // request is the fallback: the answer to its next report, should this call not reach it.
    this.saveRoom({ ...this.room!, broadcast: { ...current, stop: true } });
    return this.stopFeed(this.room!.roomId, current.id);
  }

  private async stopFeed(roomId: string, broadcastId: string): Promise<void> {
    const feeds = this.env.FEEDS as DurableObjectNamespace<import('./feed').Feed>;
    try {
      await feeds.get(feeds.idFromName(roomId)).stop(broadcastId);
    } catch (error) {
      console.error(`room ${roomId}: cannot reach the feed to stop it`, error);
    }
  }

  /** Alarm: a running feed that stopped reporting leaves `live`, then ends. */
  private checkBroadcast(now: number): void {
    const current = this.room?.broadcast;
    if (!current || !isRunning(current.info)) return;
    const silentMs = now - this.broadcastSeenAt;
    if (silentMs >= BROADCAST_LOST_MS) {
      this.setBroadcast({ id: current.id, info: { state: 'error', reason: REASONS.feedLost, ...(current.info.by ? { by: current.info.by } : {}) } });
    } else if (silentMs >= BROADCAST_STALE_MS && current.info.reason !== REASONS.feedSilent) {
      this.setBroadcast({ ...current, info: { ...current.info, state: 'reconnecting', reason: REASONS.feedSilent } });
    }
  }

  private setBroadcast(broadcast: NonNullable<RoomState['broadcast']>): void {
    this.saveRoom({ ...this.room!, broadcast });
    const frame = JSON.stringify({ type: 'broadcast-updated', broadcast: broadcast.info } satisfies ServerMessage);
    for (const [peerId, ws] of this.sockets) {
      if (this.peers.get(peerId)?.waiting === false) sendRaw(ws, frame);
    }
  }

  // ---- disconnects, grace period, expiry --------------------------------------------

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Complete the closing handshake: without the reply, clients wait in CLOSING.
    close(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
    await this.disconnected(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.disconnected(ws);
  }

  private async disconnected(ws: WebSocket): Promise<void> {
    if (this.dropSocket(ws)) await this.scheduleAlarm();
  }

  /** The peer's socket is gone: its grace period starts. False if the socket no longer held a peer. */
  private dropSocket(ws: WebSocket): boolean {
    const peerId = this.connection(ws)?.attachment.peerId;
    if (peerId === undefined || this.sockets.get(peerId) !== ws) return false; // left, kicked or replaced
    this.sockets.delete(peerId);
    const peer = this.peers.get(peerId);
    if (!peer) return false;
    const dropped: PeerRecord = { ...peer, connected: false, disconnectedAt: Date.now() };
    this.savePeer(dropped);
    this.broadcast(dropped, { type: 'participant-updated', participant: publicView(dropped) });
    return true;
  }

  override async alarm(): Promise<void> {
    this.alarmAt = null; // a fired alarm is gone
    const now = Date.now();
    // A socket whose network vanished stays open without a word: after PEER_SILENCE_SECONDS
    // of silence (pings answered by the runtime count as words) it is treated as lost.
    const silenceMs = this.config.peerSilenceSeconds * 1000;
    for (const ws of [...this.sockets.values()]) {
      if (now - this.lastHeard(ws) < silenceMs) continue;
      this.dropSocket(ws);
      close(ws, CLOSE_CODES.silent, `nothing received for ${this.config.peerSilenceSeconds} s; reconnect with resume`);
    }
    const graceMs = this.config.resumeGraceSeconds * 1000;
    for (const peer of [...this.peers.values()]) {
      if (!peer.connected && peer.disconnectedAt !== null && peer.disconnectedAt + graceMs <= now) {
        this.removePeer(peer, 'timeout');
      }
    }
    this.checkBroadcast(now);
    const room = this.room;
    // A room whose feed still runs is not idle, whoever is connected.
    const idle = room && this.peers.size === 0 && !isRunning(room.broadcast?.info);
    if (idle && room.activeAt + this.config.roomIdleSeconds * 1000 <= now) {
      // Idle long enough: forget the room entirely; its tokens now find no room.
      await this.ctx.storage.deleteAll();
      this.load();
      return;
    }
    await this.scheduleAlarm();
  }

  /**
   * One alarm covers the nearest of: a connected socket's silence deadline, a grace-period
   * end, and (when nobody is here) idle expiry.
   */
  private async scheduleAlarm(): Promise<void> {
    const room = this.room;
    if (!room) return;
    const graceMs = this.config.resumeGraceSeconds * 1000;
    const silenceMs = this.config.peerSilenceSeconds * 1000;
    let next = Number.POSITIVE_INFINITY;
    for (const ws of this.sockets.values()) next = Math.min(next, this.lastHeard(ws) + silenceMs);
    for (const peer of this.peers.values()) {
      if (!peer.connected && peer.disconnectedAt !== null) next = Math.min(next, peer.disconnectedAt + graceMs);
    }
    if (this.peers.size === 0) next = Math.min(next, room.activeAt + this.config.roomIdleSeconds * 1000);
    if (isRunning(room.broadcast?.info)) {
      const silent = room.broadcast!.info.reason === REASONS.feedSilent;
      next = Math.min(next, this.broadcastSeenAt + (silent ? BROADCAST_LOST_MS : BROADCAST_STALE_MS));
    }
    // Each setAlarm is a billed row write: an alarm already due earlier is kept (when it
    // fires it schedules the next one), so joins and messages rarely write one.
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (next === Number.POSITIVE_INFINITY) {
      if (this.alarmAt === null) return;
      await this.ctx.storage.deleteAlarm();
      this.alarmAt = null;
    } else if (this.alarmAt === null || next < this.alarmAt) {
      await this.ctx.storage.setAlarm(next);
      this.alarmAt = next;
    }
  }
}
