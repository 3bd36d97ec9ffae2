/**
 * Recording, defined once: what a take and a track are on the wire, how a chunk is cut and
 * named, and the shapes the HTTP API answers with. The room, the recordings' Durable
 * Object, the Worker and the page all import from here (docs/recording.md).
 */
import type { Role } from './messages';

/** Tracks are PCM, signed 16-bit little-endian, mono, at this rate. */
export const SAMPLE_RATE = 48_000;
export const BYTES_PER_SAMPLE = 2;
/** Every chunk but a segment's last holds exactly this many samples (5 s). */
export const CHUNK_SAMPLES = 240_000;
export const CHUNK_BYTES = CHUNK_SAMPLES * BYTES_PER_SAMPLE;
/** Uploads of a stopped take are accepted this long after its stop (the pages' backlog). */
export const UPLOAD_GRACE_SECONDS = 600;

export const TAKE_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
export const TRACK_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
export const SEGMENT_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
/** Sequence numbers of a segment: 0, 1, 2 …; this bounds a segment to ~58 days. */
export const MAX_SEQ = 1_000_000;

/** Chunk headers of the upload request. */
export const CHUNK_HEADERS = { start: 'X-Chunk-Start', final: 'X-Chunk-Final' } as const;

/** The room's word on recording, to every page (waiting callers too: they are told before they join). */
export type RecordingInfo =
  | { state: 'idle' }
  | {
      state: 'recording';
      takeId: string;
      /** `Take N`, numbered per room. */
      title: string;
      /** Room-clock epoch ms of the take's start: every track is aligned to it. */
      startedAt: number;
      by: Role;
    };

export type TrackKind = 'voice' | 'program';

/** What one page records for the running take: its own voice, or the program. */
export interface TrackGrant {
  takeId: string;
  trackId: string;
  kind: TrackKind;
  startedAt: number;
  /** Upload credential: writes this track of this take only (docs/recording.md). */
  credential: string;
}

export type TrackState = 'recording' | 'uploading' | 'complete' | 'incomplete';

/** A span of a track with nothing in it that should have been (ms from the take's start). */
export interface MissingSpan {
  fromMs: number;
  toMs: number;
}

export interface TrackSummary {
  trackId: string;
  kind: TrackKind;
  /** The participant's display name when the track was last granted; `Program` for the program. */
  name: string;
  role: Role;
  state: TrackState;
  /** Chunks held over chunks expected, 0–1. */
  progress: number;
  /** Where the track's first sample sits, from the take's start (ms). */
  offsetMs: number;
  /** From its first sample to its last (ms). */
  durationMs: number;
  bytes: number;
  missing: MissingSpan[];
}

export interface TakeSummary {
  takeId: string;
  title: string;
  startedAt: number;
  /** Null while the take runs. */
  stoppedAt: number | null;
  by: Role;
  tracks: TrackSummary[];
}

/** A take as `GET /rooms/:roomId/recordings` lists it: the summary and its download links. */
export interface TakeListing extends TakeSummary {
  links: {
    manifest: string;
    /** Per track id: the aligned WAV and the WAV as recorded. */
    tracks: Record<string, { wav: string; raw: string }>;
  };
}

/** R2 key of one chunk. */
export function chunkKey(roomId: string, takeId: string, trackId: string, segment: string, seq: number): string {
  return `rooms/${roomId}/takes/${takeId}/${trackId}/${segment}/${seq}`;
}

/** R2 prefix of everything of one take. */
export function takePrefix(roomId: string, takeId: string): string {
  return `rooms/${roomId}/takes/${takeId}/`;
}
