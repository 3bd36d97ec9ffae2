import { describe, expect, it } from 'vitest';
import type { Role } from '../../protocol/messages';
import { moderatesRole, ROLE_TABLE } from '../../protocol/roles';
import { evictDurableObject } from 'cloudflare:test';
import { call, connect, createRoom, join, roomStub, settle } from './helpers';

/** A room with one connected peer of every role, everyone's joins already read. */
async function fullCast() {
  const room = await createRoom();
  const host = await join(room.roomId, room.tokens.host);
  const producer = await join(room.roomId, room.tokens.producer);
  const caller = await join(room.roomId, room.tokens.caller);
  const caller2 = await join(room.roomId, room.tokens.caller);
  await host.client.nextOf('peer-joined');
  await host.client.nextOf('peer-joined');
  await host.client.nextOf('peer-joined');
  await producer.client.nextOf('peer-joined');
  await producer.client.nextOf('peer-joined');
  await caller.client.nextOf('peer-joined');
  await settle(host.client, producer.client, caller.client, caller2.client);
  return { room, host, producer, caller, caller2 };
}

type Cast = Awaited<ReturnType<typeof fullCast>>;
type Member = 'host' | 'producer' | 'caller' | 'caller2';

const ROLE_OF: Record<Member, Role> = { host: 'host', producer: 'producer', caller: 'caller', caller2: 'caller' };

// Who may mute (and kick) whom, read from the role table (whose content is pinned to SPEC's
// below): every pair of the cast, caller2 watching (it is only a target of another caller).
const MODERATION: [Member, Member, boolean][] = (['host', 'producer', 'caller'] as const).flatMap((actor) =>
  (Object.keys(ROLE_OF) as Member[])
    .filter((target) => target !== actor && (target !== 'caller2' || actor === 'caller'))
    .map((target): [Member, Member, boolean] => [actor, target, moderatesRole(ROLE_OF[actor], ROLE_OF[target])]),
);

describe('the role table', () => {
  it('says what SPEC says each role may do', () => {
    expect(ROLE_TABLE).toEqual({
      host: {
        staff: true,
        power: 2,
        moderates: ['host', 'producer', 'caller'],
        admit: true,
        closeRoom: true,
        manageInvites: true,
        broadcast: true,
        record: true,
        sounds: true,
      },
      producer: {
        staff: true,
        power: 1,
        moderates: ['caller'],
        admit: true,
        closeRoom: false,
        manageInvites: false,
        broadcast: true,
        record: true,
        sounds: true,
      },
      caller: {
        staff: false,
        power: 0,
        moderates: [],
        admit: false,
        closeRoom: false,
        manageInvites: false,
        broadcast: false,
        record: false,
        sounds: false,
      },
    });
  });
});

describe('mute', () => {
  for (const [actor, target, allowed] of MODERATION) {
    it(`${actor} ${allowed ? 'may' : 'may not'} mute ${target}`, async () => {
      const cast: Cast = await fullCast();
      const mark = cast[target].client.mark();
      cast[actor].client.send({ type: 'mute', peerId: cast[target].peerId, muted: true });
      if (allowed) {
        const update = await cast[target].client.nextOf('participant-updated');
        expect(update.participant).toMatchObject({ peerId: cast[target].peerId, muted: true, mutedBy: 'moderator' });
        expect((await cast.caller2.client.nextOf('participant-updated')).participant.peerId).toBe(cast[target].peerId);
      } else {
        expect(await cast[actor].client.nextOf('error')).toMatchObject({ code: 'forbidden' });
        await settle(cast[actor].client, cast[target].client);
        expect(cast[target].client.since(mark)).toEqual([]);
      }
    });
  }

  it('lets a caller mute and unmute itself', async () => {
    const { caller, host } = await fullCast();
    caller.client.send({ type: 'mute', peerId: caller.peerId, muted: true });
    expect((await host.client.nextOf('participant-updated')).participant).toMatchObject({ muted: true, mutedBy: 'self' });
    caller.client.send({ type: 'mute', peerId: caller.peerId, muted: false });
    expect((await host.client.nextOf('participant-updated')).participant).toMatchObject({ muted: false, mutedBy: null });
  });

  it('does not let a caller lift a mute set by a host or producer', async () => {
    const { caller, producer, host } = await fullCast();
    producer.client.send({ type: 'mute', peerId: caller.peerId, muted: true });
    await caller.client.nextOf('participant-updated');
    caller.client.send({ type: 'mute', peerId: caller.peerId, muted: false });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    // Muting itself again keeps the moderator's mute: nothing changes, so nothing is stored or told.
    const mark = host.client.mark();
    caller.client.send({ type: 'mute', peerId: caller.peerId, muted: true });
    await settle(caller.client, host.client);
    expect(host.client.since(mark)).toEqual([]);
    caller.client.send({ type: 'mute', peerId: caller.peerId, muted: false });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    host.client.send({ type: 'mute', peerId: caller.peerId, muted: false });
    expect((await caller.client.nextOf('participant-updated')).participant).toMatchObject({ muted: false, mutedBy: null });
    caller.client.send({ type: 'mute', peerId: caller.peerId, muted: true });
    expect((await caller.client.nextOf('participant-updated')).participant).toMatchObject({ muted: true, mutedBy: 'self' });
  });
});

describe('kick', () => {
  for (const [actor, target, allowed] of MODERATION) {
    it(`${actor} ${allowed ? 'may' : 'may not'} kick ${target}`, async () => {
      const cast: Cast = await fullCast();
      const mark = cast[target].client.mark();
      cast[actor].client.send({ type: 'kick', peerId: cast[target].peerId });
      if (allowed) {
        expect(await cast[target].client.nextOf('kicked')).toEqual({ type: 'kicked' });
        expect((await cast[target].client.waitClosed()).code).toBe(4003);
        const observer = actor === 'host' && target !== 'caller' ? cast.caller : cast.caller2;
        expect(await observer.client.nextOf('peer-left')).toEqual({
          type: 'peer-left',
          peerId: cast[target].peerId,
          reason: 'kicked',
        });
      } else {
        expect(await cast[actor].client.nextOf('error')).toMatchObject({ code: 'forbidden' });
        await settle(cast[actor].client, cast[target].client);
        expect(cast[target].client.since(mark)).toEqual([]);
        expect(cast[target].client.closed).toBeNull();
      }
    });
  }

  it('a kicked caller who rejoins with the same link waits in the lobby until staff admit it', async () => {
    const room = await createRoom(); // no lobby: callers normally go straight on air
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const onAir = await join(room.roomId, room.tokens.caller);
    const kicked = await join(room.roomId, room.tokens.caller);
    await host.client.nextOf('peer-joined');
    await host.client.nextOf('peer-joined');
    host.client.send({ type: 'kick', peerId: kicked.peerId });
    await kicked.client.waitClosed();
    await onAir.client.nextOf('peer-left');
    await host.client.nextOf('peer-left');
    await evictDurableObject(stub, { webSockets: 'hibernate' }); // the bar is kept in storage
    const onAirMark = onAir.client.mark();

    const back = await join(room.roomId, room.tokens.caller);
    expect(back.welcome.waiting).toBe(true);
    expect(back.welcome.participants.map((p) => p.peerId)).toEqual([host.peerId]);
    expect((await host.client.nextOf('peer-joined')).participant).toMatchObject({ peerId: back.peerId, waiting: true });
    // Off the air: it cannot reach on-air callers, and they do not learn it is back.
    back.client.send({ type: 'offer', to: onAir.peerId, sdp: 'back on air?' });
    expect(await back.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    await settle(back.client, onAir.client);
    expect(onAir.client.since(onAirMark)).toEqual([]);

    // A fresh invite is not barred; and staff decide when the kicked link is on air again.
    const invite = await call(`/rooms/${room.roomId}/tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${room.tokens.host}` },
      body: JSON.stringify({ role: 'caller' }),
    });
    const fresh = await join(room.roomId, ((await invite.json()) as { token: string }).token);
    expect(fresh.welcome.waiting).toBe(false);
    host.client.send({ type: 'admit', peerId: back.peerId });
    await back.client.nextOf('admitted');
    expect((await onAir.client.nextOf('peer-joined')).participant).toMatchObject({ peerId: fresh.peerId });
    expect((await onAir.client.nextOf('peer-joined')).participant).toMatchObject({ peerId: back.peerId, waiting: false });
  });

  it('a kicked producer’s invite no longer opens the room', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const producer = await join(room.roomId, room.tokens.producer);
    host.client.send({ type: 'kick', peerId: producer.peerId });
    await producer.client.waitClosed();
    const back = await connect(room.roomId, { token: room.tokens.producer });
    expect(await back.next('error')).toMatchObject({ code: 'forbidden', message: expect.stringContaining('kicked') });
    expect((await back.waitClosed()).code).toBe(4003);
    expect((await join(room.roomId, room.tokens.caller)).welcome.waiting).toBe(false); // other invites unaffected
  });

  it('refuses kicking oneself', async () => {
    const { host } = await fullCast();
    host.client.send({ type: 'kick', peerId: host.peerId });
    expect(await host.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
  });
});

describe('leave, names and closing', () => {
  it('a leave tells the others at once and closes normally', async () => {
    const { caller, host } = await fullCast();
    caller.client.send({ type: 'leave' });
    expect((await caller.client.waitClosed()).code).toBe(1000);
    expect(await host.client.nextOf('peer-left')).toEqual({ type: 'peer-left', peerId: caller.peerId, reason: 'left' });
  });

  it('anyone may set its own name; everyone sees it', async () => {
    const { caller, host } = await fullCast();
    caller.client.send({ type: 'set-name', name: '  Jo from Leeds ' });
    expect((await host.client.nextOf('participant-updated')).participant).toMatchObject({
      peerId: caller.peerId,
      name: 'Jo from Leeds',
    });
  });

  for (const role of ['producer', 'caller'] as Role[]) {
    it(`a ${role} cannot close the room`, async () => {
      const cast = await fullCast();
      cast[role].client.send({ type: 'close-room' });
      expect(await cast[role].client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    });
  }

  it('a host closes the room: everyone gets room-closed and 4004, and nobody can join again', async () => {
    const { room, host, caller } = await fullCast();
    host.client.send({ type: 'close-room' });
    expect(await caller.client.nextOf('room-closed')).toEqual({ type: 'room-closed' });
    expect((await caller.client.waitClosed()).code).toBe(4004);
    expect((await host.client.waitClosed()).code).toBe(4004);
    const { connect } = await import('./helpers');
    const again = await connect(room.roomId, { token: room.tokens.host });
    expect(await again.next('error')).toMatchObject({ code: 'room-not-found' });
    expect((await again.waitClosed()).code).toBe(4004);
  });
});
