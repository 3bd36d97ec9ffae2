import { describe, expect, it } from 'vitest';
import { DEFAULTS, readConfig, ConfigError } from '../../worker/config';
import { connect, createRoom, join } from './helpers';

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
    await refusedAsFull(room.roomId, room.tokens.host);

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
