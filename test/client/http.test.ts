// The client's HTTP API calls (client/src/lib/http.ts): the request each one sends, and the
// Worker's `{"error": {code, message}}` turned into an HttpError.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpError, createRoom, mintInvite, revokeInvites } from '../../client/src/lib/http';

function answer(status: number, body: unknown): Response {
  return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

function stubFetch(response: Response | Error) {
  const fetch = vi.fn(async (_url: string, _init: RequestInit) => {
    if (response instanceof Error) throw response;
    return response;
  });
  vi.stubGlobal('fetch', fetch);
  return fetch;
}

afterEach(() => vi.unstubAllGlobals());

describe('client HTTP calls', () => {
  it('createRoom posts the body as JSON, with the creation key only when given', async () => {
    const created = {
      roomId: 'r1',
      room: {},
      tokens: { host: 'h', producer: 'p', caller: 'c' },
      expiresAt: 1,
      wsUrl: 'wss://x/rooms/r1/ws',
    };
    const fetch = stubFetch(answer(201, created));
    await expect(createRoom({ name: 'Show', lobby: true })).resolves.toEqual(created);
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe('/rooms');
    expect(init).toMatchObject({ method: 'POST', body: JSON.stringify({ name: 'Show', lobby: true }) });
    expect(init.headers).toEqual({ 'Content-Type': 'application/json' });

    const keyed = stubFetch(answer(201, created));
    await createRoom({}, { creationKey: 'k'.repeat(32), base: 'https://studio.example.org' });
    expect(keyed.mock.calls[0]![0]).toBe('https://studio.example.org/rooms');
    expect(keyed.mock.calls[0]![1].headers).toMatchObject({ Authorization: `Bearer ${'k'.repeat(32)}` });
  });

  it('mintInvite and revokeInvites post to the room with the host token', async () => {
    const mint = stubFetch(answer(201, { role: 'caller', token: 't', expiresAt: 2 }));
    await expect(mintInvite('room/1', 'host-token', { role: 'caller', ttlSeconds: 600 })).resolves.toEqual({
      role: 'caller',
      token: 't',
      expiresAt: 2,
    });
    expect(mint.mock.calls[0]![0]).toBe('/rooms/room%2F1/tokens');
    expect(mint.mock.calls[0]![1]).toMatchObject({
      body: JSON.stringify({ role: 'caller', ttlSeconds: 600 }),
      headers: { Authorization: 'Bearer host-token' },
    });

    const revoke = stubFetch(answer(200, { role: 'producer', generation: 3, token: 'n', expiresAt: 4 }));
    await expect(revokeInvites('r1', 'host-token', 'producer')).resolves.toMatchObject({ generation: 3, token: 'n' });
    expect(revoke.mock.calls[0]![0]).toBe('/rooms/r1/revoke');
    expect(revoke.mock.calls[0]![1].body).toBe(JSON.stringify({ role: 'producer' }));
  });

  it("turns the Worker's error shape into an HttpError with its status, code and message", async () => {
    stubFetch(answer(403, { error: { code: 'forbidden', message: 'only the host may revoke invites' } }));
    const error = await revokeInvites('r1', 'producer-token', 'caller').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ status: 403, code: 'forbidden', message: 'only the host may revoke invites' });
  });

  it('an answer not in the error shape is an HttpError without a code', async () => {
    stubFetch(answer(502, '<html>Bad gateway</html>'));
    await expect(createRoom({})).rejects.toMatchObject({ name: 'HttpError', status: 502, code: null, message: 'error 502' });
  });

  it('a studio that cannot be reached rejects with the network error itself', async () => {
    const unreachable = new TypeError('Failed to fetch');
    stubFetch(unreachable);
    await expect(createRoom({})).rejects.toBe(unreachable);
  });
});
