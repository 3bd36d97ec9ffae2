// The studio's HTTP API (docs/protocol.md, "HTTP API"): create a room, mint and revoke
// invites, the recordings, the soundboard's files. Every refusal the Worker answers is `{"error": {code, message}}`; here it becomes
// an `HttpError`. A studio that cannot be reached rejects with fetch's own error.
import type { CreateRoomBody, ErrorCode, MintTokenBody, Role, RoomInfo } from '../../../protocol/messages';
import type { RecordingInfo, TakeListing } from '../../../protocol/recording';
import { SOUND_NAME_HEADER, type SoundInfo } from '../../../protocol/sounds';

/** A refusal by the studio: the HTTP status, and the error's code and message when it sent them. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    /** The protocol's error code; null when the answer was not in the error shape (a proxy's page). */
    readonly code: ErrorCode | null,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface CreatedRoom {
  roomId: string;
  room: RoomInfo;
  /** One invite per role; the host's opens the console as host. */
  tokens: Record<Role, string>;
  expiresAt: number;
  wsUrl: string;
}

export interface Invite {
  role: Role;
  token: string;
  expiresAt: number;
}

/** A revocation's answer: the role's new generation and the invite that replaces the old ones. */
export interface ReplacementInvite extends Invite {
  generation: number;
}

export interface HttpOptions {
  /** The studio's origin; default: this page's. */
  base?: string;
}

async function post<T>(path: string, body: unknown, authorization: string | undefined, options: HttpOptions): Promise<T> {
  return call('POST', path, body, authorization, options);
}

async function call<T>(
  method: string,
  path: string,
  body: unknown,
  authorization: string | undefined,
  { base = '' }: HttpOptions,
): Promise<T> {
  const headers: Record<string, string> = body === undefined ? {} : { 'Content-Type': 'application/json' };
  if (authorization) headers.Authorization = `Bearer ${authorization}`;
  const response = await fetch(`${base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return answerOf<T>(response);
}

async function answerOf<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const answer = await response.json().catch(() => null);
  if (response.ok && answer !== null) return answer as T;
  const error = answer?.error;
  if (typeof error?.code === 'string' && typeof error.message === 'string') throw new HttpError(response.status, error.code, error.message);
  throw new HttpError(response.status, null, `error ${response.status}`);
}

/** `POST /rooms`: a new room and its three invites. `creationKey`: when the deployment sets `ROOM_CREATION_KEY`. */
export function createRoom(body: CreateRoomBody, options: HttpOptions & { creationKey?: string } = {}): Promise<CreatedRoom> {
  return post('/rooms', body, options.creationKey, options);
}

/** `POST /rooms/:roomId/tokens` with a host token: a new invite for `role`. */
export function mintInvite(roomId: string, hostToken: string, body: MintTokenBody, options: HttpOptions = {}): Promise<Invite> {
  return post(`/rooms/${encodeURIComponent(roomId)}/tokens`, body, hostToken, options);
}

/** `POST /rooms/:roomId/revoke` with a host token: every invite of `role` stops working; returns the one that replaces them. */
export function revokeInvites(roomId: string, hostToken: string, role: Role, options: HttpOptions = {}): Promise<ReplacementInvite> {
  return post(`/rooms/${encodeURIComponent(roomId)}/revoke`, { role }, hostToken, options);
}

/** `GET /rooms/:roomId/recording` with any token of the room: whether a take runs now (the join page says so). */
export function recordingState(roomId: string, token: string, options: HttpOptions = {}): Promise<{ recording: RecordingInfo }> {
  return call('GET', `/rooms/${encodeURIComponent(roomId)}/recording`, undefined, token, options);
}

/** `GET /rooms/:roomId/recordings` with a staff token: every take, its tracks and download links. */
export function listRecordings(roomId: string, token: string, options: HttpOptions = {}): Promise<{ takes: TakeListing[] }> {
  return call('GET', `/rooms/${encodeURIComponent(roomId)}/recordings`, undefined, token, options);
}

/** `DELETE /rooms/:roomId/recordings/:takeId` with a staff token: the take and its files go. */
export function deleteTake(roomId: string, token: string, takeId: string, options: HttpOptions = {}): Promise<void> {
  return call('DELETE', `/rooms/${encodeURIComponent(roomId)}/recordings/${encodeURIComponent(takeId)}`, undefined, token, options);
}

/** `POST /rooms/:roomId/sounds` with a staff token: a new pad named `name`, for everyone on the show. */
export async function uploadSound(
  roomId: string,
  token: string,
  file: Blob,
  name: string,
  { base = '' }: HttpOptions = {},
): Promise<{ sound: SoundInfo }> {
  const response = await fetch(`${base}/rooms/${encodeURIComponent(roomId)}/sounds`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/octet-stream',
      [SOUND_NAME_HEADER]: encodeURIComponent(name),
    },
    body: file,
  });
  return answerOf(response);
}

/** `GET /rooms/:roomId/sounds/:soundId` with any token of the room: the sound's file. */
export async function fetchSound(roomId: string, token: string, soundId: string, { base = '' }: HttpOptions = {}): Promise<ArrayBuffer> {
  const response = await fetch(`${base}/rooms/${encodeURIComponent(roomId)}/sounds/${encodeURIComponent(soundId)}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  if (!response.ok) return answerOf(response);
  return response.arrayBuffer();
}

/** `DELETE /rooms/:roomId/sounds/:soundId` with a staff token: the pad and its file go. */
export function deleteSound(roomId: string, token: string, soundId: string, options: HttpOptions = {}): Promise<void> {
  return call('DELETE', `/rooms/${encodeURIComponent(roomId)}/sounds/${encodeURIComponent(soundId)}`, undefined, token, options);
}
