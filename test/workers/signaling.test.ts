import { describe, expect, it } from 'vitest';
import { call, connect, createRoom, join, settle } from './helpers';

describe('HTTP API', () => {
  it('answers /health', async () => {
    const response = await call('/health');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok', protocol: 1 });
  });

  it('creates a room with one token per role', async () => {
    const response = await call('/rooms', { method: 'POST', body: JSON.stringify({ name: 'Morning show', lobby: false }) });
    expect(response.status).toBe(201);
    const body = (await response.json()) as Record<string, any>;
    expect(body.roomId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Object.keys(body.tokens).sort()).toEqual(['caller', 'host', 'producer']);
    expect(body.room).toMatchObject({ roomId: body.roomId, name: 'Morning show', lobby: false });
    expect(body.expiresAt).toBeGreaterThan(Date.now() / 1000);
  });

  it('refuses a malformed body with a typed error', async () => {
    for (const [body, code] of [
      ['{', 'bad-json'],
      [JSON.stringify({ maxParticipants: 'many' }), 'invalid-request'],
      [JSON.stringify({ maxParticipants: 10_000 }), 'invalid-request'],
      [JSON.stringify({ lobby: 'yes' }), 'invalid-request'],
    ] as const) {
      const response = await call('/rooms', { method: 'POST', body });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code } });
    }
  });

  it('answers unknown endpoints with a JSON 404', async () => {
    const response = await call('/nope');
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: 'not-found' } });
  });

  it('asks for an upgrade on the WebSocket endpoint', async () => {
    const { roomId } = await createRoom();
    const response = await call(`/rooms/${roomId}/ws`);
    expect(response.status).toBe(426);
  });
});

describe('joining', () => {
  it('welcomes with peer id, role, resume token, ICE servers and the others', async () => {
    const room = await createRoom({ name: 'Drive time' });
    const host = await join(room.roomId, room.tokens.host);
    expect(host.welcome).toMatchObject({
      type: 'welcome',
      protocol: 1,
      roomId: room.roomId,
      role: 'host',
      resumed: false,
      participants: [],
      room: { roomId: room.roomId, name: 'Drive time' },
    });
    expect(host.welcome.resumeToken.length).toBeGreaterThanOrEqual(32);
    const turn = host.welcome.iceServers.find((s) => s.urls.some((u) => u.startsWith('turn:')));
    expect(turn?.username).toMatch(new RegExp(`^\\d+:${host.peerId}$`));
    expect(turn?.credential).toMatch(/^[A-Za-z0-9+/]{27}=$/);

    const caller = await join(room.roomId, room.tokens.caller);
    expect(caller.welcome.participants).toEqual([
      { peerId: host.peerId, role: 'host', muted: false, mutedBy: null, connected: true, waiting: false },
    ]);
    const joined = await host.client.next('peer-joined');
    expect(joined.participant).toMatchObject({ peerId: caller.peerId, role: 'caller', connected: true });
  });

  it('accepts the token as a Sec-WebSocket-Protocol entry and echoes the protocol', async () => {
    const room = await createRoom();
    const client = await connect(room.roomId, { protocol: ['openstudio.v1', room.tokens.caller] });
    expect(client.response.headers.get('Sec-WebSocket-Protocol')).toBe('openstudio.v1');
    expect((await client.next('welcome')).role).toBe('caller');

    const bare = await connect(room.roomId, { protocol: [room.tokens.caller] });
    expect(bare.response.headers.get('Sec-WebSocket-Protocol')).toBe(room.tokens.caller);
    expect((await bare.next('welcome')).role).toBe('caller');
  });

  it('gives every joiner its own peer id', async () => {
    const room = await createRoom();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await join(room.roomId, room.tokens.caller)).peerId);
    expect(ids.size).toBe(5);
  });
});

describe('relay', () => {
  it('relays offer, answer and ICE candidates with the server-stamped from', async () => {
    const room = await createRoom();
    const a = await join(room.roomId, room.tokens.host);
    const b = await join(room.roomId, room.tokens.caller);
    await a.client.next('peer-joined');

    a.client.send({ type: 'offer', to: b.peerId, sdp: 'v=0 offer', from: 'someone-else' });
    expect(await b.client.next('offer')).toEqual({ type: 'offer', from: a.peerId, sdp: 'v=0 offer' });

    b.client.send({ type: 'answer', to: a.peerId, sdp: 'v=0 answer' });
    expect(await a.client.next('answer')).toEqual({ type: 'answer', from: b.peerId, sdp: 'v=0 answer' });

    const candidate = { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    b.client.send({ type: 'ice-candidate', to: a.peerId, candidate });
    expect(await a.client.next('ice-candidate')).toEqual({ type: 'ice-candidate', from: b.peerId, candidate });

    b.client.send({ type: 'ice-candidate', to: a.peerId, candidate: null });
    expect(await a.client.next('ice-candidate')).toEqual({ type: 'ice-candidate', from: b.peerId, candidate: null });
  });

  it('delivers 100 relayed messages in order', async () => {
    const room = await createRoom();
    const a = await join(room.roomId, room.tokens.host);
    const b = await join(room.roomId, room.tokens.caller);
    for (let i = 0; i < 100; i++) {
      a.client.send({ type: 'ice-candidate', to: b.peerId, candidate: { candidate: `candidate:${i}`, sdpMid: '0' } });
    }
    for (let i = 0; i < 100; i++) {
      const frame = await b.client.next('ice-candidate');
      expect(frame.candidate?.candidate).toBe(`candidate:${i}`);
    }
  });

  it('answers an unknown target with peer-not-found and relays nothing', async () => {
    const room = await createRoom();
    const a = await join(room.roomId, room.tokens.host);
    const b = await join(room.roomId, room.tokens.caller);
    const c = await join(room.roomId, room.tokens.caller);
    await settle(a.client, b.client);
    const marks = [b.client.mark(), c.client.mark()] as const;
    a.client.send({ type: 'offer', to: 'nobody', sdp: 'x' });
    expect(await a.client.nextOf('error')).toMatchObject({ code: 'peer-not-found' });
    await settle(a.client, b.client, c.client);
    expect(b.client.since(marks[0])).toEqual([]);
    expect(c.client.since(marks[1])).toEqual([]);
  });

  it('answers a ping that is not the exact auto-response string too', async () => {
    const room = await createRoom();
    const a = await join(room.roomId, room.tokens.host);
    a.client.send('{"type":"ping"}');
    expect(await a.client.next('pong')).toEqual({ type: 'pong' });
    a.client.send('{ "type" : "ping" }');
    expect(await a.client.next('pong')).toEqual({ type: 'pong' });
  });
});
