import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseClientMessage } from '../../protocol/messages';
import { connect, createRoom, join, settle, type TestClient } from './helpers';

/** Frames of every kind: valid messages aimed at real and fake peers, near-misses, garbage. */
function frames(peerIds: string[]) {
  const peer = fc.oneof(fc.constantFrom(...peerIds), fc.string({ maxLength: 70 }), fc.constant('../x'));
  const anything = fc.oneof(fc.string({ maxLength: 50 }), fc.integer(), fc.boolean(), fc.constant(null), fc.object({ maxDepth: 2 }));
  const message = fc.oneof(
    fc.record({ type: fc.constantFrom('offer', 'answer'), to: peer, sdp: fc.oneof(fc.string({ maxLength: 300 }), anything) }),
    fc.record({
      type: fc.constant('ice-candidate'),
      to: peer,
      candidate: fc.oneof(
        fc.constant(null),
        fc.record({ candidate: fc.string({ maxLength: 100 }), sdpMid: fc.option(fc.string()) }),
        anything,
      ),
    }),
    fc.record({ type: fc.constantFrom('mute', 'kick', 'admit'), peerId: peer, muted: fc.oneof(fc.boolean(), anything) }),
    fc.record({ type: fc.constant('set-name'), name: fc.oneof(fc.string({ maxLength: 80 }), anything) }),
    fc.record({ type: fc.oneof(fc.string({ maxLength: 20 }), anything) }, { requiredKeys: [] }),
    fc.dictionary(fc.string({ maxLength: 10 }), anything, { maxKeys: 5 }),
  );
  return fc.oneof(
    { weight: 6, arbitrary: message.map((m) => JSON.stringify(m)) },
    { weight: 2, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '{',
        '[',
        'null',
        '""',
        '{"type":"offer"',
        '\u0000',
        '{"type":"__proto__"}',
        '{"__proto__":{"type":"kick"}}',
      ),
    },
  );
}

describe('property: the parser never throws', () => {
  it('returns a typed result for any string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        const result = parseClientMessage(text);
        expect(typeof result.ok).toBe('boolean');
        if (!result.ok) expect(['bad-json', 'invalid-message', 'unknown-type']).toContain(result.code);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('property: random and malformed frames never break a room', () => {
  it('every frame gets an answer or is relayed; the room keeps serving others', { timeout: 120_000 }, async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    const witness = await join(room.roomId, room.tokens.caller);
    await host.client.nextOf('peer-joined');
    await host.client.nextOf('peer-joined');
    await caller.client.nextOf('peer-joined');
    const ids = [host.peerId, caller.peerId, witness.peerId];
    const samples = fc.sample(frames(ids), { numRuns: 3000, seed: 20261125 });

    // The fuzzer is a caller (it cannot kick the host). Every 80 frames it leaves and
    // rejoins, so a fresh connection keeps it under the per-connection rate limit and every
    // frame is judged on its content. Each malformed frame must get exactly one error.
    const expected: Record<string, number> = { 'bad-json': 0, 'invalid-message': 0, 'unknown-type': 0 };
    const fuzzers: TestClient[] = [caller.client];
    let fuzzer = caller.client;
    let sent = 0;
    for (const frame of samples) {
      const parsed = parseClientMessage(frame);
      if (parsed.ok && parsed.message.type === 'leave') continue; // would end the connection mid-batch
      if (!parsed.ok) expected[parsed.code]! += 1;
      fuzzer.send(frame);
      sent += 1;
      if (sent % 80 === 0) {
        await settle(fuzzer);
        fuzzer.send({ type: 'leave' });
        await fuzzer.waitClosed();
        const fresh = await connect(room.roomId, { token: room.tokens.caller });
        ids.push((await fresh.next('welcome')).peerId);
        fuzzers.push(fresh);
        fuzzer = fresh;
      }
    }
    await settle(fuzzer);
    await settle(host.client);
    const received: Record<string, number> = { 'bad-json': 0, 'invalid-message': 0, 'unknown-type': 0 };
    for (const client of fuzzers) {
      expect(client.frames.filter((f) => f.type === 'error' && (f.code === 'rate-limited' || f.code === 'too-large'))).toEqual([]);
      for (const f of client.frames) if (f.type === 'error' && f.code in received) received[f.code]! += 1;
    }
    expect(received).toEqual(expected);
    expect(expected['bad-json']! + expected['invalid-message']! + expected['unknown-type']!).toBeGreaterThan(1000);

    // The witness can still talk to the host, and the host's view of it is unchanged.
    const mark = host.client.mark();
    witness.client.send({ type: 'offer', to: host.peerId, sdp: 'after the storm' });
    await settle(witness.client, host.client);
    expect(host.client.since(mark)).toEqual([{ type: 'offer', from: witness.peerId, sdp: 'after the storm' }]);
    // Nothing the fuzzer sent made anyone receive a frame with a forged sender.
    for (const client of [host.client, witness.client]) {
      for (const f of client.frames) {
        if (f.type === 'offer' || f.type === 'answer' || f.type === 'ice-candidate') expect(ids).toContain(f.from);
        expect([
          'welcome',
          'peer-joined',
          'peer-left',
          'participant-updated',
          'offer',
          'answer',
          'ice-candidate',
          'error',
          'pong',
        ]).toContain(f.type);
      }
    }
    // No error frame ever leaked to a bystander: errors go only to the sender.
    expect(witness.client.frames.filter((f) => f.type === 'error')).toEqual([]);
    // The host was never kicked or muted by a caller.
    expect(host.client.closed).toBeNull();
    expect(host.client.frames.some((f) => f.type === 'participant-updated' && f.participant.peerId === host.peerId)).toBe(false);
  });
});
