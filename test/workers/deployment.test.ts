// Deployment settings that change the Worker's behaviour: the room-creation key and
// missing secrets. These call the Worker's fetch handler with a modified environment.
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker from '../../worker/index';
import { connect, createRoom, ORIGIN } from './helpers';
import { awayFromWindowEdge } from '../rate-window';

describe('room creation key', () => {
  const key = 'k'.repeat(48);
  const withKey = { ...env, ROOM_CREATION_KEY: key } as Env;
  const create = (authorization?: string, ip: string = crypto.randomUUID(), environment: Env = withKey) =>
    worker.fetch(
      new Request(`${ORIGIN}/rooms`, {
        method: 'POST',
        headers: { 'CF-Connecting-IP': ip, ...(authorization ? { Authorization: authorization } : {}) },
      }),
      environment,
      createExecutionContext(),
    );

  it('requires the key when the deployment sets one', async () => {
    expect((await create()).status).toBe(401);
    expect((await create(`Bearer ${'k'.repeat(47)}x`)).status).toBe(401);
    expect((await create(`Bearer ${key}`)).status).toBe(201);
  });

  it('counts every wrong guess against the client: 10 a minute, then 429 even with the key', async () => {
    const ip = crypto.randomUUID();
    await awayFromWindowEdge();
    for (let i = 0; i < 10; i++) expect((await create(`Bearer guess-${i}-${'g'.repeat(40)}`, ip)).status).toBe(401);
    const blocked = await create(`Bearer ${key}`, ip);
    expect(blocked.status).toBe(429);
    expect(await blocked.json()).toMatchObject({ error: { code: 'rate-limited' } });
    expect((await create(`Bearer ${key}`)).status).toBe(201); // another client is unaffected
  });

  it('a key set but shorter than 32 characters is a misconfiguration, not an open door', async () => {
    for (const short of ['k'.repeat(31), '']) {
      const misconfigured = { ...env, ROOM_CREATION_KEY: short } as Env;
      for (const authorization of [undefined, `Bearer ${short}`]) {
        const response = await create(authorization, undefined, misconfigured);
        expect(response.status).toBe(500);
        expect(await response.json()).toMatchObject({
          error: { code: 'misconfigured', message: expect.stringContaining('ROOM_CREATION_KEY') },
        });
      }
    }
  });

  it('is open without one (development)', async () => {
    const room = await createRoom();
    expect(room.roomId).toBeTruthy();
    const host = await connect(room.roomId, { token: room.tokens.host });
    expect(await host.next('welcome')).toMatchObject({ roomId: room.roomId, role: 'host' });
  });
});

describe('a malformed setting', () => {
  // An internal address in a setting must not reach a client; the operator's log has it.
  const broken = { ...env, ICECAST_URL: 'http://10.1.2.3:8000/internal-path' } as unknown as Env;
  const requests = [
    new Request(`${ORIGIN}/health`),
    new Request(`${ORIGIN}/rooms`, { method: 'POST' }),
    new Request(`${ORIGIN}/rooms`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://studio.example', 'Access-Control-Request-Method': 'POST' },
    }),
    new Request(`${ORIGIN}/rooms/abcdefghijkl/ws`, { headers: { Upgrade: 'websocket' } }),
  ];
  for (const request of requests) {
    it(`${request.method} ${new URL(request.url).pathname}: a generic sentence, every security header, no value`, async () => {
      const errors: unknown[] = [];
      const log = console.error;
      console.error = (...args: unknown[]) => errors.push(args.join(' '));
      try {
        const response = await worker.fetch(request.clone(), broken, createExecutionContext());
        expect(response.status).toBe(500);
        const text = await response.text();
        expect(JSON.parse(text)).toMatchObject({ error: { code: 'misconfigured', message: expect.stringContaining('ICECAST_URL') } });
        expect(text).not.toContain('10.1.2.3');
        for (const header of ['Content-Security-Policy', 'X-Content-Type-Options', 'X-Frame-Options', 'Cache-Control']) {
          expect(response.headers.get(header)).toBeTruthy();
        }
      } finally {
        console.error = log;
      }
      expect(errors.join('\n')).toContain('10.1.2.3'); // the detail is logged
    });
  }
});

describe('missing secrets', () => {
  it('refuses to work without TOKEN_SECRET instead of falling back to a default', async () => {
    const { TOKEN_SECRET: _, ...withoutSecret } = env as Env & Record<string, unknown>;
    const response = await worker.fetch(
      new Request(`${ORIGIN}/rooms`, { method: 'POST', headers: { 'CF-Connecting-IP': crypto.randomUUID() } }),
      withoutSecret as unknown as Env,
      createExecutionContext(),
    );
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: { code: 'misconfigured' } });
  });

  it('refuses a TOKEN_SECRET too short to be a key', async () => {
    const response = await worker.fetch(
      new Request(`${ORIGIN}/rooms`, { method: 'POST', headers: { 'CF-Connecting-IP': crypto.randomUUID() } }),
      { ...env, TOKEN_SECRET: 'hackme' } as Env,
      createExecutionContext(),
    );
    expect(response.status).toBe(500);
  });
});
