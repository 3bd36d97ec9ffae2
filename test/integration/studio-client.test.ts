// The client library's StudioClient against the real Worker: it paces its own bursts within
// the room's limits (which the welcome says), so nothing it sends is refused or lost; and it
// honours a refusal's retryAfterSeconds before coming back.
import { once } from 'node:events';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { StudioClient } from '../../client/src/lib/studio-client';
import type { ServerMessage } from '../../protocol/messages';

const http = () => inject('workerUrl');
const clients: StudioClient[] = [];

afterEach(() => {
  for (const client of clients.splice(0)) client.leave();
});

function studioClient(url: string, token: string): StudioClient {
  const client = new StudioClient({ url, token });
  clients.push(client);
  return client;
}

async function createRoom(): Promise<{ roomId: string; tokens: Record<string, string>; wsUrl: string }> {
  const response = await fetch(`${http()}/rooms`, { method: 'POST', body: '{}' });
  expect(response.status).toBe(201);
  return response.json();
}

describe('StudioClient', () => {
  it('a burst beyond the room’s limits is paced, not refused: every frame arrives, in order', async () => {
    const room = await createRoom();
    const host = studioClient(room.wsUrl, room.tokens.host!);
    const caller = studioClient(room.wsUrl, room.tokens.caller!);
    const hostWelcome = await host.connect();
    const callerWelcome = await caller.connect();
    const { messageBurst, messagesPerSecond } = hostWelcome.limits;
    const errors: ServerMessage[] = [];
    host.on('error', (error) => errors.push(error));
    const received: string[] = [];
    caller.on('ice-candidate', (message) => received.push(message.candidate?.candidate ?? 'end'));

    // Half again the room's burst, at once (a full-mesh join and an ICE restart of every connection at once).
    const count = Math.ceil(messageBurst * 1.5);
    for (let i = 0; i < count; i++) host.candidate(callerWelcome.peerId, { candidate: `candidate ${i}` });
    const heldBack = host.queued;
    const budgetMs = (count / messagesPerSecond) * 1000 * 4 + 20_000; // a loaded machine delivers slowly
    const deadline = Date.now() + budgetMs;
    while (received.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(errors).toEqual([]);
    expect(received).toEqual(Array.from({ length: count }, (_, i) => `candidate ${i}`));
    expect(heldBack).toBeGreaterThan(0); // held back, not sent into a refusal
  }, 90_000);

  it('waits the retryAfterSeconds a refusal names before coming back', async () => {
    // A stand-in for the Worker's per-client join limit (a real one would keep every other
    // test of this run out for a minute): the same refusal, an error frame and close 1013.
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (protocols) => [...protocols][0] ?? false });
    await once(server, 'listening');
    const attempts: number[] = [];
    server.on('connection', (socket) => {
      attempts.push(Date.now());
      socket.send(
        JSON.stringify({ type: 'error', code: 'rate-limited', message: 'too many joins; try again in 2 s', retryAfterSeconds: 2 }),
      );
      socket.close(1013, 'try again later');
    });
    try {
      const { port } = server.address() as { port: number };
      const client = studioClient(`ws://127.0.0.1:${port}/rooms/r/ws`, 'token');
      const closes: boolean[] = [];
      client.on('close', ({ final }) => closes.push(final));
      await client.connect().catch(() => {});
      while (attempts.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(closes[0]).toBe(false); // transient: it comes back by itself
      expect(attempts[1]! - attempts[0]!).toBeGreaterThanOrEqual(2_000);
    } finally {
      for (const client of clients.splice(0)) client.leave();
      server.close();
    }
  }, 30_000);
});
