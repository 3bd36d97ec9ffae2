// Recordings over HTTP (docs/recording.md): chunk uploads with a track's credential, the
// tracks' states, the WAV files and the manifest, download keys that die with their token,
// deletes and retention. Takes are opened on the Recordings object directly, as the room does.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { Recordings } from '../../durable-objects/recordings';
import { CHUNK_BYTES, CHUNK_SAMPLES, SAMPLE_RATE, takePrefix, type TakeListing, type TrackKind } from '../../protocol/recording';
import type { Role } from '../../protocol/messages';
import { signDownload, signUpload } from '../../server/credentials';
import { call, createRoom, type CreatedRoom } from './helpers';

const recordings = (roomId: string) => env.RECORDINGS.get(env.RECORDINGS.idFromName(roomId));

interface Take {
  room: CreatedRoom;
  roomId: string;
  takeId: string;
  startedAt: number;
  stub: ReturnType<typeof recordings>;
  credentials: Record<string, string>;
}

/** A room with a take open on its Recordings object, and a track (with its upload credential) per name. */
async function openTake(tracks: string[] = ['alice'], startedAt = Date.now() - 60_000, room?: CreatedRoom): Promise<Take> {
  room ??= await createRoom();
  const roomId = room.roomId;
  const stub = recordings(roomId);
  const takeId = `t${crypto.randomUUID().slice(0, 8)}`;
  await stub.startTake({ roomId, takeId, title: 'Take 1', startedAt, by: 'host' });
  const credentials: Record<string, string> = {};
  for (const trackId of tracks) {
    const kind: TrackKind = trackId === 'program' ? 'program' : 'voice';
    const role: Role = trackId === 'program' ? 'host' : 'caller';
    await stub.grantTrack({
      takeId,
      trackId,
      kind,
      name: trackId === 'program' ? 'Program' : trackId[0]!.toUpperCase() + trackId.slice(1),
      role,
    });
    credentials[trackId] = await signUpload(env.TOKEN_SECRET, { roomId, takeId, trackId });
  }
  return { room, roomId, takeId, startedAt, stub, credentials };
}

/** PCM of `samples` samples, every one `value`. */
function pcm(samples: number, value: number): Uint8Array {
  const bytes = new Uint8Array(samples * 2);
  new Int16Array(bytes.buffer).fill(value); // little-endian, as workerd runs on
  return bytes;
}

interface Chunk {
  trackId?: string;
  segment?: string;
  seq: number;
  /** Ms from the take's start of the chunk's first sample. */
  at: number;
  final?: boolean;
  body?: BodyInit;
  credential?: string | null;
  headers?: Record<string, string>;
}

function upload(take: Take, chunk: Chunk): Promise<Response> {
  const trackId = chunk.trackId ?? 'alice';
  const credential = chunk.credential === undefined ? take.credentials[trackId] : chunk.credential;
  const headers: Record<string, string> = { 'X-Chunk-Start': String(take.startedAt + chunk.at), ...chunk.headers };
  if (credential) headers.Authorization = `Bearer ${credential}`;
  if (chunk.final) headers['X-Chunk-Final'] = '1';
  return call(`/rooms/${take.roomId}/recordings/${take.takeId}/tracks/${trackId}/chunks/${chunk.segment ?? 'a'}/${chunk.seq}`, {
    method: 'PUT',
    headers,
    body: chunk.body ?? pcm(CHUNK_SAMPLES, chunk.seq + 1),
  });
}

async function stored(take: Take, chunk: Chunk): Promise<void> {
  const response = await upload(take, chunk);
  expect(response.status, await response.clone().text()).toBe(201);
  expect(await response.json()).toEqual({ stored: true });
}

async function refusal(response: Response, status: number, code: string): Promise<void> {
  expect(response.status).toBe(status);
  expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
}

async function objects(take: Take): Promise<string[]> {
  const listed = await env.RECORDINGS_BUCKET.list({ prefix: takePrefix(take.roomId, take.takeId) });
  return listed.objects.map((o) => o.key).sort();
}

async function listing(take: Take, token = take.room.tokens.host): Promise<TakeListing[]> {
  const response = await call(`/rooms/${take.roomId}/recordings`, { headers: { Authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { takes: TakeListing[] }).takes;
}

async function trackOf(take: Take, trackId = 'alice') {
  const entry = (await listing(take)).find((t) => t.takeId === take.takeId);
  return entry?.tracks.find((t) => t.trackId === trackId);
}

/** A download key for a take, as the listing gives it to the room's host. */
async function hostKey(take: Take, takeId = take.takeId): Promise<string> {
  const entry = (await listing(take)).find((t) => t.takeId === take.takeId)!;
  const key = new URL(entry.links.manifest, 'https://x').searchParams.get('key')!;
  if (takeId === take.takeId) return key;
  // The same holder, another take.
  const claims = JSON.parse(atob(key.split('.')[1]!.replaceAll('-', '+').replaceAll('_', '/')));
  return signDownload(
    env.TOKEN_SECRET,
    { roomId: take.roomId, takeId, role: claims.role, generation: claims.gen, lineage: claims.lin },
    claims.exp,
  );
}

describe('chunk uploads', () => {
  it('stores a chunk once: a retry and a racing twin answer stored: false', async () => {
    const take = await openTake();
    await stored(take, { seq: 0, at: 0 });
    const retry = await upload(take, { seq: 0, at: 0 });
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ stored: false });

    const twins = await Promise.all([upload(take, { seq: 1, at: 5000 }), upload(take, { seq: 1, at: 5000 })]);
    expect(twins.map((r) => r.status).sort()).toEqual([200, 201]);
    expect(await objects(take)).toEqual([0, 1].map((seq) => `${takePrefix(take.roomId, take.takeId)}alice/a/${seq}`));
    expect((await trackOf(take))!.bytes).toBe(2 * CHUNK_BYTES);
  });

  it('keeps the longest copy of a chunk: a short final piece (a draft) gives way to the whole chunk, never the reverse', async () => {
    const take = await openTake();
    await stored(take, { seq: 0, at: 0, final: true, body: pcm(SAMPLE_RATE, 7) }); // 1 s of the chunk, sent as its end
    await stored(take, { seq: 0, at: 0, body: pcm(CHUNK_SAMPLES, 9) }); // then the whole 5 s
    const again = await upload(take, { seq: 0, at: 0, final: true, body: pcm(SAMPLE_RATE, 7) });
    expect(await again.json()).toEqual({ stored: false });
    expect((await trackOf(take))!.bytes).toBe(CHUNK_BYTES);
    const object = await env.RECORDINGS_BUCKET.get(`${takePrefix(take.roomId, take.takeId)}alice/a/0`);
    const held = new Int16Array(await object!.arrayBuffer());
    expect([held.length, held[0], held[CHUNK_SAMPLES - 1]]).toEqual([CHUNK_SAMPLES, 9, 9]);
  });

  it('places chunks uploaded out of order', async () => {
    const take = await openTake();
    await stored(take, { seq: 2, at: 11_000, final: true, body: pcm(SAMPLE_RATE, 3) });
    await stored(take, { seq: 0, at: 1000 });
    await stored(take, { seq: 1, at: 6000 });
    await take.stub.stopTake(take.takeId, take.startedAt + 13_000);
    expect(await trackOf(take)).toMatchObject({ state: 'complete', progress: 1, offsetMs: 1000, durationMs: 11_000, missing: [] });
  });

  it('refuses a missing credential, a room token, and another track’s credential', async () => {
    const take = await openTake(['alice', 'bob']);
    await refusal(await upload(take, { seq: 0, at: 0, credential: null }), 401, 'unauthorized');
    await refusal(await upload(take, { seq: 0, at: 0, credential: take.room.tokens.host }), 401, 'unauthorized');
    await refusal(await upload(take, { seq: 0, at: 0, credential: take.credentials.bob! }), 403, 'forbidden');
    // A credential for a take this room never opened (validly signed).
    const unknown = await signUpload(env.TOKEN_SECRET, { roomId: take.roomId, takeId: 'nope', trackId: 'alice' });
    const path = `/rooms/${take.roomId}/recordings/nope/tracks/alice/chunks/a/0`;
    const headers = { Authorization: `Bearer ${unknown}`, 'X-Chunk-Start': String(Date.now()) };
    await refusal(await call(path, { method: 'PUT', headers, body: pcm(CHUNK_SAMPLES, 1) }), 403, 'forbidden');
    const otherRoom = await openTake(['alice']);
    await refusal(await upload(take, { seq: 0, at: 0, credential: otherRoom.credentials.alice! }), 403, 'forbidden');
    expect(await objects(take)).toEqual([]);
    expect((await trackOf(take))!.bytes).toBe(0);
  });

  it('refuses bodies of the wrong size and bad chunk names', async () => {
    const take = await openTake();
    await refusal(await upload(take, { seq: 0, at: 0, body: pcm(CHUNK_SAMPLES + 1, 1) }), 413, 'too-large');
    // Without a Content-Length the body is cut off while it streams.
    const big = pcm(CHUNK_SAMPLES + 1, 1);
    const streamed = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(big.subarray(0, CHUNK_BYTES));
        controller.enqueue(big.subarray(CHUNK_BYTES));
        controller.close();
      },
    });
    await refusal(await upload(take, { seq: 0, at: 0, body: streamed }), 413, 'too-large');
    await refusal(await upload(take, { seq: 0, at: 0, body: pcm(1000, 1) }), 400, 'invalid-request');
    await refusal(await upload(take, { seq: 0, at: 0, final: true, body: new Uint8Array(3) }), 400, 'invalid-request');
    await refusal(await upload(take, { seq: 0, at: 0, final: true, body: new Uint8Array(0) }), 400, 'invalid-request');
    await refusal(await upload(take, { seq: 0, at: 0, segment: 'a.b' }), 400, 'invalid-request');
    await refusal(await upload(take, { seq: 1_000_001, at: 0 }), 400, 'invalid-request');
    await refusal(await upload(take, { seq: 0, at: 0, headers: { 'X-Chunk-Start': 'soon' } }), 400, 'invalid-request');
    await refusal(await upload(take, { seq: 0, at: 0, headers: { 'X-Chunk-Final': 'yes' } }), 400, 'invalid-request');
    expect(await objects(take)).toEqual([]);
    await stored(take, { seq: 0, at: 0, final: true, body: pcm(10, 1) });
  });

  it('refuses what would exceed the room’s quota, and stores nothing of it', async () => {
    const take = await openTake();
    await runInDurableObject(take.stub, (instance: Recordings) => {
      instance.maxBytesPerRoom = CHUNK_BYTES + CHUNK_BYTES / 2;
    });
    await stored(take, { seq: 0, at: 0 });
    await refusal(await upload(take, { seq: 1, at: 5000 }), 507, 'quota-exceeded');
    expect(await objects(take)).toHaveLength(1);
    expect((await trackOf(take))!.bytes).toBe(CHUNK_BYTES);
    // What still fits is taken.
    await stored(take, { seq: 1, at: 5000, final: true, body: pcm(CHUNK_SAMPLES / 2, 2) });
  });

  it('takes uploads within the grace after the stop, and refuses them after', async () => {
    const recent = await openTake();
    await recent.stub.stopTake(recent.takeId, Date.now() - 10_000);
    await stored(recent, { seq: 0, at: 0 });

    const old = await openTake(['alice'], Date.now() - 700_000);
    await stored(old, { seq: 0, at: 0 });
    await old.stub.stopTake(old.takeId, old.startedAt + 99_000); // 601 s ago
    await refusal(await upload(old, { seq: 1, at: 5000 }), 409, 'recording-closed');
    expect(await objects(old)).toHaveLength(1);
    // The grace is over: what never came is missing for good.
    expect(await trackOf(old)).toMatchObject({ state: 'incomplete', missing: [{ fromMs: 5000, toMs: 99_000 }] });
  });
});

describe('the listing', () => {
  it('is for staff: a caller is forbidden, no token is unauthorized', async () => {
    const take = await openTake();
    await stored(take, { seq: 0, at: 0 });
    for (const role of ['host', 'producer'] as const) {
      const [entry] = await listing(take, take.room.tokens[role]);
      expect(entry).toMatchObject({ takeId: take.takeId, title: 'Take 1', stoppedAt: null, by: 'host' });
      expect(entry!.tracks).toEqual([
        expect.objectContaining({ trackId: 'alice', name: 'Alice', role: 'caller', kind: 'voice', state: 'recording', bytes: CHUNK_BYTES }),
      ]);
      expect(entry!.links.tracks.alice!.wav).toMatch(
        new RegExp(`^/rooms/${take.roomId}/recordings/${take.takeId}/tracks/alice\\.wav\\?key=`),
      );
    }
    // Granted again (a reload after a rename), the track takes the new name.
    await take.stub.grantTrack({ takeId: take.takeId, trackId: 'alice', kind: 'voice', name: 'Alice B.', role: 'caller' });
    expect((await trackOf(take))!.name).toBe('Alice B.');
    const asCaller = await call(`/rooms/${take.roomId}/recordings`, { headers: { Authorization: `Bearer ${take.room.tokens.caller}` } });
    await refusal(asCaller, 403, 'forbidden');
    await refusal(await call(`/rooms/${take.roomId}/recordings`), 401, 'unauthorized');
  });

  it('lists takes newest first, with the state of each track', async () => {
    const room = await createRoom();
    const first = await openTake(['alice'], Date.now() - 120_000, room);
    await first.stub.stopTake(first.takeId, Date.now() - 100_000);
    const second = await openTake(['alice', 'bob'], Date.now() - 60_000, room);
    await stored(second, { seq: 0, at: 0 });
    await second.stub.stopTake(second.takeId, second.startedAt + 10_000);
    const takes = await listing(second);
    expect(takes.map((t) => t.takeId)).toEqual([second.takeId, first.takeId]);
    // Alice's segment still owes its final chunk, Bob has sent nothing yet: both uploading.
    expect(takes[0]!.tracks.map((t) => [t.trackId, t.state, t.progress])).toEqual([
      ['alice', 'uploading', 0.5],
      ['bob', 'uploading', 0],
    ]);
  });

  it('tells any token of the room whether a take runs', async () => {
    const room = await createRoom();
    const response = await call(`/rooms/${room.roomId}/recording`, { headers: { Authorization: `Bearer ${room.tokens.caller}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ recording: { state: 'idle' } });
    await refusal(await call(`/rooms/${room.roomId}/recording`), 401, 'unauthorized');
  });
});

describe('downloads', () => {
  /**
   * Alice: segment a, seq 0 at 1 s (5 s of 1s), seq 1 never came, seq 2 final (0.5 s of 3s).
   * Bob: two captures, 1 s each, at 0 s and 3 s (a reload between). The take lasts 12 s.
   */
  async function recorded(): Promise<Take> {
    const take = await openTake(['alice', 'bob']);
    await stored(take, { seq: 0, at: 1000 });
    await stored(take, { seq: 2, at: 11_000, final: true, body: pcm(SAMPLE_RATE / 2, 3) });
    await stored(take, { trackId: 'bob', segment: 'x', seq: 0, at: 0, final: true, body: pcm(SAMPLE_RATE, 7) });
    await stored(take, { trackId: 'bob', segment: 'y', seq: 0, at: 3000, final: true, body: pcm(SAMPLE_RATE, 8) });
    await take.stub.stopTake(take.takeId, take.startedAt + 12_000);
    return take;
  }

  function download(take: Take, file: string, key: string | null): Promise<Response> {
    return call(`/rooms/${take.roomId}/recordings/${take.takeId}/${file}${key === null ? '' : `?key=${encodeURIComponent(key)}`}`);
  }

  async function samplesOf(response: Response): Promise<{ header: DataView; samples: Int16Array }> {
    expect(response.status).toBe(200);
    const bytes = await response.arrayBuffer();
    expect(Number(response.headers.get('Content-Length'))).toBe(bytes.byteLength);
    return { header: new DataView(bytes, 0, 44), samples: new Int16Array(bytes.slice(44)) };
  }

  it('serves the aligned WAV: as long as the take, each chunk at its place, silence in the gaps', async () => {
    const take = await recorded();
    const [entry] = await listing(take);
    const response = await call(entry!.links.tracks.alice!.wav);
    expect(response.headers.get('Content-Type')).toBe('audio/wav');
    expect(response.headers.get('Content-Disposition')).toBe('attachment; filename="take-1-alice.wav"');
    const { header, samples } = await samplesOf(response);
    const text = (at: number) => String.fromCharCode(...new Uint8Array(header.buffer, at, 4));
    expect([text(0), text(8), text(12), text(36)]).toEqual(['RIFF', 'WAVE', 'fmt ', 'data']);
    expect(header.getUint32(4, true)).toBe(36 + samples.length * 2);
    expect(header.getUint16(20, true)).toBe(1); // PCM
    expect(header.getUint16(22, true)).toBe(1); // mono
    expect(header.getUint32(24, true)).toBe(48_000);
    expect(header.getUint32(28, true)).toBe(96_000);
    expect(header.getUint16(32, true)).toBe(2);
    expect(header.getUint16(34, true)).toBe(16);
    expect(header.getUint32(40, true)).toBe(samples.length * 2);

    expect(samples.length).toBe(12 * SAMPLE_RATE);
    const at = (s: number) => s * SAMPLE_RATE;
    expect(samples[at(1) - 1]).toBe(0); // before the track's first sample
    expect(samples[at(1)]).toBe(1);
    expect(samples[at(6) - 1]).toBe(1);
    expect(samples[at(6)]).toBe(0); // seq 1, missing
    expect(samples[at(11) - 1]).toBe(0);
    expect(samples[at(11)]).toBe(3);
    expect(samples[at(11.5) - 1]).toBe(3);
    expect(samples[at(11.5)]).toBe(0); // after the last chunk, to the take's end
    expect(samples.subarray(at(6), at(11)).every((s) => s === 0)).toBe(true);
  });

  it('serves the WAV as recorded: from the first sample to the last', async () => {
    const take = await recorded();
    const { samples } = await samplesOf(await download(take, 'tracks/alice.raw.wav', await hostKey(take)));
    expect(samples.length).toBe(10.5 * SAMPLE_RATE);
    expect(samples[0]).toBe(1);
    expect(samples[5 * SAMPLE_RATE]).toBe(0);
    expect(samples.at(-1)).toBe(3);
    const bob = await samplesOf(await download(take, 'tracks/bob.raw.wav', await hostKey(take)));
    expect(bob.samples.length).toBe(4 * SAMPLE_RATE);
    expect([bob.samples[0], bob.samples[SAMPLE_RATE], bob.samples[3 * SAMPLE_RATE]]).toEqual([7, 0, 8]);
  });

  it('serves the manifest with the missing spans: a hole in a capture, a gap between captures', async () => {
    const take = await recorded();
    const response = await download(take, 'manifest.json', await hostKey(take));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      take: { takeId: take.takeId, title: 'Take 1', startedAt: take.startedAt, stoppedAt: take.startedAt + 12_000, by: 'host' },
      sampleRate: SAMPLE_RATE,
      tracks: [
        // Seq 1 may still come (the grace runs): uploading.
        {
          trackId: 'alice',
          name: 'Alice',
          role: 'caller',
          kind: 'voice',
          offsetMs: 1000,
          durationMs: 10_500,
          missing: [{ fromMs: 6000, toMs: 11_000 }],
          state: 'uploading',
        },
        // Both captures are whole: the gap between them will not fill, incomplete at once.
        {
          trackId: 'bob',
          name: 'Bob',
          role: 'caller',
          kind: 'voice',
          offsetMs: 0,
          durationMs: 4000,
          missing: [{ fromMs: 1000, toMs: 3000 }],
          state: 'incomplete',
        },
      ],
    });
  });

  it('refuses a bad key, a key of another take, and a key whose token was revoked', async () => {
    const take = await recorded();
    await refusal(await download(take, 'manifest.json', null), 401, 'unauthorized');
    await refusal(await download(take, 'tracks/alice.wav', 'not-a-key'), 401, 'unauthorized');
    await refusal(await download(take, 'tracks/alice.wav', take.credentials.alice!), 401, 'unauthorized');
    await refusal(await download(take, 'tracks/alice.wav', await hostKey(take, 'another')), 403, 'forbidden');

    const [entry] = await listing(take, take.room.tokens.producer);
    expect((await call(entry!.links.manifest)).status).toBe(200);
    const revoked = await call(`/rooms/${take.roomId}/revoke`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${take.room.tokens.host}` },
      body: JSON.stringify({ role: 'producer' }),
    });
    expect(revoked.status).toBe(200);
    await refusal(await call(entry!.links.manifest), 401, 'token-revoked');
    await refusal(await call(entry!.links.tracks.alice!.wav), 401, 'token-revoked');
  });
});

describe('deleting', () => {
  it('deletes a stopped take: its objects, its listing entry, its bytes; late uploads are closed', async () => {
    const take = await openTake();
    await stored(take, { seq: 0, at: 0 });
    await stored(take, { seq: 1, at: 5000, final: true, body: pcm(100, 2) });
    await take.stub.stopTake(take.takeId, Date.now());
    const asCaller = await call(`/rooms/${take.roomId}/recordings/${take.takeId}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${take.room.tokens.caller}` },
    });
    await refusal(asCaller, 403, 'forbidden');
    expect(await objects(take)).toHaveLength(2);

    const key = await hostKey(take);
    const deleted = await call(`/rooms/${take.roomId}/recordings/${take.takeId}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${take.room.tokens.host}` },
    });
    expect(deleted.status).toBe(204);
    expect(await objects(take)).toEqual([]);
    expect(await listing(take)).toEqual([]);
    await refusal(await upload(take, { seq: 2, at: 10_000 }), 409, 'recording-closed');
    expect((await call(`/rooms/${take.roomId}/recordings/${take.takeId}/manifest.json?key=${key}`)).status).toBe(404);

    // The quota has its bytes back: a new take of the room may use all of it.
    const next = await openTake(['alice'], Date.now(), take.room);
    await runInDurableObject(next.stub, (instance: Recordings) => {
      instance.maxBytesPerRoom = CHUNK_BYTES;
    });
    await stored(next, { seq: 0, at: 0 });
  });

  it('refuses to delete the running take, and keeps it whole', async () => {
    const take = await openTake();
    await stored(take, { seq: 0, at: 0 });
    const response = await call(`/rooms/${take.roomId}/recordings/${take.takeId}`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${take.room.tokens.producer}` },
    });
    await refusal(response, 409, 'recording-active');
    expect(await objects(take)).toHaveLength(1);
    expect((await trackOf(take))!.bytes).toBe(CHUNK_BYTES);
  });

  it('deletes takes past their retention', async () => {
    const month = 31 * 86_400_000;
    const take = await openTake(['alice'], Date.now() - month - 60_000);
    await stored(take, { seq: 0, at: 0 });
    // Stopped a month ago: the retention alarm is due at once.
    await take.stub.stopTake(take.takeId, Date.now() - month);
    for (let i = 0; i < 100 && (await objects(take)).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await objects(take)).toEqual([]);
    expect(await listing(take)).toEqual([]);
  });
});
