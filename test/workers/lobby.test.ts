import { describe, expect, it } from 'vitest';
import { createRoom, join, settle } from './helpers';

async function lobbyRoom() {
  const room = await createRoom({ lobby: true });
  const host = await join(room.roomId, room.tokens.host);
  const producer = await join(room.roomId, room.tokens.producer);
  await host.client.next('peer-joined');
  const onAir = await join(room.roomId, room.tokens.producer); // stands in for an admitted guest
  await host.client.next('peer-joined');
  await producer.client.next('peer-joined');
  const caller = await join(room.roomId, room.tokens.caller);
  return { room, host, producer, onAir, caller };
}

describe('lobby (call screening)', () => {
  it('puts callers into a waiting state visible only to hosts and producers', async () => {
    const { host, producer, onAir, caller, room } = await lobbyRoom();
    expect(caller.welcome.waiting).toBe(true);
    expect(caller.welcome.participants.map((p) => p.role).sort()).toEqual(['host', 'producer', 'producer']);
    expect((await host.client.next('peer-joined')).participant).toMatchObject({ peerId: caller.peerId, waiting: true });
    expect((await producer.client.next('peer-joined')).participant).toMatchObject({ peerId: caller.peerId, waiting: true });

    // A second waiting caller does not see the first, nor is seen by it.
    const second = await join(room.roomId, room.tokens.caller);
    expect(second.welcome.participants.some((p) => p.peerId === caller.peerId)).toBe(false);
    await settle(caller.client);
    expect(caller.client.unread().filter((f) => f.type === 'peer-joined')).toEqual([]);
    await settle(onAir.client);
    expect(onAir.client.unread().filter((f) => f.type === 'peer-joined')).toEqual([]);
  });

  it('lets a waiting caller signal only with hosts and producers', async () => {
    const { host, caller, room } = await lobbyRoom();
    const other = await join(room.roomId, room.tokens.caller);
    caller.client.send({ type: 'offer', to: host.peerId, sdp: 'screening call' });
    expect(await host.client.nextOf('offer')).toMatchObject({ from: caller.peerId, sdp: 'screening call' });
    host.client.send({ type: 'answer', to: caller.peerId, sdp: 'screening answer' });
    expect(await caller.client.nextOf('answer')).toMatchObject({ from: host.peerId });

    caller.client.send({ type: 'offer', to: other.peerId, sdp: 'sneaking past the screener' });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    other.client.send({ type: 'ice-candidate', to: caller.peerId, candidate: null });
    expect(await other.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    await settle(other.client);
    expect(other.client.unread().filter((f) => f.type === 'offer')).toEqual([]);
  });

  it('a waiting caller cannot admit itself or others, nor see on-air peers by guessing ids', async () => {
    const { caller, onAir, room } = await lobbyRoom();
    const other = await join(room.roomId, room.tokens.caller);
    caller.client.send({ type: 'admit', peerId: caller.peerId });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    caller.client.send({ type: 'admit', peerId: other.peerId });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    caller.client.send({ type: 'mute', peerId: onAir.peerId, muted: true });
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
