import { describe, expect, it } from 'vitest';
import { createRoom, join, settle } from './helpers';

/** A lobby room with a host, a producer and an admitted caller on air, then a waiting caller. */
async function lobbyRoom() {
  const room = await createRoom({ lobby: true });
  const host = await join(room.roomId, room.tokens.host);
  const producer = await join(room.roomId, room.tokens.producer);
  const onAir = await join(room.roomId, room.tokens.caller);
  host.client.send({ type: 'admit', peerId: onAir.peerId });
  await onAir.client.nextOf('admitted');
  await host.client.nextOf('participant-updated');
  await producer.client.nextOf('participant-updated');
  // Everything the on-air caller receives from here on is checked by the tests.
  const onAirMark = onAir.client.mark();
  const caller = await join(room.roomId, room.tokens.caller);
  return { room, host, producer, onAir, onAirMark, caller };
}

describe('lobby (call screening)', () => {
  it('puts callers into a waiting state visible only to hosts and producers', { timeout: 20_000 }, async () => {
    const { host, producer, onAir, onAirMark, caller, room } = await lobbyRoom();
    expect(caller.welcome.waiting).toBe(true);
    expect(caller.welcome.participants.map((p) => p.role).sort()).toEqual(['host', 'producer']);
    expect((await host.client.next('peer-joined')).participant).toMatchObject({ peerId: caller.peerId, waiting: true });
    expect((await producer.client.next('peer-joined')).participant).toMatchObject({ peerId: caller.peerId, waiting: true });

    // A second waiting caller does not see the first, nor is seen by it.
    const callerMark = caller.client.mark();
    const second = await join(room.roomId, room.tokens.caller);
    expect(second.welcome.participants.some((p) => p.peerId === caller.peerId)).toBe(false);
    expect(second.welcome.participants.some((p) => p.peerId === onAir.peerId)).toBe(false);
    await settle(second.client, caller.client);
    expect(caller.client.since(callerMark)).toEqual([]);

    // Nor do their departures reach anyone on air: a leave, a lost connection, its timeout.
    caller.client.send({ type: 'leave' });
    expect(await host.client.nextOf('peer-left')).toMatchObject({ peerId: caller.peerId, reason: 'left' });
    second.client.close();
    expect((await host.client.nextOf('participant-updated')).participant).toMatchObject({ peerId: second.peerId, connected: false });
    expect(await host.client.nextOf('peer-left', 6000)).toMatchObject({ peerId: second.peerId, reason: 'timeout' });
    await settle(host.client, onAir.client);
    expect(onAir.client.since(onAirMark)).toEqual([]);
  });

  it('a kick of a waiting caller reaches staff only', async () => {
    const { host, producer, onAir, onAirMark, caller } = await lobbyRoom();
    producer.client.send({ type: 'kick', peerId: caller.peerId });
    expect(await caller.client.nextOf('kicked')).toEqual({ type: 'kicked' });
    expect(await host.client.nextOf('peer-left')).toMatchObject({ peerId: caller.peerId, reason: 'kicked' });
    await settle(producer.client, onAir.client);
    expect(onAir.client.since(onAirMark)).toEqual([]);
  });

  it('lets a waiting caller signal only with hosts and producers', async () => {
    const { host, caller, room, onAir, onAirMark } = await lobbyRoom();
    const other = await join(room.roomId, room.tokens.caller);
    const otherMark = other.client.mark();
    caller.client.send({ type: 'offer', to: host.peerId, sdp: 'screening call' });
    expect(await host.client.nextOf('offer')).toMatchObject({ from: caller.peerId, sdp: 'screening call' });
    host.client.send({ type: 'answer', to: caller.peerId, sdp: 'screening answer' });
    expect(await caller.client.nextOf('answer')).toMatchObject({ from: host.peerId });

    caller.client.send({ type: 'offer', to: other.peerId, sdp: 'sneaking past the screener' });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    caller.client.send({ type: 'offer', to: onAir.peerId, sdp: 'sneaking onto the air' });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    onAir.client.send({ type: 'ice-candidate', to: caller.peerId, candidate: null });
    expect(await onAir.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    await settle(caller.client, onAir.client, other.client);
    expect(other.client.since(otherMark)).toEqual([]);
    expect(onAir.client.since(onAirMark).filter((f) => f.type !== 'error')).toEqual([]);
    expect(caller.client.unread().filter((f) => f.type === 'ice-candidate')).toEqual([]);
  });

  it('a waiting caller cannot admit itself or others, nor see on-air peers by guessing ids', async () => {
    const { caller, onAir, host, room } = await lobbyRoom();
    const other = await join(room.roomId, room.tokens.caller);
    caller.client.send({ type: 'admit', peerId: caller.peerId });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    caller.client.send({ type: 'admit', peerId: other.peerId });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    caller.client.send({ type: 'mute', peerId: onAir.peerId, muted: true });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    caller.client.send({ type: 'mute', peerId: host.peerId, muted: true });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
  });

  it('admit puts a caller on air: everyone else meets it', async () => {
    const { host, producer, caller, room } = await lobbyRoom();
    const onAirCaller = await join(room.roomId, room.tokens.caller);
    producer.client.send({ type: 'admit', peerId: onAirCaller.peerId });
    await onAirCaller.client.nextOf('admitted');

    producer.client.send({ type: 'admit', peerId: caller.peerId });
    const admitted = await caller.client.nextOf('admitted');
    expect(admitted.participants.map((p) => p.peerId)).toContain(onAirCaller.peerId);
    expect((await onAirCaller.client.nextOf('peer-joined')).participant).toMatchObject({ peerId: caller.peerId, waiting: false });
    expect((await host.client.nextOf('participant-updated')).participant.peerId).toBe(onAirCaller.peerId);
    const update = await host.client.nextOf('participant-updated');
    expect(update.participant).toMatchObject({ peerId: caller.peerId, waiting: false });

    caller.client.send({ type: 'offer', to: onAirCaller.peerId, sdp: 'on air now' });
    expect(await onAirCaller.client.nextOf('offer')).toMatchObject({ from: caller.peerId });
    producer.client.send({ type: 'admit', peerId: caller.peerId });
    expect(await producer.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
  });

  it('kick denies a waiting caller', async () => {
    const { host, caller } = await lobbyRoom();
    host.client.send({ type: 'kick', peerId: caller.peerId });
    expect(await caller.client.nextOf('kicked')).toEqual({ type: 'kicked' });
    expect((await caller.client.waitClosed()).code).toBe(4003);
  });

  it('hosts and producers skip the lobby', async () => {
    const { host, producer } = await lobbyRoom();
    expect(host.welcome.waiting).toBe(false);
    expect(producer.welcome.waiting).toBe(false);
  });
});
