import { env } from 'cloudflare:workers';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { signToken } from '../../worker/tokens';
import { call, connect, createRoom, join, ORIGIN } from './helpers';
import { awayFromWindowEdge } from '../rate-window';

const secret = () => env.TOKEN_SECRET;

async function refusedUpgrade(roomId: string, token: string | undefined, code: string, closeCode: number, extra = {}) {
  const client = await connect(roomId, { ...(token === undefined ? {} : { token }), ...extra });
  expect(await client.next('error')).toMatchObject({ type: 'error', code });
  expect((await client.waitClosed()).code).toBe(closeCode);
}

describe('room tokens', () => {
  it('refuses a missing token', async () => {
    const room = await createRoom();
    await refusedUpgrade(room.roomId, undefined, 'unauthorized', 4001);
  });

  it('refuses an expired token', async () => {
    const room = await createRoom();
    const { token } = await signToken(secret(), { roomId: room.roomId, role: 'host', generation: 0 }, 60, Date.now() - 3_600_000);
    await refusedUpgrade(room.roomId, token, 'unauthorized', 4001);
  });

  it('refuses a token signed with another secret', async () => {
    const room = await createRoom();
    const { token } = await signToken('x'.repeat(64), { roomId: room.roomId, role: 'host', generation: 0 }, 600);
    await refusedUpgrade(room.roomId, token, 'unauthorized', 4001);
  });

  it('refuses a tampered token (caller payload re-labelled host)', async () => {
    const room = await createRoom();
    const [header, payload, signature] = room.tokens.caller.split('.') as [string, string, string];
    const claims = JSON.parse(atob(payload.replaceAll('-', '+').replaceAll('_', '/')));
    const forged = btoa(JSON.stringify({ ...claims, role: 'host' }))
      .replaceAll('+', '-')
      .replaceAll('/', '_')
      .replace(/=+$/, '');
    await refusedUpgrade(room.roomId, `${header}.${forged}.${signature}`, 'unauthorized', 4001);
  });

  it('refuses alg=none and foreign-algorithm tokens', async () => {
    const room = await createRoom();
    const unsigned = [
      btoa(JSON.stringify({ alg: 'none', typ: 'JWT' })),
      btoa(
        JSON.stringify({ rid: room.roomId, role: 'host', gen: 0, exp: Date.now() / 1000 + 600, iss: 'openstudio', aud: 'openstudio:room' }),
      ),
      '',
    ].join('.');
    await refusedUpgrade(room.roomId, unsigned, 'unauthorized', 4001);
    const hs512 = await new SignJWT({ rid: room.roomId, role: 'host', gen: 0 })
      .setProtectedHeader({ alg: 'HS512' })
      .setIssuer('openstudio')
      .setAudience('openstudio:room')
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(secret()));
    await refusedUpgrade(room.roomId, hs512, 'unauthorized', 4001);
  });

  it('a token for room A never opens room B', async () => {
    const a = await createRoom();
    const b = await createRoom();
    await refusedUpgrade(b.roomId, a.tokens.host, 'unauthorized', 4001);
    const response = await call(`/rooms/${b.roomId}/ice`, { headers: { Authorization: `Bearer ${a.tokens.host}` } });
    expect(response.status).toBe(401);
  });

  it('refuses malformed and unknown room ids before touching a room', async () => {
    const room = await createRoom();
    await refusedUpgrade('short', room.tokens.host, 'room-not-found', 4004);
    await refusedUpgrade('a'.repeat(65), room.tokens.host, 'room-not-found', 4004);
    const { token } = await signToken(secret(), { roomId: 'neverCreatedRoom123', role: 'host', generation: 0 }, 600);
    await refusedUpgrade('neverCreatedRoom123', token, 'room-not-found', 4004);
  });

  it('the role comes from the token: a caller token makes a caller', async () => {
    const room = await createRoom();
    const caller = await join(room.roomId, room.tokens.caller);
    expect(caller.welcome.role).toBe('caller');
  });
});

describe('invites', () => {
  const mintAs = (roomId: string, token: string, body: unknown) =>
    call(`/rooms/${roomId}/tokens`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });

  it('a host mints an invite for a role with a TTL', async () => {
    const room = await createRoom();
    const response = await mintAs(room.roomId, room.tokens.host, { role: 'producer', ttlSeconds: 600 });
    expect(response.status).toBe(201);
    const invite = (await response.json()) as { token: string; expiresAt: number; role: string };
    expect(invite.role).toBe('producer');
    expect(invite.expiresAt - Date.now() / 1000).toBeGreaterThan(590);
    expect(invite.expiresAt - Date.now() / 1000).toBeLessThanOrEqual(601);
    expect((await join(room.roomId, invite.token)).welcome.role).toBe('producer');
  });

  it('a minted token of equal or more power never outlives the token that minted it', async () => {
    const room = await createRoom();
    const month = 30 * 86400;
    const now = () => Math.floor(Date.now() / 1000);
    // A host token that expires in ten minutes.
    const { token: shortHost } = await signToken(secret(), { roomId: room.roomId, role: 'host', generation: 0 }, 600);
    const host = (await (await mintAs(room.roomId, shortHost, { role: 'host', ttlSeconds: month })).json()) as {
      token: string;
      expiresAt: number;
    };
    expect(host.expiresAt).toBeLessThanOrEqual(now() + 600);
    // … nor can the minted one renew itself: the chain stays within the first token's life.
    const again = (await (await mintAs(room.roomId, host.token, { role: 'host', ttlSeconds: month })).json()) as { expiresAt: number };
    expect(again.expiresAt).toBeLessThanOrEqual(now() + 600);
    // Less power may live longer: a host invites callers and producers for the month.
    for (const role of ['producer', 'caller']) {
      const invite = (await (await mintAs(room.roomId, shortHost, { role, ttlSeconds: month })).json()) as { expiresAt: number };
      expect(invite.expiresAt).toBeGreaterThanOrEqual(now() + month - 5);
    }
    // The replacement host token of a revocation follows the same rule.
    const revoked = await call(`/rooms/${room.roomId}/revoke`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${shortHost}` },
      body: JSON.stringify({ role: 'host' }),
    });
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as { expiresAt: number }).expiresAt).toBeLessThanOrEqual(now() + 600);
  });

  it('producers and callers cannot mint invites (no escalation to host)', async () => {
    const room = await createRoom();
    for (const token of [room.tokens.producer, room.tokens.caller]) {
      const response = await mintAs(room.roomId, token, { role: 'host' });
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ error: { code: 'forbidden' } });
    }
  });

  it('refuses minting without a token or with a bad body', async () => {
    const room = await createRoom();
    expect((await call(`/rooms/${room.roomId}/tokens`, { method: 'POST', body: '{"role":"caller"}' })).status).toBe(401);
    const bad = await mintAs(room.roomId, room.tokens.host, { role: 'admin' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'invalid-request' } });
    expect((await mintAs(room.roomId, room.tokens.host, { role: 'caller', ttlSeconds: 5 })).status).toBe(400);
  });

  it('revoking a role refuses its outstanding invites, keeps others and connected peers', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const connected = await join(room.roomId, room.tokens.caller);
    const revoke = await call(`/rooms/${room.roomId}/revoke`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${room.tokens.host}` },
      body: JSON.stringify({ role: 'caller' }),
    });
    expect(revoke.status).toBe(200);
    const fresh = (await revoke.json()) as { token: string; generation: number };
    expect(fresh.generation).toBe(1);

    await refusedUpgrade(room.roomId, room.tokens.caller, 'token-revoked', 4001);
    expect((await join(room.roomId, fresh.token)).welcome.role).toBe('caller');
    expect((await join(room.roomId, room.tokens.producer)).welcome.role).toBe('producer');
    // Sessions already in the room stay; so does their resume.
    host.client.send({ type: 'offer', to: connected.peerId, sdp: 'still relayed' });
    expect(await connected.client.nextOf('offer')).toMatchObject({ sdp: 'still relayed' });
  });

  it('only a host can revoke', async () => {
    const room = await createRoom();
    const response = await call(`/rooms/${room.roomId}/revoke`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${room.tokens.producer}` },
      body: JSON.stringify({ role: 'caller' }),
    });
    expect(response.status).toBe(403);
    expect((await join(room.roomId, room.tokens.caller)).welcome.role).toBe('caller');
  });
});

describe('ICE servers endpoint', () => {
  it('returns STUN and TURN with REST credentials to any valid token', async () => {
    const room = await createRoom();
    const response = await call(`/rooms/${room.roomId}/ice`, { headers: { Authorization: `Bearer ${room.tokens.caller}` } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { iceServers: { urls: string[]; username?: string; credential?: string }[]; expiresAt: number };
    expect(body.iceServers[0]?.urls[0]).toMatch(/^stun:/);
    const turn = body.iceServers[1]!;
    expect(turn.urls.every((u) => u.startsWith('turn:'))).toBe(true);
    const [expiry] = turn.username!.split(':');
    expect(Number(expiry)).toBe(body.expiresAt);
    // credential = base64(HMAC-SHA1(TURN_SECRET, username)), as coturn's use-auth-secret computes it
    const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(env.TURN_SECRET), { name: 'HMAC', hash: 'SHA-1' }, false, [
      'sign',
    ]);
    const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(turn.username!)));
    expect(turn.credential).toBe(btoa(String.fromCharCode(...mac)));
  });

  it('refuses without a token', async () => {
    const room = await createRoom();
    expect((await call(`/rooms/${room.roomId}/ice`)).status).toBe(401);
  });
});

describe('origin checks, CORS and headers', () => {
  it('refuses a WebSocket from a foreign Origin (cross-site hijacking)', async () => {
    const room = await createRoom();
    await refusedUpgrade(room.roomId, room.tokens.host, 'origin-not-allowed', 4003, { origin: 'https://evil.example' });
  });

  it('accepts the Worker’s own Origin and clients that send none', async () => {
    const room = await createRoom();
    const own = await connect(room.roomId, { token: room.tokens.host, origin: ORIGIN });
    expect((await own.next('welcome')).role).toBe('host');
    const native = await connect(room.roomId, { token: room.tokens.caller });
    expect((await native.next('welcome')).role).toBe('caller');
  });

  it('sends no CORS grant to foreign origins, and security headers everywhere', async () => {
    const preflight = await call('/rooms', {
      method: 'OPTIONS',
      headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBeNull();
    const health = await call('/health', { headers: { Origin: 'https://evil.example' } });
    expect(health.headers.get('Access-Control-Allow-Origin')).toBeNull();
    expect(health.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(health.headers.get('Cache-Control')).toBe('no-store');
    expect(health.headers.get('Content-Security-Policy')).toContain("frame-ancestors 'none'");
  });
});

describe('abuse limits at the edge', () => {
  it('limits room creation per client', async () => {
    const statuses: number[] = [];
    await awayFromWindowEdge();
    for (let i = 0; i < 12; i++) statuses.push((await call('/rooms', { method: 'POST', ip: '203.0.113.7' })).status);
    expect(statuses.slice(0, 10).every((s) => s === 201)).toBe(true);
    expect(statuses.slice(10)).toEqual([429, 429]);
    // Another client is unaffected.
    expect((await call('/rooms', { method: 'POST', ip: '203.0.113.8' })).status).toBe(201);
  });

  it('limits joins per client before the room is touched', async () => {
    const room = await createRoom({ maxParticipants: 16 });
    let refused = 0;
    await awayFromWindowEdge();
    for (let i = 0; i < 70; i++) {
      const client = await connect(room.roomId, { token: 'not-even-a-token', ip: '203.0.113.9' });
      const first = await client.next('error');
      if (first.code === 'rate-limited') {
        refused += 1;
        // Transient: a retryable close, and how long to wait.
        expect(first).toMatchObject({ retryAfterSeconds: 60, message: expect.stringContaining('60 s') });
        expect((await client.waitClosed()).code).toBe(1013);
      }
    }
    expect(refused).toBe(10);
  });

  it('counts an IPv6 client by its /64: rotating addresses within it buys no fresh budget', async () => {
    const statuses: number[] = [];
    await awayFromWindowEdge();
    // Twelve addresses of one /64, written every way IPv6 allows.
    const ips = Array.from({ length: 12 }, (_, i) => (i % 2 ? `2001:db8:77:1::${(i + 1).toString(16)}` : `2001:0db8:0077:0001:${i}:0:0:1`));
    for (const ip of ips) statuses.push((await call('/rooms', { method: 'POST', ip })).status);
    expect(statuses.slice(0, 10).every((s) => s === 201)).toBe(true);
    expect(statuses.slice(10)).toEqual([429, 429]);
    // The next /64 is another client.
    expect((await call('/rooms', { method: 'POST', ip: '2001:db8:77:2::1' })).status).toBe(201);
  });

  it('a refused HTTP request says when to come back (Retry-After)', async () => {
    const room = await createRoom();
    await awayFromWindowEdge();
    let refusal: Response | undefined;
    for (let i = 0; i < 61 && !refusal; i++) {
      const response = await call(`/rooms/${room.roomId}/ice`, {
        headers: { Authorization: `Bearer ${room.tokens.caller}` },
        ip: '203.0.113.10',
      });
      if (response.status === 429) refusal = response;
    }
    expect(refusal?.headers.get('Retry-After')).toBe('60');
    expect(await refusal?.json()).toMatchObject({ error: { code: 'rate-limited' } });
  });

  it('caps request bodies', async () => {
    const response = await call('/rooms', { method: 'POST', body: JSON.stringify({ name: 'x'.repeat(10_000) }) });
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: { code: 'too-large' } });
  });
});

describe('broadcast permissions', () => {
  it('refuses a caller’s program feed, and unknown formats, before touching Icecast', async () => {
    const room = await createRoom();
    const feed = async (token: string, format = 'ogg') => {
      const response = await call(`/rooms/${room.roomId}/broadcast?token=${token}&format=${format}`, { headers: { Upgrade: 'websocket' } });
      const ws = response.webSocket!;
      ws.accept();
      const frames: any[] = [];
      const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
      ws.addEventListener('message', (e) => frames.push(JSON.parse(e.data as string)));
      return { frames, code: await closed };
    };
    const caller = await feed(room.tokens.caller);
    expect(caller.frames[0]).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(caller.code).toBe(4003);
    const mp3 = await feed(room.tokens.host, 'mp3');
    expect(mp3.frames[0]).toMatchObject({ type: 'error', code: 'invalid-message' });
    const forged = await feed('nope');
    expect(forged.frames[0]).toMatchObject({ code: 'unauthorized' });
  });

  it('a caller cannot stop the broadcast; everyone sees the idle state in the welcome', async () => {
    const room = await createRoom();
    const caller = await join(room.roomId, room.tokens.caller);
    expect(caller.welcome.broadcast).toEqual({ state: 'idle' });
    caller.client.send({ type: 'stop-broadcast' });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
  });
});
