// Broadcast loudness in real Chromium, judged at the listen link with ffmpeg's ebur128: two
// callers, one at -30 dBFS and one at -8 dBFS, talking in turn; for each target the program
// sits within 1 LU of it with its true peak at or under -1 dBTP, the two callers arrive at one
// level, the program track carries the processing; with Off the program is the mix as it is.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createShow, cspViolations, joinShow, launchBrowser, makeAudioFile } from '../page-driver.mjs';
import { fetchWav, takes, trackStatus } from './recordings';
import { bandLevels, decode, expectConnected, expectText, loudnessOf, record } from './studio-page';

const workerUrl = () => inject('workerUrl');
const QUIET = { hz: 500, dbfs: -30 };
const LOUD = { hz: 1000, dbfs: -8 };
/** Each caller talks 5 s, then listens 5 s while the other talks (a file the fake microphone loops). */
const TURN_SECONDS = 5;
/** Icecast first sends a burst of what it holds (the moments before), and the leveler settles on a new target. */
const SETTLE_MS = 6_000;
const SKIP_SECONDS = 4;

const dir = mkdtempSync(join(tmpdir(), 'openstudio-loudness-'));
const browsers: Browser[] = [];

/** A caller's microphone: a sine at `dbfs` peak, on for one turn in two (`first`: the first turn). */
function turnFile(name: string, hz: number, dbfs: number, first: boolean): string {
  const amplitude = 10 ** (dbfs / 20);
  const on = first ? `lt(mod(t,${2 * TURN_SECONDS}),${TURN_SECONDS})` : `gte(mod(t,${2 * TURN_SECONDS}),${TURN_SECONDS})`;
  return makeAudioFile(join(dir, `${name}.wav`), `aevalsrc='${amplitude}*sin(2*PI*${hz}*t)*${on}':s=48000:d=20`);
}

const silentFile = () => makeAudioFile(join(dir, 'silence.wav'), 'anullsrc=r=48000:cl=mono', ['-t', '20']);

beforeAll(async () => {
  browsers.push(await launchBrowser(silentFile()));
  browsers.push(await launchBrowser(turnFile('quiet', QUIET.hz, QUIET.dbfs, true)));
  browsers.push(await launchBrowser(turnFile('loud', LOUD.hz, LOUD.dbfs, false)));
});
afterAll(async () => {
  for (const browser of browsers) await browser.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The level (dB) of a caller's tone while it talks: the loudest third of its quarter seconds. */
function talkingLevel(pcm: Buffer, hz: number): number {
  const levels = bandLevels(pcm, hz).sort((a, b) => b - a);
  const talking = levels.slice(0, Math.floor(levels.length / 3));
  return talking[Math.floor(talking.length / 2)]!;
}

async function chooseTarget(host: Page, label: string): Promise<void> {
  const select = host.getByRole('combobox', { name: 'Loudness target' });
  const options = await select.locator('option').allTextContents();
  const option = options.find((text) => text === label || text.startsWith(`${label} `));
  expect(option, `a "${label}" option among ${options.join(', ')}`).toBeDefined();
  await select.selectOption({ label: option! });
}

describe('broadcast loudness', () => {
  it(
    'callers at -30 and -8 dBFS in turn: each target within 1 LU at the listen link, true peak at most -1 dBTP; Off is the mix',
    { timeout: 600_000 },
    async () => {
      const [hostBrowser, quietBrowser, loudBrowser] = browsers;
      const { host, callerLink } = await createShow(hostBrowser!, workerUrl(), { show: 'Loudness', studioMode: true });
      const quiet = await joinShow(quietBrowser!, callerLink, 'Quinn', { studioMode: true });
      const loud = await joinShow(loudBrowser!, callerLink, 'Lou', { studioMode: true });
      for (const name of ['Quinn', 'Lou']) await expectConnected(host, name);
      // The default target is the podcast one.
      expect(await host.getByRole('combobox', { name: 'Loudness target' }).inputValue()).toBe('-16');
      await host.getByRole('button', { name: 'Go live' }).click();
      await expectText(host.getByRole('status', { name: 'On-air status' }), 'ON AIR', { contains: true, timeout: 30_000 });
      const listenUrl = (await host.getByRole('link', { name: 'Listen link' }).getAttribute('href'))!;

      const results: Record<string, { integrated: number; truePeak: number; quiet: number; loud: number }> = {};
      for (const target of [-16, -18, -23, -14]) {
        await chooseTarget(host, `${target} LUFS`);
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        // The -16 hour is recorded too: the program track is what went to air.
        if (target === -16) await host.getByRole('button', { name: 'Start recording' }).click();
        const air = await record(listenUrl, 60 + SKIP_SECONDS);
        if (target === -16) {
          await host.getByRole('button', { name: 'Stop recording' }).click();
          // The page's own meter: the integrated loudness of the air since Go live (all of it at -16 so far).
          const shown = Number(await host.getByRole('meter', { name: 'Program loudness' }).getAttribute('aria-valuenow'));
          expect(Math.abs(shown - target), `the page's integrated loudness ${shown}`).toBeLessThan(1.5);
        }
        const pcm = decode(air).subarray(SKIP_SECONDS * 48_000 * 4);
        results[target] = {
          ...loudnessOf(air, { skipSeconds: SKIP_SECONDS }),
          quiet: talkingLevel(pcm, QUIET.hz),
          loud: talkingLevel(pcm, LOUD.hz),
        };
      }
      console.log('loudness at the listen link, per target:', JSON.stringify(results));
      for (const [target, result] of Object.entries(results)) {
        expect(
          Math.abs(result.integrated - Number(target)),
          `integrated loudness at ${target} LUFS: ${result.integrated}`,
        ).toBeLessThanOrEqual(1);
        expect(result.truePeak, `true peak at ${target} LUFS`).toBeLessThanOrEqual(-1);
        // A whisper and a shout arrive at one level (22 dB apart at the microphones).
        expect(
          Math.abs(result.quiet - result.loud),
          `the two callers at ${target} LUFS: ${result.quiet} and ${result.loud} dB`,
        ).toBeLessThan(3);
      }

      // The program track carries the processing: mono, read as the stereo program it was cut from.
      await expectText(trackStatus(host, 'Program'), 'complete', { timeout: 60_000 });
      const [take] = await takes(host);
      const program = await fetchWav(take!.links.tracks[take!.tracks.find((t) => t.kind === 'program')!.trackId]!.wav);
      const tape = loudnessOf(program, { skipSeconds: 5, dualMono: true });
      expect(Math.abs(tape.integrated - -16), `the program track's loudness ${tape.integrated}`).toBeLessThanOrEqual(1);

      // Off: the program is the mix, untouched: each caller at its own level.
      await chooseTarget(host, 'Off');
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const off = decode(await record(listenUrl, 30 + SKIP_SECONDS)).subarray(SKIP_SECONDS * 48_000 * 4);
      // A sine's mean square is 3 dB under its peak, and decoding the program (L = R) to mono
      // adds 3 dB (ffmpeg sums the two channels at -3 dB each): a caller reads at its peak level.
      const offLevels = { quiet: talkingLevel(off, QUIET.hz), loud: talkingLevel(off, LOUD.hz) };
      console.log('with Off, the callers at the listen link (dB):', JSON.stringify(offLevels));
      expect(Math.abs(offLevels.loud - LOUD.dbfs), 'the loud caller with Off').toBeLessThan(1.5);
      expect(Math.abs(offLevels.quiet - QUIET.dbfs), 'the quiet caller with Off').toBeLessThan(1.5);

      for (const page of [host, quiet, loud]) expect(cspViolations(page)).toEqual([]);
      for (const page of [host, quiet, loud]) await page.context().close();
    },
  );
});
