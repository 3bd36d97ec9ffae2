/**
 * The soundboard's HTTP API (docs/soundboard.md): staff add and delete sounds; everyone on
 * the show fetches the files to play them. A file is checked whole before anything is kept
 * (server/sound-format.ts), stored in R2 beside the recordings, then added to the room's
 * pads; the room tells everyone on the show, and plays are frames on the room's socket.
 */
import type { IRequest } from 'itty-router';
import * as v from 'valibot';
import { describeIssues } from '../protocol/messages';
import { ROLE_TABLE } from '../protocol/roles';
import { SOUND_ID_PATTERN, SOUND_NAME_HEADER, SoundName } from '../protocol/sounds';
import { readConfig } from '../server/config';
import { randomId } from '../server/random';
import { soundKey } from '../server/sound-files';
import { checkSound } from '../server/sound-format';
import { enforceRateLimit } from './guards';
import { HttpError, json, readBody, refused } from './http';
import { authenticate, roomIdOf, roomStub } from './rooms';
import type { TokenClaims } from './tokens';

function soundIdOf(request: IRequest): string {
  const soundId = request.params.soundId ?? '';
  if (!SOUND_ID_PATTERN.test(soundId)) throw new HttpError(404, 'sound-not-found', 'no such sound');
  return soundId;
}

async function staff(request: IRequest, env: Env, roomId: string): Promise<TokenClaims> {
  const claims = await authenticate(request, env, roomId);
  if (!ROLE_TABLE[claims.role].sounds) throw new HttpError(403, 'forbidden', `a ${claims.role} cannot manage the sounds`);
  return claims;
}

/** The pad's name: the `X-Sound-Name` header (URI-encoded, so any language fits a header). */
function nameOf(request: Request): string {
  const raw = request.headers.get(SOUND_NAME_HEADER);
  if (raw === null) throw new HttpError(400, 'invalid-request', `${SOUND_NAME_HEADER}: the sound's name expected`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'invalid-request', `${SOUND_NAME_HEADER}: not URI-encoded text`);
  }
  const result = v.safeParse(SoundName, decoded);
  if (!result.success) throw new HttpError(400, 'invalid-request', `${SOUND_NAME_HEADER}: ${describeIssues(result.issues)}`);
  return result.output;
}

/** `POST /rooms/:roomId/sounds` (staff): the body is the file; 201 `{ sound }`. */
export async function addSound(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  await enforceRateLimit(env.CREATE_LIMITER, request, 'sound uploads');
  const claims = await staff(request, env, roomId); // before reading a byte of the file
  const name = nameOf(request);
  const bytes = await readBody(request, readConfig(env).soundMaxBytes);
  const check = checkSound(bytes);
  if (!check.ok) throw new HttpError(415, 'invalid-sound', check.message);
  const soundId = randomId(12);
  const key = soundKey(roomId, soundId);
  await env.RECORDINGS_BUCKET.put(key, bytes, { httpMetadata: { contentType: check.contentType } });
  const result = await roomStub(env, roomId)
    .addSound(claims, { soundId, name, format: check.format, bytes: bytes.byteLength, duration: check.duration })
    .catch((error: unknown) => ({ ok: false as const, error }));
  if (!result.ok) {
    await env.RECORDINGS_BUCKET.delete(key); // nothing kept of a refused sound
    if ('error' in result) throw result.error;
    throw refused(result);
  }
  return json({ sound: result.sound }, 201);
}

/** `GET /rooms/:roomId/sounds` (staff): the pads, as the room's `sounds` frame has them. */
export async function listSounds(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  const claims = await staff(request, env, roomId);
  const result = await roomStub(env, roomId).soundList(claims);
  if (!result.ok) throw refused(result);
  return json({ sounds: result.sounds });
}

/**
 * `GET /rooms/:roomId/sounds/:soundId`: the file, for any token of the room. Only pages on
 * the show learn a sound's id (a waiting caller is never told one), and a file never
 * changes under its id, so the browser may keep it.
 */
export async function getSound(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  const soundId = soundIdOf(request);
  await authenticate(request, env, roomId);
  const object = await env.RECORDINGS_BUCKET.get(soundKey(roomId, soundId));
  if (!object) throw new HttpError(404, 'sound-not-found', 'no such sound');
  return new Response(object.body, {
    headers: {
      'Content-Type': object.httpMetadata?.contentType ?? 'application/octet-stream',
      'Content-Length': String(object.size),
      'Cache-Control': 'private, max-age=86400, immutable',
      'Content-Disposition': 'attachment',
    },
  });
}

/** `DELETE /rooms/:roomId/sounds/:soundId` (staff): 204; it stops for everyone first. */
export async function deleteSound(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  const soundId = soundIdOf(request);
  const claims = await staff(request, env, roomId);
  const result = await roomStub(env, roomId).removeSound(claims, soundId);
  if (!result.ok) throw refused(result);
  await env.RECORDINGS_BUCKET.delete(soundKey(roomId, soundId));
  return new Response(null, { status: 204 });
}
