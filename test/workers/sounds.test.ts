// The soundboard through the Worker and the room: uploads checked whole before anything is
// kept, pads and plays told to everyone on the show and never to a waiting caller (every
// frame after a mark is read), only staff in control, and the files gone with the room.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { SoundInfo } from '../../protocol/sounds';
import { soundPrefix } from '../../server/sound-files';
import { call, createRoom, join, settle, until, type TestClient } from './helpers';

/** A real WAV: `seconds` of a 440 Hz tone, 16-bit mono 48 kHz. */
function wav(seconds = 0.5): Uint8Array {
  const frames = Math.round(48_000 * seconds);
  const bytes = new Uint8Array(44 + frames * 2);
  const view = new DataView(bytes.buffer);
  const text = (at: number, s: string) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  view.setUint32(4, 36 + frames * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, 48_000, true);
  view.setUint32(28, 96_000, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, 'data');
  view.setUint32(40, frames * 2, true);
  for (let i = 0; i < frames; i++) view.setInt16(44 + i * 2, Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 48_000)), true);
  return bytes;
}

function upload(roomId: string, token: string, body: BodyInit, name = 'Jingle') {
  return call(`/rooms/${roomId}/sounds`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'X-Sound-Name': encodeURIComponent(name) },
    body,
  });
}

async function stored(roomId: string): Promise<string[]> {
  return (await env.RECORDINGS_BUCKET.list({ prefix: soundPrefix(roomId) })).objects.map((o) => o.key);
}

const soundsFrames = (client: TestClient, mark: number) =>
  client.since(mark).filter((f): f is Extract<typeof f, { type: 'sounds' }> => f.type === 'sounds');

/** A lobby room: host, producer, Ann on air, Walt waiting. */
async function studio() {
  const room = await createRoom({ lobby: true });
  const host = await join(room.roomId, room.tokens.host);
  const producer = await join(room.roomId, room.tokens.producer);
  const ann = await join(room.roomId, room.tokens.caller);
  host.client.send({ type: 'admit', peerId: ann.peerId });
  await ann.client.nextOf('admitted');
  const walt = await join(room.roomId, room.tokens.caller);
  await settle(host.client, producer.client, ann.client, walt.client);
  return { room, host, producer, ann, walt };
}

async function addJingle(roomId: string, token: string, name = 'Jingle'): Promise<SoundInfo> {
  const response = await upload(roomId, token, wav(), name);
  expect(response.status, await response.clone().text()).toBe(201);
  return ((await response.json()) as { sound: SoundInfo }).sound;
}

describe('the soundboard', () => {
  it('an added sound reaches every pad on the show, never a waiting caller; its file is served to the room only', async () => {
    const { room, host, producer, ann, walt } = await studio();
    expect(host.welcome.sounds).toEqual([]);
    expect(walt.welcome).not.toHaveProperty('sounds');
    const marks = [host, producer, ann, walt].map((p) => p.client.mark());
    const sound = await addJingle(room.roomId, room.tokens.producer, 'Station ID');
    expect(sound).toMatchObject({ name: 'Station ID', format: 'wav', bytes: wav().byteLength, level: 1, loop: false, playing: null });
    expect(sound.duration).toBeCloseTo(0.5, 3);
    await settle(producer.client, host.client, ann.client, walt.client);
    for (const [i, p] of [host, producer, ann].entries()) expect(soundsFrames(p.client, marks[i]!).map((f) => f.sounds)).toEqual([[sound]]);
    expect(walt.client.since(marks[3]!)).toEqual([]);

    // The file, byte for byte, to a token of the room; not to another room's.
    const file = await call(`/rooms/${room.roomId}/sounds/${sound.soundId}`, {
      headers: { Authorization: `Bearer ${room.tokens.caller}` },
    });
    expect(file.status).toBe(200);
    expect(file.headers.get('Content-Type')).toBe('audio/wav');
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(wav());
    const other = await createRoom();
    const foreign = await call(`/rooms/${room.roomId}/sounds/${sound.soundId}`, {
      headers: { Authorization: `Bearer ${other.tokens.host}` },
    });
    expect(foreign.status).toBe(401);
    const none = await call(`/rooms/${room.roomId}/sounds/${sound.soundId}`);
    expect(none.status).toBe(401);

    const listed = await call(`/rooms/${room.roomId}/sounds`, { headers: { Authorization: `Bearer ${room.tokens.host}` } });
    expect(await listed.json()).toEqual({ sounds: [sound] });
  });

  it('a bad upload of each kind gets its refusal, and nothing is stored or told', async () => {
    const { room, host, ann, walt } = await studio();
    const marks = [host, ann, walt].map((p) => p.client.mark());
    const good = wav();
    const cases: [string, BodyInit, number, string, string?][] = [
      ['text', 'hello, this is not a sound', 415, 'invalid-sound'],
      ['a script named .mp3', '<script>alert(1)</script>', 415, 'invalid-sound', 'evil.mp3'],
      ['truncated', good.slice(0, good.byteLength - 1000), 415, 'invalid-sound'],
      ['random bytes', crypto.getRandomValues(new Uint8Array(4096)), 415, 'invalid-sound'],
      ['empty', new Uint8Array(0), 415, 'invalid-sound'],
      ['too large', new Uint8Array(Number(env.SOUND_MAX_BYTES) + 1), 413, 'too-large'],
    ];
    for (const [what, body, status, code, name] of cases) {
      const response = await upload(room.roomId, room.tokens.host, body, name);
      const answer = (await response.json()) as { error: { code: string; message: string } };
      expect({ what, status: response.status, code: answer.error.code }).toEqual({ what, status, code });
      expect(answer.error.message.length).toBeGreaterThan(10);
    }
    // Not staff, no name, a name with control characters: refused before the file is read.
    expect((await upload(room.roomId, room.tokens.caller, good)).status).toBe(403);
    const nameless = await call(`/rooms/${room.roomId}/sounds`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${room.tokens.host}` },
      body: good,
    });
    expect(nameless.status).toBe(400);
    expect((await upload(room.roomId, room.tokens.host, good, 'bad\u0007name')).status).toBe(400);

    expect(await stored(room.roomId)).toEqual([]);
    await settle(host.client, ann.client, walt.client);
    for (const [i, p] of [host, ann, walt].entries()) expect(soundsFrames(p.client, marks[i]!)).toEqual([]);
  });

  it('staff play, stop and set a pad for everyone on the show; a caller cannot; a waiting caller hears of none of it', async () => {
    const { room, host, producer, ann, walt } = await studio();
    const sound = await addJingle(room.roomId, room.tokens.host);
    await settle(host.client, producer.client, ann.client, walt.client);
    const waltMark = walt.client.mark();

    const annMark = ann.client.mark();
    ann.client.send({ type: 'play-sound', soundId: sound.soundId });
    expect((await ann.client.nextOf('error')).code).toBe('forbidden');
    await settle(ann.client, host.client);
    expect(soundsFrames(ann.client, annMark)).toEqual([]);

    const before = Date.now();
    const mark = host.client.mark();
    producer.client.send({ type: 'play-sound', soundId: sound.soundId });
    const played = await until(() => soundsFrames(host.client, mark)[0], 'the play at the host');
    const playing = played.sounds[0]!.playing!;
    expect(playing.startedAt).toBeGreaterThanOrEqual(before);
    const annPlay = await until(() => soundsFrames(ann.client, annMark)[0], 'the play at Ann');
    expect(annPlay.sounds[0]!.playing).toEqual(playing);

    // Admitted during the play: told at once, with the play's moment.
    host.client.send({ type: 'admit', peerId: walt.peerId });
    const told = await walt.client.nextOf('admitted');
    expect(told.sounds[0]!.playing).toEqual(playing);
    expect(walt.client.since(waltMark).filter((f) => f.type === 'sounds' || f.type === 'admitted')).toEqual([told]); // nothing before its admission

    // Put on hold: it hears of no change any more.
    host.client.send({ type: 'hold', peerId: walt.peerId });
    await walt.client.nextOf('held');
    const heldMark = walt.client.mark();

    const setMark = ann.client.mark();
    host.client.send({ type: 'set-sound', soundId: sound.soundId, level: 1.5, loop: true });
    host.client.send({ type: 'stop-sound', soundId: sound.soundId });
    await settle(host.client, ann.client, walt.client);
    expect(soundsFrames(ann.client, setMark).map((f) => f.sounds[0])).toMatchObject([
      { level: 1.5, loop: true, playing },
      { level: 1.5, loop: true, playing: null },
    ]);
    expect(walt.client.since(heldMark).filter((f) => f.type === 'sounds')).toEqual([]);

    // Out of range, unknown: refused, nothing changes.
    host.client.send({ type: 'set-sound', soundId: sound.soundId, level: 2.5 });
    expect((await host.client.nextOf('error')).code).toBe('invalid-message');
    host.client.send({ type: 'play-sound', soundId: 'no-such-sound' });
    expect((await host.client.nextOf('error')).code).toBe('sound-not-found');
    const listed = await call(`/rooms/${room.roomId}/sounds`, { headers: { Authorization: `Bearer ${room.tokens.host}` } });
    expect(((await listed.json()) as { sounds: SoundInfo[] }).sounds[0]).toMatchObject({ level: 1.5, loop: true, playing: null });
  });

  it('a play that has run its length is over for a page that comes in later', async () => {
    const { room, host } = await studio();
    const sound = await addJingle(room.roomId, room.tokens.host); // 0.5 s
    host.client.send({ type: 'play-sound', soundId: sound.soundId });
    await settle(host.client);
    await new Promise((r) => setTimeout(r, 700));
    const late = await join(room.roomId, room.tokens.producer);
    expect(late.welcome.sounds?.[0]?.playing).toBeNull();
  });

  it('a deleted sound stops and goes, file too; closing the room deletes every sound file', async () => {
    const { room, host, ann } = await studio();
    const jingle = await addJingle(room.roomId, room.tokens.host, 'Jingle');
    const bed = await addJingle(room.roomId, room.tokens.host, 'Bed');
    expect(await stored(room.roomId)).toHaveLength(2);
    expect(
      (
        await call(`/rooms/${room.roomId}/sounds/${jingle.soundId}`, {
          method: 'DELETE',
          headers: { Authorization: `Bearer ${room.tokens.caller}` },
        })
      ).status,
    ).toBe(403);
    const mark = ann.client.mark();
    const deleted = await call(`/rooms/${room.roomId}/sounds/${jingle.soundId}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${room.tokens.producer}` },
    });
    expect(deleted.status).toBe(204);
    const told = await until(() => soundsFrames(ann.client, mark)[0], 'the deletion at Ann');
    expect(told.sounds.map((s) => s.name)).toEqual(['Bed']);
    expect(await stored(room.roomId)).toEqual([`${soundPrefix(room.roomId)}${bed.soundId}`]);
    const again = await call(`/rooms/${room.roomId}/sounds/${jingle.soundId}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${room.tokens.host}` },
    });
    expect(again.status).toBe(404);

    host.client.send({ type: 'close-room' });
    await host.client.nextOf('room-closed');
    for (let i = 0; i < 100 && (await stored(room.roomId)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await stored(room.roomId)).toEqual([]);
    // And no sound can be added to a closed show.
    expect((await upload(room.roomId, room.tokens.host, wav())).status).toBe(404);
    expect(await stored(room.roomId)).toEqual([]);
  });
});
