#!/usr/bin/env node
// The producer's desk's figures, by hand (results go to docs/benchmarks.md):
//   1. talkback press → heard in the target's ears: producer Pat, muted on air, presses
//      "Talk back to Hanna"; timed from the click on Pat's page to the host page's meter for
//      Pat first reading above -40 dBFS (both pages' own clocks, on one machine);
//   2. mouth-to-ear between two participants: caller Ann unmutes herself again and again
//      during a take; each onset of her tone in her own track (her microphone, before the
//      network) against the same onset in the program track the host's page records (her
//      voice as the host's page hears it: network, jitter buffer and Web Audio, all but the
//      speaker itself).
// Real Chromium (one per voice, each its own tone), the real studio page, relay-only through
// coturn. Needs a running stack:
//   TURN_MIN_PORT=49720 TURN_MAX_PORT=49999 npm run stack
//   3. hold → the held caller out of the others' ears: the host presses "Hold Ann"; timed to
//      producer Pat's meter for Ann first reading silent (-55 dBFS or below).
//   node bench/desk.mjs [--url http://127.0.0.1:8787] [--presses 20] [--onsets 12] [--holds 10]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bandLevels } from '../test/bands.mjs';
import { joinShow, launchBrowser, toneFile, waitConnected } from '../test/page-driver.mjs';
import { summarize } from './lib/stats.mjs';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8787' },
    presses: { type: 'string', default: '20' },
    onsets: { type: 'string', default: '12' },
    holds: { type: 'string', default: '10' },
  },
});
const base = args.url;
const dir = mkdtempSync(join(tmpdir(), 'openstudio-bench-desk-'));
const browsers = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TONES = { host: 440, producer: 660, ann: 880 };

/**
 * Recorded in a page from its first script on, on the epoch clock (timeOrigin + now): when a
 * "Talk back" or "Hold" button is clicked, and when the meter named `watch`
 * first reads above -40 dBFS after `window.benchArm()`. Only listens; the page's own code is untouched.
 */
function recordDeskTimes(watch) {
  const now = () => performance.timeOrigin + performance.now();
  window.benchTimes = { clicks: [], heard: null, silent: null, silentWatch: null };
  window.benchArm = () => (window.benchTimes.heard = null);
  window.benchArmSilence = (name) => Object.assign(window.benchTimes, { silent: null, silentWatch: name });
  document.addEventListener(
    'click',
    (event) => {
      const text = event.target instanceof Element ? event.target.closest('button')?.textContent : '';
      if (text === 'Talk back' || text === 'Hold') window.benchTimes.clicks.push(now());
    },
    { capture: true },
  );
  new MutationObserver((mutations) => {
    for (const { target } of mutations) {
      const label = target.getAttribute('aria-label');
      const level = Number(target.getAttribute('aria-valuenow'));
      if (label === watch && level > -40) window.benchTimes.heard ??= now();
      if (label === window.benchTimes.silentWatch && level <= -55) window.benchTimes.silent ??= now();
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
}

async function launch(hz) {
  const browser = await launchBrowser(toneFile(dir, hz));
  browsers.push(browser);
  return browser;
}

function pcmOf(wav) {
  return spawnSync('ffmpeg', ['-v', 'error', '-i', '-', '-f', 'f32le', '-ac', '1', '-ar', '48000', '-'], { input: wav, maxBuffer: 1 << 29 })
    .stdout;
}

/** Times (ms into the track) where `hz` rises from silence to within 20 dB of its loudest. */
function onsets(levels, windowMs = 5) {
  const loudest = Math.max(...levels);
  const found = [];
  let silentFor = 0;
  levels.forEach((level, i) => {
    if (level > loudest - 20) {
      if (silentFor * windowMs >= 300) found.push(i * windowMs);
      silentFor = 0;
    } else silentFor += 1;
  });
  return found;
}

const line = (label, s) =>
  `${label}: p50 ${s.p50.toFixed(0)} ms, p90 ${s.p90.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)} (n = ${s.n})`;

try {
  console.log(`desk bench against ${base}, ${new Date().toISOString()}, load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  // The host creates the show from a page that records its times from its first script on.
  const host = await (await (await launch(TONES.host)).newContext()).newPage();
  await host.addInitScript(recordDeskTimes, 'Pat level');
  await host.goto(`${base}/?relay`);
  await host.getByRole('textbox', { name: 'Show name' }).fill('Desk bench');
  await host.getByRole('textbox', { name: 'Your name' }).fill('Hanna');
  await host.getByRole('checkbox', { name: 'Screen callers' }).uncheck();
  await host.getByRole('button', { name: 'Create show' }).click();
  await host.getByRole('checkbox', { name: 'Studio mode' }).check();
  const callerLink = await host.getByRole('textbox', { name: 'Caller link' }).inputValue();
  const producerLink = await host.getByRole('textbox', { name: 'Producer link' }).inputValue();
  const { room: roomId, token } = Object.fromEntries(new URLSearchParams(new URL(host.url()).hash.slice(1)));
  const pat = await joinShow(await launch(TONES.producer), producerLink, 'Pat', {
    studioMode: true,
    setup: (page) => page.addInitScript(recordDeskTimes, 'Hanna level'),
  });
  const ann = await joinShow(await launch(TONES.ann), callerLink, 'Ann', { studioMode: true });
  for (const [page, names] of [
    [host, ['Pat', 'Ann']],
    [pat, ['Hanna', 'Ann']],
  ]) {
    for (const name of names) await waitConnected(page, name);
  }

  // 1. Talkback press → heard.
  await pat.getByRole('button', { name: 'Mute me' }).click();
  await sleep(2_000);
  const pressToHeard = [];
  const talk = pat.getByRole('button', { name: 'Talk back to Hanna', exact: true });
  for (let i = 0; i < Number(args.presses); i++) {
    await host.evaluate(() => window.benchArm());
    await talk.click();
    for (let t = 0; !(await host.evaluate(() => window.benchTimes.heard)); t++) {
      if (t > 100) throw new Error('the talkback was not heard in 5 s');
      await sleep(50);
    }
    const clicked = (await pat.evaluate(() => window.benchTimes.clicks)).at(-1);
    pressToHeard.push((await host.evaluate(() => window.benchTimes.heard)) - clicked);
    await talk.click();
    await sleep(1_500);
  }
  console.log(line('talkback press → heard in the target’s ears (meter read every 50 ms)', summarize(pressToHeard)));

  // 2. Mouth-to-ear: Ann's unmutes during a take, her track against the program.
  await host.getByRole('button', { name: 'Start recording' }).click();
  await sleep(2_000);
  for (let i = 0; i < Number(args.onsets); i++) {
    await ann.getByRole('button', { name: 'Mute me' }).click();
    await sleep(1_000);
    await ann.getByRole('button', { name: 'Unmute me' }).click();
    await sleep(1_000);
  }
  await host.getByRole('button', { name: 'Stop recording' }).click();
  let take;
  for (let t = 0; t < 200; t++) {
    [take] = (await (await fetch(`${base}/rooms/${roomId}/recordings`, { headers: { Authorization: `Bearer ${token}` } })).json()).takes;
    if (take?.stoppedAt && take.tracks.every((tr) => tr.state === 'complete')) break;
    await sleep(100);
  }
  const wav = async (pick) =>
    pcmOf(Buffer.from(await (await fetch(`${base}${take.links.tracks[take.tracks.find(pick).trackId].wav}`)).arrayBuffer()));
  const own = onsets(bandLevels(await wav((t) => t.name === 'Ann'), TONES.ann, 0.005));
  const heard = onsets(bandLevels(await wav((t) => t.kind === 'program'), TONES.ann, 0.005));
  // Pair each onset in her track with the first one in the program after it (within 1 s).
  const delays = own.map((at) => heard.find((h) => h >= at - 20 && h < at + 1_000)).map((h, i) => (h === undefined ? NaN : h - own[i]));
  console.log(`onsets: ${own.length} in Ann's track, ${heard.length} in the program`);
  console.log(line('mouth-to-ear, Ann’s microphone → the host page’s mix (5 ms windows)', summarize(delays)));

  // 3. Hold → the held caller out of the others' ears: host presses Hold Ann; Pat's meter for Ann falls silent.
  const holdToSilent = [];
  for (let i = 0; i < Number(args.holds); i++) {
    await pat.evaluate(() => window.benchArmSilence('Ann level'));
    await host.getByRole('button', { name: 'Hold Ann', exact: true }).click();
    for (let t = 0; !(await pat.evaluate(() => window.benchTimes.silent)); t++) {
      if (t > 100) throw new Error('Ann was still heard 5 s after Hold');
      await sleep(50);
    }
    const clicked = (await host.evaluate(() => window.benchTimes.clicks)).at(-1);
    holdToSilent.push((await pat.evaluate(() => window.benchTimes.silent)) - clicked);
    await host.getByRole('button', { name: 'Admit Ann', exact: true }).click();
    await waitConnected(pat, 'Ann');
    for (let t = 0; Number(await pat.getByRole('meter', { name: 'Ann level', exact: true }).getAttribute('aria-valuenow')) <= -40; t++) {
      if (t > 200) throw new Error('Ann not heard again after Admit');
      await sleep(50);
    }
    await sleep(1_000);
  }
  console.log(line('hold → the held caller silent at another participant (meter read every 50 ms)', summarize(holdToSilent)));
} finally {
  await Promise.all(browsers.map((b) => b.close()));
  rmSync(dir, { recursive: true, force: true });
}
