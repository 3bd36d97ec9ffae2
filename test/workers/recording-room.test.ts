// Takes through the room: who may start and stop one, who is told, who records which track,
// a reloaded page keeping its track, and the room's clock. The upload and download API
// itself is recordings.test.ts.
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES } from '../../protocol/recording';
import { call, createRoom, join, settle } from './helpers';

type Grant = { type: 'recording-track'; takeId: string; trackId: string; kind: 'voice' | 'program'; credential: string; startedAt: number };

function upload(grant: Grant, roomId: string, seq = 0, credential = grant.credential) {
  return call(`/rooms/${roomId}/recordings/${grant.takeId}/tracks/${grant.trackId}/chunks/seg0/${seq}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${credential}`, 'X-Chunk-Start': String(grant.startedAt + seq * 5000) },
    body: new Uint8Array(CHUNK_BYTES),
  });
}

const grantsIn = (frames: { type: string }[]) => frames.filter((f): f is Grant => f.type === 'recording-track');

describe('a take, through the room', () => {
  it('only staff start and stop a take; a caller is refused and nothing changes', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    expect(caller.welcome.recording).toEqual({ state: 'idle' });
    const hostMark = host.client.mark();
    caller.client.send({ type: 'start-recording' });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    await settle(caller.client, host.client);
    expect(host.client.since(hostMark)).toEqual([]);
    const listing = await call(`/rooms/${room.roomId}/recordings`, { headers: { Authorization: `Bearer ${room.tokens.host}` } });
    expect(((await listing.json()) as { takes: unknown[] }).takes).toEqual([]);

    host.client.send({ type: 'start-recording' });
    await caller.client.nextOf('recording-updated');
    caller.client.send({ type: 'stop-recording' });
    expect(await caller.client.nextOf('error')).toMatchObject({ code: 'forbidden' });
    await settle(caller.client);
    const { takes } = (await (
      await call(`/rooms/${room.roomId}/recordings`, { headers: { Authorization: `Bearer ${room.tokens.host}` } })
    ).json()) as {
      takes: { stoppedAt: number | null }[];
    };
    expect(takes).toHaveLength(1);
    expect(takes[0]!.stoppedAt).toBeNull();
  });

  it('everyone is told, waiting callers too; each voice on the show gets its own track, one staff page the program', async () => {
    const room = await createRoom({ lobby: true });
    const host = await join(room.roomId, room.tokens.host);
    host.client.send({ type: 'set-name', name: 'Hanna' });
    const producer = await join(room.roomId, room.tokens.producer);
    const onAir = await join(room.roomId, room.tokens.caller);
    host.client.send({ type: 'admit', peerId: onAir.peerId });
    await onAir.client.nextOf('admitted');
    const waiting = await join(room.roomId, room.tokens.caller);
    await settle(host.client, producer.client, onAir.client, waiting.client);
    const marks = [host, producer, onAir, waiting].map((p) => p.client.mark());

    host.client.send({ type: 'start-recording' });
    for (const p of [host, producer, onAir, waiting]) {
      expect((await p.client.nextOf('recording-updated')).recording).toMatchObject({ state: 'recording', title: 'Take 1', by: 'host' });
    }
    // The grants go out one by one (each track is made first): wait for each, then look at all.
    for (const p of [host, host, producer, onAir]) await p.client.nextOf('recording-track');
    await settle(host.client, producer.client, onAir.client, waiting.client);
    const [hostGrants, producerGrants, onAirGrants, waitingGrants] = [host, producer, onAir, waiting].map((p, i) =>
      grantsIn(p.client.since(marks[i]!)),
    ) as [Grant[], Grant[], Grant[], Grant[]];
    expect(hostGrants.map((g) => g.kind).sort()).toEqual(['program', 'voice']);
    expect(producerGrants.map((g) => g.kind)).toEqual(['voice']);
    expect(onAirGrants.map((g) => g.kind)).toEqual(['voice']);
    // A waiting caller is not on the show: it records nothing until admitted.
    expect(waitingGrants).toEqual([]);
    const trackIds = [...hostGrants, ...producerGrants, ...onAirGrants].map((g) => g.trackId);
    expect(new Set(trackIds).size).toBe(4);

    // Each credential writes its own track only.
    expect((await upload(onAirGrants[0]!, room.roomId)).status).toBe(201);
    expect((await upload(producerGrants[0]!, room.roomId, 0, onAirGrants[0]!.credential)).status).toBe(403);

    // Admitted during the take: its track begins.
    const waitingMark = waiting.client.mark();
    host.client.send({ type: 'admit', peerId: waiting.peerId });
    await waiting.client.nextOf('admitted');
    const admittedGrant = (await waiting.client.nextOf('recording-track')) as Grant;
    expect(admittedGrant.kind).toBe('voice');
    expect(grantsIn(waiting.client.since(waitingMark))).toHaveLength(1);

    const listing = (await (
      await call(`/rooms/${room.roomId}/recordings`, { headers: { Authorization: `Bearer ${room.tokens.producer}` } })
    ).json()) as {
      takes: { tracks: { kind: string; name: string; role: string }[] }[];
    };
    const tracks = listing.takes[0]!.tracks;
    expect(tracks).toHaveLength(5);
    expect(tracks.filter((t) => t.kind === 'program')).toHaveLength(1);
    expect(tracks.some((t) => t.kind === 'voice' && t.name === 'Hanna' && t.role === 'host')).toBe(true);

    host.client.send({ type: 'stop-recording' });
    for (const p of [host, producer, onAir, waiting])
      expect((await p.client.nextOf('recording-updated')).recording).toEqual({ state: 'idle' });
    // After the stop, the backlog still uploads (the grace).
    expect((await upload(onAirGrants[0]!, room.roomId, 1)).status).toBe(201);
    host.client.send({ type: 'start-recording' });
    expect((await onAir.client.nextOf('recording-updated')).recording).toMatchObject({ title: 'Take 2' });
    // A credential of take 1 writes nothing into take 2.
    const take2 = (await onAir.client.nextOf('recording-track')) as Grant;
    expect(take2.takeId).not.toBe(onAirGrants[0]!.takeId);
    expect((await upload({ ...take2, credential: onAirGrants[0]!.credential }, room.roomId)).status).toBe(403);
  });

  it('a reloaded page presents its credential and keeps its track; a caller cannot take the program', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    host.client.send({ type: 'start-recording' });
    const callerGrant = (await caller.client.nextOf('recording-track')) as Grant;
    await settle(host.client);
    const hostGrants = grantsIn(host.client.frames);
    const program = hostGrants.find((g) => g.kind === 'program')!;
    const hostVoice = hostGrants.find((g) => g.kind === 'voice')!;

    // The caller's page reloads: a fresh join that shows its credential.
    caller.client.close();
    const reloaded = await join(room.roomId, room.tokens.caller, [callerGrant.credential]);
    const regrant = (await reloaded.client.nextOf('recording-track')) as Grant;
    expect(regrant.trackId).toBe(callerGrant.trackId);

    // A caller that shows the program's credential records its own voice, not the program.
    const thief = await join(room.roomId, room.tokens.caller, [program.credential]);
    await settle(thief.client);
    const thiefGrants = grantsIn(thief.client.frames);
    expect(thiefGrants.map((g) => g.kind)).toEqual(['voice']);
    expect(thiefGrants[0]!.trackId).not.toBe(program.trackId);

    // The host's page reloads: it takes up both its voice and the program.
    host.client.close();
    const hostAgain = await join(room.roomId, room.tokens.host, [program.credential, hostVoice.credential]);
    await settle(hostAgain.client);
    const ids = grantsIn(hostAgain.client.frames)
      .map((g) => g.trackId)
      .sort();
    expect(ids).toEqual([program.trackId, hostVoice.trackId].sort());
  });

  it('answers clock frames with its own time', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const before = Date.now();
    host.client.send({ type: 'clock', sent: 1234.5 });
    const answer = await host.client.nextOf('clock');
    expect(answer.sent).toBe(1234.5);
    expect(answer.now).toBeGreaterThanOrEqual(before - 1);
    expect(answer.now).toBeLessThanOrEqual(Date.now() + 1);
    host.client.send({ type: 'clock', sent: 'soon' });
    expect(await host.client.nextOf('error')).toMatchObject({ code: 'invalid-message' });
  });
});

describe('what the room says is off the show is silence on the tape', () => {
  it('a voice muted during the take is silence in its WAV for that span, whatever its page uploaded', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    const caller = await join(room.roomId, room.tokens.caller);
    host.client.send({ type: 'start-recording' });
    const grant = (await caller.client.nextOf('recording-track')) as Grant;
    await new Promise((r) => setTimeout(r, 300));
    const mutedAt = Date.now();
    host.client.send({ type: 'mute', peerId: caller.peerId, muted: true });
    await caller.client.nextOf('participant-updated');
    await new Promise((r) => setTimeout(r, 400));
    const unmutedAt = Date.now();
    host.client.send({ type: 'mute', peerId: caller.peerId, muted: false });
    await caller.client.nextOf('participant-updated');
    await new Promise((r) => setTimeout(r, 300));
    // A page that ignores its mute: a full chunk of a loud constant from the take's start.
    const loud = new Int16Array(CHUNK_BYTES / 2).fill(1000);
    const put = await call(`/rooms/${room.roomId}/recordings/${grant.takeId}/tracks/${grant.trackId}/chunks/seg0/0`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${grant.credential}`, 'X-Chunk-Start': String(grant.startedAt), 'X-Chunk-Final': '1' },
      body: loud,
    });
    expect(put.status).toBe(201);
    host.client.send({ type: 'stop-recording' });
    await host.client.nextOf('recording-updated');
    await new Promise((r) => setTimeout(r, 100));
    const { takes } = (await (
      await call(`/rooms/${room.roomId}/recordings`, { headers: { Authorization: `Bearer ${room.tokens.host}` } })
    ).json()) as {
      takes: { links: { tracks: Record<string, { wav: string }> } }[];
    };
    const wav = new Uint8Array(await (await call(takes[0]!.links.tracks[grant.trackId]!.wav)).arrayBuffer());
    const sample = (ms: number) => new DataView(wav.buffer).getInt16(44 + Math.round((ms * 48_000) / 1000) * 2, true);
    const from = mutedAt - grant.startedAt;
    const to = unmutedAt - grant.startedAt;
    expect(sample(from - 100), 'before the mute').toBe(1000);
    for (let ms = from + 30; ms < to - 30; ms += 20) expect(sample(ms), `${ms} ms: muted`).toBe(0);
    expect(sample(to + 100), 'after the unmute').toBe(1000);
  });
});

describe('the tape outlives the show', () => {
  it('after End show, staff still list and download the takes; callers still cannot', async () => {
    const room = await createRoom();
    const host = await join(room.roomId, room.tokens.host);
    host.client.send({ type: 'start-recording' });
    const grant = (await host.client.nextOf('recording-track')) as Grant;
    expect((await upload(grant, room.roomId)).status).toBe(201);
    host.client.send({ type: 'close-room' });
    await host.client.nextOf('room-closed');
    const listing = await call(`/rooms/${room.roomId}/recordings`, { headers: { Authorization: `Bearer ${room.tokens.host}` } });
    expect(listing.status).toBe(200);
    const { takes } = (await listing.json()) as {
      takes: { stoppedAt: number | null; links: { tracks: Record<string, { wav: string }> } }[];
    };
    // Ending the show stopped the take.
    expect(takes[0]!.stoppedAt).not.toBeNull();
    const wav = await call(takes[0]!.links.tracks[grant.trackId]!.wav);
    expect(wav.status).toBe(200);
    expect((await wav.arrayBuffer()).byteLength).toBeGreaterThan(44);
    const asCaller = await call(`/rooms/${room.roomId}/recordings`, { headers: { Authorization: `Bearer ${room.tokens.caller}` } });
    expect(asCaller.status).toBe(403);
    // The room itself stays closed to everything else.
    const ice = await call(`/rooms/${room.roomId}/ice`, { headers: { Authorization: `Bearer ${room.tokens.host}` } });
    expect(ice.status).toBe(404);
  });
});
