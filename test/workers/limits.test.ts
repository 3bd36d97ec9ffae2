import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { STATE_CHANGE_BURST } from '../../durable-objects/room';
import { STRIKE_RESET_MS, TokenBucket } from '../../server/websocket';
import { DEFAULTS, readConfig, ConfigError } from '../../server/config';
import { connect, createRoom, join, settle } from './helpers';

async function refusedAsFull(roomId: string, token: string) {
  const extra = await connect(roomId, { token });
  expect(await extra.next('error')).toMatchObject({ code: 'room-full' });
  expect((await extra.waitClosed()).code).toBe(4009);
}

describe('participant limit', () => {
  it('refuses the joiner over maxParticipants with room-full and 4009', async () => {
    const room = await createRoom({ maxParticipants: 5 });
    for (let i = 0; i < 3; i++) await join(room.roomId, room.tokens.caller);
    await join(room.roomId, room.tokens.host);
    await join(room.roomId, room.tokens.producer);
    await refusedAsFull(room.roomId, room.tokens.producer);
    await refusedAsFull(room.roomId, room.tokens.caller);
    // A host always gets in (up to STAFF_SEATS past the room's size, a bound all the same).
    for (let i = 0; i < 2; i++) expect((await join(room.roomId, room.tokens.host)).welcome.role).toBe('host');
    await refusedAsFull(room.roomId, room.tokens.host);
  });

  it('callers sharing one link cannot lock staff out: two seats stay theirs', async () => {
    // The default room (16 seats): the 15th caller is refused, a host and a producer still join.
    const room = await createRoom({ lobby: true });
    for (let i = 0; i < 14; i++) await join(room.roomId, room.tokens.caller); // waiting callers count too
    await refusedAsFull(room.roomId, room.tokens.caller);
    expect((await join(room.roomId, room.tokens.host)).welcome.role).toBe('host');
    expect((await join(room.roomId, room.tokens.producer)).welcome.role).toBe('producer');
    await refusedAsFull(room.roomId, room.tokens.producer);
  });

  it('staff may also take free caller seats; a room of two keeps one seat for a caller', async () => {
    const room = await createRoom({ maxParticipants: 4 });
    for (let i = 0; i < 3; i++) await join(room.roomId, room.tokens.producer);
    expect((await join(room.roomId, room.tokens.caller)).welcome.role).toBe('caller');
    await refusedAsFull(room.roomId, room.tokens.producer);

    const pair = await createRoom({ maxParticipants: 2 });
    await join(pair.roomId, pair.tokens.caller);
    await refusedAsFull(pair.roomId, pair.tokens.caller);
    expect((await join(pair.roomId, pair.tokens.host)).welcome.role).toBe('host');
  });

  it('a peer in its grace period keeps its seat; a leave frees it', async () => {
    const room = await createRoom({ maxParticipants: 2 });
    const a = await join(room.roomId, room.tokens.host);
    const b = await join(room.roomId, room.tokens.caller);
    b.client.close();
    await a.client.nextOf('participant-updated');
    const extra = await connect(room.roomId, { token: room.tokens.caller });
    expect(await extra.next('error')).toMatchObject({ code: 'room-full' });
    const back = await connect(room.roomId, { token: room.tokens.caller, resume: b.welcome.resumeToken });
    await back.next('welcome');
    back.send({ type: 'leave' });
    await a.client.nextOf('peer-left');
    expect((await join(room.roomId, room.tokens.caller)).welcome.role).toBe('caller');
  });
});

describe('configuration', () => {
  it('uses safe defaults and refuses nonsense values', () => {
    expect(readConfig({})).toMatchObject({
      maxMessageBytes: 65_536,
      resumeGraceSeconds: 30,
      maxParticipants: 16,
      allowedOrigins: [],
    });
    expect(DEFAULTS.rateLimitBurst).toBeGreaterThan(DEFAULTS.rateLimitPerSecond);
    expect(() => readConfig({ MAX_PARTICIPANTS: 'lots' })).toThrow(ConfigError);
    expect(() => readConfig({ RESUME_GRACE_SECONDS: '-5' })).toThrow(ConfigError);
    expect(readConfig({ ALLOWED_ORIGINS: 'https://a.example, https://b.example' }).allowedOrigins).toEqual([
      'https://a.example',
      'https://b.example',
    ]);
  });

  it('Icecast: listeners default to the source URL; a single-mount setting from before per-show mounts is refused', () => {
    expect(readConfig({ ICECAST_URL: 'https://radio.example' })).toMatchObject({
      icecastUrl: 'https://radio.example',
      icecastPublicUrl: 'https://radio.example',
    });
    expect(readConfig({ ICECAST_URL: 'http://10.0.0.5:8000', ICECAST_PUBLIC_URL: 'https://radio.example/listen/' }).icecastPublicUrl).toBe(
      'https://radio.example/listen',
    );
    expect(() => readConfig({ ICECAST_URL: 'http://a', ICECAST_MOUNT: '/live.ogg' })).toThrow(/ICECAST_MOUNT is no longer used/);
    expect(() => readConfig({ ICECAST_LISTEN_URL: 'http://a/live.ogg' })).toThrow(ConfigError);
    expect(() => readConfig({ ICECAST_URL: 'http://a/live.ogg' })).toThrow(/origin without a path/);
    expect(() => readConfig({ ICECAST_URL: 'ftp://a' })).toThrow(ConfigError);
  });
});

describe('our own client fits our limits: a full room at the shipped defaults', () => {
  /**
   * What the client library sends to call one peer, rounded up from what Chromium gathers
   * (an offer, host, server-reflexive and relay candidates over UDP and TCP, the end of
   * candidates), and its answer to an offer.
   */
  const CANDIDATES_PER_PEER = 10;
  const callFrames = (to: string, round: string) => [
    { type: 'offer', to, sdp: `offer ${round}` },
    ...Array.from({ length: CANDIDATES_PER_PEER }, (_, i) => ({ type: 'ice-candidate', to, candidate: { candidate: `${round} ${i}` } })),
    { type: 'ice-candidate', to, candidate: null },
  ];

  it('the 16th participant calls 15 peers, restarts ICE with all of them, reconnects and restarts again: nothing refused', async () => {
    const config = readConfig(env);
    expect({ burst: config.rateLimitBurst, perSecond: config.rateLimitPerSecond }).toEqual({
      burst: DEFAULTS.rateLimitBurst,
      perSecond: DEFAULTS.rateLimitPerSecond,
    });
    const room = await createRoom({ lobby: false });
    const others = [await join(room.roomId, room.tokens.host), await join(room.roomId, room.tokens.producer)];
    for (let i = 0; i < 13; i++) others.push(await join(room.roomId, room.tokens.caller));
    let last = await join(room.roomId, room.tokens.caller);
    expect(last.welcome.participants).toHaveLength(15);
    const rounds = ['join', 'online restart'];
    const burst = async (round: string) => {
      // Every peer answers at once as well (their own buckets).
      for (const other of others) for (const frame of callFrames(other.peerId, round)) last.client.send(frame);
      for (const other of others)
        for (const frame of callFrames(last.peerId, `${round} answer`))
          other.client.send({ ...frame, type: frame.type === 'offer' ? 'answer' : frame.type });
      await settle(last.client, ...others.map((o) => o.client));
    };
    await burst(rounds[0]!);
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // back online a second later: every connection restarts
    await burst(rounds[1]!);
    // The signaling socket drops and resumes; the resumed welcome restarts ICE everywhere again.
    last.client.close(4000);
    const resumed = await connect(room.roomId, { token: room.tokens.caller, resume: last.welcome.resumeToken });
    last = { ...last, client: resumed, welcome: await resumed.next('welcome') };
    rounds.push('resumed restart');
    await burst(rounds[2]!);

    const everyone = [last, ...others];
    for (const { client } of everyone) expect(client.frames.filter((f) => f.type === 'error')).toEqual([]);
    for (const other of others) {
      const fromLast = other.client.frames.filter((f) => (f.type === 'offer' || f.type === 'ice-candidate') && f.from === last.peerId);
      expect(fromLast).toHaveLength(rounds.length * (CANDIDATES_PER_PEER + 2));
    }
    const answers = last.client.frames.filter((f) => f.type === 'answer' || f.type === 'ice-candidate');
    expect(answers).toHaveLength(others.length * (CANDIDATES_PER_PEER + 2)); // the resumed socket's round
  });
});

describe('name and mute changes', () => {
  it('a change that changes nothing is neither stored nor told to anyone', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    caller.client.send({ type: 'set-name', name: 'Ann' });
    expect((await host.client.nextOf('participant-updated')).participant).toMatchObject({ name: 'Ann' });
    const mark = host.client.mark();
    for (let i = 0; i < 30; i++) caller.client.send({ type: 'set-name', name: 'Ann' });
    for (let i = 0; i < 30; i++) caller.client.send({ type: 'mute', peerId: caller.peerId, muted: false });
    await settle(caller.client, host.client);
    expect(host.client.since(mark)).toEqual([]);
    expect(caller.client.frames.filter((f) => f.type === 'error')).toEqual([]);
  });

  it('renames and mute toggles have a budget of their own: a spammer is slowed, told once, and not disconnected', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    const mark = host.client.mark();
    for (let i = 0; i < 100; i++) caller.client.send({ type: 'set-name', name: `Spam ${i}` });
    await settle(caller.client, host.client);
    const told = host.client.since(mark).filter((f) => f.type === 'participant-updated').length;
    expect(told).toBeGreaterThanOrEqual(STATE_CHANGE_BURST);
    expect(told).toBeLessThan(STATE_CHANGE_BURST + 5); // a few refill while the burst arrives
    expect(caller.client.frames.filter((f) => f.type === 'error')).toEqual([expect.objectContaining({ code: 'rate-limited' })]);
    expect(caller.client.closed).toBeNull();
    // Signaling is unaffected by the change budget.
    caller.client.send({ type: 'offer', to: host.peerId, sdp: 'still signaling' });
    expect(await host.client.nextOf('offer')).toMatchObject({ sdp: 'still signaling' });
  });
});

describe('strikes', () => {
  it('a flood a little above the refill is closed, although every other frame is accepted', async () => {
    const room = await createRoom();
    const a = await join(room.roomId, room.tokens.host);
    const b = await join(room.roomId, room.tokens.caller);
    const config = readConfig(env);
    const send = (n: number) => {
      for (let i = 0; i < n; i++) a.client.send({ type: 'ice-candidate', to: b.peerId, candidate: null });
    };
    send(config.rateLimitBurst); // the bucket is empty now
    // Then three frames every 20 ms (three times the refill of one token per 20 ms), for up to 5 s.
    const deadline = Date.now() + 5_000;
    while (!a.client.closed && Date.now() < deadline) {
      send(3);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect((await a.client.waitClosed()).code).toBe(4008);
    expect(b.client.closed).toBeNull();
  });
});

describe('TokenBucket strikes', () => {
  it('a run of refusals ends only after a quiet spell, not at the next accepted frame', () => {
    const bucket = new TokenBucket(50, 10);
    let now = Date.now() + 1; // never before the bucket's own start
    for (let i = 0; i < 10; i++) expect(bucket.take(now)).toBe(true);
    let strikes = 0;
    // 75 frames a second against a refill of 50: one in three is refused.
    for (let i = 0; i < 75 && strikes < 20; i++, now += 1000 / 75) if (!bucket.take(now)) strikes = bucket.strike(now);
    expect(strikes).toBeGreaterThanOrEqual(20);
    expect(bucket.strike(now + STRIKE_RESET_MS + 1)).toBe(1); // after a quiet spell, a new run
  });
});
