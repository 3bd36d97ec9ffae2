import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { Room } from '../../durable-objects/room';
import { connect, createRoom, join, roomStub, settle } from './helpers';

// The workers project runs with RESUME_GRACE_SECONDS=2 and ROOM_IDLE_SECONDS=4.

describe('reconnect and resume', () => {
  it('keeps the peer during the grace period and delivers queued messages in order', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    await host.client.next('peer-joined');

    caller.client.close(1001);
    const dropped = await host.client.nextOf('participant-updated');
    expect(dropped.participant).toMatchObject({ peerId: caller.peerId, connected: false });

    const hostMark = host.client.mark();
    host.client.send({ type: 'offer', to: caller.peerId, sdp: 'offer-1' });
    for (let i = 0; i < 5; i++) {
      host.client.send({ type: 'ice-candidate', to: caller.peerId, candidate: { candidate: `c${i}` } });
    }
    host.client.send({ type: 'ice-candidate', to: caller.peerId, candidate: null });
    await settle(host.client);
    expect(host.client.since(hostMark)).toEqual([]);

    const back = await connect(room.roomId, { token: room.tokens.caller, resume: caller.welcome.resumeToken });
    const welcome = await back.next('welcome');
    expect(welcome).toMatchObject({ peerId: caller.peerId, resumed: true, role: 'caller' });
    expect(welcome.resumeToken).not.toBe(caller.welcome.resumeToken);
    expect(await back.next('offer')).toEqual({ type: 'offer', from: host.peerId, sdp: 'offer-1' });
    for (let i = 0; i < 5; i++) {
      expect((await back.next('ice-candidate')).candidate).toEqual({ candidate: `c${i}` });
    }
    expect((await back.next('ice-candidate')).candidate).toBeNull();

    const reconnected = await host.client.nextOf('participant-updated');
    expect(reconnected.participant).toMatchObject({ peerId: caller.peerId, connected: true });
    await settle(host.client);
    expect(host.client.since(hostMark)).toEqual([reconnected]);
  });

  it('refuses a resume with a valid token of another role', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    caller.client.close();
    await host.client.nextOf('participant-updated');
    for (const token of [room.tokens.host, room.tokens.producer]) {
      const stolen = await connect(room.roomId, { token, resume: caller.welcome.resumeToken });
      expect(await stolen.next('error')).toMatchObject({ code: 'resume-failed' });
      expect((await stolen.waitClosed()).code).toBe(4001);
    }
    const back = await connect(room.roomId, { token: room.tokens.caller, resume: caller.welcome.resumeToken });
    expect(await back.next('welcome')).toMatchObject({ peerId: caller.peerId, role: 'caller', resumed: true });
  });

  it('caps what is held for a reconnecting peer, by count and by bytes', async () => {
    // The workers project runs with RESUME_QUEUE_MAX=20; RESUME_QUEUE_MAX_BYTES is 256 KiB.
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const few = await join(room.roomId, room.tokens.caller);
    const big = await join(room.roomId, room.tokens.caller);
    few.client.close();
    big.client.close();
    await host.client.nextOf('participant-updated');
    await host.client.nextOf('participant-updated');
    const mark = host.client.mark();

    for (let i = 0; i < 21; i++) host.client.send({ type: 'ice-candidate', to: few.peerId, candidate: { candidate: `c${i}` } });
    const sdp = 'x'.repeat(59_999); // four such offers fit in 256 KiB, five do not
    for (let i = 0; i < 5; i++) host.client.send({ type: 'offer', to: big.peerId, sdp: `${i}${sdp}` });
    await settle(host.client);
    expect(host.client.since(mark).map((f) => f.type === 'error' && f.code)).toEqual(['rate-limited', 'rate-limited']);
    expect(host.client.since(mark).map((f) => String(f.message))).toEqual([
      expect.stringContaining(few.peerId),
      expect.stringContaining(big.peerId),
    ]);

    const fewBack = await connect(room.roomId, { token: room.tokens.caller, resume: few.welcome.resumeToken });
    await fewBack.next('welcome');
    await settle(fewBack);
    expect(fewBack.unread().map((f) => f.type === 'ice-candidate' && f.candidate?.candidate)).toEqual(
      Array.from({ length: 20 }, (_, i) => `c${i}`),
    );
    const bigBack = await connect(room.roomId, { token: room.tokens.caller, resume: big.welcome.resumeToken });
    await bigBack.next('welcome');
    await settle(bigBack);
    expect(bigBack.unread().map((f) => f.type === 'offer' && f.sdp.slice(0, 1))).toEqual(['0', '1', '2', '3']);
  });

  it('a resume token works once: the old one is replaced', async () => {
    const room = await createRoom();
    const caller = await join(room.roomId, room.tokens.caller);
    caller.client.close();
    const back = await connect(room.roomId, { token: room.tokens.caller, resume: caller.welcome.resumeToken });
    await back.next('welcome');
    back.close();
    const replay = await connect(room.roomId, { token: room.tokens.caller, resume: caller.welcome.resumeToken });
    expect(await replay.next('error')).toMatchObject({ code: 'resume-failed' });
    expect((await replay.waitClosed()).code).toBe(4001);
  });

  it('a resume on a still-open socket supersedes it', async () => {
    const room = await createRoom();
    const caller = await join(room.roomId, room.tokens.caller);
    const back = await connect(room.roomId, { token: room.tokens.caller, resume: caller.welcome.resumeToken });
    expect((await back.next('welcome')).peerId).toBe(caller.peerId);
    expect((await caller.client.waitClosed()).code).toBe(4010);
  });

  it('ends the peer with peer-left timeout after the grace period', { timeout: 20_000 }, async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    await host.client.next('peer-joined');
    caller.client.close();
    await host.client.nextOf('participant-updated');
    const left = await host.client.nextOf('peer-left', 6000);
    expect(left).toEqual({ type: 'peer-left', peerId: caller.peerId, reason: 'timeout' });
    const late = await connect(room.roomId, { token: room.tokens.caller, resume: caller.welcome.resumeToken });
    expect(await late.next('error')).toMatchObject({ code: 'resume-failed' });
  });

  it('a leave ends the session at once: no grace, no resume', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    await host.client.next('peer-joined');
    caller.client.send({ type: 'leave' });
    expect(await host.client.nextOf('peer-left')).toMatchObject({ reason: 'left' });
    const back = await connect(room.roomId, { token: room.tokens.caller, resume: caller.welcome.resumeToken });
    expect(await back.next('error')).toMatchObject({ code: 'resume-failed' });
  });

  it('a kicked peer cannot come back with its resume token', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    host.client.send({ type: 'kick', peerId: caller.peerId });
    await caller.client.waitClosed();
    const back = await connect(room.roomId, { token: room.tokens.caller, resume: caller.welcome.resumeToken });
    expect(await back.next('error')).toMatchObject({ code: 'resume-failed' });
    expect((await back.waitClosed()).code).toBe(4001);
  });
});

describe('silent peers', () => {
  // The workers project runs with PEER_SILENCE_SECONDS=3; test clients ping every second.
  it('a connection that goes silent is treated as lost: grace period, then resume works', { timeout: 20_000 }, async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    await host.client.nextOf('peer-joined');
    await evictDurableObject(stub, { webSockets: 'hibernate' }); // silence is noticed by a sleeping room too
    caller.client.goSilent(); // the socket stays open, as when a network vanishes
    const lost = await host.client.nextOf('participant-updated', 8000);
    expect(lost.participant).toMatchObject({ peerId: caller.peerId, connected: false });
    expect((await caller.client.waitClosed()).code).toBe(4011);
    // The host only pinged (answered by the runtime) and is still connected.
    expect(host.client.closed).toBeNull();

    const back = await connect(room.roomId, { token: room.tokens.caller, resume: caller.welcome.resumeToken });
    expect(await back.next('welcome')).toMatchObject({ peerId: caller.peerId, resumed: true });
    expect((await host.client.nextOf('participant-updated')).participant).toMatchObject({ peerId: caller.peerId, connected: true });
  });
});

describe('hibernation and eviction', () => {
  it('keeps every piece of state across eviction with hibernated sockets', async () => {
    const room = await createRoom({ name: 'Late show' });
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    const other = await join(room.roomId, room.tokens.caller);
    await host.client.next('peer-joined');
    await host.client.next('peer-joined');

    host.client.send({ type: 'mute', peerId: caller.peerId, muted: true });
    await caller.client.nextOf('participant-updated');
    other.client.close();
    await host.client.nextOf('participant-updated');
    host.client.send({ type: 'offer', to: other.peerId, sdp: 'queued-before-eviction' });
    await settle(host.client);

    await evictDurableObject(stub, { webSockets: 'hibernate' });

    // Relay still works on the hibernated sockets, with the right identities.
    host.client.send({ type: 'offer', to: caller.peerId, sdp: 'after-eviction' });
    expect(await caller.client.nextOf('offer')).toEqual({ type: 'offer', from: host.peerId, sdp: 'after-eviction' });
    // The moderator's mute survived.
    caller.client.send({ type: 'mute', peerId: caller.peerId, muted: false });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });

    await evictDurableObject(stub, { webSockets: 'hibernate' });

    // The queued message for the disconnected peer survived too.
    const back = await connect(room.roomId, { token: room.tokens.caller, resume: other.welcome.resumeToken });
    const welcome = await back.next('welcome');
    expect(welcome.peerId).toBe(other.peerId);
    expect(welcome.room.name).toBe('Late show');
    expect(welcome.participants.find((p) => p.peerId === caller.peerId)).toMatchObject({ muted: true, mutedBy: 'moderator' });
    expect(await back.next('offer')).toMatchObject({ from: host.peerId, sdp: 'queued-before-eviction' });
  });

  it('answers the exact ping frame without waking a hibernated room', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    host.client.send({ type: 'set-name', name: 'Host' });
    await host.client.nextOf('participant-updated');
    expect(await runInDurableObject(stub, (instance: Room) => instance.framesHandled)).toBe(1);
    await evictDurableObject(stub, { webSockets: 'hibernate' });
    for (let i = 0; i < 3; i++) {
      host.client.send('{"type":"ping"}');
      expect(await host.client.next('pong')).toEqual({ type: 'pong' });
    }
    // runInDurableObject wakes it now: a fresh instance proves the pings did not.
    expect(await runInDurableObject(stub, (instance: Room) => instance.framesHandled)).toBe(0);
  });
});

describe('idle expiry', () => {
  it('never deletes a room with someone in it, however long ago it was created', { timeout: 20_000 }, async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    // Past ROOM_IDLE_SECONDS (4 s) while the host stays: the room's alarms run meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 4500));
    await runDurableObjectAlarm(stub);
    const caller = await join(room.roomId, room.tokens.caller);
    expect(caller.welcome.participants.map((p) => p.peerId)).toEqual([host.peerId]);
    expect(host.client.closed).toBeNull();
  });

  it('deletes an empty room after the idle period; its tokens then find no room', { timeout: 20_000 }, async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    expect(await runDurableObjectAlarm(stub)).toBe(true); // not yet idle long enough: rescheduled
    const host = await join(room.roomId, room.tokens.host);
    host.client.send({ type: 'leave' });
    await host.client.waitClosed();
    await new Promise((resolve) => setTimeout(resolve, 4500));
    await runDurableObjectAlarm(stub);
    const gone = await connect(room.roomId, { token: room.tokens.host });
    expect(await gone.next('error')).toMatchObject({ code: 'room-not-found' });
    expect((await gone.waitClosed()).code).toBe(4004);
  });

  it('a room that empties moves its alarm to its idle expiry: no wake for the silence check of peers who left', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const alarm = () => runInDurableObject(stub, (_room: Room, state: DurableObjectState) => state.storage.getAlarm());
    const host = await join(room.roomId, room.tokens.host);
    const joinedAt = Date.now();
    // Someone connected: the alarm is the silence check (PEER_SILENCE_SECONDS, 3 s here).
    expect((await alarm())! - joinedAt).toBeLessThan(3_500);
    host.client.send({ type: 'leave' });
    await host.client.waitClosed();
    const leftAt = Date.now();
    // Empty: only the idle expiry (ROOM_IDLE_SECONDS, 4 s here) is due.
    expect((await alarm())! - leftAt).toBeGreaterThan(3_500);
  });
});
