import { describe, expect, it } from 'vitest';
import { createRoom, join, settle } from './helpers';

async function twoPeers() {
  const room = await createRoom();
  const a = await join(room.roomId, room.tokens.host);
  const b = await join(room.roomId, room.tokens.caller);
  await a.client.next('peer-joined');
  return { room, a, b };
}

describe('bad frames', () => {
  const cases: [string, string | ArrayBuffer, string][] = [
    ['not JSON', '{"type":', 'bad-json'],
    ['a JSON array', '[1,2]', 'invalid-message'],
    ['a JSON string', '"offer"', 'invalid-message'],
    ['no type', '{"to":"x"}', 'invalid-message'],
    ['a numeric type', '{"type":7}', 'invalid-message'],
    ['an unknown type', '{"type":"teleport"}', 'unknown-type'],
    ['an offer without sdp', '{"type":"offer","to":"abc"}', 'invalid-message'],
    ['an offer with a numeric sdp', '{"type":"offer","to":"abc","sdp":5}', 'invalid-message'],
    ['a candidate that is a string', '{"type":"ice-candidate","to":"abc","candidate":"x"}', 'invalid-message'],
    ['a mute without muted', '{"type":"mute","peerId":"abc"}', 'invalid-message'],
    ['an empty name', '{"type":"set-name","name":"   "}', 'invalid-message'],
    ['a name with a line break', '{"type":"set-name","name":"Jo\\r\\nX-Evil: 1"}', 'invalid-message'],
    ['a bad peer id', '{"type":"kick","peerId":"../../etc"}', 'invalid-message'],
    ['a binary frame', new Uint8Array([1, 2, 3]).buffer, 'invalid-message'],
  ];

  for (const [what, frame, code] of cases) {
    it(`answers ${what} with ${code}, keeps the socket and tells nobody else`, async () => {
      const { a, b } = await twoPeers();
      const mark = b.client.mark();
      a.client.send(frame);
      const error = await a.client.next('error');
      expect(error.code).toBe(code);
      expect(error.message.length).toBeGreaterThan(5);
      // Still open and working, and the other peer saw nothing.
      a.client.send({ type: 'offer', to: b.peerId, sdp: 'still here' });
      expect(await b.client.next('offer')).toMatchObject({ from: a.peerId, sdp: 'still here' });
      expect(b.client.since(mark)).toHaveLength(1);
      expect(a.client.closed).toBeNull();
    });
  }

  it('answers a frame over the size limit with too-large', async () => {
    const { a, b } = await twoPeers();
    const mark = b.client.mark();
    a.client.send({ type: 'offer', to: b.peerId, sdp: 'x'.repeat(70 * 1024) });
    expect(await a.client.next('error')).toMatchObject({ code: 'too-large' });
    // Multi-byte characters count as bytes, not as string length.
    a.client.send({ type: 'offer', to: b.peerId, sdp: 'é'.repeat(33 * 1024) });
    await settle(a.client, b.client);
    expect(a.client.frames.filter((f) => f.type === 'error' && f.code === 'too-large')).toHaveLength(1); // once per run of refusals
    expect(b.client.since(mark)).toEqual([]);
  });
});
