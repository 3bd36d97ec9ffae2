/**
 * `GET /rooms/:roomId/broadcast`, the program feed: checked here (token, role, format, one
 * feed per room), then handed to the show's own `Feed` Durable Object, which holds the
 * broadcaster's socket and the Icecast source connection (durable-objects/feed.ts). The
 * source password stays server side.
 */
import type { IRequest } from 'itty-router';
import type { Feed } from '../durable-objects/feed';
import { FEED_FORMATS, FEED_HEADER, type FeedFormat, type FeedSession } from '../protocol/handoff';
import { rejectUpgrade } from '../server/websocket';
import { readConfig, requireSecret } from '../server/config';
import { roomStub } from './rooms';
import { checkUpgrade } from './upgrade';

const encoder = new TextEncoder();

/**
 * The show's own Icecast mount: derived from the room id with the token secret, so it is
 * stable for the room (listeners keep their URL through reconnects) but cannot be guessed
 * from outside, not even from the room id.
 */
export async function showMount(tokenSecret: string, roomId: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', encoder.encode(tokenSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(`icecast-mount:${roomId}`)));
  const slug = btoa(String.fromCharCode(...mac.subarray(0, 16)))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replace(/=+$/, '');
  return `/show-${slug}.ogg`; // the feed always sends Ogg/Opus, whatever the browser records
}

function feedStub(env: Env, roomId: string): DurableObjectStub<Feed> {
  const namespace = env.FEEDS as DurableObjectNamespace<Feed>;
  return namespace.get(namespace.idFromName(roomId));
}

export async function broadcastFeed(request: IRequest, env: Env): Promise<Response> {
  const checked = await checkUpgrade(request, env);
  if (checked instanceof Response) return checked;
  const { roomId, claims, protocol } = checked;
  const format = typeof request.query.format === 'string' ? request.query.format : 'ogg';
  if (!(FEED_FORMATS as readonly string[]).includes(format)) {
    const formats = FEED_FORMATS.join(', ');
    return rejectUpgrade('invalid-message', `format must be one of ${formats}`, protocol);
  }
  const config = readConfig(env);
  const password = (env as { ICECAST_SOURCE_PASSWORD?: string }).ICECAST_SOURCE_PASSWORD;
  if (!config.icecastUrl || !password) {
    const message = 'this deployment has no Icecast configured (ICECAST_URL, ICECAST_SOURCE_PASSWORD)';
    return rejectUpgrade('broadcast-unavailable', message, protocol);
  }
  const resume = typeof request.query.resume === 'string' && request.query.resume !== '' ? request.query.resume : undefined;
  const begun = await roomStub(env, roomId).beginBroadcast(claims, resume);
  if (!begun.ok) return rejectUpgrade(begun.code, begun.message, protocol);

  const mount = await showMount(requireSecret(env, 'TOKEN_SECRET'), roomId);
  const session: FeedSession = {
    broadcastId: begun.id,
    roomId,
    by: claims.role,
    format: format as FeedFormat,
    mount,
    listenUrl: `${config.icecastPublicUrl}${mount}`,
    ...(begun.name === undefined ? {} : { name: begun.name }),
    ...(begun.since === undefined ? {} : { since: begun.since }),
    ...(begun.peak === undefined ? {} : { peak: begun.peak }),
    protocol,
  };
  return feedStub(env, roomId).fetch('https://feed/', {
    headers: { Upgrade: 'websocket', [FEED_HEADER]: encodeURIComponent(JSON.stringify(session)) },
  });
}
