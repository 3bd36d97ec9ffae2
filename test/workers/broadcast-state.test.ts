// The room's side of the program feed: who holds it, what everyone sees, and how a host's
// stop reaches the Worker that holds the feed (through the answer to its next report).
import { describe, expect, it } from 'vitest';
import { createRoom, join, roomStub, settle } from './helpers';

describe('broadcast state in the room', () => {
  it('one feed at a time; reports fan out; a host’s stop is the answer to the next report', async () => {
    const room = await createRoom({ name: 'Late show' });
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);

    const begun = await stub.beginBroadcast({ role: 'producer', generation: 0 });
    expect(begun).toMatchObject({ ok: true, name: 'Late show' });
    if (!begun.ok) throw new Error('unreachable');
    expect((await caller.client.nextOf('broadcast-updated')).broadcast).toEqual({ state: 'connecting', by: 'producer' });
    expect(await stub.beginBroadcast({ role: 'host', generation: 0 })).toMatchObject({ ok: false, code: 'broadcast-busy' });
    expect(await stub.beginBroadcast({ role: 'caller', generation: 0 })).toMatchObject({ ok: false, code: 'forbidden' });

    const live = { state: 'live' as const, by: 'producer' as const, listenUrl: 'http://radio.example/live.ogg' };
    expect(await stub.broadcastChanged(begun.id, live)).toEqual({ stop: false });
    expect((await caller.client.nextOf('broadcast-updated')).broadcast).toEqual(live);
    // A late joiner learns it from its welcome.
    expect((await join(room.roomId, room.tokens.caller)).welcome.broadcast).toEqual(live);
    // Reports from a feed that no longer holds the room are told to stop.
    expect(await stub.broadcastChanged('someone-else', live)).toEqual({ stop: true });

    caller.client.send({ type: 'stop-broadcast' });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    expect(await stub.broadcastChanged(begun.id, live)).toEqual({ stop: false });
    host.client.send({ type: 'stop-broadcast' });
    await settle(host.client); // the stop request is recorded
    expect(await stub.broadcastChanged(begun.id, live)).toEqual({ stop: true });
    expect(await stub.broadcastChanged(begun.id, { state: 'idle' })).toEqual({ stop: true });
    expect((await caller.client.nextOf('broadcast-updated')).broadcast).toEqual({ state: 'idle' });
    // Idle again: a new feed may start.
    expect(await stub.beginBroadcast({ role: 'host', generation: 0 })).toMatchObject({ ok: true });
  });

  it('closing the room tells a running feed to stop', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const begun = await stub.beginBroadcast({ role: 'host', generation: 0 });
    if (!begun.ok) throw new Error('feed refused');
    host.client.send({ type: 'close-room' });
    await host.client.waitClosed();
    expect(await stub.broadcastChanged(begun.id, { state: 'live', by: 'host' })).toEqual({ stop: true });
  });
});
