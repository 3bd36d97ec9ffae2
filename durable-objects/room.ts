/**
 * One Durable Object per room: a state machine over the room's participants. It decides;
 * who may do what is policy.ts (over the role table), what is kept is room-storage.ts (rows
 * rebuilt in the constructor, so hibernation and eviction lose nothing), the live sockets
 * are room-connections.ts, and the one alarm is alarm.ts. It answers the Worker with codes
 * and messages; the Worker maps them to HTTP. Relaying to a connected peer touches no
 * storage; relaying to one that is reconnecting holds the frame until it resumes.
 */
import { DurableObject } from 'cloudflare:workers';
import {
  CHAT_KEPT,
  CLOSE_CODES,
  PROTOCOL_VERSION,
  parseClientMessage,
  type BroadcastInfo,
  type ChatMessage,
  type ClientMessage,
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
import {
  UPGRADE_HEADERS,
  type AuthorizeResult,
  type BeginBroadcastResult,
  type CreateRoomSettings,
  type Refusal,
  type TokenActor,
} from '../protocol/handoff';
import { isRole, isStaff, moderatesRole, ROLE_TABLE } from '../protocol/roles';
import { isRunning, REASONS } from './broadcast-state';
import { canSee, canSignal, decideAdmit, decideCloseRoom, decideHold, decideKick, decideMute, decideSeat } from './policy';
import { close, exceedsBytes, rejectUpgrade, send, sendError, sendRaw, type TokenBucket } from '../server/websocket';
import { AlarmSchedule } from './alarm';
import { Connections, type Connection } from './room-connections';
import type { RecordingInfo, TrackKind } from '../protocol/recording';
import { signUpload } from '../server/credentials';
import { RoomStorage, type PeerRecord, type RoomState } from './room-storage';
import { Soundboard, type SoundChange } from './soundboard';
import type { SoundInfo } from '../protocol/sounds';
import { deleteSoundFiles } from '../server/sound-files';

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

/** A voice track is named after its participant (or its role, before it has a name). */
function trackName(peer: PeerRecord): string {
  return peer.name ?? peer.role;
}

/**
 * What `viewer` may know of `peer`: its public record, and, for staff, since when a caller
 * waits; a talkback as this viewer hears it (in its ears, or away from the show).
 */
function publicView(peer: PeerRecord, viewer?: PeerRecord): Participant {
  const { peerId, role, name, muted, mutedBy, connected, waiting } = peer;
  const view: Participant =
    name === undefined ? { peerId, role, muted, mutedBy, connected, waiting } : { peerId, role, name, muted, mutedBy, connected, waiting };
  if (waiting && peer.waitingSince !== undefined && viewer && isStaff(viewer.role)) view.waitingSince = peer.waitingSince;
  // A waiting caller learns nothing of the show: not that someone talks back.
  if (peer.talkingBack && viewer && viewer.peerId !== peerId && !viewer.waiting)
    view.talkback = talkbackReaches(peer, viewer) ? 'to-you' : 'away';
  return view;
}

/** Does `speaker`'s talkback reach `listener`'s ears (one target, or everyone on air)? */
function talkbackReaches(speaker: PeerRecord, listener: PeerRecord): boolean {
  const to = speaker.talkingBack?.to;
  if (to === undefined || listener.peerId === speaker.peerId || listener.waiting) return false;
  return to === null || to === listener.peerId;
}

export class Room extends DurableObject<Env> {
  private readonly config: Config;
  private readonly storage: RoomStorage;
  private readonly connections: Connections;
  private readonly alarmSchedule: AlarmSchedule;
  private readonly soundboard: Soundboard;
  private room: RoomState | null = null;
  private readonly peers = new Map<string, PeerRecord>();
  /**
   * Last report from the show's feed. Not persisted (a heartbeat would cost a write every
   * few seconds): after a restart of this object it counts from the restart, which only
   * delays the staleness verdict by one period.
   */
  private broadcastSeenAt = Date.now();
  /** Calls telling the recordings who is on the show, kept in order. */
  private onShowCalls: Promise<void> = Promise.resolve();
  /** Frames this instance has handled; shows that pings never wake a hibernated room. */
  framesHandled = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.config = readConfig(env);
    this.storage = new RoomStorage(ctx.storage.sql);
    this.connections = new Connections(ctx, {
      perSecond: this.config.rateLimitPerSecond,
      burst: this.config.rateLimitBurst,
      changesPerSecond: STATE_CHANGES_PER_SECOND,
      changeBurst: STATE_CHANGE_BURST,
      seenRefreshMs: Math.min(10_000, (this.config.peerSilenceSeconds * 1000) / 4),
    });
    this.alarmSchedule = new AlarmSchedule(ctx.storage);
    this.soundboard = new Soundboard(this.storage);
    // Answered by the runtime without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    this.load();
  }

  private load(): void {
    this.alarmSchedule.forget();
    const { room, peers } = this.storage.load();
    this.room = room;
    this.peers.clear();
    for (const peer of peers) this.peers.set(peer.peerId, peer);
    this.connections.rebuild((peerId) => this.peers.has(peerId));
    this.soundboard.load();
  }

  // ---- persistence ----------------------------------------------------------------

  private saveRoom(room: RoomState): void {
    this.room = room;
    this.storage.saveRoom(room);
  }

  private savePeer(peer: PeerRecord): void {
    this.peers.set(peer.peerId, peer);
    this.storage.savePeer(peer);
  }

  private deletePeer(peerId: string): void {
    this.peers.delete(peerId);
    this.connections.forget(peerId);
    this.storage.deletePeer(peerId);
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
   * join, into the lobby. `closedRoomToo`: for the recordings, which outlive the show.
   */
  async authorize(actor: TokenActor, { closedRoomToo = false } = {}): Promise<AuthorizeResult> {
    const room = this.room;
    // A show that ended keeps its recordings within reach of its staff until the room expires.
    if (!room || (room.closed && !closedRoomToo)) {
      return { ok: false, code: 'room-not-found', message: 'room does not exist or was closed' };
    }
    if (room.generations[actor.role] !== actor.generation) {
      return { ok: false, code: 'token-revoked', message: `${actor.role} invites of this room were revoked` };
    }
    if (actor.role !== 'caller' && this.storage.barred(actor.lineage)) {
      return { ok: false, code: 'forbidden', message: 'this invite was kicked from the room; ask the host for a new one' };
    }
    return { ok: true };
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
    const trackClaim = request.headers.get(UPGRADE_HEADERS.track);
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
    // Staff tokens that were kicked are refused above; a kicked caller's joins the lobby.
    const kicked = role === 'caller' && this.storage.barred(lineage);
    // A staff member joining afresh (a reloaded page) takes over its own seat still in its grace period.
    if (role !== 'caller') {
      const ghost = [...this.peers.values()].find((p) => p.tokenId === tokenId && p.role === role && !p.connected);
      if (ghost) this.removePeer(ghost, 'left');
    }
    const seat = decideSeat(
      role,
      [...this.peers.values()],
      Math.min(room.maxParticipants, this.config.maxParticipants),
      this.config.staffSeats,
    );
    if (!seat.ok) return rejectUpgrade('room-full', seat.reason, protocol);

    const peer: PeerRecord = {
      peerId: randomId(9),
      role,
      muted: false,
      mutedBy: null,
      connected: true,
      // A caller whose invite was kicked waits in the lobby until staff admit it again.
      waiting: role === 'caller' && (room.lobby || kicked),
      waitingSince: Date.now(),
      resumeToken: randomId(24),
      tokenId,
      lineage,
      disconnectedAt: null,
    };
    const response = this.connections.accept(peer.peerId, protocol);
    this.savePeer(peer);
    await this.sendWelcome(peer, false);
    this.fanOutView(peer, 'peer-joined');
    await this.joinTake(peer, trackClaim);
    await this.scheduleAlarm();
    return response;
  }

  private async resume(role: Role, resumeToken: string, protocol: string | null): Promise<Response> {
    const peer = [...this.peers.values()].find((p) => p.resumeToken === resumeToken);
    if (!peer || peer.role !== role) {
      return rejectUpgrade('resume-failed', 'resume token is unknown or expired; join again without it', protocol);
    }
    const previous = this.connections.socketOf(peer.peerId);
    if (previous) {
      this.connections.forget(peer.peerId);
      close(previous, CLOSE_CODES.replaced, 'resumed on a newer connection');
    }
    const wasDisconnected = !peer.connected;
    const resumed: PeerRecord = { ...peer, connected: true, disconnectedAt: null, resumeToken: randomId(24) };
    const response = this.connections.accept(resumed.peerId, protocol);
    this.savePeer(resumed);
    await this.sendWelcome(resumed, true);
    this.deliverHeld(resumed.peerId);
    await this.regrant(resumed);
    if (wasDisconnected) this.fanOutView(resumed, 'participant-updated');
    await this.scheduleAlarm();
    return response;
  }

  private async sendWelcome(peer: PeerRecord, resumed: boolean): Promise<void> {
    const ws = this.connections.socketOf(peer.peerId);
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
      limits: {
        messagesPerSecond: this.config.rateLimitPerSecond,
        messageBurst: this.config.rateLimitBurst,
        maxMessageBytes: this.config.maxMessageBytes,
      },
      // A waiting caller learns nothing about the show but its own state...
      ...(peer.waiting ? {} : { broadcast: this.broadcastInfo() }),
      // ...except that it is being recorded: it is told before it is admitted.
      recording: this.recordingInfoNow(),
      ...(isStaff(peer.role) ? { notes: this.notes() } : {}),
      chat: this.chatFor(peer),
      ...(peer.waiting ? {} : { sounds: this.soundboard.list() }),
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
      if (other.peerId !== viewer.peerId && canSee(viewer, other)) list.push(publicView(other, viewer));
    }
    return list;
  }

  /**
   * `{type, participant}` about `subject` to every connected peer allowed to see it (itself
   * too, with `includeSubject`), each with its own view of it (a talkback, a caller's wait).
   */
  private fanOutView(subject: PeerRecord, type: 'peer-joined' | 'participant-updated', includeSubject = false): void {
    const frames = new Map<string, string>();
    for (const [peerId, ws] of this.connections.entries()) {
      if (peerId === subject.peerId && !includeSubject) continue;
      const viewer = this.peers.get(peerId);
      if (!viewer || !canSee(viewer, subject)) continue;
      const view = publicView(subject, viewer);
      const key = `${view.talkback ?? ''}:${view.waitingSince ?? ''}`;
      let frame = frames.get(key);
      if (frame === undefined) frames.set(key, (frame = JSON.stringify({ type, participant: view } satisfies ServerMessage)));
      sendRaw(ws, frame);
    }
  }

  /** Frames for staff only (notes, the desk's messages to the staff). */
  private toStaff(message: ServerMessage): void {
    const frame = JSON.stringify(message);
    for (const [peerId, ws] of this.connections.entries()) if (isStaff(this.peers.get(peerId)?.role)) sendRaw(ws, frame);
  }

  /** A resumed peer gets what was relayed to it while it was away, in order. */
  private deliverHeld(peerId: string): void {
    const ws = this.connections.socketOf(peerId);
    if (!ws) return;
    for (const frame of this.storage.takeHeld(peerId)) sendRaw(ws, frame);
  }

  // ---- messages ---------------------------------------------------------------------

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    this.framesHandled += 1;
    const peerId = this.connections.currentPeerOf(ws);
    const peer = peerId === undefined ? undefined : this.peers.get(peerId);
    const connection = peer && this.connections.of(ws);
    if (!peer || !connection) {
      close(ws, CLOSE_CODES.forbidden, 'session no longer exists');
      return;
    }
    this.connections.heardFrom(ws, connection);
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
    if (connection.changes.strike() === 1) sendError(ws, 'rate-limited', 'too many changes (names, mutes, notes, sound levels); slow down');
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
        this.update({ ...peer, name: message.name });
        return this.renameTrack(this.peers.get(peer.peerId)!);
      case 'refresh-ice':
        return this.sendIceServers(peer, ws);
      case 'close-room':
        return this.closeRoom(peer, ws);
      case 'stop-broadcast':
        if (!ROLE_TABLE[peer.role].broadcast) return sendError(ws, 'forbidden', `a ${peer.role} cannot stop the broadcast`);
        return this.requestBroadcastStop();
      case 'start-recording':
        if (!ROLE_TABLE[peer.role].record) return sendError(ws, 'forbidden', `a ${peer.role} cannot start a recording`);
        return this.startTake(peer);
      case 'stop-recording':
        if (!ROLE_TABLE[peer.role].record) return sendError(ws, 'forbidden', `a ${peer.role} cannot stop a recording`);
        return this.stopTake();
      case 'clock':
        return send(ws, { type: 'clock', sent: message.sent, now: Date.now() });
      case 'talkback':
        return this.talkback(peer, ws, message.to, message.on);
      case 'hold':
        return this.hold(peer, ws, message.peerId);
      case 'set-note':
        return this.setNote(peer, ws, message.peerId, message.note, connection);
      case 'chat':
        return this.chat(peer, ws, message.to, message.text, connection);
      case 'mute-all':
        return this.muteAll(peer, ws, connection);
      case 'play-sound':
      case 'stop-sound':
      case 'set-sound':
        return this.soundControl(peer, ws, message, connection);
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
    const socket = this.connections.socketOf(to.peerId);
    if (socket) return sendRaw(socket, frame);
    // Reconnecting: keep it, in order, until the peer resumes or its grace period ends.
    // Both caps bound the storage one reconnecting peer can take.
    if (!this.storage.hold(to.peerId, frame, { count: this.config.resumeQueueMax, bytes: this.config.resumeQueueMaxBytes })) {
      sendError(ws, 'rate-limited', `peer "${to.peerId}" is reconnecting and has too many messages waiting`);
    }
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
    this.fanOutView(peer, 'participant-updated', true);
    this.noteOnShow(peer);
  }

  private async kick(actor: PeerRecord, ws: WebSocket, peerId: string): Promise<void> {
    const target = this.target(actor, ws, peerId);
    if (!target) return;
    const decision = decideKick({ ...actor, lineage: actor.lineage ?? [actor.tokenId] }, target);
    if (!decision.ok) return sendError(ws, 'forbidden', decision.reason);
    // The invite it came with stays off the air: a caller's rejoin waits in the lobby, a
    // producer's or host's is refused.
    if (target.tokenId) this.storage.bar(target.tokenId);
    const socket = this.connections.socketOf(target.peerId);
    if (socket) {
      send(socket, { type: 'kicked' });
      close(socket, CLOSE_CODES.forbidden, 'kicked');
    }
    this.removePeer(target, 'kicked');
    // A feed run with the kicked token (or one minted from it) goes off air with its owner.
    if (target.tokenId && this.room?.broadcast?.lineage?.includes(target.tokenId)) await this.requestBroadcastStop();
    return this.scheduleAlarm();
  }

  private async admit(actor: PeerRecord, ws: WebSocket, peerId: string): Promise<void> {
    const target = this.target(actor, ws, peerId);
    if (!target) return;
    const decision = decideAdmit(actor, target);
    if (!decision.ok) return sendError(ws, 'forbidden', decision.reason);
    const { waitingSince: _, ...rest } = target;
    const admitted: PeerRecord = { ...rest, waiting: false };
    this.savePeer(admitted);
    const participant = publicView(admitted);
    const updated = JSON.stringify({ type: 'participant-updated', participant } satisfies ServerMessage);
    const joined = JSON.stringify({ type: 'peer-joined', participant } satisfies ServerMessage);
    for (const [viewerId, socket] of this.connections.entries()) {
      const viewer = this.peers.get(viewerId);
      if (!viewer) continue;
      if (viewerId === admitted.peerId) {
        send(socket, {
          type: 'admitted',
          participants: this.visibleTo(admitted),
          broadcast: this.broadcastInfo(),
          sounds: this.soundboard.list(),
        });
      } else if (canSee(viewer, target)) {
        sendRaw(socket, updated); // staff saw it waiting
      } else if (canSee(viewer, admitted)) {
        sendRaw(socket, joined); // everyone else meets it now
      }
    }
    this.noteOnShow(admitted);
    // On the show now: its voice is recorded from here on.
    await this.joinTake(admitted, null);
  }

  private async closeRoom(actor: PeerRecord, ws: WebSocket): Promise<void> {
    const decision = decideCloseRoom(actor);
    if (!decision.ok) return sendError(ws, 'forbidden', decision.reason);
    await this.stopTake();
    for (const socket of this.connections.sockets()) {
      send(socket, { type: 'room-closed' });
      close(socket, CLOSE_CODES.roomNotFound, 'room closed by the host');
    }
    for (const peerId of [...this.peers.keys()]) this.deletePeer(peerId);
    this.saveRoom({ ...this.room!, closed: true, activeAt: Date.now() });
    await this.deleteSounds();
    return this.scheduleAlarm();
  }

  private removePeer(peer: PeerRecord, reason: LeaveReason): void {
    const wasVisible = new Map<string, boolean>();
    for (const [viewerId] of this.connections.entries()) {
      const viewer = this.peers.get(viewerId);
      if (viewer) wasVisible.set(viewerId, canSee(viewer, peer));
    }
    this.deletePeer(peer.peerId);
    // Idle expiry counts from the moment the room became empty.
    if (this.peers.size === 0) this.touch();
    const frame = JSON.stringify({ type: 'peer-left', peerId: peer.peerId, reason } satisfies ServerMessage);
    for (const [viewerId, socket] of this.connections.entries()) {
      if (wasVisible.get(viewerId)) sendRaw(socket, frame);
    }
    if (this.room?.recording?.program.peerId === peer.peerId) this.handOverProgram();
    this.endTalkbacksTo(peer.peerId);
  }

  // ---- the show: its program feed to Icecast (the wire calls it the broadcast) ----------

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
      return {
        ok: true,
        id: current.id,
        ...named,
        ...(since === undefined ? {} : { since }),
        ...(listeners ? { peak: listeners.peak } : {}),
      };
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
      this.setBroadcast({
        id: current.id,
        info: { state: 'error', reason: REASONS.feedLost, ...(current.info.by ? { by: current.info.by } : {}) },
      });
    } else if (silentMs >= BROADCAST_STALE_MS && current.info.reason !== REASONS.feedSilent) {
      this.setBroadcast({ ...current, info: { ...current.info, state: 'reconnecting', reason: REASONS.feedSilent } });
    }
  }

  private setBroadcast(broadcast: NonNullable<RoomState['broadcast']>): void {
    this.saveRoom({ ...this.room!, broadcast });
    const frame = JSON.stringify({ type: 'broadcast-updated', broadcast: broadcast.info } satisfies ServerMessage);
    for (const [peerId, ws] of this.connections.entries()) {
      if (this.peers.get(peerId)?.waiting === false) sendRaw(ws, frame);
    }
  }

  // ---- the producer's desk: talkback, hold, notes, messages, mute all -----------------

  /** Staff talk into an on-air participant's ears (or everyone's); their voice leaves the show meanwhile. */
  private talkback(actor: PeerRecord, ws: WebSocket, to: string | null, on: boolean): void {
    if (!isStaff(actor.role)) return sendError(ws, 'forbidden', `a ${actor.role} cannot talk back`);
    if (!on) {
      if (actor.talkingBack) this.update({ ...actor, talkingBack: null });
      return;
    }
    if (to !== null) {
      const target = this.target(actor, ws, to);
      if (!target) return;
      if (target.peerId === actor.peerId || target.waiting) {
        return sendError(ws, 'forbidden', 'talk back to someone on the show (a waiting caller is talked with privately)');
      }
    }
    if (actor.talkingBack?.to === to) return;
    this.update({ ...actor, talkingBack: { to } });
  }

  /** A talkback whose listener left or went back to waiting ends. */
  private endTalkbacksTo(peerId: string): void {
    for (const peer of [...this.peers.values()]) {
      if (peer.talkingBack?.to === peerId) this.update({ ...peer, talkingBack: null });
    }
  }

  /** Staff take an on-air caller back into the waiting list: same connection, same seat. */
  private hold(actor: PeerRecord, ws: WebSocket, peerId: string): void {
    const target = this.target(actor, ws, peerId);
    if (!target) return;
    const decision = decideHold(actor, target);
    if (!decision.ok) return sendError(ws, 'forbidden', decision.reason);
    const wasVisible = new Map<string, boolean>();
    for (const [viewerId] of this.connections.entries()) {
      const viewer = this.peers.get(viewerId);
      if (viewer) wasVisible.set(viewerId, canSee(viewer, target));
    }
    const held: PeerRecord = { ...target, waiting: true, waitingSince: Date.now(), talkingBack: null };
    this.savePeer(held);
    const left = JSON.stringify({ type: 'peer-left', peerId: held.peerId, reason: 'held' } satisfies ServerMessage);
    for (const [viewerId, socket] of this.connections.entries()) {
      const viewer = this.peers.get(viewerId);
      if (!viewer) continue;
      if (viewerId === held.peerId) send(socket, { type: 'held', participants: this.visibleTo(held) });
      else if (canSee(viewer, held)) send(socket, { type: 'participant-updated', participant: publicView(held, viewer) });
      else if (wasVisible.get(viewerId)) sendRaw(socket, left); // callers on air no longer see it
    }
    this.endTalkbacksTo(held.peerId);
    this.noteOnShow(held);
  }

  /** The screener's note on a caller: kept with it, shown to staff only. */
  private setNote(actor: PeerRecord, ws: WebSocket, peerId: string, note: string, connection: Connection): void {
    if (!isStaff(actor.role)) return sendError(ws, 'forbidden', `a ${actor.role} cannot write notes`);
    const target = this.target(actor, ws, peerId);
    if (!target) return;
    if (target.role !== 'caller') return sendError(ws, 'forbidden', 'notes are on callers');
    if (!this.allowChange(ws, connection, (target.note ?? '') === note)) return;
    const { note: _, ...rest } = target;
    this.savePeer(note === '' ? rest : { ...target, note });
    this.toStaff({ type: 'note-updated', peerId, note });
  }

  private notes(): Record<string, string> {
    return Object.fromEntries([...this.peers.values()].filter((p) => p.note).map((p) => [p.peerId, p.note!]));
  }

  /** A desk message: staff to the staff, or staff to one caller (who sees only its own). Text only. */
  private chat(actor: PeerRecord, ws: WebSocket, to: string, text: string, connection: Connection): void {
    if (!isStaff(actor.role)) return sendError(ws, 'forbidden', `a ${actor.role} cannot send messages`);
    let recipient: PeerRecord | undefined;
    if (to !== 'staff') {
      recipient = this.target(actor, ws, to);
      if (!recipient) return;
      if (recipient.role !== 'caller') return sendError(ws, 'forbidden', 'messages go to the staff or to one caller');
    }
    if (!this.allowChange(ws, connection, false)) return;
    const message: ChatMessage = {
      id: randomId(9),
      from: actor.peerId,
      ...(actor.name === undefined ? {} : { fromName: actor.name }),
      fromRole: actor.role,
      to,
      text,
      at: Date.now(),
    };
    this.storage.addChat(message, CHAT_KEPT);
    this.toStaff({ type: 'chat', ...message });
    const socket = recipient && this.connections.socketOf(recipient.peerId);
    if (socket) send(socket, { type: 'chat', ...message });
  }

  /** What a page may read of the desk's messages: every one for staff, those to it for a caller. */
  private chatFor(peer: PeerRecord): ChatMessage[] {
    const all = this.storage.chat();
    return isStaff(peer.role) ? all : all.filter((m) => m.to === peer.peerId);
  }

  /** Every caller muted by the studio at once (one change of the sender's budget). */
  private muteAll(actor: PeerRecord, ws: WebSocket, connection: Connection): void {
    if (!moderatesRole(actor.role, 'caller')) return sendError(ws, 'forbidden', `a ${actor.role} cannot mute callers`);
    const callers = [...this.peers.values()].filter((p) => p.role === 'caller' && p.mutedBy !== 'moderator');
    if (!this.allowChange(ws, connection, callers.length === 0)) return;
    for (const caller of callers) this.update({ ...caller, muted: true, mutedBy: 'moderator' });
  }

  // ---- the soundboard ---------------------------------------------------------------

  /** RPC (`POST /rooms/:roomId/sounds`, its file already in R2): a new pad, for everyone on the show. */
  async addSound(actor: TokenActor, sound: Omit<SoundInfo, 'level' | 'loop' | 'playing'>): Promise<SoundChange> {
    const check = await this.mayUseSounds(actor);
    if (!check.ok) return check;
    const result = this.soundboard.add(sound);
    if (result.ok) this.announceSounds();
    return result;
  }

  /** RPC (`DELETE /rooms/:roomId/sounds/:soundId`): the pad goes (stopping it); the Worker deletes its file. */
  async removeSound(actor: TokenActor, soundId: string): Promise<AuthorizeResult> {
    const check = await this.mayUseSounds(actor);
    if (!check.ok) return check;
    if (!this.soundboard.remove(soundId)) return { ok: false, code: 'sound-not-found', message: 'no such sound' };
    this.announceSounds();
    return { ok: true };
  }

  /** RPC (`GET /rooms/:roomId/sounds`). */
  async soundList(actor: TokenActor): Promise<{ ok: true; sounds: SoundInfo[] } | Refusal> {
    const check = await this.mayUseSounds(actor);
    return check.ok ? { ok: true, sounds: this.soundboard.list() } : check;
  }

  private async mayUseSounds(actor: TokenActor): Promise<AuthorizeResult> {
    const check = await this.authorize(actor);
    if (!check.ok) return check;
    if (!ROLE_TABLE[actor.role].sounds) return { ok: false, code: 'forbidden', message: `a ${actor.role} cannot manage the sounds` };
    return { ok: true };
  }

  private soundControl(
    actor: PeerRecord,
    ws: WebSocket,
    message: Extract<ClientMessage, { type: 'play-sound' | 'stop-sound' | 'set-sound' }>,
    connection: Connection,
  ): void {
    if (!ROLE_TABLE[actor.role].sounds) return sendError(ws, 'forbidden', `a ${actor.role} cannot play sounds`);
    // A level slider moving is a stream of changes: it spends the change budget, not the frame budget only.
    if (message.type === 'set-sound' && !this.allowChange(ws, connection, false)) return;
    const result =
      message.type === 'play-sound'
        ? this.soundboard.play(message.soundId)
        : message.type === 'stop-sound'
          ? this.soundboard.stop(message.soundId)
          : this.soundboard.set(message.soundId, {
              ...(message.level === undefined ? {} : { level: message.level }),
              ...(message.loop === undefined ? {} : { loop: message.loop }),
            });
    if (!result.ok) return sendError(ws, result.code, result.message);
    this.announceSounds();
  }

  /** Every pad, to everyone on the show (never a waiting caller: it hears no sound). */
  private announceSounds(): void {
    const frame = JSON.stringify({ type: 'sounds', sounds: this.soundboard.list() } satisfies ServerMessage);
    for (const [peerId, ws] of this.connections.entries()) {
      const peer = this.peers.get(peerId);
      if (peer && !peer.waiting) sendRaw(ws, frame);
    }
  }

  /** The show is over: its sounds go with it (files and pads). */
  private async deleteSounds(): Promise<void> {
    if (!this.room) return;
    for (const soundId of this.soundboard.clear()) this.storage.deleteSound(soundId);
    await deleteSoundFiles(this.env.RECORDINGS_BUCKET, this.room.roomId);
  }

  // ---- recording: takes, and who records which track ------------------------------------

  /** RPC for the join page (`GET /rooms/:roomId/recording`). */
  async recordingInfo(): Promise<RecordingInfo> {
    return this.recordingInfoNow();
  }

  /** Whether a take runs: every welcome and every `recording-updated` says it. */
  private recordingInfoNow(): RecordingInfo {
    return this.room?.recording?.info ?? { state: 'idle' };
  }

  private recordings(): DurableObjectStub<import('./recordings').Recordings> {
    const namespace = this.env.RECORDINGS as DurableObjectNamespace<import('./recordings').Recordings>;
    return namespace.get(namespace.idFromName(this.room!.roomId));
  }

  /** Everyone hears that a take runs or stopped, waiting callers too: they are asked to consent by joining. */
  private announceRecording(): void {
    const frame = JSON.stringify({ type: 'recording-updated', recording: this.recordingInfoNow() } satisfies ServerMessage);
    for (const ws of this.connections.sockets()) sendRaw(ws, frame);
  }

  /**
   * A take begins: every participant on the show records its own voice, and one staff page
   * the program (the broadcaster's while on air, the one that pressed Start otherwise).
   */
  private async startTake(actor: PeerRecord): Promise<void> {
    const room = this.room!;
    if (room.recording) return; // already running: a second press changes nothing
    const number = (room.takes ?? 0) + 1;
    const info = { state: 'recording', takeId: randomId(9), title: `Take ${number}`, startedAt: Date.now(), by: actor.role } as const;
    const programPeer = this.broadcasterPeer() ?? actor;
    // Kept before anything is awaited: a second press meanwhile finds the take running.
    this.saveRoom({
      ...room,
      takes: number,
      recording: { info, tracks: {}, program: { trackId: randomId(9), peerId: programPeer.peerId } },
    });
    try {
      await this.recordings().startTake({
        roomId: room.roomId,
        takeId: info.takeId,
        title: info.title,
        startedAt: info.startedAt,
        by: info.by,
      });
    } catch (error) {
      console.error(`room ${room.roomId}: cannot start a take`, error);
      const { recording: _, ...rest } = this.room!;
      this.saveRoom(rest);
      const ws = this.connections.socketOf(actor.peerId);
      if (ws) sendError(ws, 'recording-unavailable', 'the recording could not be started; try again');
      return;
    }
    if (this.room?.recording?.info.takeId !== info.takeId) return; // stopped meanwhile
    this.announceRecording();
    await this.grantTrack(programPeer, 'program');
    for (const peer of [...this.peers.values()]) {
      if (peer.connected && !peer.waiting) await this.grantTrack(peer, 'voice');
    }
  }

  private async stopTake(): Promise<void> {
    const recording = this.room?.recording;
    if (!recording) return;
    const { recording: _, ...rest } = this.room!;
    this.saveRoom(rest);
    this.announceRecording();
    await this.recordings().stopTake(recording.info.takeId, Date.now());
  }

  /** The staff page that runs the broadcast, if it is here: it records the program as it goes to air. */
  private broadcasterPeer(): PeerRecord | undefined {
    const owner = this.room?.broadcast;
    if (!owner || !isRunning(owner.info) || !owner.lineage?.[0]) return undefined;
    return [...this.peers.values()].find((p) => p.connected && p.tokenId === owner.lineage![0]);
  }

  /**
   * A peer that is on the show during a take gets its track: the one its credential names
   * (a reloaded page), or its own (a new one the first time).
   */
  private async joinTake(peer: PeerRecord, trackClaims: string | null): Promise<void> {
    if (!this.room?.recording || peer.waiting) return;
    for (const claim of trackClaims?.split(',') ?? []) {
      const recording = this.room.recording;
      const [takeId, trackId] = claim.split(':');
      if (takeId !== recording.info.takeId || !trackId) continue;
      if (trackId === recording.program.trackId && isStaff(peer.role)) {
        this.saveRoom({ ...this.room, recording: { ...recording, program: { trackId, peerId: peer.peerId } } });
        await this.grantTrack(peer, 'program');
      } else if (Object.values(recording.tracks).includes(trackId)) {
        this.saveRoom({ ...this.room, recording: { ...recording, tracks: { ...recording.tracks, [peer.peerId]: trackId } } });
      }
    }
    // Nobody records the program (its page left): the first staff page back takes it up.
    const program = this.room.recording.program;
    if (program.peerId === null && isStaff(peer.role)) {
      this.saveRoom({ ...this.room, recording: { ...this.room.recording, program: { ...program, peerId: peer.peerId } } });
      await this.grantTrack(peer, 'program');
    }
    await this.grantTrack(peer, 'voice');
  }

  /** Tell `peer` which track it records (making the track the first time), with its upload credential. */
  private async grantTrack(peer: PeerRecord, kind: TrackKind): Promise<void> {
    const recording = this.room?.recording;
    const ws = this.connections.socketOf(peer.peerId);
    if (!recording) return;
    let trackId: string;
    if (kind === 'program') {
      trackId = recording.program.trackId;
    } else {
      trackId = recording.tracks[peer.peerId] ?? randomId(9);
      if (!recording.tracks[peer.peerId]) {
        this.saveRoom({ ...this.room!, recording: { ...recording, tracks: { ...recording.tracks, [peer.peerId]: trackId } } });
      }
    }
    const { takeId, startedAt } = recording.info;
    await this.recordings().grantTrack({ takeId, trackId, kind, name: kind === 'program' ? 'Program' : trackName(peer), role: peer.role });
    if (kind === 'voice') this.noteOnShow(this.peers.get(peer.peerId) ?? peer);
    if (!ws) return;
    const credential = await signUpload(requireSecret(this.env, 'TOKEN_SECRET'), { roomId: this.room!.roomId, takeId, trackId });
    send(ws, { type: 'recording-track', takeId, trackId, kind, startedAt, credential });
  }

  /**
   * The recordings hear, in order, whenever a voice with a track goes off the show (waiting,
   * muted by anyone) or comes back: those spans are silence in its track, whatever its page
   * sends (the page gates them too, to the sample; this holds for a page that does not).
   */
  private noteOnShow(peer: PeerRecord): void {
    const recording = this.room?.recording;
    const trackId = recording?.tracks[peer.peerId];
    if (!recording || !trackId) return;
    const onShow = !peer.waiting && !peer.muted && !peer.talkingBack;
    const [takeId, at, recordings] = [recording.info.takeId, Date.now(), this.recordings()];
    this.onShowCalls = this.onShowCalls
      .then(() => recordings.setOnShow(takeId, trackId, onShow, at))
      .catch((error) => console.error(`room ${this.room?.roomId}: cannot tell the recordings`, error));
  }

  /** A resumed page hears again which tracks it records (it may have missed the grant). */
  private async regrant(peer: PeerRecord): Promise<void> {
    const recording = this.room?.recording;
    if (!recording) return;
    if (recording.program.peerId === peer.peerId) await this.grantTrack(peer, 'program');
    if (recording.tracks[peer.peerId]) await this.grantTrack(peer, 'voice');
    else await this.joinTake(peer, null);
  }

  private async renameTrack(peer: PeerRecord): Promise<void> {
    const recording = this.room?.recording;
    const trackId = recording?.tracks[peer.peerId];
    if (!recording || !trackId) return;
    await this.recordings().grantTrack({ takeId: recording.info.takeId, trackId, kind: 'voice', name: trackName(peer), role: peer.role });
  }

  /** The page recording the program left: another staff page on the show takes it up (a new segment of the same track). */
  private handOverProgram(): void {
    const recording = this.room!.recording!;
    const next = [...this.peers.values()].find((p) => p.connected && !p.waiting && isStaff(p.role));
    this.saveRoom({ ...this.room!, recording: { ...recording, program: { ...recording.program, peerId: next?.peerId ?? null } } });
    if (next) void this.grantTrack(next, 'program');
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
    const peerId = this.connections.currentPeerOf(ws);
    if (peerId === undefined) return false; // left, kicked or replaced
    this.connections.forget(peerId);
    const peer = this.peers.get(peerId);
    if (!peer) return false;
    const dropped: PeerRecord = { ...peer, connected: false, disconnectedAt: Date.now() };
    this.savePeer(dropped);
    this.fanOutView(dropped, 'participant-updated');
    return true;
  }

  override async alarm(): Promise<void> {
    this.alarmSchedule.fired();
    const now = Date.now();
    // A socket whose network vanished stays open without a word: after PEER_SILENCE_SECONDS
    // of silence (pings answered by the runtime count as words) it is treated as lost.
    const silenceMs = this.config.peerSilenceSeconds * 1000;
    for (const ws of [...this.connections.sockets()]) {
      if (now - this.connections.lastHeard(ws) < silenceMs) continue;
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
      await this.deleteSounds();
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
    for (const ws of this.connections.sockets()) next = Math.min(next, this.connections.lastHeard(ws) + silenceMs);
    for (const peer of this.peers.values()) {
      if (!peer.connected && peer.disconnectedAt !== null) next = Math.min(next, peer.disconnectedAt + graceMs);
    }
    if (this.peers.size === 0) next = Math.min(next, room.activeAt + this.config.roomIdleSeconds * 1000);
    if (isRunning(room.broadcast?.info)) {
      const silent = room.broadcast!.info.reason === REASONS.feedSilent;
      next = Math.min(next, this.broadcastSeenAt + (silent ? BROADCAST_LOST_MS : BROADCAST_STALE_MS));
    }
    // An empty room needs only its idle expiry (or its feed's checks): an alarm set for a
    // silence check of peers who have left would wake the room for nothing.
    await this.alarmSchedule.ensure(next, { exactly: this.peers.size === 0 });
  }
}
