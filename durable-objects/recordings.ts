/**
 * One Durable Object per room (named by the room id): its recordings. The room starts and
 * stops takes and grants tracks here (RPC); pages' chunk uploads land here through the
 * Worker, apart from the room's own object so they never queue behind signaling
 * (docs/recording.md). The audio is in R2, one object per chunk; this keeps the rows that
 * say where each chunk sits (recordings-storage.ts) and works out the tracks' states and the
 * WAV files' pieces from them (recordings-layout.ts). It answers with codes and messages;
 * the Worker maps them to HTTP.
 */
import { DurableObject } from 'cloudflare:workers';
import type { Refusal } from '../protocol/handoff';
import type { ErrorCode, Role } from '../protocol/messages';
import {
  CHUNK_BYTES,
  chunkKey,
  SAMPLE_RATE,
  takePrefix,
  UPLOAD_GRACE_SECONDS,
  type TakeSummary,
  type TrackKind,
  type TrackState,
  type MissingSpan,
  type TrackSummary,
} from '../protocol/recording';
import { readConfig } from '../server/config';
import { layoutTrack, msOf, samplesAt, spansInMs, wavPieces, withoutSpans, type TrackLayout } from './recordings-layout';
import { RecordingsStorage, type TakeRow, type TrackRow } from './recordings-storage';

export type StoreChunkResult = { ok: true; stored: boolean } | Refusal;

/** What the Worker needs to stream one track as WAV: silence wherever no piece is. */
export interface WavPlan {
  title: string;
  name: string;
  /** Samples in the file. */
  totalSamples: number;
  /** In order, not overlapping: `samples` samples of the R2 object `key`, from `skip` samples into it, at `at`. */
  pieces: { key: string; at: number; skip: number; samples: number }[];
}

export interface Manifest {
  take: { takeId: string; title: string; startedAt: number; stoppedAt: number | null; by: Role };
  sampleRate: number;
  tracks: {
    trackId: string;
    name: string;
    role: Role;
    kind: TrackKind;
    offsetMs: number;
    durationMs: number;
    missing: MissingSpan[];
    state: TrackState;
  }[];
}

const DAY_MS = 86_400_000;
/** R2 deletes at most this many keys per call. */
const DELETE_BATCH = 1000;

const refuse = (code: ErrorCode, message: string): Refusal => ({ ok: false, code, message });

export class Recordings extends DurableObject<Env> {
  private readonly storage: RecordingsStorage;
  /** RECORDING_MAX_BYTES_PER_ROOM; a field so a test can lower it for one room. */
  maxBytesPerRoom: number;
  private readonly retentionMs: number;
  /** R2 puts under way, by key: a second upload of the same chunk waits for the first. */
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const config = readConfig(env);
    this.maxBytesPerRoom = config.recordingMaxBytesPerRoom;
    this.retentionMs = config.recordingRetentionDays * DAY_MS;
    this.storage = new RecordingsStorage(ctx.storage.sql);
    this.storage.load();
  }

  // ---- RPC from the room ------------------------------------------------------------

  /** Open a take (nothing if it is open already). */
  async startTake(take: { roomId: string; takeId: string; title: string; startedAt: number; by: Role }): Promise<void> {
    this.storage.addTake(take);
  }

  /** End a take: uploads go on for UPLOAD_GRACE_SECONDS, and its retention starts. */
  /** A voice track's peer went off the show (waiting, muted) or came back, at `at` (room clock). */
  async setOnShow(takeId: string, trackId: string, onShow: boolean, at: number): Promise<void> {
    const take = this.storage.take(takeId);
    if (!take || take.deleted || !this.storage.track(takeId, trackId)) return;
    this.storage.setOnShow(takeId, trackId, onShow, Math.max(0, at - take.startedAt));
  }

  async stopTake(takeId: string, stoppedAt: number): Promise<void> {
    this.storage.stopTake(takeId, stoppedAt);
    await this.scheduleRetention();
  }

  /** Give a participant (or the program) a track of a take; granted again, it takes the new name. */
  async grantTrack(track: { takeId: string; trackId: string; kind: TrackKind; name: string; role: Role }): Promise<void> {
    const take = this.storage.take(track.takeId);
    if (!take || take.deleted) throw new Error(`no take ${track.takeId} to grant a track of`);
    this.storage.putTrack(track.takeId, { trackId: track.trackId, kind: track.kind, name: track.name, role: track.role });
  }

  // ---- RPC from the Worker ----------------------------------------------------------

  /** Keep one chunk (docs/recording.md, "What a chunk is"); a chunk kept already is not written again. */
  async storeChunk(chunk: {
    roomId: string;
    takeId: string;
    trackId: string;
    segment: string;
    seq: number;
    start: number;
    final: boolean;
    body: ArrayBuffer;
  }): Promise<StoreChunkResult> {
    const take = this.storage.take(chunk.takeId);
    if (!take || take.roomId !== chunk.roomId) return refuse('forbidden', 'no such take in this room');
    if (take.deleted) return refuse('recording-closed', 'this take was deleted');
    if (!this.storage.track(chunk.takeId, chunk.trackId)) return refuse('forbidden', 'no such track in this take');
    const bytes = chunk.body.byteLength;
    const lengthOk = chunk.final ? bytes >= 2 && bytes <= CHUNK_BYTES && bytes % 2 === 0 : bytes === CHUNK_BYTES;
    if (!lengthOk) {
      return refuse(
        'invalid-request',
        chunk.final
          ? `a final chunk holds whole samples, 2 to ${CHUNK_BYTES} bytes; got ${bytes}`
          : `a chunk holds exactly ${CHUNK_BYTES} bytes unless final; got ${bytes}`,
      );
    }
    const id = { takeId: chunk.takeId, trackId: chunk.trackId, segment: chunk.segment, seq: chunk.seq };
    const key = chunkKey(take.roomId, chunk.takeId, chunk.trackId, chunk.segment, chunk.seq);
    const held = this.storage.chunkRow(id);
    const running = this.inflight.get(key);
    if (running) {
      // The same chunk is on its way: its fate is this one's (stored, or gone and to be put again).
      await running.catch(() => {});
      return this.storeChunk(chunk);
    }
    // Held already: the same upload again changes nothing. But a short final piece of a
    // chunk (a page's draft, sent when the page seemed gone) gives way to a longer upload
    // of it: whatever a page recorded, the longest copy is kept.
    if (held && !(held.final && bytes > held.bytes)) return { ok: true, stored: false };
    if (this.phase(take, Date.now()) === 'closed') {
      return refuse('recording-closed', `this take stopped more than ${UPLOAD_GRACE_SECONDS} s ago`);
    }
    if (this.storage.bytes() + bytes - (held?.bytes ?? 0) > this.maxBytesPerRoom) {
      return refuse('quota-exceeded', `this room's recordings would exceed ${this.maxBytesPerRoom} bytes; delete old takes`);
    }
    if (held) return this.replaceChunk(id, key, chunk, held.bytes);

    // The row first, synchronously: an identical upload arriving during the put finds it.
    this.storage.reserveChunk(id, { start: chunk.start, bytes, final: chunk.final });
    const put = this.env.RECORDINGS_BUCKET.put(key, chunk.body);
    this.inflight.set(key, put);
    try {
      await put;
    } catch (error) {
      this.storage.dropChunk(id);
      throw error;
    } finally {
      this.inflight.delete(key);
    }
    if (!this.storage.settleChunk(id)) {
      // The take was deleted while the chunk was on its way: it must not outlive it.
      await this.env.RECORDINGS_BUCKET.delete(key);
      return refuse('recording-closed', 'this take was deleted');
    }
    return { ok: true, stored: true };
  }

  /** Put the longer copy over the held one, then its row (R2 replaces an object whole). */
  private async replaceChunk(
    id: { takeId: string; trackId: string; segment: string; seq: number },
    key: string,
    chunk: { start: number; final: boolean; body: ArrayBuffer },
    oldBytes: number,
  ): Promise<StoreChunkResult> {
    const put = this.env.RECORDINGS_BUCKET.put(key, chunk.body);
    this.inflight.set(key, put);
    try {
      await put;
    } finally {
      this.inflight.delete(key);
    }
    if (!this.storage.replaceChunk(id, { start: chunk.start, bytes: chunk.body.byteLength, final: chunk.final }, oldBytes)) {
      await this.env.RECORDINGS_BUCKET.delete(key);
      return refuse('recording-closed', 'this take was deleted');
    }
    return { ok: true, stored: true };
  }

  /** The room's takes, newest first, with their tracks' states. */
  async list(): Promise<TakeSummary[]> {
    const now = Date.now();
    return this.storage.takes().map((take) => this.summary(take, now));
  }

  /** The pieces of one track's WAV: aligned to the take's start and as long as the take, or as recorded. */
  async wavPlan(takeId: string, trackId: string, aligned: boolean): Promise<WavPlan | null> {
    const take = this.storage.take(takeId);
    const track = take && !take.deleted ? this.storage.track(takeId, trackId) : null;
    if (!take || !track) return null;
    const now = Date.now();
    const layout = this.layout(take, this.storage.chunks(takeId).get(trackId) ?? [], now);
    const base = aligned ? 0 : layout.first;
    const totalSamples = aligned ? Math.max(0, this.takeLength(take, now)) : layout.end - layout.first;
    // Off the show by the room's word (waiting, muted): silence, whatever the page sent.
    const offAir = this.storage.offAir(takeId, trackId).map(({ fromMs, toMs }) => ({
      from: samplesAt(fromMs) - base,
      to: toMs === null ? Number.POSITIVE_INFINITY : samplesAt(toMs) - base,
    }));
    const pieces = withoutSpans(wavPieces(layout.chunks, base, totalSamples), offAir).map(({ segment, seq, ...piece }) => ({
      key: chunkKey(take.roomId, takeId, trackId, segment, seq),
      ...piece,
    }));
    return { title: take.title, name: track.name, totalSamples, pieces };
  }

  /** manifest.json of a take: where every track sits and what it misses. */
  async manifest(takeId: string): Promise<Manifest | null> {
    const take = this.storage.take(takeId);
    if (!take || take.deleted) return null;
    const { title, startedAt, stoppedAt, by, tracks } = this.summary(take, Date.now());
    return {
      take: { takeId, title, startedAt, stoppedAt, by },
      sampleRate: SAMPLE_RATE,
      tracks: tracks.map(({ trackId, name, role, kind, offsetMs, durationMs, missing, state }) => ({
        trackId,
        name,
        role,
        kind,
        offsetMs,
        durationMs,
        missing,
        state,
      })),
    };
  }

  /** Delete a stopped take: its audio, its rows, its bytes in the quota. Deleting it again finishes an interrupted delete. */
  async deleteTake(takeId: string): Promise<{ ok: true } | Refusal> {
    const take = this.storage.take(takeId);
    if (!take) return { ok: true };
    if (take.stoppedAt === null) return refuse('recording-active', 'the running take cannot be deleted; stop it first');
    await this.purge(take);
    return { ok: true };
  }

  // ---- retention --------------------------------------------------------------------

  /** Delete what is past its retention, then wake for the next take that will be. */
  override async alarm(): Promise<void> {
    for (const take of this.storage.stoppedBefore(Date.now() - this.retentionMs)) await this.purge(take);
    await this.scheduleRetention();
  }

  /** One alarm, at the retention end of the oldest stopped take. */
  private async scheduleRetention(): Promise<void> {
    const oldest = this.storage.oldestStop();
    if (oldest !== null) await this.ctx.storage.setAlarm(oldest + this.retentionMs);
  }

  // ---- internals --------------------------------------------------------------------

  /** Rows first (so no upload lands in the take any more), then every object under its prefix. */
  private async purge(take: TakeRow): Promise<void> {
    this.storage.deleteTake(take.takeId);
    const bucket = this.env.RECORDINGS_BUCKET;
    for (;;) {
      const listed = await bucket.list({ prefix: takePrefix(take.roomId, take.takeId), limit: DELETE_BATCH });
      if (listed.objects.length > 0) await bucket.delete(listed.objects.map((o) => o.key));
      if (!listed.truncated) return;
    }
  }

  private phase(take: TakeRow, now: number): 'running' | 'grace' | 'closed' {
    if (take.stoppedAt === null) return 'running';
    return now <= take.stoppedAt + UPLOAD_GRACE_SECONDS * 1000 ? 'grace' : 'closed';
  }

  /** Samples from the take's start to its stop (to now while it runs). */
  private takeLength(take: TakeRow, now: number): number {
    return samplesAt((take.stoppedAt ?? now) - take.startedAt);
  }

  private layout(take: TakeRow, rows: Parameters<typeof layoutTrack>[0], now: number): TrackLayout {
    return layoutTrack(rows, take.startedAt, this.takeLength(take, now), this.phase(take, now));
  }

  private summary(take: TakeRow, now: number): TakeSummary {
    const chunks = this.storage.chunks(take.takeId);
    const tracks = this.storage
      .tracks(take.takeId)
      .map((track) => this.trackSummary(track, this.layout(take, chunks.get(track.trackId) ?? [], now)));
    const { takeId, title, startedAt, stoppedAt, by } = take;
    return { takeId, title, startedAt, stoppedAt, by, tracks };
  }

  private trackSummary(track: TrackRow, layout: TrackLayout): TrackSummary {
    return {
      ...track,
      state: layout.state,
      progress: layout.progress,
      offsetMs: msOf(layout.first),
      durationMs: msOf(layout.end - layout.first),
      bytes: layout.bytes,
      missing: spansInMs(layout.missing),
    };
  }
}
