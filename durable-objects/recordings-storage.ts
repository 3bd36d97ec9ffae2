/**
 * The recordings' rows in their Durable Object's SQLite storage: the room's takes, their
 * tracks, one row per chunk held in R2, and the room's byte total for the quota. The object
 * (recordings.ts) decides; this keeps. A chunk's row is written `pending` before its R2 put
 * and settled after, so a second upload of the same chunk never puts it again and the quota
 * counts what is on its way.
 */
import type { Role } from '../protocol/messages';
import type { TrackKind } from '../protocol/recording';
import type { ChunkRow } from './recordings-layout';

export interface TakeRow {
  takeId: string;
  roomId: string;
  title: string;
  startedAt: number;
  stoppedAt: number | null;
  by: Role;
  /** Deleted takes stay as a row, so a late upload is told `recording-closed`, not `forbidden`. */
  deleted: boolean;
}

export type TrackRow = {
  trackId: string;
  kind: TrackKind;
  name: string;
  role: Role;
};

export interface ChunkId {
  takeId: string;
  trackId: string;
  segment: string;
  seq: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS takes (
    take_id TEXT PRIMARY KEY, room_id TEXT NOT NULL, title TEXT NOT NULL, started_at REAL NOT NULL,
    stopped_at REAL, by_role TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS tracks (
    take_id TEXT NOT NULL, track_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
    PRIMARY KEY (take_id, track_id)
  );
  CREATE TABLE IF NOT EXISTS chunks (
    take_id TEXT NOT NULL, track_id TEXT NOT NULL, segment TEXT NOT NULL, seq INTEGER NOT NULL,
    start REAL NOT NULL, bytes INTEGER NOT NULL, final INTEGER NOT NULL, pending INTEGER NOT NULL,
    PRIMARY KEY (take_id, track_id, segment, seq)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS off_air (
    take_id TEXT NOT NULL, track_id TEXT NOT NULL, from_ms REAL NOT NULL, to_ms REAL,
    PRIMARY KEY (take_id, track_id, from_ms)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS usage (id INTEGER PRIMARY KEY CHECK (id = 1), bytes INTEGER NOT NULL);
  INSERT OR IGNORE INTO usage (id, bytes) VALUES (1, 0);
`;

type TakeRecord = {
  take_id: string;
  room_id: string;
  title: string;
  started_at: number;
  stopped_at: number | null;
  by_role: string;
  deleted: number;
};

function takeOf(r: TakeRecord): TakeRow {
  return {
    takeId: r.take_id,
    roomId: r.room_id,
    title: r.title,
    startedAt: r.started_at,
    stoppedAt: r.stopped_at,
    by: r.by_role as Role,
    deleted: r.deleted === 1,
  };
}

export class RecordingsStorage {
  constructor(private readonly sql: SqlStorage) {}

  /**
   * Create the tables. A pending row left by an earlier instance of the object is a put
   * nobody waits for any more: it goes (its upload was answered with an error and is retried).
   */
  load(): void {
    this.sql.exec(SCHEMA);
    const stale = this.sql.exec<{ bytes: number | null }>('SELECT SUM(bytes) AS bytes FROM chunks WHERE pending = 1').one().bytes ?? 0;
    if (stale > 0) {
      this.sql.exec('DELETE FROM chunks WHERE pending = 1');
      this.addBytes(-stale);
    }
  }

  take(takeId: string): TakeRow | null {
    const row = this.sql.exec<TakeRecord>('SELECT * FROM takes WHERE take_id = ?', takeId).toArray()[0];
    return row ? takeOf(row) : null;
  }

  /** Takes not deleted, newest first. */
  takes(): TakeRow[] {
    return this.sql.exec<TakeRecord>('SELECT * FROM takes WHERE deleted = 0 ORDER BY started_at DESC').toArray().map(takeOf);
  }

  /** A new take; nothing if it exists already. */
  addTake(take: Omit<TakeRow, 'stoppedAt' | 'deleted'>): void {
    this.sql.exec(
      'INSERT OR IGNORE INTO takes (take_id, room_id, title, started_at, by_role) VALUES (?, ?, ?, ?, ?)',
      take.takeId,
      take.roomId,
      take.title,
      take.startedAt,
      take.by,
    );
  }

  /**
   * The room's word on a voice: off the show (waiting, muted) from `atMs`, or back on it.
   * Spans are in ms from the take's start; an open one lasts to the take's end.
   */
  setOnShow(takeId: string, trackId: string, onShow: boolean, atMs: number): void {
    const open = this.sql
      .exec<{ from_ms: number }>('SELECT from_ms FROM off_air WHERE take_id = ? AND track_id = ? AND to_ms IS NULL', takeId, trackId)
      .toArray()[0];
    if (!onShow && !open) {
      this.sql.exec('INSERT OR IGNORE INTO off_air (take_id, track_id, from_ms) VALUES (?, ?, ?)', takeId, trackId, atMs);
    } else if (onShow && open) {
      this.sql.exec(
        'UPDATE off_air SET to_ms = ? WHERE take_id = ? AND track_id = ? AND from_ms = ?',
        Math.max(atMs, open.from_ms),
        takeId,
        trackId,
        open.from_ms,
      );
    }
  }

  /** The spans (ms from the take's start) a voice was off the show; `to` null: to the end. */
  offAir(takeId: string, trackId: string): { fromMs: number; toMs: number | null }[] {
    return this.sql
      .exec<{ from_ms: number; to_ms: number | null }>(
        'SELECT from_ms, to_ms FROM off_air WHERE take_id = ? AND track_id = ? ORDER BY from_ms',
        takeId,
        trackId,
      )
      .toArray()
      .map((r) => ({ fromMs: r.from_ms, toMs: r.to_ms }));
  }

  stopTake(takeId: string, stoppedAt: number): void {
    this.sql.exec('UPDATE takes SET stopped_at = ? WHERE take_id = ? AND stopped_at IS NULL', stoppedAt, takeId);
  }

  /** Stopped takes, not deleted, stopped before `before`. */
  stoppedBefore(before: number): TakeRow[] {
    return this.sql
      .exec<TakeRecord>('SELECT * FROM takes WHERE deleted = 0 AND stopped_at IS NOT NULL AND stopped_at < ?', before)
      .toArray()
      .map(takeOf);
  }

  /** The stop of the oldest stopped take that is not deleted, or null. */
  oldestStop(): number | null {
    return this.sql.exec<{ at: number | null }>('SELECT MIN(stopped_at) AS at FROM takes WHERE deleted = 0').one().at;
  }

  /** Mark a take deleted and drop its tracks and chunks from the rows and the quota. */
  deleteTake(takeId: string): void {
    const bytes = this.sql.exec<{ bytes: number | null }>('SELECT SUM(bytes) AS bytes FROM chunks WHERE take_id = ?', takeId).one().bytes;
    this.sql.exec('UPDATE takes SET deleted = 1 WHERE take_id = ?', takeId);
    this.sql.exec('DELETE FROM tracks WHERE take_id = ?', takeId);
    this.sql.exec('DELETE FROM chunks WHERE take_id = ?', takeId);
    this.addBytes(-(bytes ?? 0));
    this.sql.exec('DELETE FROM off_air WHERE take_id = ?', takeId);
  }

  /** Add a track, or rename it (a participant granted again after a rename). */
  putTrack(takeId: string, track: TrackRow): void {
    this.sql.exec(
      `INSERT INTO tracks (take_id, track_id, kind, name, role) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (take_id, track_id) DO UPDATE SET name = excluded.name`,
      takeId,
      track.trackId,
      track.kind,
      track.name,
      track.role,
    );
  }

  track(takeId: string, trackId: string): TrackRow | null {
    return (
      this.sql
        .exec<TrackRow>('SELECT track_id AS trackId, kind, name, role FROM tracks WHERE take_id = ? AND track_id = ?', takeId, trackId)
        .toArray()[0] ?? null
    );
  }

  /** A take's tracks, in the order they were granted. */
  tracks(takeId: string): TrackRow[] {
    return this.sql
      .exec<TrackRow>('SELECT track_id AS trackId, kind, name, role FROM tracks WHERE take_id = ? ORDER BY rowid', takeId)
      .toArray();
  }

  /** This chunk's row, if there is one (held, or on its way). */
  chunkRow(id: ChunkId): { bytes: number; final: boolean } | null {
    const row = this.sql
      .exec<{ bytes: number; final: number }>(
        'SELECT bytes, final FROM chunks WHERE take_id = ? AND track_id = ? AND segment = ? AND seq = ?',
        id.takeId,
        id.trackId,
        id.segment,
        id.seq,
      )
      .toArray()[0];
    return row ? { bytes: row.bytes, final: row.final === 1 } : null;
  }

  /** A held chunk replaced by a longer upload of it (already in R2). False when its row went meanwhile. */
  replaceChunk(id: ChunkId, chunk: { start: number; bytes: number; final: boolean }, oldBytes: number): boolean {
    const written = this.sql.exec(
      'UPDATE chunks SET start = ?, bytes = ?, final = ? WHERE take_id = ? AND track_id = ? AND segment = ? AND seq = ?',
      chunk.start,
      chunk.bytes,
      chunk.final ? 1 : 0,
      id.takeId,
      id.trackId,
      id.segment,
      id.seq,
    ).rowsWritten;
    if (written > 0) this.addBytes(chunk.bytes - oldBytes);
    return written > 0;
  }

  /** A chunk on its way to R2: its row (pending) and its bytes in the quota. */
  reserveChunk(id: ChunkId, chunk: { start: number; bytes: number; final: boolean }): void {
    this.sql.exec(
      'INSERT INTO chunks (take_id, track_id, segment, seq, start, bytes, final, pending) VALUES (?, ?, ?, ?, ?, ?, ?, 1)',
      id.takeId,
      id.trackId,
      id.segment,
      id.seq,
      chunk.start,
      chunk.bytes,
      chunk.final ? 1 : 0,
    );
    this.addBytes(chunk.bytes);
  }

  /** The chunk is in R2. False when its row went meanwhile (the take was deleted). */
  settleChunk(id: ChunkId): boolean {
    return (
      this.sql.exec(
        'UPDATE chunks SET pending = 0 WHERE take_id = ? AND track_id = ? AND segment = ? AND seq = ?',
        id.takeId,
        id.trackId,
        id.segment,
        id.seq,
      ).rowsWritten > 0
    );
  }

  /** The chunk's put failed: its row and its bytes go. */
  dropChunk(id: ChunkId): void {
    const row = this.sql
      .exec<{ bytes: number }>(
        'DELETE FROM chunks WHERE take_id = ? AND track_id = ? AND segment = ? AND seq = ? AND pending = 1 RETURNING bytes',
        id.takeId,
        id.trackId,
        id.segment,
        id.seq,
      )
      .toArray()[0];
    if (row) this.addBytes(-row.bytes);
  }

  /** The chunks of a take held in R2, per track id. */
  chunks(takeId: string): Map<string, ChunkRow[]> {
    const byTrack = new Map<string, ChunkRow[]>();
    for (const row of this.sql.exec<{ track_id: string; segment: string; seq: number; start: number; bytes: number; final: number }>(
      'SELECT track_id, segment, seq, start, bytes, final FROM chunks WHERE take_id = ? AND pending = 0',
      takeId,
    )) {
      const list = byTrack.get(row.track_id) ?? [];
      list.push({ segment: row.segment, seq: row.seq, start: row.start, bytes: row.bytes, final: row.final === 1 });
      byTrack.set(row.track_id, list);
    }
    return byTrack;
  }

  /** Bytes the room's recordings hold (or are about to). */
  bytes(): number {
    return this.sql.exec<{ bytes: number }>('SELECT bytes FROM usage WHERE id = 1').one().bytes;
  }

  private addBytes(delta: number): void {
    this.sql.exec('UPDATE usage SET bytes = MAX(0, bytes + ?) WHERE id = 1', delta);
  }
}
