// The room's side of the program feed: who holds it, what everyone sees (and what a waiting
// caller does not), how a host's stop reaches the feed, and how the room's state follows
// reality when a feed stops reporting. Also the show's own mount and the feed's reasons.
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { REASONS } from '../../durable-objects/broadcast-state';
import { BROADCAST_LOST_MS, BROADCAST_STALE_MS, type Room } from '../../durable-objects/room';
import { showMount } from '../../worker/broadcast';
import { call, createRoom, join, openFeed, roomStub, settle, until } from './helpers';

/** Pretend the feed's last report was `ms` longer ago than it was. */
function age(stub: DurableObjectStub<Room>, ms: number) {
  return runInDurableObject(stub, (room: Room) => {
    (room as unknown as { broadcastSeenAt: number }).broadcastSeenAt -= ms;
  });
}

describe('broadcast state in the room', () => {
  it('one feed at a time; reports fan out; a host’s stop is the answer to the next report', async () => {
    const room = await createRoom({ name: 'Late show' });
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);

    const begun = await stub.beginBroadcast({ role: 'producer', generation: 0, lineage: [] });
    expect(begun).toMatchObject({ ok: true, name: 'Late show' });
    if (!begun.ok) throw new Error('unreachable');
    expect((await caller.client.nextOf('broadcast-updated')).broadcast).toEqual({ state: 'connecting', by: 'producer' });
    expect(await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] })).toMatchObject({ ok: false, code: 'broadcast-busy' });
    expect(await stub.beginBroadcast({ role: 'caller', generation: 0, lineage: [] })).toMatchObject({ ok: false, code: 'forbidden' });

    const live = { state: 'live' as const, by: 'producer' as const, listenUrl: 'http://radio.example/show-x.ogg', since: 1 };
    expect(await stub.broadcastChanged(begun.id, live)).toEqual({ stop: false });
    expect((await caller.client.nextOf('broadcast-updated')).broadcast).toEqual(live);
    // A late joiner learns it from its welcome.
    expect((await join(room.roomId, room.tokens.caller)).welcome.broadcast).toEqual(live);
    // Reports from a feed that no longer holds the room are told to stop.
    expect(await stub.broadcastChanged('someone-else', live)).toEqual({ stop: true });
    // The broadcaster of this show may take it up again after a drop (with its id), keeping the clock.
    expect(await stub.beginBroadcast({ role: 'producer', generation: 0, lineage: [] }, begun.id)).toMatchObject({
      ok: true,
      id: begun.id,
      since: 1,
    });
    expect(await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] }, 'guessed-id')).toMatchObject({
      ok: false,
      code: 'broadcast-ended',
    });

    caller.client.send({ type: 'stop-broadcast' });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    expect(await stub.broadcastChanged(begun.id, live)).toEqual({ stop: false });
    host.client.send({ type: 'stop-broadcast' });
    await settle(host.client); // the stop request is recorded
    expect(await stub.broadcastChanged(begun.id, live)).toEqual({ stop: true });
    expect(await stub.broadcastChanged(begun.id, { state: 'idle' })).toEqual({ stop: true });
    expect((await caller.client.nextOf('broadcast-updated')).broadcast).toEqual({ state: 'idle' });
    // Idle again: a new feed may start.
    expect(await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] })).toMatchObject({ ok: true });
  });

  it('closing the room tells a running feed to stop', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const begun = await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] });
    if (!begun.ok) throw new Error('feed refused');
    host.client.send({ type: 'close-room' });
    await host.client.waitClosed();
    expect(await stub.broadcastChanged(begun.id, { state: 'live', by: 'host' })).toEqual({ stop: true });
  });
});

describe('broadcast state follows reality', () => {
  it('a feed that stops reporting leaves live within bounded time, then ends; a new one may start', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const caller = await join(room.roomId, room.tokens.caller);
    const begun = await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] });
    if (!begun.ok) throw new Error('feed refused');
    expect((await caller.client.nextOf('broadcast-updated')).broadcast.state).toBe('connecting');
    await stub.broadcastChanged(begun.id, { state: 'live', by: 'host', since: 5 });
    expect((await caller.client.nextOf('broadcast-updated')).broadcast.state).toBe('live');

    await age(stub, BROADCAST_STALE_MS);
    await runDurableObjectAlarm(stub);
    expect((await caller.client.nextOf('broadcast-updated')).broadcast).toEqual({
      state: 'reconnecting',
      reason: REASONS.feedSilent,
      by: 'host',
      since: 5,
    });
    await age(stub, BROADCAST_LOST_MS);
    await runDurableObjectAlarm(stub);
    expect((await caller.client.nextOf('broadcast-updated')).broadcast).toEqual({ state: 'error', reason: REASONS.feedLost, by: 'host' });
    expect(await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] })).toMatchObject({ ok: true });
  });

  it('the room’s alarm is set while a feed runs, even with nobody connected', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    await runDurableObjectAlarm(stub); // the creation alarm (idle expiry) ran early: re-armed
    const begun = await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] });
    if (!begun.ok) throw new Error('feed refused');
    const alarm = await runInDurableObject(stub, (_room: Room, state: DurableObjectState) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(Date.now() + BROADCAST_STALE_MS);
  });

  it('idle expiry never deletes a room while its feed reports; it does once the feed ended', { timeout: 15_000 }, async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const begun = await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] });
    if (!begun.ok) throw new Error('feed refused');
    await stub.broadcastChanged(begun.id, { state: 'live', by: 'host' });
    await new Promise((resolve) => setTimeout(resolve, 4500)); // ROOM_IDLE_SECONDS is 4 here
    await stub.broadcastChanged(begun.id, { state: 'live', by: 'host', listeners: { current: 1, peak: 1 } });
    await runDurableObjectAlarm(stub);
    expect(await stub.authorize({ role: 'host', generation: 0, lineage: [] })).toEqual({ ok: true });

    await stub.broadcastChanged(begun.id, { state: 'idle' });
    await new Promise((resolve) => setTimeout(resolve, 4500));
    await runDurableObjectAlarm(stub);
    expect(await stub.authorize({ role: 'host', generation: 0, lineage: [] })).toMatchObject({ ok: false, code: 'room-not-found' });
  });

  it('a host’s stop ends a feed that no longer reports at once', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const begun = await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] });
    if (!begun.ok) throw new Error('feed refused');
    await host.client.nextOf('broadcast-updated');
    await age(stub, BROADCAST_STALE_MS);
    host.client.send({ type: 'stop-broadcast' });
    expect((await host.client.nextOf('broadcast-updated')).broadcast).toEqual({ state: 'idle' });
  });
});

describe('what a waiting caller learns about the show', () => {
  it('nothing: no broadcast in its welcome, no broadcast-updated while it waits; the state on admission', async () => {
    const room = await createRoom({ lobby: true });
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const begun = await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [] });
    if (!begun.ok) throw new Error('feed refused');
    const live = { state: 'live' as const, by: 'host' as const, listenUrl: 'http://radio.example/show-secret.ogg', since: 7 };
    await stub.broadcastChanged(begun.id, live);

    const waiting = await join(room.roomId, room.tokens.caller);
    expect(waiting.welcome.waiting).toBe(true);
    expect(waiting.welcome).not.toHaveProperty('broadcast');
    const mark = waiting.client.mark();
    await stub.broadcastChanged(begun.id, { ...live, listeners: { current: 3, peak: 3 } });
    await stub.broadcastChanged(begun.id, { ...live, state: 'reconnecting', reason: REASONS.stalled });
    await settle(waiting.client); // every frame the room sent it before the round trip has arrived
    expect(waiting.client.since(mark)).toEqual([]);

    host.client.send({ type: 'admit', peerId: waiting.peerId });
    const admitted = await waiting.client.nextOf('admitted');
    expect(admitted.broadcast).toEqual({ ...live, state: 'reconnecting', reason: REASONS.stalled });
  });
});

describe('the show’s own mount and the feed', () => {
  it('each room has its own mount, not derivable from the room id, stable for the room', async () => {
    const secret = (env as unknown as { TOKEN_SECRET: string }).TOKEN_SECRET;
    const a = await showMount(secret, 'room-aaaaaaaa');
    expect(a).toMatch(/^\/show-[A-Za-z0-9_-]{22}\.ogg$/);
    expect(await showMount(secret, 'room-aaaaaaaa')).toBe(a);
    expect(await showMount(secret, 'room-bbbbbbbb')).not.toBe(a);
    expect(a).not.toContain('aaaaaaaa');
    expect(await showMount(`${secret}x`, 'room-aaaaaaaa')).not.toBe(a);
  });

  it('the feed announces the show’s own listen URL; an unreachable Icecast is a plain sentence, no address', async () => {
    const one = await createRoom();
    const two = await createRoom();
    const host = await join(one.roomId, one.tokens.host);
    const feed = await openFeed(one.roomId, one.tokens.host);
    const other = await openFeed(two.roomId, two.tokens.host);
    const accepted = await until(() => feed.frames.find((f) => f.type === 'feed-accepted'), 'feed-accepted');
    expect(accepted.broadcastId).toMatch(/^[A-Za-z0-9_-]+$/);
    // Nothing listens on the test's Icecast address: the feed keeps retrying, and says so.
    const retrying = await host.client.nextOf('broadcast-updated', 5_000);
    const urls = new Set<string>();
    for (let update = retrying; ; update = await host.client.nextOf('broadcast-updated', 5_000)) {
      if (update.broadcast.listenUrl) urls.add(update.broadcast.listenUrl);
      if (update.broadcast.reason === REASONS.unreachable) break;
    }
    const otherUrl = (await until(() => other.frames.find((f) => f.type === 'broadcast-updated'), 'other feed state')).broadcast.listenUrl;
    expect([...urls]).toHaveLength(1);
    const [url] = urls;
    expect(url).toBe(`http://127.0.0.1:9${await showMount((env as unknown as { TOKEN_SECRET: string }).TOKEN_SECRET, one.roomId)}`);
    expect(otherUrl).not.toBe(url);
    // Whatever the runtime's error said, the room and the broadcaster saw only fixed sentences.
    for (const frame of [...host.client.frames, ...feed.frames]) {
      const reason: string | undefined = frame.broadcast?.reason;
      if (reason !== undefined) expect(Object.values(REASONS)).toContain(reason);
    }
    feed.ws.close(1000);
    other.ws.close(1000);
    expect((await host.client.nextOf('broadcast-updated', 5_000)).broadcast).toEqual({ state: 'idle' });
  });
  it('a resume only takes up the same running show: a stopped show stays stopped', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const actor = { role: 'producer' as const, generation: 0, lineage: [] };
    const begun = await stub.beginBroadcast(actor);
    if (!begun.ok) throw new Error(begun.message);
    expect(await stub.broadcastChanged(begun.id, { state: 'live', since: 1 })).toEqual({ stop: false });
    host.client.send({ type: 'stop-broadcast' });
    await settle(host.client);
    // Soon after the stop (the feed has not ended yet) and once the show is idle: refused, and said truly.
    const ended = { ok: false, code: 'broadcast-ended', message: expect.stringContaining('ended') };
    expect(await stub.beginBroadcast(actor, begun.id)).toMatchObject(ended);
    expect(await stub.broadcastChanged(begun.id, { state: 'idle' })).toEqual({ stop: true });
    expect(await stub.beginBroadcast(actor, begun.id)).toMatchObject(ended);
    await until(() => host.client.frames.find((f) => f.type === 'broadcast-updated' && f.broadcast.state === 'idle'), 'the show idle');
    // Through the Worker too, as the client library's Broadcaster resumes after its network returns.
    const feed = await openFeed(room.roomId, room.tokens.producer, begun.id);
    expect((await until(() => feed.frames.find((f) => f.type === 'error'), 'the refusal')).code).toBe('broadcast-ended');
    expect(await feed.closed).toBe(4003);
    // A new show may start.
    expect(await stub.beginBroadcast(actor)).toMatchObject({ ok: true });
  });
});
