// One track of a take, recorded in this page: a voice (the microphone as the studio hears
// it) or the program (the mix's bus). The audio thread captures every sample (pcm-capture.js);
// here they become 16-bit PCM chunks of exactly CHUNK_SAMPLES, each placed on the room's
// clock, kept in IndexedDB and uploaded (upload-queue.ts). While its voice is not on the
// show (waiting, muted, in a private talk) the track records silence, to the sample.
import { CHUNK_SAMPLES, SAMPLE_RATE, type TrackGrant } from '../../../protocol/recording';
import { segmentLock, type QueuedChunk, type UploadQueue } from './upload-queue';

export const WORKLET_URL = '/pcm-capture.js';

export interface TrackRecorderOptions {
  roomId: string;
  grant: TrackGrant;
  /** A context running at SAMPLE_RATE, with the capture worklet loaded (`loadCapture`). */
  context: AudioContext;
  /** What is recorded: connected into the capture node. */
  source: AudioNode;
  /** This page's best estimate of the room's clock minus its own (ms); read when a chunk is cut. */
  clockOffset: () => number;
  queue: UploadQueue;
}

/**
 * Where a context's samples sit on this page's clock: performance time minus context time
 * (ms), as getOutputTimestamp reports it. One reading jitters by tens of ms under load, so
 * the median of the first readings is kept, one per context: every track of a page is put
 * on the clock the same way, and lines up with the others to the sample.
 */
const CLOCK_READINGS = 15;
const contextClocks = new WeakMap<BaseAudioContext, { readings: number[]; fixed: number | null }>();

function readContextClock(context: AudioContext): void {
  let clock = contextClocks.get(context);
  if (!clock) contextClocks.set(context, (clock = { readings: [], fixed: null }));
  if (clock.fixed !== null) return;
  const stamp = context.getOutputTimestamp();
  if (stamp.contextTime === undefined || stamp.performanceTime === undefined || stamp.contextTime <= 0) return;
  clock.readings.push(stamp.performanceTime - stamp.contextTime * 1000);
  if (clock.readings.length >= CLOCK_READINGS) clock.fixed = median(clock.readings);
}

function contextToPerformance(context: AudioContext): number {
  const clock = contextClocks.get(context);
  if (clock?.fixed != null) return clock.fixed;
  if (clock?.readings.length) return median(clock.readings);
  return performance.now() - context.currentTime * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Load the capture worklet into `context` (once per context). */
const loaded = new WeakMap<BaseAudioContext, Promise<void>>();
export function loadCapture(context: BaseAudioContext): Promise<void> {
  let loading = loaded.get(context);
  if (!loading) {
    loading = context.audioWorklet.addModule(WORKLET_URL);
    loaded.set(context, loading);
  }
  return loading;
}

function randomSegment(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return btoa(String.fromCharCode(...bytes))
    .replaceAll('+', '-')
    .replaceAll('/', '_');
}

export class TrackRecorder {
  readonly grant: TrackGrant;
  /** This capture's segment of the track (a reload starts another). */
  readonly segment = randomSegment();
  private readonly node: AudioWorkletNode;
  private readonly sink: GainNode;
  private source: AudioNode;
  private chunk = new Int16Array(CHUNK_SAMPLES);
  private filled = 0;
  private seq = 0;
  /** The context frame of this segment's first sample; put on the room's clock when a chunk is cut. */
  private segmentStart: number | null = null;
  private stopping: Promise<void> | null = null;
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly options: TrackRecorderOptions) {
    this.grant = options.grant;
    const { context } = options;
    this.node = new AudioWorkletNode(context, 'pcm-capture', {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 1,
      channelCountMode: 'explicit',
    });
    // A node the graph does not pull from does not run: a silent path to the speakers keeps it going.
    this.sink = new GainNode(context, { gain: 0 });
    this.node.connect(this.sink).connect(context.destination);
    this.source = options.source;
    this.source.connect(this.node);
    this.node.port.onmessage = ({
      data,
    }: MessageEvent<{ type: 'samples'; frame: number; samples: Float32Array } | { type: 'stopped' }>) => {
      if (data.type === 'samples') this.take(data.frame, data.samples);
    };
    // Held while this segment records: its draft is this page's, no other page's to upload.
    void navigator.locks.request(segmentLock(this.segment), () => new Promise<void>((release) => (this.releaseLock = release)));
  }

  private releaseLock: () => void = () => {};

  /** Let the voice in (on the show) or record silence (not on the show). */
  setGate(open: boolean): void {
    this.node.port.postMessage({ type: 'gate', open });
  }

  /** Record another source from now on (another microphone), in the same segment. */
  setSource(source: AudioNode): void {
    if (source === this.source) return;
    try {
      this.source.disconnect(this.node);
    } catch {
      // already disconnected (its channel was released)
    }
    this.source = source;
    this.source.connect(this.node);
  }

  /** The room's clock (epoch ms) at the sample at `frame` of the context. */
  private roomTimeOf(frame: number): number {
    const { context } = this.options;
    return performance.timeOrigin + contextToPerformance(context) + (frame / SAMPLE_RATE) * 1000 + this.options.clockOffset();
  }

  private take(frame: number, samples: Float32Array): void {
    if (this.stopping && this.segmentStart === null) return;
    readContextClock(this.options.context);
    this.segmentStart ??= frame;
    const before = this.filled;
    // Frames the audio thread skipped (it fell behind under load) are silence in their place:
    // the track's sample count stays the context's frame count, so its samples stay in time.
    const skipped = Math.max(0, frame - (this.segmentStart + this.seq * CHUNK_SAMPLES + this.filled));
    for (let i = 0; i < skipped; i++) {
      this.chunk[this.filled++] = 0;
      if (this.filled === CHUNK_SAMPLES) this.cut(false);
    }
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]!));
      this.chunk[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === CHUNK_SAMPLES) this.cut(false);
    }
    // Every second, what the chunk holds so far is kept too: a reload loses at most that.
    if (this.filled > 0 && Math.floor(this.filled / SAMPLE_RATE) !== Math.floor(before / SAMPLE_RATE)) this.saveDraft();
  }

  private chunkOf(samples: number, final: boolean): QueuedChunk {
    const { roomId, grant } = this.options;
    return {
      path: `/rooms/${encodeURIComponent(roomId)}/recordings/${grant.takeId}/tracks/${grant.trackId}/chunks/${this.segment}/${this.seq}`,
      credential: grant.credential,
      start: this.roomTimeOf(this.segmentStart! + this.seq * CHUNK_SAMPLES),
      final,
      body: this.chunk.slice(0, samples).buffer,
      takeId: grant.takeId,
      trackId: grant.trackId,
    };
  }

  private saveDraft(): void {
    const draft = this.chunkOf(this.filled, true);
    const { queue } = this.options;
    this.writes = this.writes.then(() => queue.saveDraft(this.segment, draft)).catch(() => {});
  }

  /** Hand the chunk so far to the queue (kept in IndexedDB before the next is cut). */
  private cut(final: boolean): void {
    if (this.segmentStart === null) return;
    // A final chunk is never empty: one sample of silence ends a segment cut at a boundary.
    const chunk = this.chunkOf(final ? Math.max(1, this.filled) : CHUNK_SAMPLES, final);
    this.seq += 1;
    const { queue } = this.options;
    this.writes = this.writes
      .then(() => queue.put(chunk))
      .then(() => queue.dropDraft(this.segment))
      .catch((error) => console.error('recording: a chunk could not be kept', error));
    this.chunk = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
  }

  /**
   * The page is going away (a reload, a closed tab): what the chunk holds stays kept as a
   * draft, which the next page of this origin uploads as this segment's last chunk.
   */
  abandon(): void {
    if (this.stopping) return;
    this.stopping = Promise.resolve();
    if (this.segmentStart !== null && this.filled > 0) this.saveDraft();
  }

  /** End the segment: what the audio thread still holds, then the final chunk. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      const done = () => {
        this.cut(true);
        try {
          this.source.disconnect(this.node);
        } catch {
          // already disconnected
        }
        this.node.disconnect();
        void this.writes.then(() => {
          this.releaseLock();
          resolve();
        });
      };
      const timer = setTimeout(done, 1_000); // a suspended context never answers
      this.node.port.onmessage = ({ data }) => {
        if (data.type === 'samples') this.take(data.frame, data.samples);
        if (data.type === 'stopped') {
          clearTimeout(timer);
          done();
        }
      };
      this.node.port.postMessage({ type: 'stop' });
    });
    return this.stopping;
  }
}
