// The studio's HTTP API (docs/protocol.md, "HTTP API"): create a room, mint and revoke
// invites. Every refusal the Worker answers is `{"error": {code, message}}`; here it becomes
// an `HttpError`. A studio that cannot be reached rejects with fetch's own error.
import type { CreateRoomBody, ErrorCode, MintTokenBody, Role, RoomInfo } from '../../../protocol/messages';

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

async function post<T>(path: string, body: unknown, authorization: string | undefined, { base = '' }: HttpOptions): Promise<T> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (authorization) headers.Authorization = `Bearer ${authorization}`;
  const response = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
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
