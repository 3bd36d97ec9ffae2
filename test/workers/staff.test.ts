// Staff at the edges: a kick is final for that person everywhere (room, feed, TURN,
// invites, tokens minted from the kicked one), a host always gets into its own show, and a
// connected session keeps its power after its token expires.
import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { signToken } from '../../worker/tokens';
import { call, connect, createRoom, join, openFeed, roomStub, settle, until } from './helpers';

const tokenIdOf = (token: string) => decodeJwt(token).jti as string;

async function mintInvite(roomId: string, minter: string, role: string): Promise<string> {
  const response = await call(`/rooms/${roomId}/tokens`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${minter}` },
    body: JSON.stringify({ role }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { token: string }).token;
}

/** Open the program feed through the Worker; its first frame says accepted or why not. */
async function openFeedFirst(roomId: string, token: string, resume?: string) {
  const feed = await openFeed(roomId, token, resume);
  return { ...feed, first: await until(() => feed.frames[0], 'the feed socket’s first frame') };
}

async function refused(roomId: string, token: string, closeCode: number, extra: { resume?: string } = {}) {
  const client = await connect(roomId, { token, ...extra });
  const error = await client.next('error');
  expect((await client.waitClosed()).code).toBe(closeCode);
  return error;
}

describe('a kick is final for staff', () => {
  it('a kicked producer gets no feed, no TURN credentials and no seat', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const producer = await join(room.roomId, room.tokens.producer);
    host.client.send({ type: 'kick', peerId: producer.peerId });
    await producer.client.waitClosed();

    const feed = await openFeedFirst(room.roomId, room.tokens.producer);
    expect(feed.first).toMatchObject({ type: 'error', code: 'forbidden', message: expect.stringContaining('kicked') });
    expect(await feed.closed).toBe(4003);
    const ice = await call(`/rooms/${room.roomId}/ice`, { headers: { Authorization: `Bearer ${room.tokens.producer}` } });
    expect(ice.status).toBe(403);
    expect(await refused(room.roomId, room.tokens.producer, 4003)).toMatchObject({ code: 'forbidden' });
    // The host's own token is untouched.
    expect((await call(`/rooms/${room.roomId}/ice`, { headers: { Authorization: `Bearer ${room.tokens.host}` } })).status).toBe(200);
  });

  it('kicking the staff member who runs the feed stops the show', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const producer = await join(room.roomId, room.tokens.producer);
    const begun = await stub.beginBroadcast({ role: 'producer', generation: 0, lineage: [tokenIdOf(room.tokens.producer)] });
    if (!begun.ok) throw new Error(begun.message);
    const live = { state: 'live' as const, by: 'producer' as const, since: 1 };
    expect(await stub.broadcastChanged(begun.id, live)).toEqual({ stop: false });
    host.client.send({ type: 'kick', peerId: producer.peerId });
    await producer.client.waitClosed();
    await settle(host.client);
    expect(await stub.broadcastChanged(begun.id, live)).toEqual({ stop: true });
    // And it cannot take the show up again.
    const back = await openFeedFirst(room.roomId, room.tokens.producer, begun.id);
    expect(back.first).toMatchObject({ type: 'error', code: 'forbidden' });
  });

  it('a feed run by someone else is not stopped by a kick', async () => {
    const room = await createRoom();
    const stub = roomStub(room.roomId);
    const host = await join(room.roomId, room.tokens.host);
    const producer = await join(room.roomId, room.tokens.producer);
    const begun = await stub.beginBroadcast({ role: 'host', generation: 0, lineage: [tokenIdOf(room.tokens.host)] });
    if (!begun.ok) throw new Error(begun.message);
    host.client.send({ type: 'kick', peerId: producer.peerId });
    await producer.client.waitClosed();
    await settle(host.client);
    expect(await stub.broadcastChanged(begun.id, { state: 'live', since: 1 })).toEqual({ stop: false });
  });

  it('a kicked host can neither mint, nor revoke, nor come back with what it minted', async () => {
    const room = await createRoom();
    const owner = await join(room.roomId, room.tokens.host);
    // The owner invites a co-host; the co-host mints a producer invite and a host invite of its own.
    const cohostToken = await mintInvite(room.roomId, room.tokens.host, 'host');
    const cohost = await join(room.roomId, cohostToken);
    const producerFromCohost = await mintInvite(room.roomId, cohostToken, 'producer');
    const hostFromCohost = await mintInvite(room.roomId, cohostToken, 'host');
    await owner.client.nextOf('peer-joined');
    owner.client.send({ type: 'kick', peerId: cohost.peerId });
    await cohost.client.waitClosed();

    const asCohost = (path: string, body: unknown) =>
      call(`/rooms/${room.roomId}/${path}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${cohostToken}` },
        body: JSON.stringify(body),
      });
    const minted = await asCohost('tokens', { role: 'host' });
    expect(minted.status).toBe(403);
    expect(await minted.json()).toMatchObject({ error: { code: 'forbidden' } });
    expect((await asCohost('revoke', { role: 'host' })).status).toBe(403);
    // The owner's token still works: the kicked host could not revoke it.
    expect((await join(room.roomId, room.tokens.host)).welcome.role).toBe('host');
    // Everything the kicked host minted is barred too, also when minted before the kick.
    for (const token of [cohostToken, hostFromCohost, producerFromCohost]) {
      expect(await refused(room.roomId, token, 4003)).toMatchObject({ code: 'forbidden' });
      expect((await call(`/rooms/${room.roomId}/ice`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(403);
    }
    const fromMinted = await call(`/rooms/${room.roomId}/tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${hostFromCohost}` },
      body: JSON.stringify({ role: 'caller' }),
    });
    expect(fromMinted.status).toBe(403);
    // Invites the owner minted are not affected.
    expect((await join(room.roomId, await mintInvite(room.roomId, room.tokens.host, 'producer'))).welcome.role).toBe('producer');
  });

  it('a host cannot kick the host whose invite it holds (the kick would bar itself)', async () => {
    const room = await createRoom();
    const owner = await join(room.roomId, room.tokens.host);
    const cohost = await join(room.roomId, await mintInvite(room.roomId, room.tokens.host, 'host'));
    cohost.client.send({ type: 'kick', peerId: owner.peerId });
    expect(await cohost.client.nextOf('error')).toMatchObject({ code: 'forbidden', message: expect.stringContaining('bar you too') });
    await settle(cohost.client, owner.client);
    expect(owner.client.closed).toBeNull();
  });
});

describe('a host can always join its own show', () => {
  it('with every caller seat and both staff seats taken', async () => {
    const room = await createRoom();
    for (let i = 0; i < 14; i++) await join(room.roomId, room.tokens.caller);
    for (let i = 0; i < 2; i++) await join(room.roomId, room.tokens.producer);
    expect((await join(room.roomId, room.tokens.host)).welcome.role).toBe('host');
  });

  it('with 14 waiting callers and two producers', async () => {
    const room = await createRoom({ lobby: true });
    for (let i = 0; i < 14; i++) expect((await join(room.roomId, room.tokens.caller)).welcome.waiting).toBe(true);
    for (let i = 0; i < 2; i++) await join(room.roomId, room.tokens.producer);
    expect((await join(room.roomId, room.tokens.host)).welcome.role).toBe('host');
  });

  it('a reloaded staff page takes over its own seat still in its grace period', async () => {
    const room = await createRoom({ maxParticipants: 4 });
    const observer = await join(room.roomId, room.tokens.caller);
    await join(room.roomId, room.tokens.caller);
    const producer = await join(room.roomId, room.tokens.producer);
    const ghost = await join(room.roomId, room.tokens.host);
    ghost.client.close(); // its page reloads: the old seat waits in its grace period
    const dropped = await observer.client.nextOf('participant-updated');
    expect(dropped.participant).toMatchObject({ peerId: ghost.peerId, connected: false });
    // Full room (4 of 4) with the producer's own ghost too: the producer's fresh join replaces it.
    producer.client.close();
    await observer.client.nextOf('participant-updated');
    const producerAgain = await join(room.roomId, room.tokens.producer);
    expect((await observer.client.nextOf('peer-left')).peerId).toBe(producer.peerId);
    expect((await observer.client.nextOf('peer-joined')).participant.peerId).toBe(producerAgain.peerId);
    const hostAgain = await join(room.roomId, room.tokens.host);
    expect(hostAgain.welcome.participants.map((p) => p.peerId)).not.toContain(ghost.peerId);
    expect((await observer.client.nextOf('peer-left')).peerId).toBe(ghost.peerId);
    // The old seat's resume token is gone with it.
    await refused(room.roomId, room.tokens.host, 4001, { resume: ghost.welcome.resumeToken });
  });
});

describe('a connected staff session outlives its token', () => {
  it('resumes, refreshes TURN credentials and takes up its feed after the token expired; a fresh join is refused', async () => {
    const room = await createRoom();
    const { token } = await signToken(env.TOKEN_SECRET, { roomId: room.roomId, role: 'host', generation: 0 }, 2);
    const host = await join(room.roomId, token);
    const feed = await openFeedFirst(room.roomId, token);
    expect(feed.first).toMatchObject({ type: 'feed-accepted' });
    const broadcastId = feed.first.broadcastId as string;
    await new Promise((resolve) => setTimeout(resolve, 3_100)); // the token expires
    // Over the session itself: fresh TURN credentials.
    host.client.send({ type: 'refresh-ice' });
    const ice = await host.client.nextOf('ice-servers');
    expect(ice.iceExpiresAt).toBeGreaterThan(Date.now() / 1000);
    // The socket drops and resumes with the expired token.
    host.client.close(4000);
    const back = await connect(room.roomId, { token, resume: host.welcome.resumeToken });
    expect(await back.next('welcome')).toMatchObject({ resumed: true, peerId: host.peerId, role: 'host' });
    // The feed's socket drops and takes up the same show.
    feed.ws.close(4000);
    const again = await openFeedFirst(room.roomId, token, broadcastId);
    expect(again.first).toMatchObject({ type: 'feed-accepted', broadcastId });
    again.ws.close(1000);
    // No new power from an expired token: a fresh join, a new feed, HTTP calls are refused.
    expect(await refused(room.roomId, token, 4001)).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('expired') });
    expect((await openFeedFirst(room.roomId, token)).first).toMatchObject({ type: 'error', code: 'unauthorized' });
    expect((await call(`/rooms/${room.roomId}/ice`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(401);
  });
});
