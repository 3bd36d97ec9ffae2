/**
 * Where a track's chunks sit on the take's timeline, what is missing, and the state that
 * follows (docs/recording.md, "State of a track"). Pure: the rows in, samples out.
 *
 * A segment is one page's capture: its chunks are back to back, so only the first one held
 * needs its start time; every other chunk sits `seq` chunks after it. Positions are samples
 * from the take's start.
 */
import { BYTES_PER_SAMPLE, CHUNK_SAMPLES, SAMPLE_RATE, type MissingSpan, type TrackState } from '../protocol/recording';

export interface ChunkRow {
  segment: string;
  seq: number;
  /** Room-clock epoch ms of the chunk's first sample, as the page said. */
  start: number;
  bytes: number;
  final: boolean;
}

export interface PlacedChunk {
  segment: string;
  seq: number;
  /** Samples from the take's start (may be negative when the page's clock ran a little early). */
  at: number;
  samples: number;
}

export interface TrackLayout {
  /** Held chunks, in timeline order. */
  chunks: PlacedChunk[];
  /** First and past-the-last held sample; both 0 when nothing is held. */
  first: number;
  end: number;
  bytes: number;
  state: TrackState;
  progress: number;
  /** In samples from the take's start, in order. */
  missing: { from: number; to: number }[];
}

/** Segments closer than this are one take with a reload in between, not a hole. */
const SEGMENT_GAP_SAMPLES = (50 * SAMPLE_RATE) / 1000;

export const samplesAt = (ms: number): number => Math.round((ms * SAMPLE_RATE) / 1000);
export const msOf = (samples: number): number => Math.round((samples * 1000) / SAMPLE_RATE);

export function spansInMs(missing: TrackLayout['missing']): MissingSpan[] {
  return missing.map(({ from, to }) => ({ fromMs: msOf(from), toMs: msOf(to) }));
}

interface Segment {
  /** Where its seq 0 sits, and the end of its last held chunk. */
  from: number;
  to: number;
  final: boolean;
}

/**
 * @param startedAt the take's start (epoch ms)
 * @param takeEnd the take's length in samples (to its stop, or to now while it runs)
 * @param phase running, stopped within the upload grace, or stopped and past it
 */
export function layoutTrack(
  rows: readonly ChunkRow[],
  startedAt: number,
  takeEnd: number,
  phase: 'running' | 'grace' | 'closed',
): TrackLayout {
  const bySegment = new Map<string, ChunkRow[]>();
  for (const row of rows) {
    const list = bySegment.get(row.segment) ?? [];
    list.push(row);
    bySegment.set(row.segment, list);
  }

  const chunks: PlacedChunk[] = [];
  const segments: Segment[] = [];
  const missing: TrackLayout['missing'] = [];
  let outstanding = 0;
  let bytes = 0;
  for (const [segment, list] of bySegment) {
    list.sort((a, b) => a.seq - b.seq);
    const lowest = list[0]!;
    const origin = samplesAt(lowest.start - startedAt) - lowest.seq * CHUNK_SAMPLES;
    let next = 0;
    let to = origin;
    for (const row of list) {
      const at = origin + row.seq * CHUNK_SAMPLES;
      if (row.seq > next) {
        // A hole in the run: these chunks were never uploaded (or not yet).
        missing.push({ from: origin + next * CHUNK_SAMPLES, to: at });
        outstanding += row.seq - next;
      }
      next = row.seq + 1;
      const samples = row.bytes / BYTES_PER_SAMPLE;
      chunks.push({ segment, seq: row.seq, at, samples });
      to = at + samples;
      bytes += row.bytes;
    }
    segments.push({ from: origin, to, final: list.at(-1)!.final });
  }

  segments.sort((a, b) => a.from - b.from);
  // Between captures (a reload, a page that came back): what none of them covers.
  let covered = segments[0]?.to ?? 0;
  for (const segment of segments.slice(1)) {
    if (segment.from - covered > SEGMENT_GAP_SAMPLES) missing.push({ from: covered, to: segment.from });
    covered = Math.max(covered, segment.to);
  }
  // The last capture still owes its final chunk (a page still flushing, or one that died);
  // a track with nothing at all owes everything.
  const last = segments.at(-1);
  if (!last?.final) {
    outstanding += 1;
    // Past the grace it will not come: from the last chunk held to the take's stop is missing.
    const from = last ? last.to : 0;
    if (phase === 'closed' && takeEnd > from) missing.push({ from, to: takeEnd });
  }

  chunks.sort((a, b) => a.at - b.at);
  missing.sort((a, b) => a.from - b.from);
  const first = chunks[0]?.at ?? 0;
  const end = chunks.reduce((max, c) => Math.max(max, c.at + c.samples), first);

  const held = chunks.length;
  let state: TrackState;
  if (phase === 'running') state = 'recording';
  else if (outstanding > 0) state = phase === 'grace' ? 'uploading' : 'incomplete';
  else state = missing.length > 0 ? 'incomplete' : 'complete';
  const progress = state === 'complete' || held + outstanding === 0 ? 1 : held / (held + outstanding);
  return { chunks, first, end, bytes, state, progress, missing };
}

/** One piece of a WAV: `samples` samples of one chunk, from `skip` into it, written at `at` (samples into the file). */
export interface WavPiece {
  segment: string;
  seq: number;
  at: number;
  skip: number;
  samples: number;
}

/**
 * The pieces of a WAV covering samples [base, base + total) of the timeline, in order and
 * never overlapping (where two captures overlap, the earlier one wins); what no piece covers
 * is silence.
 */
export function wavPieces(chunks: readonly PlacedChunk[], base: number, total: number): WavPiece[] {
  const pieces: WavPiece[] = [];
  let cursor = base;
  for (const chunk of chunks) {
    const from = Math.max(chunk.at, cursor);
    const to = Math.min(chunk.at + chunk.samples, base + total);
    if (to <= from) continue;
    pieces.push({ segment: chunk.segment, seq: chunk.seq, at: from - base, skip: from - chunk.at, samples: to - from });
    cursor = to;
  }
  return pieces;
}

/**
 * The pieces without the spans (samples into the file, `to` exclusive) where the voice was
 * off the show by the room's word: they become silence, whatever the page sent.
 */
export function withoutSpans<T extends { at: number; skip: number; samples: number }>(
  pieces: readonly T[],
  spans: readonly { from: number; to: number }[],
): T[] {
  let result = [...pieces];
  for (const span of spans) {
    const next: T[] = [];
    for (const piece of result) {
      const end = piece.at + piece.samples;
      if (span.to <= piece.at || span.from >= end) {
        next.push(piece);
        continue;
      }
      if (span.from > piece.at) next.push({ ...piece, samples: span.from - piece.at });
      if (span.to < end) next.push({ ...piece, at: span.to, skip: piece.skip + (span.to - piece.at), samples: end - span.to });
    }
    result = next;
  }
  return result;
}
