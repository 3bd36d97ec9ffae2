/// <reference types="node" />
// The upload check of soundboard files (server/sound-format.ts), judged on real files made by
// ffmpeg at test time: each accepted format and variant is accepted with its duration; each is
// refused as truncated when cut short; text, images, random bytes and other containers are
// refused; damage in the middle is refused; random mutations never make it throw.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSound, type SoundCheck, type SoundFormat, type SoundProblem } from '../../server/sound-format';

const FFMPEG = '/usr/bin/ffmpeg';
const FFPROBE = '/usr/bin/ffprobe';
const SINE = ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=1.5'];

let dir = '';

/** Runs ffmpeg with `args` writing `name` in the temp dir; the file's bytes. */
function ffmpeg(name: string, args: string[]): Uint8Array {
  const path = join(dir, name);
  execFileSync(FFMPEG, ['-v', 'error', '-y', ...args, path]);
  return new Uint8Array(readFileSync(path));
}

/** Runs ffmpeg writing to a pipe (no seeking back to fill in sizes); what came out. */
function ffmpegPipe(args: string[]): Uint8Array {
  return new Uint8Array(execFileSync(FFMPEG, ['-v', 'error', ...args, 'pipe:1'], { maxBuffer: 256 << 20 }));
}

/** Where ffmpeg's demuxer says each packet (MPEG frame, FLAC frame) starts. */
function packetStarts(name: string): number[] {
  const out = execFileSync(FFPROBE, ['-v', 'error', '-show_entries', 'packet=pos', '-of', 'csv=p=0', join(dir, name)], {
    encoding: 'utf8',
  });
  return out
    .split('\n')
    .map((line) => Number.parseInt(line, 10))
    .filter((pos) => Number.isFinite(pos));
}

/** Where each Ogg page starts, from the page headers. */
function oggPageStarts(bytes: Uint8Array): number[] {
  const starts: number[] = [];
  for (let pos = 0; pos + 27 <= bytes.length;) {
    starts.push(pos);
    const segments = bytes[pos + 26]!;
    let body = 0;
    for (let i = 0; i < segments; i++) body += bytes[pos + 27 + i]!;
    pos += 27 + segments + body;
  }
  return starts;
}

/** A seeded generator (mulberry32), so the "random" bytes are the same every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(length: number, seed: number): Uint8Array {
  const next = seeded(seed);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(next() * 256);
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const ascii = (text: string) => new TextEncoder().encode(text);

function expectRefused(result: SoundCheck, problem: SoundProblem): void {
  expect(result, JSON.stringify(result)).toMatchObject({ ok: false, problem });
  if (!result.ok) expect(result.message.length).toBeGreaterThan(10);
}

const CONTENT_TYPES: Record<SoundFormat, string> = { mp3: 'audio/mpeg', wav: 'audio/wav', ogg: 'audio/ogg', flac: 'audio/flac' };

interface Made {
  name: string;
  format: SoundFormat;
  bytes: Uint8Array;
}

/** The accepted files: name, ffmpeg arguments (after the input), format. All 1.5 s long. */
const VALID: Array<[string, string[], SoundFormat]> = [
  ['cbr.mp3', ['-c:a', 'libmp3lame', '-b:a', '128k', '-id3v2_version', '0'], 'mp3'],
  ['vbr.mp3', ['-c:a', 'libmp3lame', '-q:a', '4', '-id3v2_version', '0'], 'mp3'],
  ['tagged.mp3', ['-c:a', 'libmp3lame', '-b:a', '128k', '-metadata', 'title=x', '-metadata', 'artist=Studio', '-write_id3v1', '1'], 'mp3'],
  ['stereo48k-vbr.mp3', ['-ac', '2', '-ar', '48000', '-c:a', 'libmp3lame', '-q:a', '2'], 'mp3'],
  ['mono22k.mp3', ['-ar', '22050', '-c:a', 'libmp3lame', '-b:a', '64k'], 'mp3'],
  ['mono8k.mp3', ['-ar', '8000', '-c:a', 'libmp3lame', '-b:a', '16k'], 'mp3'],
  ['no-xing.mp3', ['-c:a', 'libmp3lame', '-b:a', '128k', '-write_xing', '0'], 'mp3'],
  ['s16.wav', ['-c:a', 'pcm_s16le'], 'wav'],
  ['s24.wav', ['-c:a', 'pcm_s24le'], 'wav'],
  ['f32.wav', ['-c:a', 'pcm_f32le'], 'wav'],
  ['u8-stereo.wav', ['-ac', '2', '-c:a', 'pcm_u8'], 'wav'],
  ['s16-6ch-48k.wav', ['-ac', '6', '-ar', '48000', '-c:a', 'pcm_s16le'], 'wav'],
  ['opus.ogg', ['-c:a', 'libopus'], 'ogg'],
  ['opus-stereo.opus', ['-ac', '2', '-c:a', 'libopus', '-b:a', '96k'], 'ogg'],
  ['vorbis.ogg', ['-c:a', 'libvorbis'], 'ogg'],
  ['vorbis-stereo48k.ogg', ['-ac', '2', '-ar', '48000', '-c:a', 'libvorbis', '-q:a', '6'], 'ogg'],
  ['mono.flac', ['-c:a', 'flac'], 'flac'],
  ['s24-stereo96k.flac', ['-ac', '2', '-ar', '96000', '-c:a', 'flac', '-sample_fmt', 's32', '-bits_per_raw_sample', '24'], 'flac'],
];

const made: Made[] = [];
const piped: Record<'wav' | 'flac', Uint8Array> = { wav: new Uint8Array(), flac: new Uint8Array() };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sound-format-'));
  for (const [name, args, format] of VALID) made.push({ name, format, bytes: ffmpeg(name, [...SINE, ...args]) });
  piped.wav = ffmpegPipe([...SINE, '-c:a', 'pcm_s16le', '-f', 'wav']);
  piped.flac = ffmpegPipe([...SINE, '-c:a', 'flac', '-f', 'flac']);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const file = (name: string) => made.find((m) => m.name === name)!;

describe('accepted files', () => {
  it.each(VALID.map(([name, , format]) => [name, format] as const))('%s is accepted as %s, 1.5 s long', (name, format) => {
    const result = checkSound(file(name).bytes);
    expect(result, JSON.stringify(result)).toMatchObject({ ok: true, format, contentType: CONTENT_TYPES[format] });
    if (!result.ok) return;
    expect(result.duration).not.toBeNull();
    expect(Math.abs(result.duration! - 1.5)).toBeLessThan(0.05);
  });

  it('the ID3v2 tag is there in the tagged MP3 (and the ID3v1 tag at its end)', () => {
    const bytes = file('tagged.mp3').bytes;
    expect(new TextDecoder().decode(bytes.subarray(0, 3))).toBe('ID3');
    expect(new TextDecoder().decode(bytes.subarray(bytes.length - 128, bytes.length - 125))).toBe('TAG');
  });

  it('a WAV written to a pipe (sizes left at 0xFFFFFFFF) runs to the end of the file', () => {
    expect(new DataView(piped.wav.buffer, piped.wav.byteOffset).getUint32(4, true)).toBe(0xffffffff);
    const result = checkSound(piped.wav);
    expect(result).toMatchObject({ ok: true, format: 'wav' });
    if (result.ok) expect(Math.abs(result.duration! - 1.5)).toBeLessThan(0.001);
  });

  it('a WAV with its sizes left at 0 (header never updated) runs to the end of the file too', () => {
    const bytes = piped.wav.slice();
    const view = new DataView(bytes.buffer);
    view.setUint32(4, 0, true);
    const data = new TextDecoder().decode(bytes.subarray(0, 200)).indexOf('data');
    view.setUint32(data + 4, 0, true);
    expect(checkSound(bytes)).toMatchObject({ ok: true, format: 'wav' });
  });

  it('a FLAC written to a pipe (no total samples) gets its duration from its last frame', () => {
    const result = checkSound(piped.flac);
    expect(result).toMatchObject({ ok: true, format: 'flac' });
    if (result.ok) expect(Math.abs(result.duration! - 1.5)).toBeLessThan(0.001);
  });

  it('an MP3 with trailing APEv2 and ID3v1 tags is accepted', () => {
    const mp3 = file('cbr.mp3').bytes;
    const item = concat(new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0]), ascii('Title\0hello'));
    const footer = new Uint8Array(32);
    footer.set(ascii('APETAGEX'));
    const view = new DataView(footer.buffer);
    view.setUint32(8, 2000, true);
    view.setUint32(12, item.length + 32, true);
    view.setUint32(16, 1, true);
    const id3v1 = new Uint8Array(128);
    id3v1.set(ascii('TAGtitle'));
    expect(checkSound(concat(mp3, item, footer, id3v1))).toMatchObject({ ok: true, format: 'mp3' });
  });
});

describe('truncated files', () => {
  const cuts = (length: number) => [Math.floor(length / 2), length - 1, length - 100];

  it.each(VALID.map(([name]) => [name]))('%s cut at half, minus 1 byte and minus 100 bytes is truncated', (name) => {
    const bytes = file(name).bytes;
    for (const at of cuts(bytes.length)) {
      const result = checkSound(bytes.subarray(0, at));
      expect(result, `${name} cut at ${at} of ${bytes.length}: ${JSON.stringify(result)}`).toMatchObject({
        ok: false,
        problem: 'truncated',
      });
    }
  });

  it.each(['opus.ogg', 'opus-stereo.opus', 'vorbis.ogg', 'vorbis-stereo48k.ogg'])(
    '%s cut exactly at a page boundary is truncated',
    (name) => {
      const bytes = file(name).bytes;
      const pages = oggPageStarts(bytes);
      expect(pages.length).toBeGreaterThanOrEqual(3);
      for (const at of pages.slice(1)) {
        const result = checkSound(bytes.subarray(0, at));
        expect(result.ok, `${name} cut at page ${at}`).toBe(false);
        if (at === pages.at(-1)) expect(result).toMatchObject({ problem: 'truncated', message: expect.stringContaining('end-of-stream') });
      }
    },
  );

  it.each(['cbr.mp3', 'vbr.mp3', 'tagged.mp3', 'stereo48k-vbr.mp3', 'mono22k.mp3', 'mono8k.mp3'])(
    '%s cut exactly at a frame boundary is truncated (its Info/Xing header counts the frames)',
    (name) => {
      const bytes = file(name).bytes;
      const frames = packetStarts(name);
      expect(frames.length).toBeGreaterThan(10);
      for (const at of [frames.at(-1)!, frames.at(-2)!, frames[Math.floor(frames.length / 2)]!]) {
        expectRefused(checkSound(bytes.subarray(0, at)), 'truncated');
      }
    },
  );

  it('an MP3 without an Info/Xing header cut at a frame boundary is accepted: nothing in it can tell', () => {
    const bytes = file('no-xing.mp3').bytes;
    const frames = packetStarts('no-xing.mp3');
    expect(checkSound(bytes.subarray(0, frames.at(-1)!))).toMatchObject({ ok: true, format: 'mp3' });
  });

  it.each(['mono.flac', 's24-stereo96k.flac'])(
    '%s cut exactly at a frame boundary is truncated (STREAMINFO counts the samples)',
    (name) => {
      const bytes = file(name).bytes;
      const frames = packetStarts(name);
      expect(frames.length).toBeGreaterThan(3);
      for (const at of [frames.at(-1)!, frames[1]!]) expectRefused(checkSound(bytes.subarray(0, at)), 'truncated');
    },
  );

  it('a piped WAV (size unknown) is truncated when it ends inside a sample frame, accepted on a frame boundary', () => {
    expectRefused(checkSound(piped.wav.subarray(0, piped.wav.length - 1)), 'truncated');
    expect(checkSound(piped.wav.subarray(0, piped.wav.length - 100))).toMatchObject({ ok: true, format: 'wav' });
  });

  it('a piped FLAC cut short is truncated (its last frame fails its CRC-16)', () => {
    for (const at of cuts(piped.flac.length)) expectRefused(checkSound(piped.flac.subarray(0, at)), 'truncated');
  });

  it('an MP3 whose end is zero bytes (a download that stopped in a preallocated file) is truncated', () => {
    const bytes = file('cbr.mp3').bytes.slice();
    bytes.fill(0, Math.floor(bytes.length * 0.7));
    expectRefused(checkSound(bytes), 'truncated');
  });

  it('an MP3 with a little zero padding after its last frame is accepted, unless frames are missing', () => {
    const bytes = file('cbr.mp3').bytes;
    expect(checkSound(concat(bytes, new Uint8Array(1000)))).toMatchObject({ ok: true, format: 'mp3' });
    const frames = packetStarts('cbr.mp3');
    expectRefused(checkSound(concat(bytes.subarray(0, frames.at(-1)!), new Uint8Array(1000))), 'truncated');
  });

  it('files cut inside their first header are truncated', () => {
    expectRefused(checkSound(file('tagged.mp3').bytes.subarray(0, 20)), 'truncated');
    expectRefused(checkSound(file('s16.wav').bytes.subarray(0, 30)), 'truncated');
    expectRefused(checkSound(file('opus.ogg').bytes.subarray(0, 40)), 'truncated');
    expectRefused(checkSound(file('mono.flac').bytes.subarray(0, 20)), 'truncated');
  });
});

describe('refused files', () => {
  it('a zero-length file is empty', () => {
    expect(checkSound(new Uint8Array())).toMatchObject({ ok: false, problem: 'empty' });
  });

  it('text, HTML, a script renamed .mp3 and UTF-16 text are not audio', () => {
    const texts = [
      'Hello, this is a plain text file with some words in it.\n'.repeat(40),
      '<script>alert(1)</script>',
      '<!doctype html><html><body>Not found</body></html>',
      '#!/bin/sh\nrm -rf /\n',
      '{"title": "x", "bytes": [255, 251]}',
      'ID3 tags and OggS pages are explained here. Ünïcödé text too.\n',
    ];
    for (const text of texts) expectRefused(checkSound(ascii(text)), 'not-audio');
    const utf16 = concat(
      new Uint8Array([0xff, 0xfe]),
      new Uint8Array(new Uint16Array([...'hello world <b>'].map((c) => c.charCodeAt(0))).buffer),
    );
    expectRefused(checkSound(utf16), 'not-audio');
  });

  it('an MPEG frame header followed by text is not audio (a few whole frames are needed)', () => {
    expectRefused(
      checkSound(concat(new Uint8Array([0xff, 0xfb, 0x90, 0x64]), ascii('just some text after it. '.repeat(100)))),
      'not-audio',
    );
  });

  it('a PNG header with random bytes after it is not audio', () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
    expectRefused(checkSound(concat(png, randomBytes(4000, 1))), 'not-audio');
  });

  it('64 KiB of random bytes are not audio (several seeds)', () => {
    for (let seed = 1; seed <= 20; seed++) expectRefused(checkSound(randomBytes(65536, seed)), 'not-audio');
  });

  it('an M4A (AAC in MP4) from ffmpeg is unsupported', () => {
    const result = checkSound(ffmpeg('aac.m4a', [...SINE, '-c:a', 'aac']));
    expectRefused(result, 'unsupported');
    if (!result.ok) expect(result.message).toContain('MP4');
  });

  it('other audio containers and codecs are unsupported', () => {
    const cases: Array<[string, string[]]> = [
      ['flac-in.ogg', ['-c:a', 'flac', '-f', 'ogg']],
      ['layer2.mp2', ['-c:a', 'mp2']],
      ['raw.aac', ['-c:a', 'aac', '-f', 'adts']],
      ['pcm.aiff', ['-c:a', 'pcm_s16be']],
      ['opus.webm', ['-c:a', 'libopus']],
      ['adpcm.wav', ['-c:a', 'adpcm_ms']],
      ['f64.wav', ['-c:a', 'pcm_f64le']],
      ['mulaw.wav', ['-c:a', 'pcm_mulaw']],
      ['rf64.wav', ['-c:a', 'pcm_s16le', '-rf64', 'always']],
    ];
    for (const [name, args] of cases) {
      const result = checkSound(ffmpeg(name, [...SINE, ...args]));
      expect(result, `${name}: ${JSON.stringify(result)}`).toMatchObject({ ok: false, problem: 'unsupported' });
    }
  });

  it('two Ogg streams chained in one file are unsupported', () => {
    const opus = file('opus.ogg').bytes;
    expectRefused(checkSound(concat(opus, opus)), 'unsupported');
  });

  it('a WAV with a sample rate out of range is unsupported', () => {
    expectRefused(checkSound(ffmpeg('4k.wav', [...SINE, '-ar', '4000', '-c:a', 'pcm_s16le'])), 'unsupported');
  });

  it('an Ogg file with one byte changed in the middle is damaged (its page checksum)', () => {
    const bytes = file('vorbis.ogg').bytes.slice();
    bytes[Math.floor(bytes.length / 2)]! ^= 0x10;
    const result = checkSound(bytes);
    expectRefused(result, 'not-audio');
    if (!result.ok) expect(result.message).toContain('checksum');
  });

  it('any single changed byte anywhere in an Ogg file is refused', () => {
    for (const name of ['opus.ogg', 'vorbis.ogg']) {
      const original = file(name).bytes;
      fc.assert(
        fc.property(fc.nat(original.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
          const bytes = original.slice();
          bytes[at]! ^= xor;
          return !checkSound(bytes).ok;
        }),
        { numRuns: 300 },
      );
    }
  });

  it('an Ogg file with a page removed from the middle is damaged', () => {
    const bytes = file('opus-stereo.opus').bytes;
    const pages = oggPageStarts(bytes);
    expect(pages.length).toBeGreaterThanOrEqual(4);
    expectRefused(checkSound(concat(bytes.subarray(0, pages[2]!), bytes.subarray(pages[3]!))), 'not-audio');
  });

  it('an MP3 with stray bytes between its frames is damaged', () => {
    const bytes = file('cbr.mp3').bytes;
    const frames = packetStarts('cbr.mp3');
    const at = frames[Math.floor(frames.length / 2)]!;
    const result = checkSound(concat(bytes.subarray(0, at), ascii('junk!'), bytes.subarray(at)));
    expectRefused(result, 'not-audio');
    if (!result.ok) expect(result.message).toContain('damaged');
  });

  it('a FLAC file with a byte changed in its last frame is refused', () => {
    const bytes = file('mono.flac').bytes.slice();
    bytes[bytes.length - 10]! ^= 0x01;
    expect(checkSound(bytes).ok).toBe(false);
  });

  it('a WAV whose data chunk is empty holds no sound', () => {
    const wav = file('s16.wav').bytes;
    const data = new TextDecoder('latin1').decode(wav.subarray(0, 200)).indexOf('data');
    const bytes = wav.slice(0, data + 8);
    const view = new DataView(bytes.buffer);
    view.setUint32(data + 4, 0, true);
    view.setUint32(4, bytes.length - 8, true);
    expect(checkSound(bytes)).toMatchObject({ ok: false, problem: 'empty' });
  });
});

describe('never throws', () => {
  const UNREADABLE = 'this file could not be read as a sound';

  function wellFormed(result: SoundCheck): boolean {
    if (result.ok) return result.format in CONTENT_TYPES && (result.duration === null || Number.isFinite(result.duration));
    return (
      ['empty', 'not-audio', 'unsupported', 'truncated'].includes(result.problem) &&
      result.message.length > 0 &&
      result.message !== UNREADABLE
    );
  }

  type Mutation = { kind: 'set' | 'xor' | 'cut' | 'insert' | 'delete' | 'fill'; at: number; value: number; length: number };
  const mutation = fc.record({
    kind: fc.constantFrom<Mutation['kind']>('set', 'xor', 'cut', 'insert', 'delete', 'fill'),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    value: fc.integer({ min: 0, max: 255 }),
    length: fc.integer({ min: 1, max: 600 }),
  });

  function mutate(original: Uint8Array, mutations: Mutation[]): Uint8Array {
    let bytes: Uint8Array = original.slice();
    for (const m of mutations) {
      const at = Math.min(bytes.length, Math.floor(m.at * bytes.length));
      if (m.kind === 'set' && at < bytes.length) bytes[at] = m.value;
      else if (m.kind === 'xor' && at < bytes.length) bytes[at]! ^= m.value || 1;
      else if (m.kind === 'cut') bytes = bytes.slice(0, at);
      else if (m.kind === 'insert') bytes = concat(bytes.subarray(0, at), new Uint8Array(m.length).fill(m.value), bytes.subarray(at));
      else if (m.kind === 'delete') bytes = concat(bytes.subarray(0, at), bytes.subarray(at + m.length));
      else if (m.kind === 'fill') bytes.fill(m.value, at, at + m.length);
    }
    return bytes;
  }

  it('random mutations and truncations of every valid file', () => {
    const originals = [...made.map((m) => m.bytes), piped.wav, piped.flac];
    fc.assert(
      fc.property(fc.nat(originals.length - 1), fc.array(mutation, { minLength: 1, maxLength: 6 }), (which, mutations) => {
        return wellFormed(checkSound(mutate(originals[which]!, mutations)));
      }),
      { numRuns: 3000 },
    );
  });

  it('random bytes, bare and after each format signature', () => {
    const signatures = [
      '',
      'ID3\x04\x00\x00',
      'ID3\x03\x00\x00\x00\x00\x00\x00',
      'fLaC',
      'fLaC\x00\x00\x00\x22',
      'OggS\x00\x02',
      'RIFF',
      'RIFF\xff\xff\xff\xffWAVE',
      'RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00',
      '\xff\xfb',
      '\xff\xf1',
      '\xff\xfe',
      '\xef\xbb\xbf',
      '#!AMR',
    ];
    fc.assert(
      fc.property(fc.constantFrom(...signatures), fc.uint8Array({ maxLength: 3000 }), (signature, rest) => {
        const head = Uint8Array.from(signature, (c) => c.charCodeAt(0));
        return wellFormed(checkSound(concat(head, rest)));
      }),
      { numRuns: 5000 },
    );
  });

  it('a subarray view of a larger buffer is read from its own start', () => {
    const mp3 = file('cbr.mp3').bytes;
    const padded = concat(randomBytes(1000, 7), mp3, randomBytes(1000, 8));
    expect(checkSound(padded.subarray(1000, 1000 + mp3.length))).toMatchObject({ ok: true, format: 'mp3' });
  });
});

describe('speed', () => {
  function time(bytes: Uint8Array): { ms: number; result: SoundCheck } {
    checkSound(bytes); // once to compile
    const start = performance.now();
    const result = checkSound(bytes);
    return { ms: performance.now() - start, result };
  }

  it('a 20 MB MP3 (a 256 kb/s stream of whole frames)', () => {
    const chunk = ffmpeg('chunk.mp3', [
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:duration=5',
      '-ac',
      '2',
      '-c:a',
      'libmp3lame',
      '-b:a',
      '256k',
      '-write_xing',
      '0',
      '-id3v2_version',
      '0',
    ]);
    const big = concat(...Array.from({ length: Math.ceil(20e6 / chunk.length) }, () => chunk));
    const first = performance.now();
    checkSound(big);
    const cold = performance.now() - first;
    const { ms, result } = time(big);
    expect(result).toMatchObject({ ok: true, format: 'mp3' });
    console.log(`sound check: ${(big.length / 1e6).toFixed(1)} MB MP3 in ${cold.toFixed(1)} ms (first call), ${ms.toFixed(1)} ms (next)`);
  });

  it('a 20 MB Ogg Opus (every page CRC-checked)', () => {
    const big = ffmpeg('big.opus', ['-f', 'lavfi', '-i', 'anoisesrc=d=320:a=0.5', '-ac', '2', '-c:a', 'libopus', '-b:a', '510k']);
    const first = performance.now();
    checkSound(big);
    const cold = performance.now() - first;
    const { ms, result } = time(big);
    expect(result).toMatchObject({ ok: true, format: 'ogg' });
    console.log(
      `sound check: ${(big.length / 1e6).toFixed(1)} MB Ogg Opus in ${cold.toFixed(1)} ms (first call), ${ms.toFixed(1)} ms (next)`,
    );
  });
});
