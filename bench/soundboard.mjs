#!/usr/bin/env node
// The program sound's figures, by hand (results go to docs/benchmarks.md):
//   1. Play → heard: producer Pat presses "Play jingle"; timed from the click on her page to
//      the host page's and caller Ann's `Sounds level` meter first reading above -40 dBFS
//      (each page's own clock, on one machine; the meters are read every 50 ms);
//   2. the loudness processor's CPU on the host page: the host browser's renderer CPU time
//      (Chromium's SystemInfo.getProcessInfo) over windows with the target at -16 LUFS and
//      with Off (the processor then copies and measures only), interleaved;
//   3. loudness per target at the listen link: callers at -30 and -8 dBFS talking in turn,
//      ffmpeg's ebur128 on what Icecast sends.
// Real Chromium (one per voice), the real studio page, relay-only through coturn. Needs a
// running stack:
//   TURN_MIN_PORT=49720 TURN_MAX_PORT=49999 npm run stack
//   node bench/soundboard.mjs [--url http://127.0.0.1:8787] [--plays 20] [--cpu-rounds 3] [--seconds 30]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loudnessOf } from '../test/bands.mjs';
import { joinShow, launchBrowser, makeAudioFile, waitConnected } from '../test/page-driver.mjs';
import { median, summarize } from './lib/stats.mjs';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8787' },
    plays: { type: 'string', default: '20' },
    'cpu-rounds': { type: 'string', default: '3' },
    seconds: { type: 'string', default: '30' },
  },
});
const base = args.url;
const dir = mkdtempSync(join(tmpdir(), 'openstudio-bench-sounds-'));
const browsers = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A microphone: a sine at `dbfs` peak, on for 5 s in every 10 (`first`: the first 5). */
function turnFile(name, hz, dbfs, first) {
  const on = first ? 'lt(mod(t,10),5)' : 'gte(mod(t,10),5)';
  return makeAudioFile(join(dir, `${name}.wav`), `aevalsrc='${10 ** (dbfs / 20)}*sin(2*PI*${hz}*t)*${on}':s=48000:d=20`);
}

/**
 * Recorded in a page from its first script on, on the epoch clock: clicks on a "Play"
 * button, and when the `Sounds level` meter first reads above -40 dBFS after
 * `window.benchArm()`. Only listens; the page's own code is untouched.
 */
function recordSoundTimes() {
  const now = () => performance.timeOrigin + performance.now();
  window.benchTimes = { clicks: [], heard: null };
  window.benchArm = () => (window.benchTimes.heard = null);
  document.addEventListener(
    'click',
    (event) => {
      if (event.target instanceof Element && event.target.closest('button')?.textContent === 'Play') window.benchTimes.clicks.push(now());
    },
    { capture: true },
  );
  new MutationObserver((mutations) => {
    for (const { target } of mutations) {
      if (target.getAttribute('aria-label') === 'Sounds level' && Number(target.getAttribute('aria-valuenow')) > -40)
        window.benchTimes.heard ??= now();
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
}

async function launch(file) {
  const browser = await launchBrowser(file);
  browsers.push(browser);
  return browser;
}

/** The stream Icecast sends, for `seconds`. */
async function listen(url, seconds) {
  const stop = new AbortController();
  const response = await fetch(url, { signal: stop.signal });
  const chunks = [];
  const timer = setTimeout(() => stop.abort(), seconds * 1000);
  try {
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
  } catch {
    // the timer ends it
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks);
}

const line = (label, s) =>
  `${label}: p50 ${s.p50.toFixed(0)} ms, p95 ${s.p95.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)} (n = ${s.n})`;

try {
  console.log(`soundboard bench against ${base}, ${new Date().toISOString()}, load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  const silence = makeAudioFile(join(dir, 'silence.wav'), 'anullsrc=r=48000:cl=mono', ['-t', '20']);
  const jingle = makeAudioFile(join(dir, 'jingle.mp3'), 'sine=frequency=2000:duration=3', [
    '-af',
    'volume=4',
    '-c:a',
    'libmp3lame',
    '-b:a',
    '128k',
  ]);

  const hostBrowser = await launch(silence);
  const host = await (await hostBrowser.newContext()).newPage();
  await host.addInitScript(recordSoundTimes);
  await host.goto(`${base}/?relay`);
  await host.getByRole('textbox', { name: 'Show name' }).fill('Soundboard bench');
  await host.getByRole('textbox', { name: 'Your name' }).fill('Hanna');
  await host.getByRole('checkbox', { name: 'Screen callers' }).uncheck();
  await host.getByRole('button', { name: 'Create show' }).click();
  await host.getByRole('checkbox', { name: 'Studio mode' }).check();
  const callerLink = await host.getByRole('textbox', { name: 'Caller link' }).inputValue();
  const producerLink = await host.getByRole('textbox', { name: 'Producer link' }).inputValue();
  const setup = (page) => page.addInitScript(recordSoundTimes);
  const pat = await joinShow(await launch(silence), producerLink, 'Pat', { studioMode: true, setup });
  const ann = await joinShow(await launch(turnFile('quiet', 500, -30, true)), callerLink, 'Ann', { studioMode: true, setup });
  const bob = await joinShow(await launch(turnFile('loud', 1000, -8, false)), callerLink, 'Bob', { studioMode: true });
  for (const name of ['Pat', 'Ann', 'Bob']) await waitConnected(host, name);
  await waitConnected(ann, 'Pat');

  // 1. Play → heard at the host and at Ann.
  await pat.getByLabel('Add sound').setInputFiles(jingle);
  await pat.getByRole('button', { name: 'Play jingle', exact: true }).waitFor();
  await sleep(2_000); // every page has fetched and decoded it
  const atHost = [];
  const atAnn = [];
  for (let i = 0; i < Number(args.plays); i++) {
    await Promise.all([host, ann].map((page) => page.evaluate(() => window.benchArm())));
    await pat.getByRole('button', { name: 'Play jingle', exact: true }).click();
    for (let t = 0; !(await host.evaluate(() => window.benchTimes.heard)) || !(await ann.evaluate(() => window.benchTimes.heard)); t++) {
      if (t > 100) throw new Error('the jingle was not heard in 5 s');
      await sleep(50);
    }
    const clicked = (await pat.evaluate(() => window.benchTimes.clicks)).at(-1);
    atHost.push((await host.evaluate(() => window.benchTimes.heard)) - clicked);
    atAnn.push((await ann.evaluate(() => window.benchTimes.heard)) - clicked);
    await pat.getByRole('button', { name: 'Stop jingle', exact: true }).click();
    await sleep(1_500);
  }
  console.log(line('Play → heard at the host (meter read every 50 ms)', summarize(atHost)));
  console.log(line('Play → heard at caller Ann (meter read every 50 ms)', summarize(atAnn)));

  // 2. The processor's CPU on the host page: renderer CPU time, -16 LUFS against Off, interleaved.
  await host.getByRole('button', { name: 'Go live' }).click();
  const listenUrl = await host.getByRole('link', { name: 'Listen link' }).getAttribute('href', { timeout: 30_000 });
  const cdp = await hostBrowser.newBrowserCDPSession();
  const rendererCpu = async () =>
    (await cdp.send('SystemInfo.getProcessInfo')).processInfo.filter((p) => p.type === 'renderer').reduce((s, p) => s + p.cpuTime, 0);
  const target = host.getByRole('combobox', { name: 'Loudness target' });
  const windowSeconds = 20;
  const cpu = { on: [], off: [] };
  for (let round = 0; round < Number(args['cpu-rounds']); round++) {
    for (const [mode, value] of [
      ['on', '-16'],
      ['off', 'off'],
    ]) {
      await target.selectOption(value);
      await sleep(2_000);
      const before = await rendererCpu();
      await sleep(windowSeconds * 1000);
      cpu[mode].push(((await rendererCpu()) - before) / windowSeconds);
    }
  }
  const percent = (xs) => `${(median(xs) * 100).toFixed(1)} % of a core (rounds: ${xs.map((x) => (x * 100).toFixed(1)).join(', ')})`;
  console.log(`host renderer CPU, target -16 LUFS: ${percent(cpu.on)}`);
  console.log(`host renderer CPU, Off: ${percent(cpu.off)}`);
  console.log(`difference (the leveler and limiter): ${((median(cpu.on) - median(cpu.off)) * 100).toFixed(2)} points`);

  // 3. Loudness per target at the listen link.
  const seconds = Number(args.seconds);
  for (const value of ['-16', '-18', '-23', '-14', 'off']) {
    await target.selectOption(value);
    await sleep(6_000);
    const measured = loudnessOf(await listen(listenUrl, seconds + 4), { skipSeconds: 4 });
    const error = value === 'off' ? '' : `, error ${(measured.integrated - Number(value)).toFixed(1)} LU`;
    console.log(
      `target ${value}: I ${measured.integrated} LUFS${error}, LRA ${measured.range} LU, true peak ${measured.truePeak} dBTP (${seconds} s)`,
    );
  }
} finally {
  await Promise.all(browsers.map((b) => b.close()));
  rmSync(dir, { recursive: true, force: true });
}
