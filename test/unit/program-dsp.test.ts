/// <reference types="node" />
// The program's loudness processor (client/src/worklets/program-dsp.ts and its AudioWorklet),
// judged by ffmpeg's ebur128 on float WAVs written at test time: the meter says what ffmpeg
// says; two callers 22 dB apart, taking turns, come out at each target with the true peak
// under -1 dBTP, as do sudden full-scale bursts and clicks; off is the input itself, bit for bit;
// silence does not pump the gain.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CEILING_DBTP,
  type Biquad,
  kWeighting,
  LOUDNESS_TARGETS,
  LoudnessMeter,
  ProgramProcessor,
} from '../../client/src/worklets/program-dsp';

const FFMPEG = '/usr/bin/ffmpeg';
const RATE = 48_000;
const QUANTUM = 128;

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'program-dsp-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A seeded generator in [-1, 1): the same noise every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  };
}

const amplitude = (dbfs: number) => 10 ** (dbfs / 20);

function tone(seconds: number, peakDbfs: number, frequency = 1000): Float32Array {
  const samples = new Float32Array(Math.round(seconds * RATE));
  const a = amplitude(peakDbfs);
  for (let i = 0; i < samples.length; i++) samples[i] = a * Math.sin((2 * Math.PI * frequency * i) / RATE);
  return samples;
}

/** Two callers, sine peaks at -30 and -8 dBFS (1 kHz), 5 s each in turn, the quiet one first. */
function alternating(seconds = 60): Float32Array {
  const samples = new Float32Array(seconds * RATE);
  for (let i = 0; i < samples.length; i++) {
    const a = amplitude(Math.floor(i / (5 * RATE)) % 2 === 0 ? -30 : -8);
    samples[i] = a * Math.sin((2 * Math.PI * 1000 * i) / RATE);
  }
  return samples;
}

/** Pink-ish noise (Paul Kellet's economy filter), about -20 dBFS RMS. */
function pinkish(seconds: number, seed: number): Float32Array {
  const white = random(seed);
  const samples = new Float32Array(seconds * RATE);
  let b0 = 0;
  let b1 = 0;
  let b2 = 0;
  for (let i = 0; i < samples.length; i++) {
    const w = white();
    b0 = 0.99765 * b0 + w * 0.099046;
    b1 = 0.963 * b1 + w * 0.2965164;
    b2 = 0.57 * b2 + w * 1.0526913;
    samples[i] = 0.05 * (b0 + b1 + b2 + w * 0.1848);
  }
  return samples;
}

function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Runs `left`/`right` through `processor` in blocks of `block` frames (as the audio thread would). */
function run(processor: ProgramProcessor, left: Float32Array, right = left, block = QUANTUM): [Float32Array, Float32Array] {
  const outL = new Float32Array(left.length);
  const outR = new Float32Array(left.length);
  for (let i = 0; i < left.length; i += block) {
    const end = Math.min(left.length, i + block);
    processor.process([left.subarray(i, end), right.subarray(i, end)], [outL.subarray(i, end), outR.subarray(i, end)]);
  }
  return [outL, outR];
}

/** A stereo 32-bit float WAV in the temp dir; its path. */
function wav(name: string, left: Float32Array, right = left): string {
  const frames = left.length;
  const bytes = new Uint8Array(44 + frames * 8);
  const view = new DataView(bytes.buffer);
  const text = (offset: number, value: string) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  view.setUint32(4, 36 + frames * 8, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 3, true); // IEEE float
  view.setUint16(22, 2, true);
  view.setUint32(24, RATE, true);
  view.setUint32(28, RATE * 8, true);
  view.setUint16(32, 8, true);
  view.setUint16(34, 32, true);
  text(36, 'data');
  view.setUint32(40, frames * 8, true);
  const samples = new Float32Array(bytes.buffer, 44, frames * 2);
  for (let i = 0; i < frames; i++) {
    samples[2 * i] = left[i]!;
    samples[2 * i + 1] = right[i]!;
  }
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/**
 * ffmpeg's ebur128 on a file: the integrated loudness (LUFS) and true peak (dBTP) of its
 * summary, which prints one decimal, and the same to 3 decimals from its per-100 ms metadata
 * (the last integrated; the highest true peak, which it gives as an amplitude).
 */
function ebur128(path: string): { integrated: number; truePeak: number; summary: { integrated: number; truePeak: number } } {
  const filter = 'ebur128=peak=true:metadata=1,ametadata=mode=print:file=-';
  const result = spawnSync(FFMPEG, ['-nostats', '-hide_banner', '-i', path, '-af', filter, '-f', 'null', '-'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (result.status !== 0) throw new Error(`ffmpeg failed: ${result.stderr}`);
  const text = result.stderr.slice(result.stderr.lastIndexOf('Summary:'));
  const value = (pattern: RegExp) => {
    const found = pattern.exec(text)?.[1];
    if (found === undefined) throw new Error(`no ${pattern} in ffmpeg's summary:\n${text}`);
    return found === '-inf' ? -Infinity : Number(found);
  };
  const summary = { integrated: value(/I:\s+(-inf|-?[\d.]+) LUFS/), truePeak: value(/Peak:\s+(-inf|-?[\d.]+) dBFS/) };
  const integrated = [...result.stdout.matchAll(/lavfi\.r128\.I=(\S+)/g)].map((m) => Number(m[1]));
  const peaks = [...result.stdout.matchAll(/lavfi\.r128\.true_peak=(\S+)/g)].map((m) => Number(m[1]));
  if (integrated.length === 0 || peaks.length === 0) throw new Error(`no metadata from ffmpeg:\n${result.stdout.slice(0, 500)}`);
  return { integrated: integrated.at(-1)!, truePeak: 20 * Math.log10(Math.max(...peaks)), summary };
}

/** ffmpeg's true peak at most the ceiling, in its summary and to 3 decimals. */
function expectUnderCeiling(measured: ReturnType<typeof ebur128>, label: string): void {
  expect(measured.summary.truePeak, label).toBeLessThanOrEqual(CEILING_DBTP);
  expect(measured.truePeak, label).toBeLessThanOrEqual(CEILING_DBTP);
}

/** The meter fed in blocks of an awkward size (not a divisor of the 100 ms hop). */
function measure(left: Float32Array, right = left): LoudnessMeter {
  const meter = new LoudnessMeter(RATE);
  for (let i = 0; i < left.length; i += 1000)
    meter.push([left.subarray(i, i + 1000), right.subarray(i, i + 1000)], Math.min(1000, left.length - i));
  return meter;
}

/** |H(f)| in dB of the two biquads in series. */
function responseDb([shelf, highPass]: [Biquad, Biquad], frequency: number, sampleRate: number): number {
  const w = (2 * Math.PI * frequency) / sampleRate;
  const magnitude = ({ b0, b1, b2, a1, a2 }: Biquad) => {
    const re = (c0: number, c1: number, c2: number) => c0 + c1 * Math.cos(w) + c2 * Math.cos(2 * w);
    const im = (c1: number, c2: number) => -c1 * Math.sin(w) - c2 * Math.sin(2 * w);
    return Math.hypot(re(b0, b1, b2), im(b1, b2)) / Math.hypot(re(1, a1, a2), im(a1, a2));
  };
  return 20 * Math.log10(magnitude(shelf) * magnitude(highPass));
}

describe('K-weighting', () => {
  it('is BS.1770-4 table 1 and 2 at 48 kHz', () => {
    const [shelf, highPass] = kWeighting(48_000);
    const published = [1.53512485958697, -2.69169618940638, 1.19839281085285, -1.69065929318241, 0.73248077421585];
    [shelf.b0, shelf.b1, shelf.b2, shelf.a1, shelf.a2].forEach((c, i) => expect(c).toBeCloseTo(published[i]!, 12));
    expect([highPass.b0, highPass.b1, highPass.b2]).toEqual([1, -2, 1]);
    expect(highPass.a1).toBeCloseTo(-1.99004745483398, 12);
    expect(highPass.a2).toBeCloseTo(0.99007225036621, 12);
  });

  it('weighs the same at 44.1 and 96 kHz as at 48 kHz', () => {
    for (const rate of [44_100, 96_000]) {
      for (const frequency of [20, 40, 100, 1000, 2000, 5000, 10_000]) {
        expect(responseDb(kWeighting(rate), frequency, rate)).toBeCloseTo(responseDb(kWeighting(48_000), frequency, 48_000), 1);
      }
    }
  });
});

describe('LoudnessMeter', () => {
  it('reads a steady 1 kHz sine at -20 dBFS in both channels as -20 LUFS, as ffmpeg does', () => {
    const signal = tone(10, -20);
    const meter = measure(signal);
    expect(meter.momentary).toBeCloseTo(-20, 1);
    expect(meter.shortTerm).toBeCloseTo(-20, 1);
    expect(meter.integrated).toBeCloseTo(-20, 1);
    const { integrated } = ebur128(wav('sine.wav', signal));
    console.log(`sine: meter ${meter.integrated.toFixed(3)}, ffmpeg ${integrated}`);
    expect(Math.abs(meter.integrated - integrated)).toBeLessThanOrEqual(0.2);
    // One channel only: 3 dB less (channels weigh 1.0 each).
    expect(measure(signal, new Float32Array(signal.length)).momentary).toBeCloseTo(-23.01, 1);
  });

  it('agrees with ffmpeg on pink-ish noise (different in each channel)', () => {
    const left = pinkish(20, 1);
    const right = pinkish(20, 2);
    const meter = measure(left, right);
    const { integrated } = ebur128(wav('pink.wav', left, right));
    console.log(`pink: meter ${meter.integrated.toFixed(3)}, ffmpeg ${integrated}`);
    expect(Math.abs(meter.integrated - integrated), `meter ${meter.integrated}, ffmpeg ${integrated}`).toBeLessThanOrEqual(0.2);
  });

  it('agrees with ffmpeg on two callers at -30 and -8 dBFS in turn (both gates at work)', () => {
    const signal = alternating(30);
    const meter = measure(signal);
    const { integrated } = ebur128(wav('alternating.wav', signal));
    console.log(`alternating: meter ${meter.integrated.toFixed(3)}, ffmpeg ${integrated}`);
    expect(Math.abs(meter.integrated - integrated), `meter ${meter.integrated}, ffmpeg ${integrated}`).toBeLessThanOrEqual(0.2);
    // The quiet caller is under the relative gate: the integrated is about the loud one's.
    expect(meter.integrated).toBeGreaterThan(-11);
  });

  it('says -Infinity for silence, and starts the integrated again on resetIntegrated', () => {
    const meter = measure(new Float32Array(RATE * 2));
    expect([meter.momentary, meter.shortTerm, meter.integrated]).toEqual([-Infinity, -Infinity, -Infinity]);
    meter.push([tone(4, -20), tone(4, -20)], 4 * RATE);
    expect(meter.integrated).toBeCloseTo(-20, 0);
    meter.push([new Float32Array(RATE), new Float32Array(RATE)], RATE);
    meter.resetIntegrated();
    expect(meter.integrated).toBe(-Infinity);
    meter.push([tone(4, -30), tone(4, -30)], 4 * RATE);
    expect(meter.integrated).toBeCloseTo(-30, 0);
  });
});

describe('ProgramProcessor', () => {
  for (const target of LOUDNESS_TARGETS) {
    it(`brings two callers at -30 and -8 dBFS in turn to ${target} LUFS, true peak under ${CEILING_DBTP} dBTP`, () => {
      const processor = new ProgramProcessor(RATE);
      processor.setTarget(target);
      const [left, right] = run(processor, alternating());
      const measured = ebur128(wav(`leveled${target}.wav`, left, right));
      const { integrated, truePeak } = measured;
      const meter = processor.meter.integrated;
      console.log(`target ${target}: ffmpeg I ${integrated} LUFS, true peak ${truePeak.toFixed(2)} dBTP; meter ${meter.toFixed(3)}`);
      expect(Math.abs(measured.summary.integrated - target)).toBeLessThanOrEqual(0.5);
      expect(Math.abs(integrated - target)).toBeLessThanOrEqual(0.5);
      expectUnderCeiling(measured, `target ${target}`);
      // The leveler's look-ahead turns the louder caller down before the limiter has to.
      expect(truePeak).toBeLessThan(CEILING_DBTP - 1);
      expect(Math.abs(meter - integrated)).toBeLessThanOrEqual(0.2);
    });
  }

  it('keeps sudden full-scale bursts after speech-level tone under -1 dBTP, at every target', () => {
    const noise = random(3);
    const quiet = tone(3, -26, 440);
    const left = concat(quiet, tone(1, 0, 1000), quiet, new Float32Array(RATE).map(noise), quiet, tone(1, 0, 15_000), quiet);
    const right = concat(quiet, tone(1, 0, 1000), quiet, new Float32Array(RATE).map(noise), quiet, tone(1, 0, 15_000), quiet);
    for (const target of LOUDNESS_TARGETS) {
      const processor = new ProgramProcessor(RATE);
      processor.setTarget(target);
      const [outL, outR] = run(processor, left, right);
      const measured = ebur128(wav(`bursts${target}.wav`, outL, outR));
      console.log(`bursts at ${target}: true peak ${measured.truePeak.toFixed(2)} dBTP`);
      expectUnderCeiling(measured, `target ${target}`);
    }
  });

  it('keeps clicks and a pulse train (peaks far over their loudness: the limiter alone) under -1 dBTP', () => {
    // Each click two full-scale samples in a row: their true peak is 2 dB over their samples.
    const signal = concat(tone(3, -26, 440), new Float32Array(2 * RATE), tone(3, -26, 440));
    for (let i = RATE / 4; i < signal.length; i += RATE / 2) signal[i] = signal[i + 1] = 1;
    for (let i = 3 * RATE; i < 5 * RATE; i += RATE / 100) signal[i] = signal[i + 1] = 1;
    for (const target of LOUDNESS_TARGETS) {
      const processor = new ProgramProcessor(RATE);
      processor.setTarget(target);
      const [outL, outR] = run(processor, signal);
      const measured = ebur128(wav(`clicks${target}.wav`, outL, outR));
      console.log(`clicks at ${target}: true peak ${measured.truePeak.toFixed(2)} dBTP`);
      expectUnderCeiling(measured, `target ${target}`);
    }
  });

  it('is off bit for bit: the input itself, also right after switching from on, while the meter goes on', () => {
    const noise = random(4);
    const left = new Float32Array(3 * RATE).map(() => 0.9 * noise());
    const right = new Float32Array(3 * RATE).map(() => 0.9 * noise());
    const processor = new ProgramProcessor(RATE);
    const on = run(processor, left.subarray(0, RATE), right.subarray(0, RATE));
    expect(on[0]).not.toEqual(left.subarray(0, RATE));
    processor.setTarget(null);
    // Blocks of an odd size too.
    const [outL, outR] = run(processor, left.subarray(RATE), right.subarray(RATE), 77);
    expect(outL).toEqual(left.subarray(RATE));
    expect(outR).toEqual(right.subarray(RATE));
    expect(processor.gainDb).toBe(0);
    expect(processor.reductionDb).toBe(0);
    expect(processor.meter.momentary).toBeGreaterThan(-10);
    // Mono in: both outputs are the one channel.
    const mono = new Float32Array(QUANTUM).map(() => noise());
    const out = [new Float32Array(QUANTUM), new Float32Array(QUANTUM)];
    processor.process([mono], out);
    expect(out).toEqual([mono, mono]);
  });

  it('switching on starts from unity gain: the input comes out `latency` frames late, unchanged at first', () => {
    const signal = tone(2, -20, 300);
    const processor = new ProgramProcessor(RATE);
    processor.setTarget(null);
    run(processor, signal.subarray(0, RATE));
    processor.setTarget(-16);
    expect(processor.gainDb).toBe(0);
    const [out] = run(processor, signal.subarray(RATE));
    for (let i = 0; i < 480; i++) {
      const input = signal[RATE + i - processor.latency]!;
      expect(Math.abs(out[i]! - input)).toBeLessThanOrEqual(0.01 * Math.abs(input) + 1e-7);
    }
  });

  for (const [name, pause] of [
    ['silence', () => new Float32Array(10 * RATE)],
    ['a noise floor at -60 dBFS', () => new Float32Array(10 * RATE).map(random(5)).map((x) => x * amplitude(-60))],
  ] as const) {
    it(`does not pump the gain up in 10 s of ${name} after 10 s of tone`, () => {
      const processor = new ProgramProcessor(RATE);
      run(processor, tone(10, -20));
      const before = processor.gainDb;
      expect(before).toBeCloseTo(4, 0); // -20 LUFS in, -16 LUFS out
      run(processor, pause());
      expect(processor.gainDb - before).toBeLessThanOrEqual(1);
    });
  }

  it('processes a minute of stereo many times faster than real time (printed)', () => {
    const signal = alternating();
    const noise = random(6);
    const loud = new Float32Array(60 * RATE).map(() => noise());
    for (const [name, target, left, right] of [
      ['two callers in turn, -16 LUFS', -16, signal, signal],
      // Off, the chain runs all the same: at full scale, every frame is interpolated and limited.
      ['full-scale noise, off (the worst case)', null, loud, loud.slice().reverse()],
    ] as const) {
      const processor = new ProgramProcessor(RATE);
      processor.setTarget(target);
      const started = process.cpuUsage();
      run(processor, left, right);
      const used = process.cpuUsage(started);
      const speed = 60 / ((used.user + used.system) / 1e6);
      console.log(`program processor, ${name}: ${speed.toFixed(0)} s of 48 kHz stereo per CPU second`);
      expect(speed).toBeGreaterThan(1);
    }
  });
});

describe('the program-processor AudioWorklet', () => {
  type Port = { postMessage: (message: unknown) => void; onmessage: ((event: { data: unknown }) => void) | null };
  type Node = { port: Port; process: (inputs: Float32Array[][], outputs: Float32Array[][]) => boolean };
  const messages: Record<string, unknown>[] = [];
  let Processor: (new () => Node) | undefined;

  beforeAll(async () => {
    // The AudioWorkletGlobalScope's names, as the module expects them.
    const scope = globalThis as Record<string, unknown>;
    scope.sampleRate = RATE;
    scope.AudioWorkletProcessor = class {
      port: Port = { postMessage: (message) => messages.push(message as Record<string, unknown>), onmessage: null };
    };
    scope.registerProcessor = (name: string, processor: new () => Node) => {
      if (name === 'program-processor') Processor = processor;
    };
    await import('../../client/src/worklets/program-processor');
  });

  function feed(node: Node, left: Float32Array, right = left): [Float32Array, Float32Array] {
    const outL = new Float32Array(left.length);
    const outR = new Float32Array(left.length);
    for (let i = 0; i < left.length; i += QUANTUM) {
      expect(
        node.process(
          [[left.subarray(i, i + QUANTUM), right.subarray(i, i + QUANTUM)]],
          [[outL.subarray(i, i + QUANTUM), outR.subarray(i, i + QUANTUM)]],
        ),
      ).toBe(true);
    }
    return [outL, outR];
  }

  it('is registered, reports every 100 ms with null for -Infinity, and takes targets and resets', () => {
    expect(Processor).toBeDefined();
    const node = new Processor!();
    messages.length = 0;
    feed(node, new Float32Array(RATE));
    expect(messages.length).toBe(10);
    expect(messages[9]).toEqual({ type: 'loudness', momentary: null, shortTerm: null, integrated: null, gain: 0, reduction: 0 });
    // Off: the input itself.
    node.port.onmessage!({ data: { type: 'target', lufs: null } });
    const signal = tone(2, -20);
    expect(feed(node, signal)).toEqual([signal, signal]);
    const last = messages.at(-1)!;
    expect(Object.keys(last).sort()).toEqual(['gain', 'integrated', 'momentary', 'reduction', 'shortTerm', 'type']);
    expect(last.momentary as number).toBeCloseTo(-20, 1);
    // Reset: the integrated starts again, from the quieter tone alone.
    feed(node, new Float32Array(RATE));
    node.port.onmessage!({ data: { type: 'reset' } });
    feed(node, tone(3, -30));
    expect(messages.at(-1)!.integrated as number).toBeCloseTo(-30, 0);
    // On: the leveler works towards the target.
    node.port.onmessage!({ data: { type: 'target', lufs: -23 } });
    feed(node, tone(5, -30));
    expect(messages.at(-1)!.gain as number).toBeCloseTo(7, 0);
  });

  it('puts out silence when no input is connected', () => {
    const node = new Processor!();
    feed(node, tone(1, -10));
    const output = [new Float32Array(QUANTUM).fill(1), new Float32Array(QUANTUM).fill(1)];
    node.process([[]], [output]);
    expect(output).toEqual([new Float32Array(QUANTUM), new Float32Array(QUANTUM)]);
  });
});
