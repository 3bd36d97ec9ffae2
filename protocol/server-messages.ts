/**
 * Schemas for every frame the server sends: on the room socket (`ServerMessage`) and on the
 * program feed socket (`FeedMessage`). Strict objects: a field the protocol does not name
 * is an error, so a test client that checks every frame it receives also notices anything
 * leaking into a frame. The TypeScript types stay in messages.ts; each schema is typed to
 * produce exactly its type, so the two cannot drift apart.
 */
import * as v from 'valibot';
import {
  ERROR_CODES,
  PROTOCOL_VERSION,
  Role,
  type BroadcastInfo,
  type FeedMessage,
  type IceServersInfo,
  type Participant,
  type RoomInfo,
  type ServerMessage,
} from './messages';
import type { RecordingInfo } from './recording';
import type { SoundInfo } from './sounds';

const Text = v.string();
const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(64));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0));

export const ParticipantSchema: v.GenericSchema<unknown, Participant> = v.strictObject({
  peerId: Id,
  role: Role,
  name: v.optional(Text),
  muted: v.boolean(),
  mutedBy: v.nullable(v.picklist(['self', 'moderator'])),
  connected: v.boolean(),
  waiting: v.boolean(),
  waitingSince: v.optional(Count),
  talkback: v.optional(v.picklist(['to-you', 'away'])),
});

const ChatFields = {
  id: Id,
  from: Id,
  fromName: v.optional(Text),
  fromRole: Role,
  to: Id,
  text: Text,
  at: Count,
};

export const RoomInfoSchema: v.GenericSchema<unknown, RoomInfo> = v.strictObject({
  roomId: Id,
  name: v.optional(Text),
  lobby: v.boolean(),
  maxParticipants: Count,
  createdAt: Count,
});

export const BroadcastInfoSchema: v.GenericSchema<unknown, BroadcastInfo> = v.strictObject({
  state: v.picklist(['idle', 'connecting', 'live', 'reconnecting', 'error']),
  reason: v.optional(Text),
  by: v.optional(Role),
  listenUrl: v.optional(v.pipe(v.string(), v.url())),
  since: v.optional(Count),
  listeners: v.optional(v.strictObject({ current: Count, peak: Count })),
});

export const RecordingInfoSchema: v.GenericSchema<unknown, RecordingInfo> = v.variant('state', [
  v.strictObject({ state: v.literal('idle') }),
  v.strictObject({ state: v.literal('recording'), takeId: Id, title: Text, startedAt: Count, by: Role }),
]);

export const SoundInfoSchema: v.GenericSchema<unknown, SoundInfo> = v.strictObject({
  soundId: Id,
  name: Text,
  format: v.picklist(['mp3', 'wav', 'ogg', 'flac']),
  bytes: Count,
  duration: v.nullable(v.pipe(v.number(), v.minValue(0))),
  level: v.pipe(v.number(), v.minValue(0), v.maxValue(2)),
  loop: v.boolean(),
  playing: v.nullable(v.strictObject({ playId: Id, startedAt: Count })),
});

const IceServers: v.GenericSchema<unknown, IceServersInfo['iceServers']> = v.array(
  v.strictObject({ urls: v.array(Text), username: v.optional(Text), credential: v.optional(Text) }),
);

const IceCandidateSchema = v.strictObject({
  candidate: Text,
  sdpMid: v.optional(v.nullable(Text)),
  sdpMLineIndex: v.optional(v.nullable(Count)),
  usernameFragment: v.optional(v.nullable(Text)),
});

const ErrorSchema = v.strictObject({
  type: v.literal('error'),
  code: v.picklist(ERROR_CODES),
  message: Text,
  ref: v.optional(Text),
  retryAfterSeconds: v.optional(Count),
});

export const ServerMessageSchema: v.GenericSchema<unknown, ServerMessage> = v.variant('type', [
  v.strictObject({
    type: v.literal('welcome'),
    protocol: v.literal(PROTOCOL_VERSION),
    roomId: Id,
    peerId: Id,
    role: Role,
    resumeToken: Id,
    resumed: v.boolean(),
    waiting: v.boolean(),
    iceServers: IceServers,
    iceExpiresAt: Count,
    participants: v.array(ParticipantSchema),
    room: RoomInfoSchema,
    limits: v.strictObject({ messagesPerSecond: Count, messageBurst: Count, maxMessageBytes: Count }),
    broadcast: v.optional(BroadcastInfoSchema),
    recording: RecordingInfoSchema,
    notes: v.optional(v.record(Id, Text)),
    chat: v.array(v.strictObject(ChatFields)),
    sounds: v.optional(v.array(SoundInfoSchema)),
  }),
  v.strictObject({ type: v.literal('peer-joined'), participant: ParticipantSchema }),
  v.strictObject({ type: v.literal('peer-left'), peerId: Id, reason: v.picklist(['left', 'kicked', 'timeout', 'room-closed', 'held']) }),
  v.strictObject({ type: v.literal('participant-updated'), participant: ParticipantSchema }),
  v.strictObject({ type: v.literal('offer'), from: Id, sdp: Text }),
  v.strictObject({ type: v.literal('answer'), from: Id, sdp: Text }),
  v.strictObject({ type: v.literal('ice-candidate'), from: Id, candidate: v.nullable(IceCandidateSchema) }),
  ErrorSchema,
  v.strictObject({ type: v.literal('kicked') }),
  v.strictObject({
    type: v.literal('admitted'),
    participants: v.array(ParticipantSchema),
    broadcast: BroadcastInfoSchema,
    sounds: v.array(SoundInfoSchema),
  }),
  v.strictObject({ type: v.literal('room-closed') }),
  v.strictObject({ type: v.literal('broadcast-updated'), broadcast: BroadcastInfoSchema }),
  v.strictObject({ type: v.literal('ice-servers'), iceServers: IceServers, iceExpiresAt: Count }),
  v.strictObject({ type: v.literal('pong') }),
  v.strictObject({ type: v.literal('recording-updated'), recording: RecordingInfoSchema }),
  v.strictObject({
    type: v.literal('recording-track'),
    takeId: Id,
    trackId: Id,
    kind: v.picklist(['voice', 'program']),
    startedAt: Count,
    credential: v.pipe(v.string(), v.minLength(1), v.maxLength(2_000)),
  }),
  v.strictObject({ type: v.literal('clock'), sent: v.number(), now: Count }),
  v.strictObject({ type: v.literal('held'), participants: v.array(ParticipantSchema) }),
  v.strictObject({ type: v.literal('note-updated'), peerId: Id, note: Text }),
  v.strictObject({ type: v.literal('chat'), ...ChatFields }),
  v.strictObject({ type: v.literal('sounds'), sounds: v.array(SoundInfoSchema) }),
]);

export const FeedMessageSchema: v.GenericSchema<unknown, FeedMessage> = v.variant('type', [
  v.strictObject({ type: v.literal('feed-accepted'), broadcastId: Id }),
  v.strictObject({ type: v.literal('restart-stream'), reason: Text }),
  v.strictObject({ type: v.literal('broadcast-updated'), broadcast: BroadcastInfoSchema }),
  ErrorSchema,
]);

/** Check one received frame against its schema; throws a readable error naming what is off. */
export function checkFrame<T>(schema: v.GenericSchema<unknown, T>, frame: unknown): T {
  const result = v.safeParse(schema, frame);
  if (result.success) return result.output;
  const issues = result.issues
    .slice(0, 3)
    .map((issue) => `${issue.path?.map((p) => String(p.key)).join('.') ?? '(frame)'}: ${issue.message}`)
    .join('; ');
  throw new Error(`server frame does not match the protocol (${issues}): ${JSON.stringify(frame).slice(0, 300)}`);
}
