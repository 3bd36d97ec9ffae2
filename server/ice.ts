/**
 * TURN REST API credentials (draft-uberti-behave-turn-rest), as coturn's
 * `use-auth-secret` expects: username `<expiry-unix-seconds>:<user>`, credential
 * base64(HMAC-SHA1(secret, username)). No static TURN password exists anywhere.
 */
import type { Config } from './config';
import type { IceServersInfo } from '../protocol/messages';

const encoder = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacSha1Key(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign']);
    keyCache.set(secret, key);
  }
  return key;
}

function base64(bytes: ArrayBuffer): string {
  let binary = '';
  for (const b of new Uint8Array(bytes)) binary += String.fromCharCode(b);
  return btoa(binary);
}

export async function turnCredential(secret: string, username: string): Promise<string> {
  const signature = await crypto.subtle.sign('HMAC', await hmacSha1Key(secret), encoder.encode(username));
  return base64(signature);
}

/** ICE servers for one user: STUN urls as they are, TURN urls with fresh credentials. */
export async function iceServersFor(config: Config, turnSecret: string, userId: string, nowMs = Date.now()): Promise<IceServersInfo> {
  const expiresAt = Math.floor(nowMs / 1000) + config.turnTtlSeconds;
  const iceServers: IceServersInfo['iceServers'] = [];
  if (config.stunUrls.length > 0) iceServers.push({ urls: config.stunUrls });
  if (config.turnUrls.length > 0) {
    const username = `${expiresAt}:${userId}`;
    iceServers.push({ urls: config.turnUrls, username, credential: await turnCredential(turnSecret, username) });
  }
  return { iceServers, expiresAt };
}
