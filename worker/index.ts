/**
 * The Worker: HTTP API and WebSocket upgrades. It authenticates every request (room
 * tokens, room-creation key) before any Durable Object is touched, then hands the room's
 * work to that room's Durable Object.
 */
import { Router, type IRequest } from 'itty-router';
import * as v from 'valibot';
import type { Room, CreateRoomSettings } from '../durable-objects/room';
import { UPGRADE_HEADERS } from '../durable-objects/room';
import { rejectUpgrade } from '../durable-objects/transport';
import {
  CLOSE_CODES,
  CreateRoomBody,
  describeIssues,
  MintTokenBody,
  PROTOCOL_VERSION,
  RevokeBody,
  ROLES,
  ROOM_ID_PATTERN,
  SUBPROTOCOL,
  type Role,
} from '../protocol/messages';
import { ConfigError, readConfig, requireSecret, type Config } from './config';
import { errorResponse, HttpError, json, readJsonBody } from './http';
import { iceServersFor } from './ice';
import { signToken, TokenError, verifyToken, type TokenClaims } from './tokens';

export { Room } from '../durable-objects/room';

/** HTTP request bodies are small JSON objects; anything bigger is refused unread. */
const MAX_BODY_BYTES = 4 * 1024;

type Args = [Env, ExecutionContext];

function roomStub(env: Env, roomId: string): DurableObjectStub<Room> {
  const namespace = env.ROOMS as DurableObjectNamespace<Room>;
  return namespace.get(namespace.idFromName(roomId));
}

function roomIdOf(request: IRequest): string {
  const roomId = request.params.roomId ?? '';
  if (!ROOM_ID_PATTERN.test(roomId)) throw new HttpError(404, 'room-not-found', 'room does not exist');
  return roomId;
}

function bearer(request: IRequest): string | null {
  const header = request.headers.get('Authorization') ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1] ?? null;
}

function parseBody<T>(schema: v.GenericSchema<unknown, T>, body: unknown): T {
  const result = v.safeParse(schema, body);
  if (!result.success) throw new HttpError(400, 'invalid-request', describeIssues(result.issues));
  return result.output;
}

/** Constant-time string comparison, so a key cannot be guessed byte by byte. */
function safeEqual(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  if (ea.length !== eb.length) return false;
  return crypto.subtle.timingSafeEqual(ea, eb);
}

function randomRoomId(): string {
  const raw = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...raw)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** Verify a bearer room token and check its generation with the room. */
async function authenticate(request: IRequest, env: Env, roomId: string): Promise<TokenClaims> {
  const token = bearer(request);
  if (!token) throw new HttpError(401, 'unauthorized', 'missing "Authorization: Bearer <room token>"');
  let claims: TokenClaims;
  try {
    claims = await verifyToken(requireSecret(env, 'TOKEN_SECRET'), token, roomId);
  } catch (error) {
    if (error instanceof TokenError) throw new HttpError(401, error.code, error.message);
    throw error;
  }
  const check = await roomStub(env, roomId).authorize(claims.role, claims.generation);
  if (!check.ok) throw new HttpError(check.status, check.code, check.message);
  return claims;
}

async function mint(env: Env, config: Config, roomId: string, role: Role, generation: number, ttlSeconds?: number) {
  return signToken(requireSecret(env, 'TOKEN_SECRET'), { roomId, role, generation }, ttlSeconds ?? config.tokenTtlSeconds);
}

// ---- WebSocket upgrade --------------------------------------------------------------

/** Token from `?token=` or from a `Sec-WebSocket-Protocol` entry; which protocol to echo. */
function upgradeCredentials(request: IRequest): { token: string | null; protocol: string | null } {
  const offered = (request.headers.get('Sec-WebSocket-Protocol') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const fromProtocol = offered.find((entry) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(entry)) ?? null;
  const protocol = offered.includes(SUBPROTOCOL) ? SUBPROTOCOL : (fromProtocol ?? offered[0] ?? null);
  const query = typeof request.query.token === 'string' ? request.query.token : null;
  return { token: query ?? fromProtocol, protocol };
}

function originAllowed(request: Request, config: Config): boolean {
  const origin = request.headers.get('Origin');
  // Non-browser clients send no Origin; cross-site hijacking needs a browser, which always does.
  if (origin === null) return true;
  if (origin === new URL(request.url).origin) return true;
  return config.allowedOrigins.includes('*') || config.allowedOrigins.includes(origin);
}

async function upgrade(request: IRequest, env: Env): Promise<Response> {
  if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
    return errorResponse(426, 'upgrade-required', 'this endpoint speaks WebSocket only');
  }
  const config = readConfig(env);
  const { token, protocol } = upgradeCredentials(request);
  if (!originAllowed(request, config)) {
    return rejectUpgrade('origin-not-allowed', CLOSE_CODES.forbidden, 'this Origin may not open room connections', protocol);
  }
  const roomId = request.params.roomId ?? '';
  if (!ROOM_ID_PATTERN.test(roomId)) {
    return rejectUpgrade('room-not-found', CLOSE_CODES.roomNotFound, 'room does not exist', protocol);
  }
  if (!token) {
    return rejectUpgrade('unauthorized', CLOSE_CODES.unauthorized, 'missing room token (?token= or Sec-WebSocket-Protocol)', protocol);
  }
  let claims: TokenClaims;
  try {
    claims = await verifyToken(requireSecret(env, 'TOKEN_SECRET'), token, roomId);
  } catch (error) {
    if (error instanceof TokenError) return rejectUpgrade('unauthorized', CLOSE_CODES.unauthorized, error.message, protocol);
    throw error;
  }
  const headers = new Headers({
    Upgrade: 'websocket',
    [UPGRADE_HEADERS.role]: claims.role,
    [UPGRADE_HEADERS.generation]: String(claims.generation),
  });
  if (protocol) headers.set(UPGRADE_HEADERS.protocol, protocol);
  const url = new URL(request.url);
  const forward = new URL(`https://room/${roomId}/ws`);
  const resume = url.searchParams.get('resume');
  if (resume) forward.searchParams.set('resume', resume);
  return roomStub(env, roomId).fetch(forward.toString(), { headers });
}

// ---- routes -------------------------------------------------------------------------

export const router = Router<IRequest, Args>({
  catch: (error: unknown) => {
    if (error instanceof HttpError) return errorResponse(error.status, error.code, error.message);
    if (error instanceof ConfigError) {
      console.error(`configuration error: ${error.message}`);
      return errorResponse(500, 'misconfigured', error.message);
    }
    console.error('unhandled error', error);
    return errorResponse(500, 'internal', 'internal error');
  },
});

router
  .get('/health', () => json({ status: 'ok', protocol: PROTOCOL_VERSION }))
  .post('/rooms', async (request, env) => {
    const config = readConfig(env);
    const key = (env as { ROOM_CREATION_KEY?: string }).ROOM_CREATION_KEY;
    if (key) {
      const given = bearer(request);
      if (!given || !safeEqual(given, key)) {
        throw new HttpError(401, 'unauthorized', 'creating rooms needs "Authorization: Bearer <room creation key>"');
      }
    }
    const body = parseBody(CreateRoomBody, await readJsonBody(request, MAX_BODY_BYTES));
    if (body.maxParticipants !== undefined && body.maxParticipants > config.maxParticipants) {
      throw new HttpError(400, 'invalid-request', `maxParticipants: at most ${config.maxParticipants} on this deployment`);
    }
    const roomId = randomRoomId();
    const settings: CreateRoomSettings = {
      roomId,
      ...(body.name === undefined ? {} : { name: body.name }),
      maxParticipants: body.maxParticipants ?? config.maxParticipants,
      lobby: body.lobby ?? false,
    };
    const secret = requireSecret(env, 'TOKEN_SECRET');
    const room = await roomStub(env, roomId).create(settings);
    const tokens = {} as Record<Role, string>;
    let expiresAt = 0;
    for (const role of ROLES) {
      const minted = await signToken(secret, { roomId, role, generation: 0 }, config.tokenTtlSeconds);
      tokens[role] = minted.token;
      expiresAt = minted.expiresAt;
    }
    const base = new URL(request.url).origin.replace(/^http/, 'ws');
    return json({ roomId, room, tokens, expiresAt, wsUrl: `${base}/rooms/${roomId}/ws` }, 201);
  })
  .post('/rooms/:roomId/tokens', async (request, env) => {
    const roomId = roomIdOf(request);
    const claims = await authenticate(request, env, roomId);
    const body = parseBody(MintTokenBody, await readJsonBody(request, MAX_BODY_BYTES));
    const result = await roomStub(env, roomId).generationFor(claims, body.role);
    if (!result.ok) throw new HttpError(result.status, result.code, result.message);
    const minted = await mint(env, readConfig(env), roomId, body.role, result.generation!, body.ttlSeconds);
    return json({ role: body.role, ...minted }, 201);
  })
  .post('/rooms/:roomId/revoke', async (request, env) => {
    const roomId = roomIdOf(request);
    const claims = await authenticate(request, env, roomId);
    const body = parseBody(RevokeBody, await readJsonBody(request, MAX_BODY_BYTES));
    const result = await roomStub(env, roomId).revoke(claims, body.role);
    if (!result.ok) throw new HttpError(result.status, result.code, result.message);
    // The replacement invite for that role (a host revoking host invites needs a new one).
    const minted = await mint(env, readConfig(env), roomId, body.role, result.generation!);
    return json({ role: body.role, generation: result.generation, ...minted }, 200);
  })
  .get('/rooms/:roomId/ice', async (request, env) => {
    const roomId = roomIdOf(request);
    await authenticate(request, env, roomId);
    const user = crypto.randomUUID().slice(0, 8);
    return json(await iceServersFor(readConfig(env), requireSecret(env, 'TURN_SECRET'), user));
  })
  .get('/rooms/:roomId/ws', upgrade)
  .all('*', () => errorResponse(404, 'not-found', 'no such endpoint'));

export default {
  fetch: (request: Request, env: Env, ctx: ExecutionContext) => router.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
