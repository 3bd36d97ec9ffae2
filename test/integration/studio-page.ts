// What the browser tests check on the studio page, beside the page driver (../page-driver.mjs,
// shared with the benches): meters silent, text and visibility, and the program heard as a
// listener hears it (Icecast) and measured per tone.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { expect } from 'vitest';
import { describePage, meterReading } from '../page-driver.mjs';

/**
 * The meter goes silent and stays so for `ms`. Its held peak (1.5 s) is read every 0.5 s,
 * so every reading the page made in the window is covered.
 */
export async function expectMeterSilent(page: Page, name: string, ms = 2_000, db = -55): Promise<void> {
  await expect
    .poll(async () => (await meterReading(page, name)).peak, { timeout: 5_000, interval: 250, message: `${name} should fall silent` })
    .toBeLessThanOrEqual(db);
  const peaks: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    peaks.push((await meterReading(page, name)).peak);
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(Math.max(...peaks), `${name} should stay silent (held peaks ${peaks.join(' ')})`).toBeLessThanOrEqual(db);
}

/** Where a WebM stream (re)starts: the EBML header a fresh recorder writes first. */
const EBML_MAGIC = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);

/** Record the listen URL for `seconds` once Icecast answers. */
async function record(url: string, seconds: number): Promise<Buffer> {
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(20_000)]);
  // As a listener's player does: connect again when Icecast closes the connection before
  // answering (it does while a show's source is being replaced). Any answer but 200 fails.
  let response: Response | undefined;
  for (let attempt = 1; !response; attempt++) {
    try {
      response = await fetch(url, { signal });
    } catch (error) {
      if (attempt >= 3 || signal.aborted) throw error;
      console.log(`listener: ${url} closed before answering (${(error as Error).message}); connecting again`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  expect(response.status, `the listen link ${url} should answer`).toBe(200);
  // The listening time starts once Icecast answers (a busy machine may be slow to connect).
  const timer = setTimeout(() => stop.abort(), seconds * 1000);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  } catch {
    // the timer ends the listening
  } finally {
    clearTimeout(timer);
  }
  const bytes = Buffer.concat(chunks);
  // A broadcaster that restarts its recorder starts a new WebM stream inside the same
  // response; decoders stop at the seam, so keep the newest stream.
  const restart = bytes.lastIndexOf(EBML_MAGIC);
  return restart > 0 ? bytes.subarray(restart) : bytes;
}

/**
 * The program as a listener hears it: connect to the listen URL, read `seconds`, decode, and
 * keep only the last `keepSeconds` (Icecast first sends a burst of older audio). Listens again
 * (at most three times) when a stream restart left too little.
 */
export async function listen(url: string, seconds = 5, keepSeconds = 2): Promise<Buffer> {
  const keep = keepSeconds * 48_000 * 4;
  let pcm = Buffer.alloc(0);
  for (let attempt = 0; attempt < 3 && pcm.length <= keep; attempt++) {
    const decoded = spawnSync('ffmpeg', ['-v', 'error', '-i', '-', '-f', 'f32le', '-ac', '1', '-ar', '48000', '-'], {
      input: await record(url, seconds),
      maxBuffer: 64 * 1024 * 1024,
    });
    pcm = decoded.stdout;
  }
  expect(pcm.length, 'the listener stream should decode to audio').toBeGreaterThan(keep);
  return pcm.subarray(pcm.length - keep);
}

/**
 * Mean level (dB) of `pcm` (f32le mono 48 kHz) in a narrow band around `hz`: three bandpass
 * filters in a row, so a loud neighbour 220 Hz away stays about 60 dB down.
 */
export function bandLevel(pcm: Buffer, hz: number): number {
  const out = spawnSync(
    'ffmpeg',
    [
      '-v',
      'info',
      '-f',
      'f32le',
      '-ar',
      '48000',
      '-ac',
      '1',
      '-i',
      '-',
      '-af',
      `${Array(3).fill(`bandpass=f=${hz}:width_type=q:w=30`).join(',')},volumedetect`,
      '-f',
      'null',
      '-',
    ],
    { input: pcm, encoding: 'buffer' },
  );
  const match = /mean_volume: (-?[\d.]+|-inf) dB/.exec(out.stderr.toString());
  if (!match) throw new Error(`volumedetect: ${out.stderr}`);
  return match[1] === '-inf' ? -Infinity : Number(match[1]);
}

/**
 * Level (dB) of `pcm` (f32le mono 48 kHz) around `hz` (the same filters as `bandLevel`) in
 * every window of `windowSeconds`: a leak as short as one window shows, where a mean over
 * seconds would hide it.
 */
export function bandLevels(pcm: Buffer, hz: number, windowSeconds = 0.25): number[] {
  const filtered = spawnSync(
    'ffmpeg',
    [
      '-v',
      'error',
      '-f',
      'f32le',
      '-ar',
      '48000',
      '-ac',
      '1',
      '-i',
      '-',
      '-af',
      Array(3).fill(`bandpass=f=${hz}:width_type=q:w=30`).join(','),
      '-f',
      'f32le',
      '-',
    ],
    { input: pcm, maxBuffer: 256 * 1024 * 1024 },
  ).stdout;
  const count = Math.floor(filtered.length / 4);
  const size = Math.round(windowSeconds * 48_000);
  const levels: number[] = [];
  for (let start = 0; start + size <= count; start += size) {
    let sum = 0;
    for (let i = start; i < start + size; i++) sum += filtered.readFloatLE(i * 4) ** 2;
    levels.push(sum > 0 ? 10 * Math.log10(sum / size) : -Infinity);
  }
  return levels;
}

/** Decode an Ogg/WebM recording (or its first part) to f32le mono 48 kHz. */
export function decode(recording: Buffer): Buffer {
  return spawnSync('ffmpeg', ['-v', 'error', '-i', '-', '-f', 'f32le', '-ac', '1', '-ar', '48000', '-'], {
    input: recording,
    maxBuffer: 256 * 1024 * 1024,
  }).stdout;
}

export function screenshotPath(name: string): string {
  const dir = join(process.cwd(), 'test-results', 'screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

/** Waits until the element's text is `text` (or contains it, with `contains`). */
export async function expectText(locator: Locator, text: string, options: { contains?: boolean; timeout?: number } = {}): Promise<void> {
  const poll = expect.poll(async () => ((await locator.count()) ? ((await locator.first().textContent()) ?? '').trim() : '(absent)'), {
    timeout: options.timeout ?? 15_000,
    interval: 250,
  });
  try {
    await (options.contains ? poll.toContain(text) : poll.toBe(text));
  } catch (error) {
    throw new Error(`"${text}" expected; the page shows: ${await describePage(locator.page())}`, { cause: error });
  }
}

/** Waits until the element is shown (clicking it would work). */
export async function expectVisible(locator: Locator, timeout = 10_000): Promise<void> {
  await expect.poll(() => locator.isVisible(), { timeout, interval: 100, message: `${locator} should be visible` }).toBe(true);
}
