// What the browser tests check on the studio page, beside the page driver (../page-driver.mjs,
// shared with the benches): meters silent, text and visibility, and the program heard as a
// listener hears it (Icecast) and measured per tone.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { bandFilter } from '../bands.mjs';
import { describePage, launchBrowser, meterReading, toneFile } from '../page-driver.mjs';

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

/** Record the listen URL for `seconds` once Icecast answers (the stream as it comes: Ogg/Opus). */
export async function record(url: string, seconds: number): Promise<Buffer> {
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(20_000 + seconds * 1000)]);
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
    ['-v', 'info', '-f', 'f32le', '-ar', '48000', '-ac', '1', '-i', '-', '-af', `${bandFilter(hz)},volumedetect`, '-f', 'null', '-'],
    { input: pcm, encoding: 'buffer' },
  );
  const match = /mean_volume: (-?[\d.]+|-inf) dB/.exec(out.stderr.toString());
  if (!match) throw new Error(`volumedetect: ${out.stderr}`);
  return match[1] === '-inf' ? -Infinity : Number(match[1]);
}

/** Band levels window by window, and ffmpeg's loudness of a recording: shared with the benches (plain JavaScript there). */
export { bandLevels, loudnessOf } from '../bands.mjs';

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

/** Waits until `page`'s connection to `name` is connected (the strip's RTCPeerConnection state). */
export async function expectConnected(page: Page, name: string): Promise<void> {
  const strip = page.getByRole('group', { name, exact: true });
  await expectVisible(strip, 20_000);
  await expect.poll(() => strip.getAttribute('data-connection'), { timeout: 30_000, message: `connection to ${name}` }).toBe('connected');
}

/**
 * One Chromium per voice, each with its own tone as microphone (`tones`: who → Hz), for a
 * test file: launched in its `beforeAll`, closed (and their tone files removed) in `afterAll`.
 */
export function toneBrowsers<K extends string>(tones: Record<K, number>): { browsers: Partial<Record<K, Browser>> } {
  const dir = mkdtempSync(join(tmpdir(), 'openstudio-tones-'));
  const browsers: Partial<Record<K, Browser>> = {};
  beforeAll(async () => {
    for (const [who, hz] of Object.entries(tones) as [K, number][]) browsers[who] = await launchBrowser(toneFile(dir, hz));
  });
  afterAll(async () => {
    for (const browser of Object.values(browsers) as Browser[]) await browser.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { browsers };
}
