/**
 * `GET /rooms/:roomId/ws`: checks Origin, rate limit and token in the Worker, then hands
 * the upgrade to the room's Durable Object with the verified role. Every refusal is an
 * accepted socket carrying an `error` frame and a close code, so browsers can show why.
 */
import type { IRequest } from 'itty-router';
import { verifyUpload } from '../server/credentials';
import { UPGRADE_HEADERS } from '../protocol/handoff';
import { rejectUpgrade } from '../server/websocket';
import { ROOM_ID_PATTERN, SUBPROTOCOL } from '../protocol/messages';
import { readConfig, requireSecret } from '../server/config';
import { clientKey, LIMITER_WINDOW_SECONDS as JOIN_RETRY_SECONDS, originAllowed } from './guards';
import { errorResponse } from './http';
import { roomStub } from './rooms';
import { TokenError, verifyToken, type TokenClaims } from './tokens';

const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]+$/;

/** Token from `?token=` or from a `Sec-WebSocket-Protocol` entry; which protocol to echo. */
function upgradeCredentials(request: IRequest): { token: string | null; protocol: string | null } {
  const offered = (request.headers.get('Sec-WebSocket-Protocol') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const fromProtocol = offered.find((entry) => JWT_SHAPE.test(entry)) ?? null;
  const protocol = offered.includes(SUBPROTOCOL) ? SUBPROTOCOL : (fromProtocol ?? offered[0] ?? null);
  const query = typeof request.query.token === 'string' ? request.query.token : null;
  return { token: query ?? fromProtocol, protocol };
}

export interface CheckedUpgrade {
  roomId: string;
  claims: TokenClaims;
  /** The `Sec-WebSocket-Protocol` to echo, if the client offered one. */
  protocol: string | null;
}

/**
 * Everything the Worker checks before an upgrade reaches a room: the Upgrade header,
 * Origin, the per-client join limit, the room id and the token. Returns the refusal to send
 * back, or what was established.
 */
export async function checkUpgrade(request: IRequest, env: Env): Promise<CheckedUpgrade | Response> {
  // A resume may present a token past its expiry: a running session keeps its power for as
  // long as it lasts (the room or the feed checks that it is still running).
  const resuming = typeof request.query.resume === 'string' && request.query.resume !== '';
  if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
    return errorResponse(426, 'upgrade-required', 'this endpoint speaks WebSocket only');
  }
  const config = readConfig(env);
  const { token, protocol } = upgradeCredentials(request);
  if (!originAllowed(request, config)) {
    return rejectUpgrade('origin-not-allowed', 'this Origin may not open room connections', protocol);
  }
  const { success } = await env.JOIN_LIMITER.limit({ key: clientKey(request) });
  if (!success) {
    // Transient (a shared NAT after a reconnect storm): a retryable close, with the wait.
    return rejectUpgrade('rate-limited', `too many joins from this client; try again in ${JOIN_RETRY_SECONDS} s`, protocol, {
      retryAfterSeconds: JOIN_RETRY_SECONDS,
    });
  }
  const roomId = request.params.roomId ?? '';
  if (!ROOM_ID_PATTERN.test(roomId)) {
    return rejectUpgrade('room-not-found', 'room does not exist', protocol);
  }
  if (!token) {
    return rejectUpgrade('unauthorized', 'missing room token (?token= or Sec-WebSocket-Protocol)', protocol);
  }
  try {
    const claims = await verifyToken(requireSecret(env, 'TOKEN_SECRET'), token, roomId, { allowExpired: resuming });
    return { roomId, claims, protocol };
  } catch (error) {
    if (error instanceof TokenError) return rejectUpgrade('unauthorized', error.message, protocol);
    throw error;
  }
}

/** `GET /rooms/:roomId/ws`: signaling, handed to the room's Durable Object. */
export async function upgrade(request: IRequest, env: Env): Promise<Response> {
  const checked = await checkUpgrade(request, env);
  if (checked instanceof Response) return checked;
  const { roomId, claims, protocol } = checked;
  // Only what the room needs crosses over; nothing the client sent is trusted as-is.
  const headers = new Headers({
    Upgrade: 'websocket',
    [UPGRADE_HEADERS.role]: claims.role,
    [UPGRADE_HEADERS.generation]: String(claims.generation),
    [UPGRADE_HEADERS.tokenId]: claims.tokenId,
    [UPGRADE_HEADERS.lineage]: claims.lineage.join(','),
  });
  if (protocol) headers.set(UPGRADE_HEADERS.protocol, protocol);
  // A reloaded page takes up its own track of the running take: it proves it with the
  // upload credential the room granted it (the room checks the take still runs).
  // (Two at most: its voice, and the program if it recorded that.)
  const credentials = ([] as unknown[]).concat(request.query.track ?? []).slice(0, 2);
  const tracks: string[] = [];
  for (const credential of credentials) {
    const grant = typeof credential === 'string' ? await verifyUpload(requireSecret(env, 'TOKEN_SECRET'), credential) : null;
    if (grant && grant.roomId === roomId) tracks.push(`${grant.takeId}:${grant.trackId}`);
  }
  if (tracks.length) headers.set(UPGRADE_HEADERS.track, tracks.join(','));
  const forward = new URL(`https://room/${roomId}/ws`);
  const resume = typeof request.query.resume === 'string' ? request.query.resume : null;
  if (resume) forward.searchParams.set('resume', resume);
  return roomStub(env, roomId).fetch(forward.toString(), { headers });
}
