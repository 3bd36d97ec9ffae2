// The producer's desk through the room: talkback, hold, screener notes, messages and mute
// all; above all, what a caller must never read (notes, the staff chat, other callers'
// messages) never reaches its socket: every frame after a mark is read.
import { describe, expect, it } from 'vitest';
import { CHAT_MAX } from '../../protocol/messages';
import { createRoom, join, settle, until, type TestClient } from './helpers';

type Frame = ReturnType<TestClient['since']>[number];

/** The first frame after `mark` that `match` accepts (waiting for it). */
function frameAfter(client: TestClient, mark: number, match: (frame: Frame) => boolean, what: string): Promise<Frame> {
  return until(() => client.since(mark).find(match), what, 5_000);
}

const updateOf =
  (peerId: string, check: (p: { talkback?: string; waiting?: boolean; mutedBy?: string | null }) => boolean = () => true) =>
  (f: Frame) =>
    f.type === 'participant-updated' && f.participant.peerId === peerId && check(f.participant);

/** A lobby room: host Hanna, producer Pat, on-air callers Ann and Bob, and Walt waiting. */
async function desk() {
  const room = await createRoom({ lobby: true });
  const host = await join(room.roomId, room.tokens.host);
  host.client.send({ type: 'set-name', name: 'Hanna' });
  const producer = await join(room.roomId, room.tokens.producer);
  const ann = await join(room.roomId, room.tokens.caller);
  const bob = await join(room.roomId, room.tokens.caller);
  for (const caller of [ann, bob]) {
    host.client.send({ type: 'admit', peerId: caller.peerId });
    await caller.client.nextOf('admitted');
  }
  const walt = await join(room.roomId, room.tokens.caller);
  await settle(host.client, producer.client, ann.client, bob.client, walt.client);
  return { room, host, producer, ann, bob, walt };
}

describe("the producer's desk", () => {
  it('talkback: the listener hears it in its ears, everyone else sees the voice off the show; callers cannot talk back', async () => {
    const { host, producer, ann, bob, walt } = await desk();
    const marks = [host, ann, bob].map((p) => p.client.mark());
    producer.client.send({ type: 'talkback', to: host.peerId, on: true });
    await settle(producer.client, host.client, ann.client, bob.client);
    const seen = (i: number, p: typeof host) =>
      p.client
        .since(marks[i]!)
        .filter((f) => f.type === 'participant-updated' && f.participant.peerId === producer.peerId)
        .map((f) => (f as { participant: { talkback?: string } }).participant.talkback);
    expect(seen(0, host)).toEqual(['to-you']);
    expect(seen(1, ann)).toEqual(['away']);
    expect(seen(2, bob)).toEqual(['away']);

    // To everyone on air: every on-air participant hears it, the waiting caller does not.
    const waltMark = walt.client.mark();
    const everyoneMarks = [host, ann, bob].map((p) => p.client.mark());
    producer.client.send({ type: 'talkback', to: null, on: true });
    for (const [i, p] of [host, ann, bob].entries()) {
      await frameAfter(
        p.client,
        everyoneMarks[i]!,
        updateOf(producer.peerId, (v) => v.talkback === 'to-you'),
        'talkback to everyone',
      );
    }
    const offMark = ann.client.mark();
    producer.client.send({ type: 'talkback', to: null, on: false });
    await frameAfter(
      ann.client,
      offMark,
      updateOf(producer.peerId, (v) => v.talkback === undefined),
      'talkback ended',
    );

    // A waiting caller is talked with privately, not talked back to; callers cannot talk back.
    producer.client.send({ type: 'talkback', to: walt.peerId, on: true });
    expect(await producer.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    ann.client.send({ type: 'talkback', to: bob.peerId, on: true });
    expect(await ann.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    await settle(producer.client, ann.client, walt.client);
    // Walt waits: nothing of the desk reached him (he sees the producer, never its talkback).
    expect(walt.client.since(waltMark).filter((f) => JSON.stringify(f).includes('talkback'))).toEqual([]);
  });

  it('hold: an on-air caller waits again on the same connection; callers on air lose sight of it; admit brings it back', async () => {
    const { host, producer, ann, bob } = await desk();
    ann.client.send({ type: 'hold', peerId: bob.peerId });
    expect(await ann.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    const before = Date.now();
    const hostMark = host.client.mark();
    producer.client.send({ type: 'hold', peerId: bob.peerId });
    const held = await bob.client.nextOf('held');
    expect(held.participants.map((p) => p.role).sort()).toEqual(['host', 'producer']);
    expect(await ann.client.nextOf('peer-left')).toMatchObject({ peerId: bob.peerId, reason: 'held' });
    const update = (await frameAfter(host.client, hostMark, updateOf(bob.peerId), 'the hold, at the host')) as Extract<
      Frame,
      { type: 'participant-updated' }
    >;
    expect(update.participant).toMatchObject({ peerId: bob.peerId, waiting: true });
    expect(update.participant.waitingSince).toBeGreaterThanOrEqual(before - 1);
    expect(bob.client.closed).toBeNull();
    host.client.send({ type: 'admit', peerId: bob.peerId });
    expect((await bob.client.nextOf('admitted')).participants.some((p) => p.peerId === ann.peerId)).toBe(true);
    expect((await ann.client.nextOf('peer-joined')).participant).toMatchObject({ peerId: bob.peerId, waiting: false });
  });

  it('notes and the staff chat reach staff only; a message to a caller reaches that caller and the staff; nobody else reads a word', async () => {
    const { room, host, producer, ann, bob, walt } = await desk();
    const callers = [ann, bob, walt];
    const marks = callers.map((c) => c.client.mark());
    producer.client.send({ type: 'set-note', peerId: walt.peerId, note: 'Jane from Dayton, the bridge' });
    expect(await host.client.nextOf('note-updated')).toMatchObject({ peerId: walt.peerId, note: 'Jane from Dayton, the bridge' });
    const producerMark = producer.client.mark();
    host.client.send({ type: 'set-note', peerId: walt.peerId, note: 'Jane from Dayton, the bridge (on next)' });
    await frameAfter(
      producer.client,
      producerMark,
      (f) => f.type === 'note-updated' && f.note === 'Jane from Dayton, the bridge (on next)',
      'the edited note at the producer',
    );
    host.client.send({ type: 'chat', to: 'staff', text: 'thirty seconds to the break' });
    expect(await producer.client.nextOf('chat')).toMatchObject({ to: 'staff', text: 'thirty seconds to the break', fromName: 'Hanna' });
    const script = '<img src=x onerror=alert(1)>';
    producer.client.send({ type: 'chat', to: ann.peerId, text: script });
    expect(await ann.client.nextOf('chat')).toMatchObject({ to: ann.peerId, text: script, fromRole: 'producer' });
    await frameAfter(host.client, 0, (f) => f.type === 'chat' && f.text === script, 'the message to Ann, at the host');
    // Callers may not write notes or send messages.
    ann.client.send({ type: 'set-note', peerId: bob.peerId, note: 'x' });
    expect(await ann.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    ann.client.send({ type: 'chat', to: bob.peerId, text: 'hi Bob' });
    expect(await ann.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    host.client.send({ type: 'chat', to: 'staff', text: 'x'.repeat(CHAT_MAX + 1) });
    expect(await host.client.nextOf('error')).toMatchObject({ code: 'invalid-message' });

    // A staff page that reloads gets the notes and the chat back; a caller's welcome has none of them.
    const again = await join(room.roomId, room.tokens.producer);
    expect(again.welcome.notes).toEqual({ [walt.peerId]: 'Jane from Dayton, the bridge (on next)' });
    expect(again.welcome.chat.map((m) => m.text)).toEqual(['thirty seconds to the break', script]);
    const newCaller = await join(room.roomId, room.tokens.caller);
    expect(newCaller.welcome.notes).toBeUndefined();
    expect(newCaller.welcome.chat).toEqual([]);

    await settle(host.client, producer.client, again.client, ...callers.map((c) => c.client));
    // Every frame each caller got since the mark: no note, no staff chat; Ann only her own message.
    for (const [i, caller] of callers.entries()) {
      const frames = caller.client.since(marks[i]!);
      const text = JSON.stringify(frames);
      expect(text, 'a note reached a caller').not.toContain('Dayton');
      expect(text, 'the staff chat reached a caller').not.toContain('thirty seconds');
      expect(frames.some((f) => f.type === 'note-updated')).toBe(false);
      if (caller !== ann) expect(frames.some((f) => f.type === 'chat')).toBe(false);
    }
    expect(ann.client.since(marks[0]!).filter((f) => f.type === 'chat')).toHaveLength(1);
  });

  it('mute all callers: every caller muted by the studio at once, by staff only', async () => {
    const { host, producer, ann, bob, walt } = await desk();
    ann.client.send({ type: 'mute-all' });
    expect(await ann.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    const hostMark = host.client.mark();
    producer.client.send({ type: 'mute-all' });
    for (const caller of [ann, bob, walt]) {
      await frameAfter(
        host.client,
        hostMark,
        updateOf(caller.peerId, (v) => v.mutedBy === 'moderator'),
        'a caller muted by the studio',
      );
    }
    await settle(producer.client, host.client);
    // Every caller, the waiting one too (he comes on muted); never the staff.
    const updated = host.client.since(hostMark).filter((f) => f.type === 'participant-updated');
    expect(updated.every((f) => f.type === 'participant-updated' && f.participant.role === 'caller')).toBe(true);
    ann.client.send({ type: 'mute', peerId: ann.peerId, muted: false });
    expect(await ann.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
  });
});
