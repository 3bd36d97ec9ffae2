/**
 * The wire protocol, defined once: every message shape as a valibot schema, with the
 * TypeScript types inferred from it. The Worker, the room Durable Object, the browser
 * client and the tests all import from here.
 */
import * as v from 'valibot';
import type { RecordingInfo, TrackGrant } from './recording';
import { SOUND_LEVEL_MAX, SoundId, type SoundInfo } from './sounds';

export const PROTOCOL_VERSION = 1;
/** Offered by clients in `Sec-WebSocket-Protocol` (next to the token) and echoed by the server. */
export const SUBPROTOCOL = 'openstudio.v1';

export const ROLES = ['host', 'producer', 'caller'] as const;
export const Role = v.picklist(ROLES);
export type Role = v.InferOutput<typeof Role>;

/** Room ids are opaque, URL-safe and short; anything else is refused before routing. */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;
export const PEER_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const PeerId = v.pipe(v.string(), v.regex(PEER_ID_PATTERN, 'must be a peer id'));
const DisplayName = v.pipe(
  v.string(),
  v.trim(),
  v.minLength(1),
  v.maxLength(64),
  v.regex(/^[^\p{Cc}]*$/u, 'must not contain control characters'),
);
/** SDP blobs are bounded by the frame size limit; this only rules out the absurd. */
const Sdp = v.pipe(v.string(), v.minLength(1), v.maxLength(60_000));

const IceCandidate = v.object({
  candidate: v.pipe(v.string(), v.maxLength(2_000)),
  sdpMid: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(64)))),
  sdpMLineIndex: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1024)))),
  usernameFragment: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(256)))),
});
export type IceCandidate = v.InferOutput<typeof IceCandidate>;

/** A screener's note and a chat message: text only, at most this many characters. */
export const NOTE_MAX = 1_000;
export const CHAT_MAX = 500;
/** Chat messages a room keeps (the oldest go first). */
export const CHAT_KEPT = 200;

// ---- client → server -------------------------------------------------------------

export const ClientMessages = {
  offer: v.object({ type: v.literal('offer'), to: PeerId, sdp: Sdp }),
  answer: v.object({ type: v.literal('answer'), to: PeerId, sdp: Sdp }),
  'ice-candidate': v.object({
    type: v.literal('ice-candidate'),
    to: PeerId,
    candidate: v.nullable(IceCandidate),
  }),
  mute: v.object({ type: v.literal('mute'), peerId: PeerId, muted: v.boolean() }),
  kick: v.object({ type: v.literal('kick'), peerId: PeerId }),
  admit: v.object({ type: v.literal('admit'), peerId: PeerId }),
  'set-name': v.object({ type: v.literal('set-name'), name: DisplayName }),
  'close-room': v.object({ type: v.literal('close-room') }),
  'stop-broadcast': v.object({ type: v.literal('stop-broadcast') }),
  /** Ask for fresh TURN credentials (answered with `ice-servers`). */
  'refresh-ice': v.object({ type: v.literal('refresh-ice') }),
  leave: v.object({ type: v.literal('leave') }),
  ping: v.object({ type: v.literal('ping') }),
  /** Staff: start a take (every voice and the program), or stop the running one. */
  'start-recording': v.object({ type: v.literal('start-recording') }),
  'stop-recording': v.object({ type: v.literal('stop-recording') }),
  /** Ask for the room's clock (answered with `clock`): recordings are aligned on it. */
  clock: v.object({ type: v.literal('clock'), sent: v.pipe(v.number(), v.finite()) }),
  /**
   * Staff: talk into one on-air participant's ears (`to`), or every on-air participant's
   * (`to: null`), over the show; `on: false` lets go. Never heard in the program.
   */
  talkback: v.object({ type: v.literal('talkback'), to: v.nullable(PeerId), on: v.boolean() }),
  /** Staff: take an on-air caller back into the waiting list (same connection, same seat). */
  hold: v.object({ type: v.literal('hold'), peerId: PeerId }),
  /** Staff: the screener's note on a caller, seen by staff only (empty clears it). */
  'set-note': v.object({ type: v.literal('set-note'), peerId: PeerId, note: v.pipe(v.string(), v.maxLength(NOTE_MAX)) }),
  /** Staff: a message to the staff (`to: "staff"`) or to one caller. Text only. */
  chat: v.object({
    type: v.literal('chat'),
    to: v.union([v.literal('staff'), PeerId]),
    text: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(CHAT_MAX)),
  }),
  /** Staff: every caller muted by the studio at once. */
  'mute-all': v.object({ type: v.literal('mute-all') }),
  /** Staff: play a pad from its start (again, if it plays), for everyone on the show. */
  'play-sound': v.object({ type: v.literal('play-sound'), soundId: SoundId }),
  'stop-sound': v.object({ type: v.literal('stop-sound'), soundId: SoundId }),
  /** Staff: a pad's level (0–2) and whether it loops, for everyone who hears it. */
  'set-sound': v.object({
    type: v.literal('set-sound'),
    soundId: SoundId,
    level: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(SOUND_LEVEL_MAX))),
    loop: v.optional(v.boolean()),
  }),
} as const;

export type ClientMessageType = keyof typeof ClientMessages;
export type ClientMessage = {
  [K in ClientMessageType]: v.InferOutput<(typeof ClientMessages)[K]>;
}[ClientMessageType];
export type RelayMessage = Extract<ClientMessage, { type: 'offer' | 'answer' | 'ice-candidate' }>;

export function isClientMessageType(type: unknown): type is ClientMessageType {
  return typeof type === 'string' && Object.hasOwn(ClientMessages, type);
}

// ---- shared shapes -----------------------------------------------------------------

export interface Participant {
  peerId: string;
  role: Role;
  name?: string;
  muted: boolean;
  /** Who set `muted`: a moderator's mute cannot be lifted by the caller itself. */
  mutedBy: 'self' | 'moderator' | null;
  connected: boolean;
  /** Lobby rooms: a caller waiting to be admitted by a host or producer. */
  waiting: boolean;
  /** Staff only see it: since when (room clock, epoch ms) this caller waits (its place in the queue). */
  waitingSince?: number;
  /**
   * This staff member talks back now, as this viewer hears it: `to-you` (in your ears, over
   * the show, never in the program) or `away` (to someone else: its voice is off the show).
   */
  talkback?: 'to-you' | 'away';
}

/** A message of the producer's desk: to the staff, or from the staff to one caller. */
export interface ChatMessage {
  id: string;
  from: string;
  fromName?: string;
  fromRole: Role;
  to: 'staff' | string;
  text: string;
  at: number;
}

export interface RoomInfo {
  roomId: string;
  name?: string;
  lobby: boolean;
  maxParticipants: number;
  createdAt: number;
}

export type BroadcastState = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'error';

/** The room's program feed to Icecast. */
export interface BroadcastInfo {
  state: BroadcastState;
  /**
   * Why the state is what it is, as a plain sentence for the console (`reconnecting`,
   * `error`, and why a show ended). One of a fixed set: never upstream text or addresses.
   */
  reason?: string;
  /** Role of whoever started it. */
  by?: Role;
  /** Where listeners hear the program: this show's own Icecast mount. */
  listenUrl?: string;
  /** When the show went on air (epoch ms), kept through reconnects: the on-air clock. */
  since?: number;
  /** Listeners of the show's mount now, and the most at once since it went on air. */
  listeners?: { current: number; peak: number };
}

/** Text frames the server sends on the program feed socket (`/rooms/:roomId/broadcast`). */
export type FeedMessage =
  /** First frame: the feed is accepted; `broadcastId` lets the broadcaster resume it after a drop. */
  | { type: 'feed-accepted'; broadcastId: string }
  /** Start a new stream (a fresh recorder: container and codec headers first); audio until then is dropped. */
  | { type: 'restart-stream'; reason: string }
  | { type: 'broadcast-updated'; broadcast: BroadcastInfo }
  | { type: 'error'; code: ErrorCode; message: string; retryAfterSeconds?: number };

export interface IceServersInfo {
  iceServers: { urls: string[]; username?: string; credential?: string }[];
  expiresAt: number;
}

// ---- server → client ---------------------------------------------------------------

export const ERROR_CODES = [
  'bad-json',
  'invalid-message',
  'unknown-type',
  'peer-not-found',
  'forbidden',
  'rate-limited',
  'too-large',
  'unauthorized',
  'token-revoked',
  'room-not-found',
  'room-full',
  'origin-not-allowed',
  'resume-failed',
  'broadcast-busy',
  'broadcast-unavailable',
  /** A broadcaster tried to resume a show that is no longer running (stopped or ended). */
  'broadcast-ended',
  /** HTTP: a request that is not what the endpoint takes (docs/recording.md). */
  'invalid-request',
  /** A sound upload that is not a whole MP3, WAV, Ogg or FLAC file (docs/soundboard.md). */
  'invalid-sound',
  /** A pad the room does not hold (deleted meanwhile). */
  'sound-not-found',
  /** A chunk for a take that stopped longer than the upload grace ago, or was deleted. */
  'recording-closed',
  /** The running take cannot be deleted. */
  'recording-active',
  /** The room's recordings would exceed RECORDING_MAX_BYTES_PER_ROOM. */
  'quota-exceeded',
  /** A take could not be started (its recordings could not be reached); nothing changed: try again. */
  'recording-unavailable',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const CLOSE_CODES = {
  normal: 1000,
  serverRestart: 1012,
  /** A transient refusal (per-client join rate): reconnect after the wait the error names. */
  tryAgainLater: 1013,
  unauthorized: 4001,
  forbidden: 4003,
  roomNotFound: 4004,
  policy: 4008,
  roomFull: 4009,
  /** The same peer resumed on a newer socket; this one is superseded. */
  replaced: 4010,
  /** Nothing arrived from this socket for PEER_SILENCE_SECONDS: reconnect with `resume`. */
  silent: 4011,
} as const;

/** The close code that follows each refusal of an upgrade (the error frame comes first). */
export const REFUSAL_CLOSE_CODES: Partial<Record<ErrorCode, number>> = {
  unauthorized: CLOSE_CODES.unauthorized,
  'token-revoked': CLOSE_CODES.unauthorized,
  'resume-failed': CLOSE_CODES.unauthorized,
  forbidden: CLOSE_CODES.forbidden,
  'origin-not-allowed': CLOSE_CODES.forbidden,
  'invalid-message': CLOSE_CODES.forbidden,
  'broadcast-busy': CLOSE_CODES.forbidden,
  'broadcast-unavailable': CLOSE_CODES.forbidden,
  'broadcast-ended': CLOSE_CODES.forbidden,
  'room-not-found': CLOSE_CODES.roomNotFound,
  'room-full': CLOSE_CODES.roomFull,
  'rate-limited': CLOSE_CODES.tryAgainLater,
};

/** `held`: an on-air caller put back on hold (only staff still see it, waiting). */
export type LeaveReason = 'left' | 'kicked' | 'timeout' | 'room-closed' | 'held';

export type ServerMessage =
  | {
      type: 'welcome';
      protocol: typeof PROTOCOL_VERSION;
      roomId: string;
      peerId: string;
      role: Role;
      resumeToken: string;
      resumed: boolean;
      waiting: boolean;
      iceServers: IceServersInfo['iceServers'];
      iceExpiresAt: number;
      participants: Participant[];
      room: RoomInfo;
      /** This connection's frame budget (token bucket) and frame size limit. */
      limits: { messagesPerSecond: number; messageBurst: number; maxMessageBytes: number };
      /** Absent for a caller waiting in the lobby: it learns nothing about the show. */
      broadcast?: BroadcastInfo;
      /** Whether a take runs: told to everyone, waiting callers too (consent before admission). */
      recording: RecordingInfo;
      /** Staff only: the screener's notes, by caller. */
      notes?: Record<string, string>;
      /** The desk's messages this page may read: all of them for staff, its own for a caller. */
      chat: ChatMessage[];
      /** The soundboard's pads; absent for a caller waiting in the lobby (it hears no sound). */
      sounds?: SoundInfo[];
    }
  | { type: 'peer-joined'; participant: Participant }
  | { type: 'peer-left'; peerId: string; reason: LeaveReason }
  | { type: 'participant-updated'; participant: Participant }
  | { type: 'offer'; from: string; sdp: string }
  | { type: 'answer'; from: string; sdp: string }
  | { type: 'ice-candidate'; from: string; candidate: IceCandidate | null }
  | { type: 'error'; code: ErrorCode; message: string; ref?: string; retryAfterSeconds?: number }
  | { type: 'kicked' }
  /** The soundboard's pads come with it: on the show now, the caller hears them. */
  | { type: 'admitted'; participants: Participant[]; broadcast: BroadcastInfo; sounds: SoundInfo[] }
  | { type: 'room-closed' }
  | { type: 'broadcast-updated'; broadcast: BroadcastInfo }
  | { type: 'ice-servers'; iceServers: IceServersInfo['iceServers']; iceExpiresAt: number }
  | { type: 'pong' }
  | { type: 'recording-updated'; recording: RecordingInfo }
  /** This page records a track of the running take (its voice, or the program). */
  | ({ type: 'recording-track' } & TrackGrant)
  /** The room's clock (`now`, epoch ms) when it read the `clock` frame sent at `sent`. */
  | { type: 'clock'; sent: number; now: number }
  /** This caller was put back on hold: it waits again and sees only the staff. */
  | { type: 'held'; participants: Participant[] }
  /** Staff only. */
  | { type: 'note-updated'; peerId: string; note: string }
  | ({ type: 'chat' } & ChatMessage)
  /** The soundboard changed (a pad added, played, stopped, set or deleted): every pad, to everyone on the show. */
  | { type: 'sounds'; sounds: SoundInfo[] };

// ---- HTTP bodies -------------------------------------------------------------------

export const CreateRoomBody = v.object({
  name: v.optional(DisplayName),
  maxParticipants: v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(1000))),
  lobby: v.optional(v.boolean()),
});
export type CreateRoomBody = v.InferOutput<typeof CreateRoomBody>;

export const MintTokenBody = v.object({
  role: Role,
  ttlSeconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(60), v.maxValue(30 * 86400))),
});
export type MintTokenBody = v.InferOutput<typeof MintTokenBody>;

export const RevokeBody = v.object({ role: Role });
export type RevokeBody = v.InferOutput<typeof RevokeBody>;

/** Human-readable summary of a valibot failure, for error messages. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 3)
    .map((issue) => {
      const path = issue.path?.map((p) => String(p.key)).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

export type ParseResult =
  { ok: true; message: ClientMessage } | { ok: false; code: 'bad-json' | 'invalid-message' | 'unknown-type'; message: string };

/** Decode and validate one text frame from a client. Never throws. */
export function parseClientMessage(text: string): ParseResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { ok: false, code: 'bad-json', message: 'frame is not valid JSON' };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, code: 'invalid-message', message: 'frame must be a JSON object' };
  }
  const type = (data as { type?: unknown }).type;
  if (typeof type !== 'string') {
    return { ok: false, code: 'invalid-message', message: 'frame needs a string "type"' };
  }
  if (!isClientMessageType(type)) {
    return { ok: false, code: 'unknown-type', message: `unknown message type "${type.slice(0, 40)}"` };
  }
  const result = v.safeParse(ClientMessages[type], data);
  if (!result.success) {
    return { ok: false, code: 'invalid-message', message: `${type}: ${describeIssues(result.issues)}` };
  }
  return { ok: true, message: result.output as ClientMessage };
}
