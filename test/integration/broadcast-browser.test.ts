// The studio page in real Chromium goes live (its own "Go live" button, its own scripts and
// CSP) and stays on air, with nobody touching it, through an Icecast restart and a restart
// of the Worker: its broadcaster reconnects and restarts its recorder by itself.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchChromium } from '../page-driver.mjs';
import { createRoom, heardAgain, icecastPid, startIcecastAgain, until, watchRoom, workerHttp } from './feed-client';

/** The fake microphone's tone: the program must carry it, not just decode. */
const TONE = 440;
let browser: Browser;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'openstudio-browser-feed-'));
  // The fake microphone plays a steady tone.
  const wav = join(dir, 'tone.wav');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=${TONE}:sample_rate=48000:duration=60`, '-ac', '1', wav]);
  browser = await launchChromium([`--use-file-for-fake-audio-capture=${wav}`]);
});

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the studio page on air through faults (Chromium)', () => {
  it('goes live from its button and comes back by itself after Icecast and the Worker restart', { timeout: 180_000 }, async () => {
    const room = await createRoom({ name: 'Night show' });
    const watcher = await watchRoom(room.roomId, room.tokens.producer!);
    const page = await browser.newPage();
    page.on('pageerror', (error) => console.error('page error:', error.message));
    await page.goto(`${workerHttp()}/#room=${room.roomId}&token=${room.tokens.host}`);
    await page.getByRole('textbox', { name: 'Your name' }).fill('Host');
    // Studio mode: the tone reaches the program whole (speech processing would cut it ~19 dB).
    await page.getByRole('checkbox', { name: 'Studio mode' }).check();
    await page.getByRole('button', { name: 'Join show' }).click();
    await page.getByRole('button', { name: 'Go live' }).click();
    const live = await until(() => watcher.states.find((s) => s.broadcast.state === 'live')?.broadcast, 'live', 20_000);
    await heardAgain(live.listenUrl, TONE, 15_000);

    // Icecast killed and started again.
    const killedAt = Date.now();
    process.kill(icecastPid(), 'SIGKILL');
    try {
      await until(() => watcher.states.find((s) => s.at >= killedAt && s.broadcast.state === 'reconnecting'), 'reconnecting');
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      startIcecastAgain();
    }
    const icecastBackAt = Date.now();
    const heardAfterIcecast = await heardAgain(live.listenUrl, TONE, 10_000);
    await until(() => (watcher.states.at(-1)?.broadcast.state === 'live' ? true : undefined), 'live again');

    // The Worker restarts (as on a deploy): every WebSocket drops.
    const restartAt = Date.now();
    const restarted = await fetch(`${inject('controlUrl')}/restart-worker`, { method: 'POST' });
    expect(restarted.status).toBe(200);
    const workerBackAt = Date.now();
    const heardAfterWorker = await heardAgain(live.listenUrl, TONE, 30_000);
    console.log(
      `studio page: heard again ${heardAfterIcecast - icecastBackAt} ms after Icecast was back; ` +
        `${heardAfterWorker - workerBackAt} ms after the Worker answered again (${heardAfterWorker - restartAt} ms gap in all)`,
    );
    // Nobody clicked: the page still offers to stop the broadcast it kept on air.
    await page.getByRole('button', { name: 'Stop broadcast' }).waitFor({ state: 'visible', timeout: 5_000 });
    await page.getByRole('button', { name: 'Stop broadcast' }).click();
    const again = await watchRoom(room.roomId, room.tokens.producer!);
    await until(
      () =>
        (again.states.at(-1)?.broadcast ?? again.frames.find((f) => f.type === 'welcome')?.broadcast)?.state === 'idle' ? true : undefined,
      'idle',
    );
    again.socket.close();
    watcher.socket.close();
    await page.close();
  });
});
