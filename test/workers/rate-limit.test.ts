// The per-connection token bucket, in a project of its own whose bucket refills at one
// token a second (vitest.config.ts): what counts as a burst then does not depend on how
// fast a loaded machine happens to deliver the frames.
import { describe, expect, it } from 'vitest';
import { createRoom, join } from './helpers';

describe('per-connection rate limit', () => {
  it('answers a burst over the bucket with rate-limited, then recovers', async () => {
    const room = await createRoom();
    const a = await join(room.roomId, room.tokens.host);
    const b = await join(room.roomId, room.tokens.caller);
    // Burst 100: the 101st..110th frames are refused (10 strikes, below the close threshold).
    for (let i = 0; i < 110; i++) a.client.send({ type: 'ice-candidate', to: b.peerId, candidate: { candidate: `c${i}` } });
    const error = await a.client.nextOf('error');
    expect(error).toMatchObject({ code: 'rate-limited' });
    await new Promise((resolve) => setTimeout(resolve, 1_200)); // refill one token (1 per second here)
    a.client.send({ type: 'offer', to: b.peerId, sdp: 'after the pause' });
    expect(await b.client.nextOf('offer')).toMatchObject({ sdp: 'after the pause' });
    expect(a.client.closed).toBeNull();
    // The refused frames never reached b (a token may refill while the burst arrives).
    const relayed = b.client.frames.filter((f) => f.type === 'ice-candidate').length;
    expect(relayed).toBeGreaterThanOrEqual(100);
    expect(relayed).toBeLessThan(110);
  });

  it('closes a connection that keeps flooding with 4008', async () => {
    const room = await createRoom();
    const a = await join(room.roomId, room.tokens.host);
    const b = await join(room.roomId, room.tokens.caller);
    for (let i = 0; i < 200; i++) a.client.send({ type: 'ice-candidate', to: b.peerId, candidate: null });
    expect((await a.client.waitClosed()).code).toBe(4008);
    // b is unaffected and the room still serves it.
    const c = await join(room.roomId, room.tokens.caller);
    c.client.send({ type: 'offer', to: b.peerId, sdp: 'room still serving' });
    expect(await b.client.nextOf('offer')).toMatchObject({ from: c.peerId });
  });

  it('closes a connection that keeps sending oversized frames with 4008', async () => {
    const room = await createRoom();
    const a = await join(room.roomId, room.tokens.host);
    const big = JSON.stringify({ type: 'offer', to: 'x', sdp: 'y'.repeat(65 * 1024) });
    for (let i = 0; i < 25; i++) a.client.send(big);
    expect((await a.client.waitClosed()).code).toBe(4008);
  });
});
