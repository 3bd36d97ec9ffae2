// ICE restart in the audio mesh of the real studio page, in real Chromium: host and caller,
// each its own Chromium with its own tone as microphone, relay-only (`?relay`), driven only
// through the page; what the mesh does is read from each strip's `data-connection` and
// `data-ice-restarts`.
//
// - The TURN server dies (a coturn and a `wrangler dev` of this test's own, wired together):
//   the relayed path dies, the connection goes down and the meters fall silent. coturn stays
//   down until one page has restarted ICE and, that failing, tried again (the other page
//   only answers), then starts again on the same ports, and the pages hear each other again
//   with no reload and no click.
// - A browser back online restarts ICE at once, and the voices carry on.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { describe, expect, inject, it, onTestFinished } from 'vitest';
import { startCoturnOnly } from '../../local-infra/native.mjs';
import { expectMeterMoves, launchBrowser, openPage, toneFile } from '../page-driver.mjs';
import { expectMeterSilent, expectVisible } from './studio-page';
import { freePort, startWorker, type RunningWorker } from './worker';

/** Relay ports of this test's coturn, apart from the run's shared one (global-setup.ts). */
const RELAY_MIN_PORT = 49720;
const RELAY_MAX_PORT = 49760;

const strip = (page: Page, name: string) => page.getByRole('group', { name, exact: true });
const connectionTo = (page: Page, name: string) => strip(page, name).getAttribute('data-connection');
const iceRestartsTo = async (page: Page, name: string) => Number(await strip(page, name).getAttribute('data-ice-restarts'));

function alive(pid: number): boolean {
  // A killed child is a zombie until Node reaps it: its cmdline is empty then.
  return existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== '';
}

/** Kill coturn as a crash would, and wait until it is gone (its ports free). */
async function killCoturn(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return; // already gone
  }
  await expect.poll(() => alive(pid), { timeout: 5_000, interval: 50, message: 'coturn should be gone' }).toBe(false);
}

/**
 * The host (Hanna) creates an unscreened show and the caller (Walt) joins it, both relay-only
 * and in studio mode (the tones pass unprocessed); they hear each other.
 */
async function startShow(base: string, hostBrowser: Browser, callerBrowser: Browser): Promise<{ host: Page; caller: Page }> {
  const host = await openPage(hostBrowser, `${base}/?relay`);
  await host.getByRole('textbox', { name: 'Show name' }).fill('Restart');
  await host.getByRole('textbox', { name: 'Your name' }).fill('Hanna');
  await host.getByRole('checkbox', { name: 'Screen callers' }).uncheck();
  await host.getByRole('button', { name: 'Create show' }).click();
  await host.getByRole('checkbox', { name: 'Studio mode' }).check();
  const callerLink = new URL(await host.getByRole('textbox', { name: 'Caller link' }).inputValue());
  callerLink.search = '?relay';
  const caller = await openPage(callerBrowser, callerLink.toString());
  await caller.getByRole('textbox', { name: 'Your name' }).fill('Walt');
  await caller.getByRole('checkbox', { name: 'Studio mode' }).check();
  await caller.getByRole('button', { name: 'Join show' }).click();
  await Promise.all([expectVisible(strip(host, 'Walt'), 20_000), expectVisible(strip(caller, 'Hanna'), 20_000)]);
  await Promise.all([expectMeterMoves(host, 'Walt level'), expectMeterMoves(caller, 'Hanna level')]);
  expect([await connectionTo(host, 'Walt'), await connectionTo(caller, 'Hanna')]).toEqual(['connected', 'connected']);
  expect([await iceRestartsTo(host, 'Walt'), await iceRestartsTo(caller, 'Hanna')]).toEqual([0, 0]);
  return { host, caller };
}

/** Counts the page's navigations from now on (a reload would be one). */
function countNavigations(pages: Page[]): () => number {
  let navigations = 0;
  for (const page of pages) page.on('framenavigated', (frame) => frame === page.mainFrame() && (navigations += 1));
  return () => navigations;
}

describe('ICE restart in the studio mesh', () => {
  it(
    'coturn dies and comes back: the pages hear each other again by an ICE restart, without a reload or a click',
    { timeout: 240_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'openstudio-ice-restart-'));
      const turnSecret = randomBytes(24).toString('hex');
      const turnPort = await freePort(true);
      const coturnSettings = { runDir: join(dir, 'infra'), turnPort, turnMinPort: RELAY_MIN_PORT, turnMaxPort: RELAY_MAX_PORT, turnSecret };
      let coturnPid: number | undefined;
      let dev: RunningWorker | undefined;
      const browsers: Browser[] = [];
      const timeline: string[] = [];
      let watching = false;
      let watch: Promise<void> | undefined;
      // Everything this test started goes, however it ends (passed, failed or timed out: then
      // its body may still be running, so what it starts after this is stopped at once).
      let finished = false;
      const release = async () => {
        watching = false;
        await watch;
        if (timeline.length) console.log(`ICE restart timeline:\n  ${timeline.splice(0).join('\n  ')}`);
        await Promise.all(browsers.map((b) => b.close()));
        await dev?.stop();
        if (coturnPid !== undefined) await killCoturn(coturnPid);
        rmSync(dir, { recursive: true, force: true });
      };
      onTestFinished(async () => {
        finished = true;
        await release();
      });
      const startCoturn = async () => {
        coturnPid = (await startCoturnOnly(coturnSettings)).pid;
        if (finished) await release();
      };
      await startCoturn();
      const turnHost = `127.0.0.1:${turnPort}`;
      dev = await startWorker(
        {
          TOKEN_SECRET: randomBytes(24).toString('hex'),
          TURN_SECRET: turnSecret,
          ICECAST_SOURCE_PASSWORD: randomBytes(24).toString('hex'),
          STUN_URLS: `stun:${turnHost}`,
          TURN_URLS: `turn:${turnHost}?transport=udp,turn:${turnHost}?transport=tcp`,
        },
        dir,
      );
      browsers.push(...(await Promise.all([launchBrowser(toneFile(dir, 440)), launchBrowser(toneFile(dir, 660))])));
      if (finished) await release();
      const [hostBrowser, callerBrowser] = browsers as [Browser, Browser];

      const { host, caller } = await startShow(dev.url, hostBrowser, callerBrowser);

      // From here on nobody touches the pages.
      const navigations = countNavigations([host, caller]);

      // What the strips show from here on, as it changes (printed at the end, for the record).
      const killedAt = Date.now();
      watching = true;
      watch = (async () => {
        let last = '';
        while (watching) {
          const now = `host→Walt ${await connectionTo(host, 'Walt')} (${await iceRestartsTo(host, 'Walt')} restarts), caller→Hanna ${await connectionTo(caller, 'Hanna')} (${await iceRestartsTo(caller, 'Hanna')} restarts)`;
          if (now !== last) timeline.push(`${((Date.now() - killedAt) / 1000).toFixed(1)} s: ${(last = now)}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      })().catch(() => {}); // the pages closed under it
      const mark = (what: string) => timeline.push(`${((Date.now() - killedAt) / 1000).toFixed(1)} s: ${what}`);

      // coturn dies: the only path between the pages is gone.
      await killCoturn(coturnPid!);
      mark('coturn killed');
      await Promise.all([expectMeterSilent(host, 'Walt level'), expectMeterSilent(caller, 'Hanna level')]);
      const down = ['disconnected', 'failed', 'connecting'];
      await expect
        .poll(() => connectionTo(host, 'Walt'), { timeout: 20_000, message: 'the host sees its connection down' })
        .toBeOneOf(down);
      await expect
        .poll(() => connectionTo(caller, 'Hanna'), { timeout: 20_000, message: 'the caller sees its connection down' })
        .toBeOneOf(down);

      // It stays down until a page has restarted ICE, which cannot work without coturn, and
      // tried again. One side restarts; the other answers (their offers would cross).
      const restarts = async () => [await iceRestartsTo(host, 'Walt'), await iceRestartsTo(caller, 'Hanna')];
      await expect
        .poll(async () => Math.max(...(await restarts())), {
          timeout: 40_000,
          interval: 250,
          message: 'a page restarts ICE, and again, while coturn is down',
        })
        .toBeGreaterThanOrEqual(2);
      expect(Math.min(...(await restarts())), 'ICE restarts offered by the other side').toBe(0);
      expect([await connectionTo(host, 'Walt'), await connectionTo(caller, 'Hanna')], 'still down without coturn').not.toContain(
        'connected',
      );

      // coturn is back on the same ports (with no memory of the old allocations).
      await startCoturn();
      mark('coturn started again');
      await Promise.all([expectMeterMoves(host, 'Walt level', -40, 30_000), expectMeterMoves(caller, 'Hanna level', -40, 30_000)]);
      mark('both meters above -40 dBFS');
      expect([await connectionTo(host, 'Walt'), await connectionTo(caller, 'Hanna')]).toEqual(['connected', 'connected']);
      for (const page of [host, caller]) expect(await page.locator('#console').getAttribute('data-peer-connections')).toBe('1');
      expect(navigations(), 'page navigations (reloads) since the show started').toBe(0);
    },
  );
});

describe('ICE restart when the browser comes back online', () => {
  it('back online, the page restarts ICE at once and the voices carry on', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openstudio-ice-online-'));
    const browsers: Browser[] = [];
    onTestFinished(async () => {
      await Promise.all(browsers.map((b) => b.close()));
      rmSync(dir, { recursive: true, force: true });
    });
    browsers.push(...(await Promise.all([launchBrowser(toneFile(dir, 440)), launchBrowser(toneFile(dir, 660))])));
    const { host, caller } = await startShow(inject('workerUrl'), browsers[0]!, browsers[1]!);
    const navigations = countNavigations([host, caller]);

    // The caller's browser loses its network and gets it back (its address may have changed:
    // the old path cannot be trusted). Its connection never failed, so only `online` can
    // start a restart now; the host's page saw nothing and starts none.
    await caller.context().setOffline(true);
    await new Promise((r) => setTimeout(r, 2_000));
    await caller.context().setOffline(false);
    await expect
      .poll(() => iceRestartsTo(caller, 'Hanna'), { timeout: 5_000, message: 'the caller restarts ICE when back online' })
      .toBe(1);
    await new Promise((r) => setTimeout(r, 3_000));
    expect([await iceRestartsTo(caller, 'Hanna'), await iceRestartsTo(host, 'Walt')], 'ICE restarts (caller, host)').toEqual([1, 0]);
    expect([await connectionTo(host, 'Walt'), await connectionTo(caller, 'Hanna')]).toEqual(['connected', 'connected']);
    await Promise.all([expectMeterMoves(host, 'Walt level'), expectMeterMoves(caller, 'Hanna level')]);
    expect(navigations(), 'page navigations (reloads)').toBe(0);
  });
});
