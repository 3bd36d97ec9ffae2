// The program's broadcast processing as plain arithmetic (no Web Audio, no DOM): a leveler
// that rides the program towards a target loudness, a true-peak limiter with its ceiling at
// -1 dBTP, and a loudness meter after ITU-R BS.1770-4 / EBU R 128 (what `ffmpeg -af ebur128`
// says about the stream). program-processor.ts runs it in the audio thread; the unit tests run
// it in Node and judge its output with ffmpeg.

/** The targets the studio offers (LUFS); the first is the default. */
export const LOUDNESS_TARGETS = [-16, -18, -23, -14] as const;
export const DEFAULT_TARGET = -16;
/** The limiter's ceiling (dBTP): EBU R 128's maximum true peak for distribution. */
export const CEILING_DBTP = -1;

/** Blocks quieter than this are not counted in the integrated loudness (BS.1770's absolute gate). */
const ABSOLUTE_GATE_LUFS = -70;
/** ... nor blocks this far under the loudness of the counted ones (the relative gate). */
const RELATIVE_GATE_LU = -10;

const LN10_OVER_20 = Math.LN10 / 20;

export function energyToLufs(energy: number): number {
  return energy > 0 ? -0.691 + 10 * Math.log10(energy) : -Infinity;
}

export function lufsToEnergy(lufs: number): number {
  return 10 ** ((lufs + 0.691) / 10);
}

export interface Biquad {
  b0: number;
  b1: number;
  b2: number;
  a1: number;
  a2: number;
}

/**
 * BS.1770's K-weighting at any sample rate: the high shelf (+4 dB above ~1.7 kHz, the head)
 * then the RLB high-pass (~38 Hz), each from its analogue prototype by the bilinear
 * transform, with libebur128's and ffmpeg's constants. At 48 kHz these are the coefficients
 * BS.1770 tabulates.
 */
export function kWeighting(sampleRate: number): [shelf: Biquad, highPass: Biquad] {
  let f0 = 1681.974450955533;
  const gainDb = 3.999843853973347;
  let q = 0.7071752369554196;
  let k = Math.tan((Math.PI * f0) / sampleRate);
  const vh = 10 ** (gainDb / 20);
  const vb = vh ** 0.4996667741545416;
  let a0 = 1 + k / q + k * k;
  const shelf = {
    b0: (vh + (vb * k) / q + k * k) / a0,
    b1: (2 * (k * k - vh)) / a0,
    b2: (vh - (vb * k) / q + k * k) / a0,
    a1: (2 * (k * k - 1)) / a0,
    a2: (1 - k / q + k * k) / a0,
  };
  f0 = 38.13547087602444;
  q = 0.5003270373238773;
  k = Math.tan((Math.PI * f0) / sampleRate);
  a0 = 1 + k / q + k * k;
  // The numerator is left at (1, -2, 1), unnormalised, as BS.1770 and both libraries have it.
  const highPass = { b0: 1, b1: -2, b2: 1, a1: (2 * (k * k - 1)) / a0, a2: (1 - k / q + k * k) / a0 };
  return [shelf, highPass];
}

/** K-weighting of one channel: both biquads in transposed direct form II, in doubles. */
export class KFilter {
  private b0: number;
  private b1: number;
  private b2: number;
  private a1: number;
  private a2: number;
  private c0: number;
  private c1: number;
  private c2: number;
  private d1: number;
  private d2: number;
  private s1 = 0;
  private s2 = 0;
  private t1 = 0;
  private t2 = 0;

  constructor(sampleRate: number) {
    const [shelf, highPass] = kWeighting(sampleRate);
    ({ b0: this.b0, b1: this.b1, b2: this.b2, a1: this.a1, a2: this.a2 } = shelf);
    ({ b0: this.c0, b1: this.c1, b2: this.c2, a1: this.d1, a2: this.d2 } = highPass);
  }

  next(x: number): number {
    const y = this.b0 * x + this.s1;
    this.s1 = this.b1 * x - this.a1 * y + this.s2;
    this.s2 = this.b2 * x - this.a2 * y;
    const z = this.c0 * y + this.t1;
    this.t1 = this.c1 * y - this.d1 * z + this.t2;
    this.t2 = this.c2 * y - this.d2 * z;
    return z;
  }

  /** Filters `x[from..to)` and returns the sum of the squares of what comes out. */
  sumOfSquares(x: Float32Array, from: number, to: number): number {
    let sum = 0;
    for (let i = from; i < to; i++) {
      const z = this.next(x[i]!);
      sum += z * z;
    }
    return sum;
  }

  reset(): void {
    this.s1 = this.s2 = this.t1 = this.t2 = 0;
  }
}

/** Histogram of the integrated measurement's blocks: 0.01 LU bins from the absolute gate up. */
const BINS_PER_LU = 100;
const HISTOGRAM_BINS = 80 * BINS_PER_LU;

/**
 * Loudness after BS.1770-4 of 1 or 2 channels, each weighted 1.0: momentary (400 ms),
 * short-term (3 s), both updated every 100 ms, and integrated over 400 ms blocks every 100 ms
 * (75 % overlap), gated at -70 LUFS and at -10 LU under the ungated blocks. The blocks are
 * kept in a histogram (count and energy per 0.01 LU), so an hours-long show costs the same
 * memory as a minute and the integrated value is exact but for where the relative gate falls.
 * Values are LUFS, -Infinity for silence or before anything was measured.
 */
export class LoudnessMeter {
  momentary = -Infinity;
  shortTerm = -Infinity;
  private filters: KFilter[];
  private hop: number;
  private filled = 0;
  private sum = 0;
  /** Mean square (channels summed) of the last 30 hops of 100 ms, a ring. */
  private hops = new Float64Array(30);
  private hopIndex = 0;
  private hopCount = 0;
  private counts = new Float64Array(HISTOGRAM_BINS);
  private energies = new Float64Array(HISTOGRAM_BINS);
  private blocks = 0;
  private blockEnergy = 0;
  private cached: number | null = null;

  constructor(sampleRate: number, channels = 2) {
    this.filters = Array.from({ length: channels }, () => new KFilter(sampleRate));
    this.hop = Math.round(sampleRate / 10);
  }

  push(channels: readonly Float32Array[], frames: number): void {
    const count = Math.min(channels.length, this.filters.length);
    let i = 0;
    while (i < frames) {
      const end = Math.min(frames, i + this.hop - this.filled);
      for (let c = 0; c < count; c++) this.sum += this.filters[c]!.sumOfSquares(channels[c]!, i, end);
      this.filled += end - i;
      i = end;
      if (this.filled === this.hop) this.endHop();
    }
  }

  private endHop(): void {
    const hops = this.hops;
    hops[this.hopIndex] = this.sum / this.hop;
    this.hopIndex = (this.hopIndex + 1) % hops.length;
    this.hopCount++;
    this.sum = 0;
    this.filled = 0;
    // Hops not seen yet are zeros in the ring: a window counts as silence until it is full.
    let m = 0;
    let s = 0;
    for (let k = 1; k <= hops.length; k++) {
      const energy = hops[(this.hopIndex - k + hops.length) % hops.length]!;
      if (k <= 4) m += energy;
      s += energy;
    }
    this.momentary = energyToLufs(m / 4);
    this.shortTerm = energyToLufs(s / hops.length);
    if (this.hopCount >= 4 && this.momentary > ABSOLUTE_GATE_LUFS) {
      const bin = Math.min(HISTOGRAM_BINS - 1, Math.floor((this.momentary - ABSOLUTE_GATE_LUFS) * BINS_PER_LU));
      this.counts[bin]!++;
      this.energies[bin]! += m / 4;
      this.blocks++;
      this.blockEnergy += m / 4;
      this.cached = null;
    }
  }

  get integrated(): number {
    if (this.cached !== null) return this.cached;
    if (this.blocks === 0) return (this.cached = -Infinity);
    const gate = energyToLufs(this.blockEnergy / this.blocks) + RELATIVE_GATE_LU;
    let count = 0;
    let energy = 0;
    for (let bin = Math.max(0, Math.floor((gate - ABSOLUTE_GATE_LUFS) * BINS_PER_LU)); bin < HISTOGRAM_BINS; bin++) {
      count += this.counts[bin]!;
      energy += this.energies[bin]!;
    }
    return (this.cached = count > 0 ? energyToLufs(energy / count) : -Infinity);
  }

  /** Starts the integrated measurement again; momentary and short-term carry on. */
  resetIntegrated(): void {
    this.counts.fill(0);
    this.energies.fill(0);
    this.blocks = 0;
    this.blockEnergy = 0;
    this.cached = null;
  }

  /** Forgets everything, as if new. */
  reset(): void {
    this.resetIntegrated();
    for (const filter of this.filters) filter.reset();
    this.hops.fill(0);
    this.hopIndex = this.hopCount = this.filled = this.sum = 0;
    this.momentary = this.shortTerm = -Infinity;
  }
}

// The leveler. Its ear is the input's K-weighted loudness over the last 3 s, in 400 ms blocks
// every 100 ms: slow enough not to ride the syllables of speech. Callers take turns at very
// different levels and each turn must come out at the target, so two things move it faster:
// - a much louder voice (a 30 ms detector 10 LU over the estimate) is followed at once (the
//   leveler hears LEVELER_LOOKAHEAD_S ahead of the audio its gain applies to, so the limiter
//   need not catch the first words) until 400 ms of it make a block to start the window from;
//   if those 400 ms are silence, it was a knock, and the old window stays;
// - a much quieter one (blocks 20 LU under the estimate) is taken for a pause for 0.7 s, the
//   gain held; then for a new voice, the window starting again from its blocks.
// After either, the gain catches up with the new voice quickly. Blocks under -45 LUFS are
// silence or a pause: the gain holds, however long they last.
const LEVELER_ABSOLUTE_GATE_LUFS = -45;
const LEVELER_QUIET_LU = -20;
const LEVELER_QUIET_CONFIRM_HOPS = 7;
const LEVELER_WINDOW_BLOCKS = 27;
const LEVELER_ONSET_LU = 10;
const ONSET_RATIO = 10 ** (LEVELER_ONSET_LU / 10);
const QUIET_RATIO = 10 ** (LEVELER_QUIET_LU / 10);
const LEVELER_FAST_TAU_S = 0.03;
const LEVELER_LOOKAHEAD_S = 0.005;
const LEVELER_MIN_DB = -20;
const LEVELER_MAX_DB = 30;
/** Gain moves in dB towards what the estimate asks, down faster than up; rising is also capped. */
const LEVELER_DOWN_TAU_S = 0.4;
const LEVELER_UP_TAU_S = 1;
const LEVELER_UP_MAX_DB_PER_S = 6;
/** Up to a new voice's level: faster, so that its first words are not lost. */
const LEVELER_CATCH_UP_TAU_S = 0.1;
const LEVELER_CATCH_UP_MAX_DB_PER_S = 30;
/** Towards a much louder voice: a fast fade, not a step (a step would click). */
const LEVELER_ONSET_TAU_S = 0.002;

export class Leveler {
  /** The gain now (dB). */
  gainDb = 0;
  /** The gain the estimate asks for (dB). */
  private wantedDb = 0;
  private target: number | null = null;
  private left: KFilter;
  private right: KFilter;
  private hop: number;
  private filled = 0;
  private sum = 0;
  private hops = new Float64Array(4);
  private hopIndex = 0;
  private hopCount = 0;
  /** Energy of the blocks of the window (a ring) and their sum. */
  private window = new Float64Array(LEVELER_WINDOW_BLOCKS);
  private windowIndex = 0;
  private windowCount = 0;
  private windowSum = 0;
  /** Energy of the input as the leveler hears it (0: nothing heard yet). */
  private estimate = 0;
  private quiet = new Float64Array(LEVELER_QUIET_CONFIRM_HOPS);
  private quietCount = 0;
  /** Hops until a new, louder voice has a block of its own (0: not following one). */
  private onsetHops = 0;
  private fast = 0;
  private fastCoefficient: number;
  private down: number;
  private up: number;
  private upMax: number;
  private catchUp: number;
  private catchUpMax: number;
  /** Rising to a new voice's level (or back after a knock). */
  private catchingUp = false;
  private onset: number;
  private absoluteGate = lufsToEnergy(LEVELER_ABSOLUTE_GATE_LUFS);

  constructor(sampleRate: number) {
    this.left = new KFilter(sampleRate);
    this.right = new KFilter(sampleRate);
    this.hop = Math.round(sampleRate / 10);
    const coefficient = (seconds: number) => 1 - Math.exp(-1 / (seconds * sampleRate));
    this.fastCoefficient = coefficient(LEVELER_FAST_TAU_S);
    this.down = coefficient(LEVELER_DOWN_TAU_S);
    this.up = coefficient(LEVELER_UP_TAU_S);
    this.upMax = LEVELER_UP_MAX_DB_PER_S / sampleRate;
    this.catchUp = coefficient(LEVELER_CATCH_UP_TAU_S);
    this.catchUpMax = LEVELER_CATCH_UP_MAX_DB_PER_S / sampleRate;
    this.onset = coefficient(LEVELER_ONSET_TAU_S);
  }

  /** The target (LUFS), or null: the gain stays at unity while the leveler keeps listening. */
  setTarget(lufs: number | null): void {
    // Off, and on again from off: unity, then the ordinary pace towards the target.
    if (lufs === null || this.target === null) {
      this.gainDb = 0;
      this.catchingUp = false;
    }
    this.target = lufs;
    this.wantedDb = this.wanted(this.estimate);
  }

  /** Hears one input frame and returns the linear gain now, for the frame LEVELER_LOOKAHEAD_S back. */
  next(l: number, r: number): number {
    const kl = this.left.next(l);
    const kr = this.right.next(r);
    const power = kl * kl + kr * kr;
    this.sum += power;
    this.fast += (power - this.fast) * this.fastCoefficient;
    if (++this.filled === this.hop) this.endHop();
    if (this.onsetHops > 0) {
      this.wantedDb = this.wanted(this.fast);
    } else if (this.fast > Math.max(this.estimate, this.absoluteGate) * ONSET_RATIO) {
      // Five hops: the one under way still holds the quieter past; the next four are a clean block.
      this.onsetHops = 5;
      this.wantedDb = this.wanted(this.fast);
    }
    if (this.target === null) return 1;
    const d = this.wantedDb - this.gainDb;
    if (d < 0) this.gainDb += d * (this.onsetHops > 0 ? this.onset : this.down);
    else if (!this.catchingUp) this.gainDb += Math.min(d * this.up, this.upMax);
    else if (d > 0.1) this.gainDb += Math.min(d * this.catchUp, this.catchUpMax);
    else this.catchingUp = false;
    return Math.exp(this.gainDb * LN10_OVER_20);
  }

  private wanted(energy: number): number {
    if (this.target === null || energy <= 0) return this.wantedDb;
    return Math.min(LEVELER_MAX_DB, Math.max(LEVELER_MIN_DB, this.target - energyToLufs(energy)));
  }

  private endHop(): void {
    this.hops[this.hopIndex] = this.sum / this.hop;
    this.hopIndex = (this.hopIndex + 1) % 4;
    this.sum = 0;
    this.filled = 0;
    if (++this.hopCount < 4) return;
    const block = (this.hops[0]! + this.hops[1]! + this.hops[2]! + this.hops[3]!) / 4;
    if (this.onsetHops > 0) {
      this.catchingUp = false;
      // A block of the new voice; or silence, when it was only a knock: back to the old window.
      if (--this.onsetHops === 0) {
        if (block >= this.absoluteGate) this.restart([block]);
        else this.catchingUp = true;
      }
    } else if (block < this.absoluteGate) {
      return;
    } else if (this.estimate === 0) {
      this.restart([block]);
    } else if (block < this.estimate * QUIET_RATIO) {
      this.quiet[this.quietCount++] = block;
      if (this.quietCount === this.quiet.length) this.restart(this.quiet);
    } else {
      this.quietCount = 0;
      this.add(block);
    }
    if (this.onsetHops === 0) this.wantedDb = this.wanted(this.estimate);
  }

  private add(block: number): void {
    if (this.windowCount === this.window.length) this.windowSum -= this.window[this.windowIndex]!;
    else this.windowCount++;
    this.window[this.windowIndex] = block;
    this.windowIndex = (this.windowIndex + 1) % this.window.length;
    this.windowSum += block;
    this.estimate = Math.max(0, this.windowSum) / this.windowCount;
  }

  /** Starts the 3 s window again from these blocks (a new voice), and catches up with it. */
  private restart(blocks: ArrayLike<number>): void {
    this.catchingUp = true;
    this.windowCount = this.windowIndex = this.windowSum = this.quietCount = 0;
    for (let k = 0; k < blocks.length; k++) this.add(blocks[k]!);
  }
}

// The limiter's ear for inter-sample peaks: the signal at a quarter, a half and three quarters
// of the way between frames, by a 32-tap Kaiser-windowed sinc (beta 9) cut off at Nyquist: the
// interpolator ffmpeg's ebur128 uses (libswresample's defaults at 4x). BS.1770 Annex 2's own
// 48-tap filter reads other positions (an eighth off) and rolls off early, so on full-band
// material such as noise it reads peaks up to several dB under what ffmpeg says.
const TAPS = 32;
/** Interpolated positions lie between frames n - 16 and n - 15 (n: the newest). */
const INTERPOLATOR_DELAY = TAPS / 2 - 1;

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; term > 1e-12 * sum; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
  }
  return sum;
}

/** Three phases of TAPS each; phase p (1…3) tap j weighs frame n - j for the position n - 16 + p / 4. */
const INTERPOLATOR = (() => {
  const kernel = new Float64Array(3 * TAPS);
  for (let p = 1; p <= 3; p++) {
    let sum = 0;
    for (let j = 0; j < TAPS; j++) {
      const t = TAPS / 2 - j - p / 4; // distance from the position to frame n - j, in frames
      const w = (2 * t) / TAPS;
      const sinc = Math.sin(Math.PI * t) / (Math.PI * t);
      const value = sinc * besselI0(9 * Math.sqrt(Math.max(0, 1 - w * w)));
      kernel[(p - 1) * TAPS + j] = value;
      sum += value;
    }
    for (let j = 0; j < TAPS; j++) kernel[(p - 1) * TAPS + j]! /= sum;
  }
  return kernel;
})();
/** No interpolated value exceeds the frames' peak times this (the largest phase's sum of |taps|). */
const INTERPOLATOR_GAIN = Math.max(
  ...[0, 1, 2].map((p) => INTERPOLATOR.subarray(p * TAPS, (p + 1) * TAPS).reduce((sum, tap) => sum + Math.abs(tap), 0)),
);
/** The interpolator's span in groups of 8 frames, with the group being filled: their peaks bound it. */
const GROUP = 8;
const GROUPS = TAPS / GROUP + 1;

/**
 * Keeps 2 channels' true peak under a ceiling. Each frame's needed gain is the ceiling over the
 * highest of its samples and the 4× interpolated values around them (so inter-sample peaks
 * count); the gain is the minimum of that over the look-ahead, released exponentially, then
 * smoothed by two moving averages whose spans add up to the look-ahead: the gain reaches what a
 * peak needs, in an S-shaped fade, exactly when the peak comes out.
 */
export class TruePeakLimiter {
  /** Frames between a frame going in and coming out. */
  readonly delay: number;
  /** The last frame out. */
  l = 0;
  r = 0;
  private ceiling: number;
  private histL = new Float64Array(2 * TAPS);
  private histR = new Float64Array(2 * TAPS);
  private histIndex = 0;
  private groupPeaks = new Float64Array(GROUPS);
  private group = 0;
  private groupFill = 0;
  private delayL: Float64Array;
  private delayR: Float64Array;
  private delayIndex = 0;
  /** The minimum over the window as a deque of (frame, gain), oldest first. */
  private dequeFrame: Float64Array;
  private dequeGain: Float64Array;
  private head = 0;
  private tail = 0;
  private window: number;
  private frame = 0;
  private held = 1;
  private release: number;
  private box1: Float64Array;
  private box2: Float64Array;
  private sum1: number;
  private sum2: number;
  private index1 = 0;
  private index2 = 0;
  private gain = 1;

  /** `ceiling`: linear true-peak amplitude. */
  constructor(sampleRate: number, ceiling: number, lookAheadSeconds = 0.005, releaseSeconds = 0.1) {
    this.ceiling = ceiling;
    const lookAhead = Math.max(2, Math.round(lookAheadSeconds * sampleRate));
    this.window = lookAhead + 1;
    this.delay = lookAhead + INTERPOLATOR_DELAY;
    this.delayL = new Float64Array(this.delay);
    this.delayR = new Float64Array(this.delay);
    this.dequeFrame = new Float64Array(this.window + 1);
    this.dequeGain = new Float64Array(this.window + 1);
    this.release = 1 - Math.exp(-1 / (releaseSeconds * sampleRate));
    const first = Math.floor((lookAhead + 1) / 2);
    this.box1 = new Float64Array(first).fill(1);
    this.box2 = new Float64Array(lookAhead + 1 - first).fill(1);
    this.sum1 = this.box1.length;
    this.sum2 = this.box2.length;
  }

  /** The reduction now (dB, 0 or more). */
  get reductionDb(): number {
    return this.gain < 1 ? -20 * Math.log10(this.gain) : 0;
  }

  process(l: number, r: number): void {
    // The interpolator's history, written twice so that its taps read without wrapping.
    const h = this.histIndex;
    this.histL[h] = this.histL[h + TAPS] = l;
    this.histR[h] = this.histR[h + TAPS] = r;
    this.histIndex = (h + 1) % TAPS;
    // Most of the time nothing in the interpolator's span comes near the ceiling: skip it then.
    const a = Math.max(Math.abs(l), Math.abs(r));
    const peaks = this.groupPeaks;
    if (a > peaks[this.group]!) peaks[this.group] = a;
    if (++this.groupFill === GROUP) {
      this.groupFill = 0;
      this.group = (this.group + 1) % GROUPS;
      peaks[this.group] = 0;
    }
    let spanPeak = 0;
    for (let g = 0; g < GROUPS; g++) spanPeak = Math.max(spanPeak, peaks[g]!);
    let peak = 0;
    if (spanPeak * INTERPOLATOR_GAIN > this.ceiling) {
      // Newest frame at h + TAPS, older ones below it: tap j reads frame n - j.
      const base = h + TAPS;
      const histL = this.histL;
      const histR = this.histR;
      peak = Math.max(
        Math.abs(histL[base - INTERPOLATOR_DELAY]!),
        Math.abs(histL[base - INTERPOLATOR_DELAY - 1]!),
        Math.abs(histR[base - INTERPOLATOR_DELAY]!),
        Math.abs(histR[base - INTERPOLATOR_DELAY - 1]!),
      );
      for (let p = 0; p < 3 * TAPS; p += TAPS) {
        let sl = 0;
        let sr = 0;
        for (let j = 0; j < TAPS; j++) {
          sl += INTERPOLATOR[p + j]! * histL[base - j]!;
          sr += INTERPOLATOR[p + j]! * histR[base - j]!;
        }
        peak = Math.max(peak, Math.abs(sl), Math.abs(sr));
      }
    }
    // This frame's need holds for both frames around the stretch it measured.
    const need = peak > this.ceiling ? this.ceiling / peak : 1;
    const n = this.frame++;
    const size = this.dequeGain.length;
    while (this.tail !== this.head && this.dequeGain[(this.tail - 1 + size) % size]! >= need) this.tail = (this.tail - 1 + size) % size;
    this.dequeFrame[this.tail] = n;
    this.dequeGain[this.tail] = need;
    this.tail = (this.tail + 1) % size;
    while (this.dequeFrame[this.head]! <= n - this.window) this.head = (this.head + 1) % size;
    const minimum = this.dequeGain[this.head]!;
    this.held = Math.min(minimum, this.held + (1 - this.held) * this.release);
    this.sum1 += this.held - this.box1[this.index1]!;
    this.box1[this.index1] = this.held;
    this.index1 = (this.index1 + 1) % this.box1.length;
    const smoothed = this.sum1 / this.box1.length;
    this.sum2 += smoothed - this.box2[this.index2]!;
    this.box2[this.index2] = smoothed;
    this.index2 = (this.index2 + 1) % this.box2.length;
    this.gain = Math.min(1, this.sum2 / this.box2.length);
    // Out: the frame whose later neighbourhood the oldest needs in the window measured.
    const d = this.delayIndex;
    this.l = this.delayL[d]! * this.gain;
    this.r = this.delayR[d]! * this.gain;
    this.delayL[d] = l;
    this.delayR[d] = r;
    this.delayIndex = (d + 1) % this.delay;
  }
}

/**
 * The program's processing: leveler, then true-peak limiter, then the meter on what goes out.
 * Off (target null) puts out the input itself, sample for sample and without delay, while the
 * meter goes on measuring it; the chain behind keeps running at unity so that switching on
 * continues from its look-ahead without a gap, from unity gain. On, the output is
 * `latency` frames behind the input.
 */
export class ProgramProcessor {
  readonly meter: LoudnessMeter;
  /** Frames of delay when on: the leveler's look-ahead and the limiter's. */
  readonly latency: number;
  private leveler: Leveler;
  private limiter: TruePeakLimiter;
  private lookAheadL: Float64Array;
  private lookAheadR: Float64Array;
  private lookAheadIndex = 0;
  private targetLufs: number | null = DEFAULT_TARGET;

  constructor(sampleRate: number) {
    this.meter = new LoudnessMeter(sampleRate);
    this.leveler = new Leveler(sampleRate);
    this.leveler.setTarget(this.targetLufs);
    // A margin under the ceiling: other meters' interpolators (ffmpeg's resampler among them)
    // read inter-sample peaks a little differently.
    this.limiter = new TruePeakLimiter(sampleRate, 10 ** ((CEILING_DBTP - 0.2) / 20));
    const lookAhead = Math.max(1, Math.round(LEVELER_LOOKAHEAD_S * sampleRate));
    this.lookAheadL = new Float64Array(lookAhead);
    this.lookAheadR = new Float64Array(lookAhead);
    this.latency = lookAhead + this.limiter.delay;
  }

  get target(): number | null {
    return this.targetLufs;
  }

  /** Leveler gain now (dB; 0 when off). */
  get gainDb(): number {
    return this.leveler.gainDb;
  }

  /** Limiter gain reduction now (dB, 0 or more; 0 when off). */
  get reductionDb(): number {
    return this.targetLufs === null ? 0 : this.limiter.reductionDb;
  }

  /** Target loudness (LUFS), or null for off. */
  setTarget(lufs: number | null): void {
    this.targetLufs = lufs;
    this.leveler.setTarget(lufs);
  }

  /**
   * One block, of any length (output[0]'s). A missing second input channel is the first
   * again; no input at all is silence. Output channels beyond 2 are left as they are.
   */
  process(input: readonly Float32Array[], output: readonly Float32Array[]): void {
    const outL = output[0];
    if (!outL) return;
    const outR = output[1];
    const frames = outL.length;
    const inL = input[0];
    const inR = input[1] ?? inL;
    const on = this.targetLufs !== null;
    const { leveler, limiter, lookAheadL, lookAheadR } = this;
    const size = lookAheadL.length;
    let index = this.lookAheadIndex;
    for (let i = 0; i < frames; i++) {
      const l = inL?.[i] ?? 0;
      const r = inR?.[i] ?? 0;
      const gain = leveler.next(l, r);
      const dl = lookAheadL[index]!;
      const dr = lookAheadR[index]!;
      lookAheadL[index] = l;
      lookAheadR[index] = r;
      index = index + 1 === size ? 0 : index + 1;
      limiter.process(dl * gain, dr * gain);
      if (on) {
        outL[i] = limiter.l;
        if (outR) outR[i] = limiter.r;
      }
    }
    this.lookAheadIndex = index;
    if (!on) {
      copy(inL, outL);
      if (outR) copy(inR, outR);
    }
    this.meter.push(outR ? [outL, outR] : [outL], frames);
  }
}

function copy(from: Float32Array | undefined, to: Float32Array): void {
  if (!from) to.fill(0);
  else if (from.length === to.length) to.set(from);
  else for (let i = 0; i < to.length; i++) to[i] = from[i] ?? 0;
}
