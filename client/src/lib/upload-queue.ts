// Recorded chunks on their way to the server. Each chunk is written to IndexedDB (idb) the
// moment it is cut and deleted only once the server has acknowledged it: a page that reloads,
// crashes or goes offline loses nothing it had cut, and the next page of this origin uploads
// what is left (every stored chunk carries its own URL and credential). Uploads run in the
// background over plain HTTP, two at a time, oldest first, with backoff on failures.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { CHUNK_HEADERS } from '../../../protocol/recording';

export interface QueuedChunk {
  /** The upload URL (path on this origin), per docs/recording.md. */
  path: string;
  credential: string;
  /** Room-clock epoch ms of the first sample. */
  start: number;
  final: boolean;
  body: ArrayBuffer;
  /** For progress reports: which take and track it belongs to. */
  takeId: string;
  trackId: string;
}

interface Schema extends DBSchema {
  chunks: { key: number; value: QueuedChunk };
  /** The chunk each live recorder is filling, saved every second, keyed by its segment. */
  drafts: { key: string; value: { chunk: QueuedChunk; savedAt: number } };
}

const DB_NAME = 'openstudio-recordings';
/**
 * A live recorder holds a Web Lock named after its segment for as long as it records (the
 * browser releases it when its page goes away, however it goes): a draft whose lock nobody
 * holds belongs to a page that is gone, and becomes that segment's last chunk.
 */
export const segmentLock = (segment: string) => `openstudio-recording:${segment}`;
const DRAFT_CHECK_MS = 2_000;
const DRAFT_ABANDONED_MS = 5_000;
const PARALLEL = 2;
const MAX_BACKOFF_MS = 10_000;

export interface UploadProgress {
  /** Chunks kept in this browser that the server has not acknowledged yet. */
  pending: number;
  /** Chunks acknowledged by the server since this page loaded. */
  uploaded: number;
  /** Chunks the server refused for good (a closed take, the quota): dropped, with why. */
  refused: { path: string; status: number; message: string }[];
}

export class UploadQueue {
  private db: Promise<IDBPDatabase<Schema>>;
  private inFlight = new Set<number>();
  private backoffMs = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private listeners: ((progress: UploadProgress) => void)[] = [];
  readonly progress: UploadProgress = { pending: 0, uploaded: 0, refused: [] };

  constructor(private readonly fetcher: typeof fetch = (...args) => fetch(...args)) {
    this.db = openDB<Schema>(DB_NAME, 2, {
      upgrade(db) {
        if (!db.objectStoreNames.contains('chunks')) db.createObjectStore('chunks', { autoIncrement: true });
        if (!db.objectStoreNames.contains('drafts')) db.createObjectStore('drafts');
      },
    });
    addEventListener('online', () => this.retryNow());
    void this.pump();
    this.draftTimer = setInterval(() => void this.adoptAbandonedDrafts(), DRAFT_CHECK_MS);
    void this.adoptAbandonedDrafts();
  }

  private draftTimer: ReturnType<typeof setInterval>;

  /** Keep the chunk a recorder is filling (it replaces the last save of that segment). */
  async saveDraft(segment: string, chunk: QueuedChunk): Promise<void> {
    await (await this.db).put('drafts', { chunk, savedAt: Date.now() }, segment);
  }

  async dropDraft(segment: string): Promise<void> {
    await (await this.db).delete('drafts', segment);
  }

  /** A reloaded or closed page left its last chunk as a draft: upload it as its segment's end. */
  private async adoptAbandonedDrafts(): Promise<void> {
    const db = await this.db;
    if ((await db.count('drafts')) === 0) return;
    const held = new Set(((await navigator.locks.query()).held ?? []).map((lock) => lock.name));
    const tx = db.transaction(['drafts', 'chunks'], 'readwrite');
    const drafts = tx.objectStore('drafts');
    for (const segment of await drafts.getAllKeys()) {
      const draft = await drafts.get(segment);
      // Both: nobody holds its lock, and nobody saved it for a while (a live page saves every second).
      if (!draft || held.has(segmentLock(segment)) || Date.now() - draft.savedAt < DRAFT_ABANDONED_MS) continue;
      await tx.objectStore('chunks').add({ ...draft.chunk, final: true });
      await drafts.delete(segment);
    }
    await tx.done;
    void this.pump();
  }

  onProgress(listener: (progress: UploadProgress) => void): void {
    this.listeners.push(listener);
  }

  /** Keep a chunk (durably, before this resolves) and upload it soon. */
  async put(chunk: QueuedChunk): Promise<void> {
    const db = await this.db;
    await db.add('chunks', chunk);
    void this.pump();
  }

  /** Try now what waits for its backoff (the network came back). */
  retryNow(): void {
    this.backoffMs = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
    void this.pump();
  }

  /** Stop uploading (the page ends); what is left stays kept for the next page. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.draftTimer);
  }

  private report(pending: number): void {
    this.progress.pending = pending;
    for (const listener of this.listeners) listener(this.progress);
  }

  private async pump(): Promise<void> {
    if (this.stopped || this.timer !== undefined) return;
    const db = await this.db;
    const keys = await db.getAllKeys('chunks');
    this.report(keys.length);
    for (const key of keys) {
      if (this.inFlight.size >= PARALLEL) break;
      if (this.inFlight.has(key)) continue;
      const chunk = await db.get('chunks', key);
      if (!chunk) continue;
      this.inFlight.add(key);
      void this.upload(key, chunk).finally(() => {
        this.inFlight.delete(key);
        void this.pump();
      });
    }
  }

  private async upload(key: number, chunk: QueuedChunk): Promise<void> {
    let status = 0;
    let message = '';
    try {
      const response = await this.fetcher(chunk.path, {
        method: 'PUT',
        headers: {
          Authorization: `Bearer ${chunk.credential}`,
          'Content-Type': 'application/octet-stream',
          [CHUNK_HEADERS.start]: String(chunk.start),
          ...(chunk.final ? { [CHUNK_HEADERS.final]: '1' } : {}),
        },
        body: chunk.body,
      });
      status = response.status;
      if (!response.ok)
        message = ((await response.json().catch(() => null)) as { error?: { message?: string } } | null)?.error?.message ?? '';
    } catch {
      status = 0; // offline, or the server is away
    }
    const db = await this.db;
    if (status === 200 || status === 201) {
      await db.delete('chunks', key);
      this.progress.uploaded += 1;
      this.backoffMs = 0;
      return;
    }
    // The server is away or busy: keep it, and wait a little longer each time.
    if (status === 0 || status === 408 || status === 429 || status >= 500) {
      if (status === 507) return this.refuse(key, chunk, status, message);
      this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs ? this.backoffMs * 2 : 500);
      if (this.timer === undefined && !this.stopped) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          void this.pump();
        }, this.backoffMs);
      }
      return;
    }
    return this.refuse(key, chunk, status, message);
  }

  /** A refusal that a retry cannot change (docs/recording.md): dropped, and said. */
  private async refuse(key: number, chunk: QueuedChunk, status: number, message: string): Promise<void> {
    const db = await this.db;
    await db.delete('chunks', key);
    this.progress.refused.push({ path: chunk.path, status, message });
    console.warn(`recording: the server refused a chunk (${status}): ${message}`);
  }
}
