/**
 * The recordings' HTTP API (docs/recording.md): chunk uploads with a track's upload
 * credential, the listing and deletes for staff, and downloads with a take's download key.
 * The Recordings Durable Object keeps the rows; the audio goes to and comes from R2 here
 * and there, one object per chunk.
 */
import type { IRequest } from 'itty-router';
import type { Manifest, Recordings, WavPlan } from '../durable-objects/recordings';
import {
  BYTES_PER_SAMPLE,
  CHUNK_BYTES,
  CHUNK_HEADERS,
  MAX_SEQ,
  SAMPLE_RATE,
  SEGMENT_PATTERN,
  TAKE_ID_PATTERN,
  TRACK_ID_PATTERN,
  type TakeListing,
} from '../protocol/recording';
import { ROLE_TABLE } from '../protocol/roles';
import { requireSecret } from '../server/config';
import { signDownload, verifyDownload, verifyUpload, type DownloadGrant } from '../server/credentials';
import { enforceRateLimit } from './guards';
import { HttpError, json, readBody, refused } from './http';
import { authenticate, bearer, roomIdOf, roomStub } from './rooms';
import type { TokenClaims } from './tokens';

/** Silence is written in pieces of this many bytes: a long gap never becomes one big buffer. */
const SILENCE_PIECE_BYTES = 64 * 1024;
const WAV_HEADER_BYTES = 44;
/** The RIFF sizes are 32-bit: a longer file cannot be one WAV (about 12 h of one track). */
const MAX_WAV_DATA_BYTES = 0xffff_ffff - (WAV_HEADER_BYTES - 8);

export function recordingsStub(env: Env, roomId: string): DurableObjectStub<Recordings> {
  const namespace = env.RECORDINGS as DurableObjectNamespace<Recordings>;
  return namespace.get(namespace.idFromName(roomId));
}

function takeIdOf(request: IRequest): string {
  const takeId = request.params.takeId ?? '';
  if (!TAKE_ID_PATTERN.test(takeId)) throw new HttpError(404, 'not-found', 'no such take');
  return takeId;
}

/** A staff token of this room that may manage recordings. */
async function staff(request: IRequest, env: Env, roomId: string): Promise<TokenClaims> {
  // Also once the show has ended: the tape is what is left of it.
  const claims = await authenticate(request, env, roomId, { closedRoomToo: true });
  if (!ROLE_TABLE[claims.role].record) throw new HttpError(403, 'forbidden', `a ${claims.role} cannot see or manage recordings`);
  return claims;
}

// ---- uploads ---------------------------------------------------------------------------

/**
 * `PUT /rooms/:roomId/recordings/:takeId/tracks/:trackId/chunks/:segment/:seq`. Not rate
 * limited per client: each request needs a credential the room granted for one track, and
 * a page back from a network cut uploads its backlog in a burst that must get through.
 */
export async function putChunk(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  const { takeId = '', trackId = '', segment = '', seq: seqText = '' } = request.params;
  const credential = bearer(request);
  if (!credential) throw new HttpError(401, 'unauthorized', 'missing "Authorization: Bearer <upload credential>"');
  const grant = await verifyUpload(requireSecret(env, 'TOKEN_SECRET'), credential);
  if (!grant) throw new HttpError(401, 'unauthorized', 'upload credential is invalid or expired');
  if (grant.roomId !== roomId || grant.takeId !== takeId || grant.trackId !== trackId) {
    throw new HttpError(403, 'forbidden', 'this credential writes another track');
  }
  if (!SEGMENT_PATTERN.test(segment)) throw new HttpError(400, 'invalid-request', `segment: ${SEGMENT_PATTERN} expected`);
  const seq = /^(0|[1-9][0-9]{0,6})$/.test(seqText) ? Number(seqText) : NaN;
  if (!(seq <= MAX_SEQ)) throw new HttpError(400, 'invalid-request', `seq: an integer from 0 to ${MAX_SEQ} expected`);
  const startText = request.headers.get(CHUNK_HEADERS.start)?.trim() ?? '';
  const start = startText === '' ? NaN : Number(startText);
  if (!Number.isFinite(start))
    throw new HttpError(400, 'invalid-request', `${CHUNK_HEADERS.start}: the first sample's room time (epoch ms) expected`);
  const finalText = request.headers.get(CHUNK_HEADERS.final);
  if (finalText !== null && finalText !== '1') throw new HttpError(400, 'invalid-request', `${CHUNK_HEADERS.final}: "1" or absent`);

  const body = await readBody(request, CHUNK_BYTES);
  const result = await recordingsStub(env, roomId).storeChunk({
    roomId,
    takeId,
    trackId,
    segment,
    seq,
    start,
    final: finalText === '1',
    body: body.buffer,
  });
  if (!result.ok) throw refused(result);
  return json({ stored: result.stored }, result.stored ? 201 : 200);
}

// ---- staff ------------------------------------------------------------------------------

/** `GET /rooms/:roomId/recordings` (staff): the takes, newest first, with download links. */
export async function listRecordings(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  const claims = await staff(request, env, roomId);
  const secret = requireSecret(env, 'TOKEN_SECRET');
  const takes: TakeListing[] = [];
  for (const take of await recordingsStub(env, roomId).list()) {
    const grant: DownloadGrant = { roomId, takeId: take.takeId, role: claims.role, generation: claims.generation, lineage: claims.lineage };
    const key = `?key=${encodeURIComponent(await signDownload(secret, grant, claims.expiresAt))}`;
    const base = `/rooms/${roomId}/recordings/${take.takeId}`;
    const tracks: TakeListing['links']['tracks'] = {};
    for (const { trackId } of take.tracks) {
      tracks[trackId] = { wav: `${base}/tracks/${trackId}.wav${key}`, raw: `${base}/tracks/${trackId}.raw.wav${key}` };
    }
    takes.push({ ...take, links: { manifest: `${base}/manifest.json${key}`, tracks } });
  }
  return json({ takes });
}

/** `DELETE /rooms/:roomId/recordings/:takeId` (staff). */
export async function deleteRecording(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  const takeId = takeIdOf(request);
  await staff(request, env, roomId);
  const result = await recordingsStub(env, roomId).deleteTake(takeId);
  if (!result.ok) throw refused(result);
  return new Response(null, { status: 204 });
}

/** `GET /rooms/:roomId/recording` (any token of the room): whether a take runs now. */
export async function recordingState(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  await enforceRateLimit(env.JOIN_LIMITER, request, 'requests');
  await authenticate(request, env, roomId);
  return json({ recording: await roomStub(env, roomId).recordingInfo() });
}

// ---- downloads --------------------------------------------------------------------------

/**
 * The download key of this take, still as good as the staff token that asked for it: a
 * revoked or kicked token's keys are refused as the token is.
 */
async function downloader(request: IRequest, env: Env, roomId: string, takeId: string): Promise<void> {
  const key = typeof request.query.key === 'string' ? request.query.key : '';
  if (!key) throw new HttpError(401, 'unauthorized', 'missing "?key=<download key>"');
  const grant = await verifyDownload(requireSecret(env, 'TOKEN_SECRET'), key);
  if (!grant) throw new HttpError(401, 'unauthorized', 'download key is invalid or expired; list the recordings again for a new one');
  if (grant.roomId !== roomId || grant.takeId !== takeId) throw new HttpError(403, 'forbidden', 'this key opens another take');
  if (!ROLE_TABLE[grant.role].record) throw new HttpError(403, 'forbidden', `a ${grant.role} cannot download recordings`);
  const check = await roomStub(env, roomId).authorize(
    { role: grant.role, generation: grant.generation, lineage: grant.lineage },
    { closedRoomToo: true },
  );
  if (!check.ok) throw refused(check);
}

/** `GET /rooms/:roomId/recordings/:takeId/manifest.json?key=` */
export async function downloadManifest(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  const takeId = takeIdOf(request);
  await downloader(request, env, roomId, takeId);
  const manifest: Manifest | null = await recordingsStub(env, roomId).manifest(takeId);
  if (!manifest) throw new HttpError(404, 'not-found', 'no such take');
  return json(manifest);
}

/** `GET /rooms/:roomId/recordings/:takeId/tracks/:trackId.wav?key=` (aligned) and `….raw.wav` (as recorded). */
export async function downloadTrack(request: IRequest, env: Env): Promise<Response> {
  const roomId = roomIdOf(request);
  const takeId = takeIdOf(request);
  const file = /^([^./]+)(\.raw)?\.wav$/.exec(request.params.file ?? '');
  const trackId = file?.[1] ?? '';
  if (!TRACK_ID_PATTERN.test(trackId)) throw new HttpError(404, 'not-found', 'no such track');
  const raw = file?.[2] !== undefined;
  await downloader(request, env, roomId, takeId);
  const plan = await recordingsStub(env, roomId).wavPlan(takeId, trackId, !raw);
  if (!plan) throw new HttpError(404, 'not-found', 'no such track');
  const dataBytes = plan.totalSamples * BYTES_PER_SAMPLE;
  if (dataBytes > MAX_WAV_DATA_BYTES) throw new HttpError(413, 'too-large', 'this track is too long for one WAV file');

  const length = WAV_HEADER_BYTES + dataBytes;
  // The exact length is announced (and held to): players and download bars show progress.
  const { readable, writable } = new FixedLengthStream(length);
  void wavStream(env.RECORDINGS_BUCKET, plan)
    .pipeTo(writable)
    .catch((error) => console.error('WAV stream failed', error));
  const filename = `${slug(plan.title) || 'take'}-${slug(plan.name) || trackId}${raw ? '-raw' : ''}.wav`;
  return new Response(readable, {
    headers: {
      'Content-Type': 'audio/wav',
      'Content-Length': String(length),
      'Content-Disposition': `attachment; filename="${filename}"`,
    },
  });
}

/** ASCII letters, digits and dashes only: safe in a header and on any file system. */
function slug(text: string): string {
  return text
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48);
}

/**
 * The canonical 44-byte RIFF header of PCM, 1 channel, 48 kHz, 16 bit. Written by hand: it
 * is eleven fixed fields, and the body after it is the recorded PCM as is, so no audio
 * library (nor any decoding or parsing) is needed on the server.
 */
export function wavHeader(samples: number): Uint8Array {
  const header = new Uint8Array(WAV_HEADER_BYTES);
  const view = new DataView(header.buffer);
  const ascii = (at: number, text: string) => [...text].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  const dataBytes = samples * BYTES_PER_SAMPLE;
  ascii(0, 'RIFF');
  view.setUint32(4, WAV_HEADER_BYTES - 8 + dataBytes, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // channels
  view.setUint32(24, SAMPLE_RATE, true);
  view.setUint32(28, SAMPLE_RATE * BYTES_PER_SAMPLE, true); // bytes per second
  view.setUint16(32, BYTES_PER_SAMPLE, true); // bytes per frame
  view.setUint16(34, 8 * BYTES_PER_SAMPLE, true); // bits per sample
  ascii(36, 'data');
  view.setUint32(40, dataBytes, true);
  return header;
}

/**
 * The WAV, pulled one piece at a time: the header, then each chunk's samples read from R2
 * when the reader gets there, and silence (in bounded pieces) wherever no chunk is. A chunk
 * gone from R2 meanwhile (a delete) reads as silence, so the length stays as announced.
 */
function wavStream(bucket: R2Bucket, plan: WavPlan): ReadableStream<Uint8Array> {
  let header = true;
  let next = 0;
  /** Samples written after the header. */
  let written = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (header) {
          header = false;
          controller.enqueue(wavHeader(plan.totalSamples));
          return;
        }
        const piece = plan.pieces[next];
        const silenceUntil = piece ? piece.at : plan.totalSamples;
        if (written < silenceUntil) {
          const samples = Math.min(silenceUntil - written, SILENCE_PIECE_BYTES / BYTES_PER_SAMPLE);
          controller.enqueue(new Uint8Array(samples * BYTES_PER_SAMPLE));
          written += samples;
          return;
        }
        if (!piece) {
          controller.close();
          return;
        }
        next += 1;
        const range = { offset: piece.skip * BYTES_PER_SAMPLE, length: piece.samples * BYTES_PER_SAMPLE };
        const object = await bucket.get(piece.key, { range });
        if (!object) return;
        const bytes = new Uint8Array(await object.arrayBuffer()).subarray(0, range.length);
        const samples = Math.floor(bytes.byteLength / BYTES_PER_SAMPLE);
        controller.enqueue(bytes.subarray(0, samples * BYTES_PER_SAMPLE));
        written += samples;
      },
    },
    { highWaterMark: 0 },
  );
}
