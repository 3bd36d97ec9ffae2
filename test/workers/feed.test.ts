// The program feed object itself (durable-objects/feed.ts): a host's stop reaches it at
// once, a feed that lost its state makes the broadcaster reconnect, and the listener-count
// probe tells a live Icecast from a dead one. Icecast here is the discard port (nothing
// listens), so a feed stays `connecting` and reports only when its state changes.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REASONS } from '../../durable-objects/broadcast-state';
import { FEED_HEARTBEAT_MS, type Feed } from '../../durable-objects/feed';
import { mountListeners, type IcecastTarget } from '../../durable-objects/icecast';
import { call, createRoom, join, openFeed, until } from './helpers';

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms))]);
}

const feedStub = (roomId: string) => env.FEEDS.get(env.FEEDS.idFromName(roomId));

describe('the feed object', () => {
  it('a host’s stop ends the feed at once, not at its next report', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const feed = await openFeed(room.roomId, room.tokens.host);
    await until(() => feed.frames.find((f) => f.type === 'feed-accepted'), 'feed-accepted');
    // Its last report: the unreachable Icecast. The next one is a heartbeat, FEED_HEARTBEAT_MS away.
    await until(
      () => feed.frames.find((f) => f.type === 'broadcast-updated' && f.broadcast.reason === REASONS.unreachable),
      'the unreachable report',
    );
    host.client.send({ type: 'stop-broadcast' });
    // Budget: well under the heartbeat, which is all a stop flag alone would wait for.
    expect(await within(feed.closed, FEED_HEARTBEAT_MS / 2, 'feed close')).toBe(1000);
    let update = await host.client.nextOf('broadcast-updated', FEED_HEARTBEAT_MS / 2);
    while (update.broadcast.state === 'connecting') update = await host.client.nextOf('broadcast-updated', FEED_HEARTBEAT_MS / 2);
    expect(update.broadcast).toEqual({ state: 'idle' });
  });

  it('a feed that lost its state (evicted) closes the broadcaster’s socket with a code it reconnects on, and the show resumes', async () => {
    const room = await createRoom();
    const feed = await openFeed(room.roomId, room.tokens.host);
    const accepted = await until(() => feed.frames.find((f) => f.type === 'feed-accepted'), 'feed-accepted');
    // What an eviction leaves: the hibernated socket still open, the object's memory gone.
    await runInDurableObject(feedStub(room.roomId), (feed: Feed) => {
      const fresh = feed as unknown as { session: unknown; current: unknown; reader: unknown; stopSource(): void };
      fresh.stopSource();
      Object.assign(fresh, { session: null, current: null, reader: null });
    });
    feed.ws.send(new Uint8Array([0x4f, 0x67, 0x67, 0x53])); // audio for an object that no longer knows the show
    expect(await within(feed.closed, 5_000, 'feed close')).toBe(1012); // a restart: not final for a Broadcaster
    const again = await openFeed(room.roomId, room.tokens.host, accepted.broadcastId);
    expect((await until(() => again.frames.find((f) => f.type === 'feed-accepted'), 'feed-accepted again')).broadcastId).toBe(
      accepted.broadcastId,
    );
    again.ws.close(1000);
  });
});

describe('the listener-count probe', () => {
  const target: IcecastTarget = { url: 'https://icecast.example', mount: '/show-x.ogg', password: 'source-secret' };
  const requests: { url: string; authorization: string | null }[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    requests.length = 0;
  });

  /** An Icecast that answers every request with `status`; redirects are followed the way fetch would unless told not to. */
  function icecastAnswering(status: number, location?: string) {
    const fake = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const request = new Request(input, init);
      requests.push({ url: request.url, authorization: request.headers.get('Authorization') });
      if (request.url.startsWith(target.url) && location) {
        const redirect = new Response(null, { status, headers: { Location: location } });
        return init?.redirect === 'manual' ? redirect : fake(location, { headers: init?.headers });
      }
      return new Response('<icestats><source mount="/show-x.ogg"><listeners>3</listeners></source></icestats>', { status });
    };
    vi.spyOn(globalThis, 'fetch').mockImplementation(fake);
  }

  it('any HTTP answer is a live Icecast: 200 counts, 401 and 404 count nothing but do not fail', async () => {
    icecastAnswering(200);
    expect(await mountListeners(target, 1_000)).toBe(3);
    for (const status of [401, 404, 500]) {
      vi.restoreAllMocks();
      icecastAnswering(status);
      await expect(mountListeners(target, 1_000)).resolves.toBeUndefined();
    }
  });

  it('a redirect is not followed: the source credentials go to Icecast only', async () => {
    icecastAnswering(302, 'https://elsewhere.example/collect');
    await expect(mountListeners(target, 1_000)).resolves.toBeUndefined();
    // Only what this probe asked (a feed of an earlier test may still be probing its own Icecast).
    const hosts = requests.map((r) => new URL(r.url).host).filter((host) => host !== '127.0.0.1:9');
    expect(hosts).toEqual(['icecast.example']);
  });

  it('no answer in time, or no connection, fails the probe (a stall)', async () => {
    vi.spyOn(globalThis, 'fetch').mockImplementation(
      (_input, init) => new Promise((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason))),
    );
    await expect(mountListeners(target, 200)).rejects.toThrow();
    vi.restoreAllMocks();
    await expect(mountListeners({ ...target, url: 'http://127.0.0.1:9' }, 2_000)).rejects.toThrow(); // nothing listens there
  });
});
