/**
 * Room tokens: HS256 JWTs (jose) bound to one room and one role, with an expiry and the
 * role's invite generation (a host bumps the generation to revoke all outstanding invites
 * of that role; the room refuses tokens of an older generation).
 */
import { SignJWT, jwtVerify, errors } from 'jose';
import * as v from 'valibot';
import { Role } from '../protocol/messages';

const ISSUER = 'openstudio';
const AUDIENCE = 'openstudio:room';

export interface TokenClaims {
  roomId: string;
  role: Role;
  generation: number;
  expiresAt: number;
  /** The token's own id (`jti`): a kick bars this token, not the whole role. */
  tokenId: string;
  /**
   * This token's id and the ids of the tokens that minted it, newest first: a kick bars
   * the kicked token and everything minted from it.
   */
  lineage: string[];
  /** Validly signed but past its expiry: good only for resuming a session that is still running. */
  expired: boolean;
}

/** How many tokens deep an invite may be minted from invites (each carries its minters' ids). */
export const MAX_LINEAGE = 8;

const Payload = v.object({
  rid: v.string(),
  role: Role,
  gen: v.pipe(v.number(), v.integer(), v.minValue(0)),
  exp: v.number(),
  jti: v.pipe(v.string(), v.minLength(1), v.maxLength(64)),
  /** Ids of the tokens that minted this one, newest first (absent: minted at room creation). */
  anc: v.optional(v.pipe(v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(64))), v.maxLength(MAX_LINEAGE - 1)), []),
});

const encoder = new TextEncoder();

export async function signToken(
  secret: string,
  claims: Omit<TokenClaims, 'expiresAt' | 'tokenId' | 'lineage' | 'expired'> & { mintedBy?: readonly string[] },
  ttlSeconds: number,
  nowMs = Date.now(),
): Promise<{ token: string; expiresAt: number }> {
  const now = Math.floor(nowMs / 1000);
  const expiresAt = now + ttlSeconds;
  const ancestors = claims.mintedBy?.length ? { anc: [...claims.mintedBy] } : {};
  const token = await new SignJWT({ rid: claims.roomId, role: claims.role, gen: claims.generation, ...ancestors })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(expiresAt)
    .setJti(crypto.randomUUID())
    .sign(encoder.encode(secret));
  return { token, expiresAt };
}

export class TokenError extends Error {
  constructor(
    readonly code: 'unauthorized',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Verify signature, algorithm, issuer, audience, expiry and room binding. With
 * `allowExpired`, a validly signed token past its expiry is returned with `expired: true`
 * (jose checks the signature before the claims, so its payload is authentic).
 */
export async function verifyToken(secret: string, token: string, roomId: string, { allowExpired = false } = {}): Promise<TokenClaims> {
  let payload: unknown;
  let expired = false;
  try {
    ({ payload } = await jwtVerify(token, encoder.encode(secret), {
      algorithms: ['HS256'],
      issuer: ISSUER,
      audience: AUDIENCE,
    }));
  } catch (error) {
    if (!(error instanceof errors.JWTExpired)) throw new TokenError('unauthorized', 'token is invalid');
    if (!allowExpired) throw new TokenError('unauthorized', 'token has expired');
    ({ payload } = error);
    expired = true;
    if ((payload as { iss?: unknown; aud?: unknown }).iss !== ISSUER || (payload as { aud?: unknown }).aud !== AUDIENCE) {
      throw new TokenError('unauthorized', 'token is invalid');
    }
  }
  const parsed = v.safeParse(Payload, payload);
  if (!parsed.success) throw new TokenError('unauthorized', 'token is invalid');
  if (parsed.output.rid !== roomId) throw new TokenError('unauthorized', 'token is for another room');
  return {
    roomId: parsed.output.rid,
    role: parsed.output.role,
    generation: parsed.output.gen,
    expiresAt: parsed.output.exp,
    tokenId: parsed.output.jti,
    lineage: [parsed.output.jti, ...parsed.output.anc],
    expired,
  };
}
