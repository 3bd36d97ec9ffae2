/**
 * The HTTP API for rooms: create, mint and revoke invites, fetch ICE servers. Tokens are
 * verified here; the room's Durable Object answers whether a token's generation is current.
 */
import type { IRequest } from 'itty-router';
import * as v from 'valibot';
import type { Room } from '../durable-objects/room';
import type { CreateRoomSettings } from '../protocol/handoff';
import { CreateRoomBody, describeIssues, MintTokenBody, RevokeBody, ROLES, ROOM_ID_PATTERN, type Role } from '../protocol/messages';
import { optionalSecret, readConfig, requireSecret } from '../server/config';
import { enforceRateLimit } from './guards';
import { HttpError, json, readJsonBody, refused } from './http';
import { iceServersFor } from '../server/ice';
import { randomId } from '../server/random';
import { ROLE_TABLE } from '../protocol/roles';
import { MAX_LINEAGE, signToken, TokenError, verifyToken, type TokenClaims } from './tokens';

/** HTTP request bodies are small JSON objects; anything bigger is refused unread. */
const MAX_BODY_BYTES = 4 * 1024;

export function roomStub(env: Env, roomId: string): DurableObjectStub<Room> {
  const namespace = env.ROOMS as DurableObjectNamespace<Room>;
  return namespace.get(namespace.idFromName(roomId));
}

export function roomIdOf(request: IRequest): string {
  const roomId = request.params.roomId ?? '';
  if (!ROOM_ID_PATTERN.test(roomId)) throw new HttpError(404, 'room-not-found', 'room does not exist');
  return roomId;
}

export function bearer(request: Request): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(request.headers.get('Authorization') ?? '');
  return match?.[1] ?? null;
}

async function body<T>(request: Request, schema: v.GenericSchema<unknown, T>): Promise<T> {
  const result = v.safeParse(schema, await readJsonBody(request, MAX_BODY_BYTES));
  if (!result.success) throw new HttpError(400, 'invalid-request', describeIssues(result.issues));
  return result.output;
}

/** Constant-time comparison, so a key cannot be guessed byte by byte. */
function safeEqual(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  return ea.length === eb.length && crypto.subtle.timingSafeEqual(ea, eb);
}

/** Verify a bearer room token and check its generation with the room. */
export async function authenticate(request: IRequest, env: Env, roomId: string, { closedRoomToo = false } = {}): Promise<TokenClaims> {
  const token = bearer(request);
  if (!token) throw new HttpError(401, 'unauthorized', 'missing "Authorization: Bearer <room token>"');
  let claims: TokenClaims;
  try {
    claims = await verifyToken(requireSecret(env, 'TOKEN_SECRET'), token, roomId);
  } catch (error) {
    if (error instanceof TokenError) throw new HttpError(401, error.code, error.message);
    throw error;
  }
  const check = await roomStub(env, roomId).authorize(claims, { closedRoomToo });
  if (!check.ok) throw refused(check);
  return claims;
}

/**
 * Sign a token for `role`. One minted by another token (`minter`) never outlives it when
 * the new role has as much power or more: a day-long host token cannot mint a month-long one.
 */
function mint(env: Env, roomId: string, role: Role, generation: number, ttlSeconds?: number, minter?: TokenClaims, newLine = false) {
  let ttl = ttlSeconds ?? readConfig(env).tokenTtlSeconds;
  if (minter && ROLE_TABLE[role].power >= ROLE_TABLE[minter.role].power) {
    ttl = Math.min(ttl, minter.expiresAt - Math.floor(Date.now() / 1000));
  }
  // The new token carries its minters' ids, so a kick of any of them bars it too.
  const mintedBy = minter && !newLine ? minter.lineage : [];
  if (mintedBy.length >= MAX_LINEAGE) {
    throw new HttpError(
      400,
      'invalid-request',
      `invites can be minted at most ${MAX_LINEAGE} deep; mint this one from a host token made earlier`,
    );
  }
  return signToken(requireSecret(env, 'TOKEN_SECRET'), { roomId, role, generation, mintedBy }, ttl);
}

/** `POST /rooms` */
export async function createRoom(request: IRequest, env: Env): Promise<Response> {
  const config = readConfig(env);
  const key = optionalSecret(env, 'ROOM_CREATION_KEY');
  // Before the key check, so every wrong guess uses up the client's budget too.
  await enforceRateLimit(env.CREATE_LIMITER, request, 'room creations');
  if (key !== undefined) {
    const given = bearer(request);
    if (!given || !safeEqual(given, key)) {
      throw new HttpError(401, 'unauthorized', 'creating rooms needs "Authorization: Bearer <room creation key>"');
    }
  }
  const settings = await body(request, CreateRoomBody);
  if (settings.maxParticipants !== undefined && settings.maxParticipants > config.maxParticipants) {
    throw new HttpError(400, 'invalid-request', `maxParticipants: at most ${config.maxParticipants} on this deployment`);
  }
  requireSecret(env, 'TOKEN_SECRET'); // fail before creating anything
  const roomId = randomId(16);
  const create: CreateRoomSettings = {
    roomId,
    ...(settings.name === undefined ? {} : { name: settings.name }),
    maxParticipants: settings.maxParticipants ?? config.maxParticipants,
    lobby: settings.lobby ?? false,
  };
  const room = await roomStub(env, roomId).create(create);
  const tokens = {} as Record<Role, string>;
  let expiresAt = 0;
  for (const role of ROLES) {
    ({ token: tokens[role], expiresAt } = await mint(env, roomId, role, 0));
  }
  const wsUrl = `${new URL(request.url).origin.replace(/^http/, 'ws')}/rooms/${roomId}/ws`;
  return json({ roomId, room, tokens, expiresAt, wsUrl }, 201);
}

/** `POST /rooms/:roomId/tokens` (host): a new invite for a role. */
export async function mintInvite(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  await enforceRateLimit(env.CREATE_LIMITER, request, 'invite requests');
  const claims = await authenticate(request, env, roomId);
  const { role, ttlSeconds } = await body(request, MintTokenBody);
  const result = await roomStub(env, roomId).generationFor(claims, role);
  if (!result.ok) throw refused(result);
  return json({ role, ...(await mint(env, roomId, role, result.generation!, ttlSeconds, claims)) }, 201);
}

/** `POST /rooms/:roomId/revoke` (host): every outstanding invite of a role stops working. */
export async function revokeInvites(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  await enforceRateLimit(env.CREATE_LIMITER, request, 'invite requests');
  const claims = await authenticate(request, env, roomId);
  const { role } = await body(request, RevokeBody);
  const result = await roomStub(env, roomId).revoke(claims, role);
  if (!result.ok) throw refused(result);
  // The replacement invite (a host revoking host invites needs a new one itself). It starts
  // a new line: a revoke is a fresh start for the role, so its invite carries no minters.
  return json({ role, generation: result.generation, ...(await mint(env, roomId, role, result.generation!, undefined, claims, true)) });
}

/** `GET /rooms/:roomId/ice`: STUN/TURN servers with fresh TURN REST credentials. */
export async function iceServers(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  await enforceRateLimit(env.JOIN_LIMITER, request, 'requests');
  await authenticate(request, env, roomId);
  return json(await iceServersFor(readConfig(env), requireSecret(env, 'TURN_SECRET'), randomId(6)));
}
