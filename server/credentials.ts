/**
 * Recording credentials: HS256 JWTs (jose) under TOKEN_SECRET, each with an audience of its
 * own so none of them opens a room socket and no room token uploads or downloads.
 * - upload: granted by the room to one page; writes one track of one take.
 * - download: given to staff with the recordings list; reads one take, expires with the
 *   staff token that asked, and carries that token's lineage and generation so a kick or a
 *   revocation ends it as it ends the token.
 */
import { SignJWT, jwtVerify } from 'jose';
import * as v from 'valibot';
import { Role } from '../protocol/messages';
import type { TokenActor } from '../protocol/handoff';

const ISSUER = 'openstudio';
const UPLOAD_AUDIENCE = 'openstudio:upload';
const DOWNLOAD_AUDIENCE = 'openstudio:download';
/** An upload credential lives as long as a take may still take uploads (a long show, its grace). */
const UPLOAD_TTL_SECONDS = 7 * 86400;
/** Download links are short-lived: the page asks for fresh ones with every listing. */
export const DOWNLOAD_TTL_SECONDS = 6 * 3600;

const encoder = new TextEncoder();
const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(64));

export interface UploadGrant {
  roomId: string;
  takeId: string;
  trackId: string;
}

export interface DownloadGrant extends TokenActor {
  roomId: string;
  takeId: string;
}

async function sign(secret: string, audience: string, payload: Record<string, unknown>, expiresAt: number): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(expiresAt)
    .sign(encoder.encode(secret));
}

async function verify(secret: string, audience: string, token: string): Promise<unknown | null> {
  try {
    const { payload } = await jwtVerify(token, encoder.encode(secret), { algorithms: ['HS256'], issuer: ISSUER, audience });
    return payload;
  } catch {
    return null;
  }
}

export function signUpload(secret: string, grant: UploadGrant, nowMs = Date.now()): Promise<string> {
  const exp = Math.floor(nowMs / 1000) + UPLOAD_TTL_SECONDS;
  return sign(secret, UPLOAD_AUDIENCE, { rid: grant.roomId, take: grant.takeId, trk: grant.trackId }, exp);
}

const UploadPayload = v.object({ rid: Id, take: Id, trk: Id });

/** The grant of a valid upload credential, or null (bad signature, expired, another audience). */
export async function verifyUpload(secret: string, token: string): Promise<UploadGrant | null> {
  const parsed = v.safeParse(UploadPayload, await verify(secret, UPLOAD_AUDIENCE, token));
  return parsed.success ? { roomId: parsed.output.rid, takeId: parsed.output.take, trackId: parsed.output.trk } : null;
}

/** A download key for one take, expiring with `tokenExpiresAt` (epoch s) or within DOWNLOAD_TTL_SECONDS. */
export function signDownload(secret: string, grant: DownloadGrant, tokenExpiresAt: number, nowMs = Date.now()): Promise<string> {
  const exp = Math.min(tokenExpiresAt, Math.floor(nowMs / 1000) + DOWNLOAD_TTL_SECONDS);
  return sign(
    secret,
    DOWNLOAD_AUDIENCE,
    { rid: grant.roomId, take: grant.takeId, role: grant.role, gen: grant.generation, lin: grant.lineage },
    exp,
  );
}

const DownloadPayload = v.object({
  rid: Id,
  take: Id,
  role: Role,
  gen: v.pipe(v.number(), v.integer(), v.minValue(0)),
  lin: v.pipe(v.array(Id), v.minLength(1), v.maxLength(8)),
});

export async function verifyDownload(secret: string, token: string): Promise<DownloadGrant | null> {
  const parsed = v.safeParse(DownloadPayload, await verify(secret, DOWNLOAD_AUDIENCE, token));
  if (!parsed.success) return null;
  const { rid, take, role, gen, lin } = parsed.output;
  return { roomId: rid, takeId: take, role, generation: gen, lineage: lin };
}
