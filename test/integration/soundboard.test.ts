// The soundboard in real Chromium, the real page: a jingle and a bed added by the producer,
// heard in the program at Icecast, in the host's and an on-air caller's ears, never by a
// waiting caller; the producer's own mute and fader do not touch it, nor her own track;
// Stop on another page stops it everywhere; the program track carries it. Each voice its
// own Chromium and tone; each sound its own tone.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createShow, cspViolations, expectMeterMoves, joinShow, makeAudioFile } from '../page-driver.mjs';
import { takes, trackPcm, trackStatus } from './recordings';
import { bandLevel, bandLevels, expectConnected, expectMeterSilent, expectText, expectVisible, listen, toneBrowsers } from './studio-page';

const workerUrl = () => inject('workerUrl');
const TONES = { host: 440, producer: 660, ann: 880, walt: 1100 } as const;
const JINGLE_HZ = 2000;
const BED_HZ = 2600;
const { browsers } = toneBrowsers(TONES);

const dir = mkdtempSync(join(tmpdir(), 'openstudio-sounds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A sound file made by ffmpeg: `seconds` of a sine at `hz` (0.5 of full scale). */
const soundFile = (name: string, hz: number, seconds: number, codec: string[]) =>
  makeAudioFile(join(dir, name), `sine=frequency=${hz}:sample_rate=48000:duration=${seconds}`, ['-af', 'volume=4', ...codec]);

const sounding = (page: Page) => page.locator('#console').getAttribute('data-sounds-sounding');

describe('the soundboard', () => {
  it(
    'a jingle and a bed: in the program, in the host’s and an on-air caller’s ears, never a waiting caller’s; one page plays, another stops',
    { timeout: 240_000 },
    async () => {
      const jingle = soundFile('jingle.mp3', JINGLE_HZ, 30, ['-c:a', 'libmp3lame', '-b:a', '128k']);
      const bed = soundFile('bed.ogg', BED_HZ, 4, ['-c:a', 'libopus', '-b:a', '96k']);
      const script = join(dir, 'evil.mp3');
      writeFileSync(script, '<script>alert(1)</script>');

      const { host, callerLink } = await createShow(browsers.host!, workerUrl(), { show: 'Sounds', screening: true, studioMode: true });
      const producerLink = await host.getByRole('textbox', { name: 'Producer link' }).inputValue();
      const pat = await joinShow(browsers.producer!, producerLink, 'Pat', { studioMode: true });
      const ann = await joinShow(browsers.ann!, callerLink, 'Ann', { studioMode: true });
      await host.getByRole('button', { name: 'Admit Ann', exact: true }).click();
      const walt = await joinShow(browsers.walt!, callerLink, 'Walt', { studioMode: true });
      await expectVisible(host.getByRole('button', { name: 'Admit Walt', exact: true }), 20_000);
      for (const [page, names] of [
        [host, ['Pat', 'Ann']],
        [pat, ['Hanna', 'Ann']],
        [ann, ['Hanna', 'Pat']],
      ] as const) {
        for (const name of names) await expectConnected(page, name);
      }

      // Pat adds both; a script named .mp3 is refused and leaves no pad.
      const add = pat.getByLabel('Add sound');
      await add.setInputFiles(script);
      await expectText(pat.getByRole('status').filter({ hasText: 'evil.mp3' }), 'evil.mp3 was not added:', { contains: true });
      await add.setInputFiles([jingle, bed]);
      for (const page of [host, pat]) {
        await expectVisible(page.getByRole('group', { name: 'jingle', exact: true }), 20_000);
        await expectVisible(page.getByRole('group', { name: 'bed', exact: true }), 20_000);
        expect(await page.getByRole('group', { name: 'evil', exact: true }).count()).toBe(0);
      }
      // Callers get no controls.
      expect(await ann.getByRole('button', { name: 'Play jingle' }).count()).toBe(0);

      await host.getByRole('button', { name: 'Go live' }).click();
      await expectText(host.getByRole('status', { name: 'On-air status' }), 'ON AIR', { contains: true, timeout: 30_000 });
      const listenUrl = (await host.getByRole('link', { name: 'Listen link' }).getAttribute('href'))!;
      await host.getByRole('button', { name: 'Start recording' }).click();
      const quiet = await listen(listenUrl, 4, 2);
      expect(bandLevel(quiet, JINGLE_HZ), 'no jingle before Play').toBeLessThan(-70);

      // Pat plays the jingle: the program, the host's ears, Ann's ears; not Walt's.
      const playFrom = Date.now();
      await pat.getByRole('button', { name: 'Play jingle', exact: true }).click();
      await expectMeterMoves(host, 'Sounds level', -30);
      await expectMeterMoves(ann, 'Sounds level', -30);
      await expectText(host.getByRole('group', { name: 'jingle', exact: true }).locator('.detail'), 'playing', { contains: true });
      // Walt's page, read all along: no sound sounds there.
      const waltSounding: (string | null)[] = [];
      const watchWalt = (async () => {
        for (const end = Date.now() + 4_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200)))
          waltSounding.push(await sounding(walt));
      })();
      const playing = await listen(listenUrl, 4, 2);
      await watchWalt;
      expect(new Set(waltSounding), 'sounds sounding on the waiting caller’s page').toEqual(new Set(['0']));
      const jingleLevel = bandLevel(playing, JINGLE_HZ);
      expect(jingleLevel, 'the jingle in the program').toBeGreaterThan(-30);
      expect(bandLevel(playing, TONES.producer), 'Pat in the program').toBeGreaterThan(-45);
      expect(await walt.getByRole('group', { name: 'Sounds', exact: true }).count()).toBe(0); // its strip is hidden while waiting

      // Pat's own mute and her fader on the host's page leave the jingle as it was.
      await pat.getByRole('button', { name: 'Mute me' }).click();
      await host.getByRole('slider', { name: 'Pat program level', exact: true }).fill('0');
      const patOut = await listen(listenUrl, 4, 2);
      expect(bandLevel(patOut, TONES.producer), 'Pat out of the program').toBeLessThan(-60);
      expect(Math.abs(bandLevel(patOut, JINGLE_HZ) - jingleLevel), 'the jingle as loud as before').toBeLessThan(3);
      await pat.getByRole('button', { name: 'Unmute me' }).click();
      await host.getByRole('slider', { name: 'Pat program level', exact: true }).fill('100');

      // The bed, looped, at half level, under the jingle; past its 4 s it still plays.
      await pat.getByRole('checkbox', { name: 'Loop bed', exact: true }).check();
      await pat.getByRole('slider', { name: 'bed level', exact: true }).fill('50');
      await expect.poll(() => host.getByRole('slider', { name: 'bed level', exact: true }).inputValue(), { timeout: 10_000 }).toBe('50');
      await expect.poll(() => host.getByRole('checkbox', { name: 'Loop bed', exact: true }).isChecked(), { timeout: 10_000 }).toBe(true);
      await pat.getByRole('button', { name: 'Play bed', exact: true }).click();
      await new Promise((r) => setTimeout(r, 5_000));
      const both = await listen(listenUrl, 4, 2);
      const bedLevel = bandLevel(both, BED_HZ);
      expect(bedLevel, 'the looped bed in the program after its length').toBeGreaterThan(-36);
      expect(bedLevel, 'the bed at half level, below the jingle').toBeLessThan(bandLevel(both, JINGLE_HZ) - 3);

      // The host stops the jingle: gone from the program, from Ann's ears, from Pat's pad.
      const stopAt = Date.now();
      await host.getByRole('button', { name: 'Stop jingle', exact: true }).click();
      await expectText(pat.getByRole('group', { name: 'jingle', exact: true }).locator('.detail'), 'stopped', { contains: true });
      const stopped = await listen(listenUrl, 4, 2);
      expect(bandLevel(stopped, JINGLE_HZ), 'the jingle stopped in the program (the bed beside it)').toBeLessThan(jingleLevel - 40);
      expect(bandLevel(stopped, BED_HZ), 'the bed plays on').toBeGreaterThan(-36);
      await host.getByRole('button', { name: 'Stop bed', exact: true }).click();
      await expectMeterSilent(ann, 'Sounds level');

      // The tape: the program track carries the jingle, Pat's own track does not.
      await host.getByRole('button', { name: 'Stop recording' }).click();
      for (const name of ['Hanna', 'Pat', 'Ann', 'Program']) {
        await expectText(trackStatus(host, name), 'complete', { timeout: 30_000 });
      }
      const [take] = await takes(host);
      const span = (levels: number[]) =>
        levels.slice(Math.ceil((playFrom + 1_000 - take!.startedAt) / 250), Math.floor((stopAt - take!.startedAt) / 250));
      const programJingle = span(bandLevels(await trackPcm(take!, 'Program'), JINGLE_HZ));
      expect(Math.min(...programJingle), 'the jingle in the program track').toBeGreaterThan(-30);
      for (const name of ['Pat', 'Hanna', 'Ann']) {
        expect(Math.max(...span(bandLevels(await trackPcm(take!, name), JINGLE_HZ))), `the jingle in ${name}'s track`).toBeLessThan(-60);
      }

      // Walt, let in now, hears a sound played from here on.
      await host.getByRole('button', { name: 'Admit Walt', exact: true }).click();
      await expectVisible(walt.getByRole('group', { name: 'Sounds', exact: true }), 20_000);
      await pat.getByRole('button', { name: 'Play jingle', exact: true }).click();
      await expectMeterMoves(walt, 'Sounds level', -30);
      // Put back on hold while it plays: it stops for him at once, and only for him.
      await host.getByRole('button', { name: 'Hold Walt', exact: true }).click();
      await expect.poll(() => sounding(walt), { timeout: 5_000, message: 'the jingle on the held caller’s page' }).toBe('0');
      expect(await sounding(ann)).toBe('1');
      await pat.getByRole('button', { name: 'Stop jingle', exact: true }).click();

      for (const page of [host, pat, ann, walt]) expect(cspViolations(page)).toEqual([]);
      for (const page of [host, pat, ann, walt]) await page.context().close();
    },
  );
});
