// The threat model of docs/security.md, replayed from outside: plain WebSocket clients
// against the running `wrangler dev`, as an attacker on the network would connect.
import { describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { awayFromWindowEdge } from '../rate-window';
import { checkFrame, ServerMessageSchema } from '../../protocol/server-messages';

const http = () => inject('workerUrl');
const ws = () => http().replace(/^http/, 'ws');

interface Room {
  roomId: string;
  tokens: Record<'host' | 'producer' | 'caller', string>;
}

/**
 * Each simulated client has its own address (wrangler dev passes CF-Connecting-IP through),
 * so the per-client limits are not shared by every test in the run.
 */
const clientIp = () => `192.0.2.${Math.floor(Math.random() * 254) + 1}-${Math.random().toString(36).slice(2, 8)}`;

async function createRoom(body: object = {}): Promise<Room> {
  const response = await fetch(`${http()}/rooms`, {
    method: 'POST',
    headers: { 'CF-Connecting-IP': clientIp() },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as Room;
}

class Client {
  frames: any[] = [];
  closed: { code: number } | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      // Every frame must be one the protocol names, with no field it does not name.
      this.frames.push(checkFrame(ServerMessageSchema, JSON.parse(String(data))));
      this.wake();
    });
    socket.on('close', (code) => {
      this.closed = { code };
      this.wake();
    });
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  async until<T>(check: () => T | undefined, what: string): Promise<T> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  frame(type: string, predicate: (f: any) => boolean = () => true) {
    return this.until(() => this.frames.find((f) => f.type === type && predicate(f)), type);
  }

  /**
   * A ping the room itself answers (not the exact auto-response frame): once its pong is
   * here, everything the room sent this client before has arrived.
   */
  async roundTrip() {
    const from = this.frames.length;
    this.send({ type: 'ping', n: 1 });
    await this.until(() => this.frames.slice(from).find((f) => f.type === 'pong'), 'pong');
  }

  closedWith() {
    return this.until(() => this.closed?.code, 'close');
  }

  send(message: unknown) {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }
}

function open(roomId: string, query: string, headers: Record<string, string> = {}, protocols?: string[]): Client {
  return new Client(
    new WebSocket(`${ws()}/rooms/${roomId}/ws?${query}`, protocols, { headers: { 'CF-Connecting-IP': clientIp(), ...headers } }),
  );
}

async function joined(roomId: string, token: string) {
  const client = open(roomId, `token=${token}`);
  const welcome = await client.frame('welcome');
  // As the client library does: workerd completes a server-initiated close only on a
  // connection that has carried a client frame (see docs/protocol.md).
  client.send('{"type":"ping"}');
  await client.frame('pong');
  return { client, peerId: welcome.peerId as string, welcome };
}

describe('an attacker against wrangler dev', () => {
  it('two clients exchange an offer and an answer (the baseline the attacks must not break)', async () => {
    const room = await createRoom();
    const a = await joined(room.roomId, room.tokens.host);
    const b = await joined(room.roomId, room.tokens.caller);
    a.client.send({ type: 'offer', to: b.peerId, sdp: 'v=0 offer' });
    expect(await b.client.frame('offer')).toEqual({ type: 'offer', from: a.peerId, sdp: 'v=0 offer' });
    b.client.send({ type: 'answer', to: a.peerId, sdp: 'v=0 answer' });
    expect(await a.client.frame('answer')).toEqual({ type: 'answer', from: b.peerId, sdp: 'v=0 answer' });
  });

  it('cannot spoof another sender', async () => {
    const room = await createRoom();
    const host = await joined(room.roomId, room.tokens.host);
    const victim = await joined(room.roomId, room.tokens.caller);
    const attacker = await joined(room.roomId, room.tokens.caller);
    attacker.client.send({ type: 'offer', to: victim.peerId, sdp: 'evil', from: host.peerId });
    expect(await victim.client.frame('offer')).toMatchObject({ from: attacker.peerId });
  });

  it('cannot escalate: forged role, tampered token, host actions as a caller', async () => {
    const room = await createRoom();
    const host = await joined(room.roomId, room.tokens.host);
    const [h, p, sig] = room.tokens.caller.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, role: 'host' })).toString('base64url')}.${sig}`;
    const forgedClient = open(room.roomId, `token=${forged}`);
    expect(await forgedClient.frame('error')).toMatchObject({ code: 'unauthorized' });
    expect(await forgedClient.closedWith()).toBe(4001);

    const caller = await joined(room.roomId, room.tokens.caller);
    caller.client.frames.length = 0;
    for (const action of [
      { type: 'kick', peerId: host.peerId },
      { type: 'mute', peerId: host.peerId, muted: true },
      { type: 'close-room' },
    ]) {
      caller.client.frames.length = 0;
      caller.client.send(action);
      expect(await caller.client.frame('error')).toMatchObject({ code: 'forbidden' });
    }
    const mint = await fetch(`${http()}/rooms/${room.roomId}/tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${room.tokens.caller}`, 'CF-Connecting-IP': clientIp() },
      body: JSON.stringify({ role: 'host' }),
    });
    expect(mint.status).toBe(403);
    expect(host.client.closed).toBeNull();
  });

  it('cannot cross rooms, hijack from a foreign Origin, or reuse a kicked session', async () => {
    const a = await createRoom();
    const b = await createRoom();
    const cross = open(b.roomId, `token=${a.tokens.host}`);
    expect(await cross.frame('error')).toMatchObject({ code: 'unauthorized' });

    const hijack = open(a.roomId, `token=${a.tokens.host}`, { Origin: 'https://evil.example' });
    expect(await hijack.frame('error')).toMatchObject({ code: 'origin-not-allowed' });
    expect(await hijack.closedWith()).toBe(4003);

    const host = await joined(a.roomId, a.tokens.host);
    const caller = await joined(a.roomId, a.tokens.caller);
    host.client.send({ type: 'kick', peerId: caller.peerId });
    expect(await caller.client.closedWith()).toBe(4003);
    const back = open(a.roomId, `token=${a.tokens.caller}&resume=${caller.welcome.resumeToken}`);
    expect(await back.frame('error')).toMatchObject({ code: 'resume-failed' });
  });

  it('cannot slip past the lobby', async () => {
    const room = await createRoom({ lobby: true });
    const host = await joined(room.roomId, room.tokens.host);
    const onAir = await joined(room.roomId, room.tokens.caller);
    host.client.send({ type: 'admit', peerId: onAir.peerId });
    await onAir.client.frame('admitted');
    const mark = onAir.client.frames.length; // everything after this is checked

    const waiting = await joined(room.roomId, room.tokens.caller);
    const second = await joined(room.roomId, room.tokens.caller);
    for (const to of [second.peerId, onAir.peerId]) waiting.client.send({ type: 'offer', to, sdp: 'x' });
    waiting.client.send({ type: 'admit', peerId: waiting.peerId });
    await waiting.client.roundTrip();
    expect(waiting.client.frames.filter((f) => f.type === 'error').map((f) => f.code)).toEqual([
      'peer-not-found',
      'peer-not-found',
      'forbidden',
    ]);
    second.client.send({ type: 'leave' });
    expect(await second.client.closedWith()).toBe(1000);
    // The on-air caller learnt nothing: no join, no leave, no offer, from anyone waiting.
    await host.client.roundTrip();
    await onAir.client.roundTrip();
    expect(onAir.client.frames.slice(mark)).toEqual([{ type: 'pong' }]);
  });

  it('is limited per client when creating rooms or joining in bulk', async () => {
    const ip = clientIp();
    await awayFromWindowEdge();
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push((await fetch(`${http()}/rooms`, { method: 'POST', headers: { 'CF-Connecting-IP': ip } })).status);
    }
    expect(statuses.filter((s) => s === 429)).toHaveLength(1);
    const room = await createRoom();
    const refused: number[] = [];
    for (let i = 0; i < 61; i++) {
      const client = open(room.roomId, 'token=garbage', { 'CF-Connecting-IP': ip });
      const error = await client.frame('error');
      if (error.code === 'rate-limited') refused.push(await client.closedWith());
    }
    expect(refused).toEqual([1013]);
  });

  it('is cut off when flooding or sending oversized frames', async () => {
    const room = await createRoom();
    const flooder = await joined(room.roomId, room.tokens.caller);
    // Twice the shipped burst (400) at once: the rest is refused, and a run of refusals closes it.
    for (let i = 0; i < 800; i++) flooder.client.send({ type: 'ping', n: i });
    expect(await flooder.client.frame('error', (f) => f.code === 'rate-limited')).toBeTruthy();
    expect(await flooder.client.closedWith()).toBe(4008);

    const big = await joined(room.roomId, room.tokens.caller);
    big.client.send({ type: 'offer', to: 'x', sdp: 'y'.repeat(100_000) });
    expect(await big.client.frame('error', (f) => f.code === 'too-large')).toBeTruthy();

    const body = await fetch(`${http()}/rooms`, {
      method: 'POST',
      headers: { 'CF-Connecting-IP': clientIp() },
      body: JSON.stringify({ name: 'z'.repeat(50_000) }),
    });
    expect(body.status).toBe(413);
  });
});
