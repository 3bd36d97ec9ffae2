#!/usr/bin/env node
// Recording's own figures, by hand (results go to docs/benchmarks.md):
//   1. Stop recording → every track complete, for shows of 1, 4 and 8 voices (the host and
//      callers, each its own Chromium and tone), over several takes each;
//   2. the CPU and memory recording adds to the host's page (its voice and the program) and
//      to a caller's page: the same show measured without a take, then with one, in turn;
//   3. the Worker's CPU per recorded track-hour (workerd's whole process tree, a take against
//      the same show without one) and its storage operations per track-hour.
// Real Chromium, the real studio page, relay-only through coturn. Needs a running stack with a
// relay range wide enough for an 8-voice mesh:
//   TURN_MIN_PORT=49720 TURN_MAX_PORT=49999 npm run stack
//   node bench/recording.mjs [--url http://127.0.0.1:8787] [--sizes 1,4,8] [--takes 5] [--take-seconds 12] [--seconds 20]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createShow, joinShow, launchBrowser, toneFile } from '../test/page-driver.mjs';
import { describeLoad, measureBrowser } from './lib/chromium.mjs';
import { summarize } from './lib/stats.mjs';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8787' },
    sizes: { type: 'string', default: '1,4,8' },
    takes: { type: 'string', default: '5' },
    'take-seconds': { type: 'string', default: '12' },
    seconds: { type: 'string', default: '20' },
  },
});
const base = args.url;
const sizes = args.sizes.split(',').map(Number);
const takesPerSize = Number(args.takes);
const takeSeconds = Number(args['take-seconds']);
const seconds = Number(args.seconds);
const dir = mkdtempSync(join(tmpdir(), 'openstudio-bench-recording-'));
const browsers = [];
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function launch(hz) {
  const wav = toneFile(dir, hz);
  const browser = await launchBrowser(wav);
  browsers.push(browser);
  return { browser, wav };
}

function hostLink(host) {
  const params = new URLSearchParams(new URL(host.url()).hash.slice(1));
  return { roomId: params.get('room'), token: params.get('token') };
}

async function takes(host) {
  const { roomId, token } = hostLink(host);
  const response = await fetch(`${base}/rooms/${roomId}/recordings`, { headers: { Authorization: `Bearer ${token}` } });
  return (await response.json()).takes;
}

/** CPU ticks of every workerd process (the Worker and its Durable Objects under wrangler dev). */
function workerdTicks() {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0].endsWith('workerd')) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks;
}

/**
 * A show of `size` voices: the host and size − 1 callers, everyone connected to everyone.
 * The callers share one Chromium (a context each, one tone for all) unless `ownBrowsers`: an
 * 8-voice mesh of 8 browsers does not fit two cores.
 */
async function show(size, { ownBrowsers = false } = {}) {
  const host = await launch(440);
  const { host: page, callerLink } = await createShow(host.browser, base, { show: `Recording ${size}` });
  const callers = [];
  const shared = !ownBrowsers && size > 1 ? await launch(660) : null;
  for (let i = 1; i < size; i++) {
    const caller = shared ?? (await launch(440 + 110 * i));
    callers.push({ ...caller, page: await joinShow(caller.browser, callerLink, `Caller ${i}`) });
  }
  // Every caller's strip on the host page connected.
  for (let i = 1; i < size; i++) {
    const strip = page.getByRole('group', { name: `Caller ${i}`, exact: true });
    for (let t = 0; (await strip.getAttribute('data-connection').catch(() => null)) !== 'connected'; t++) {
      if (t > 300) throw new Error(`Caller ${i} never connected to the host`);
      await sleep(100);
    }
  }
  return { host: { ...host, page }, callers };
}

async function closeShow({ host, callers }) {
  for (const c of [host, ...callers]) await c.page.context().close();
  for (const browser of new Set([host, ...callers].map((c) => c.browser))) {
    await browser.close();
    browsers.splice(browsers.indexOf(browser), 1);
  }
}

/** Start a take, let it run, stop it: ms from the Stop click to every track complete (polled every 50 ms). */
async function timedTake(host, expectedTracks) {
  await host.getByRole('button', { name: 'Start recording' }).click();
  await sleep(takeSeconds * 1000);
  await host.getByRole('button', { name: 'Stop recording' }).click();
  const stopped = performance.now();
  for (;;) {
    const [take] = await takes(host);
    if (take?.stoppedAt && take.tracks.length === expectedTracks && take.tracks.every((t) => t.state === 'complete')) {
      return { ms: performance.now() - stopped, take };
    }
    if (performance.now() - stopped > 180_000) throw new Error(`tracks not complete 180 s after Stop: ${JSON.stringify(take?.tracks)}`);
    await sleep(50);
  }
}

const line = (label, s) =>
  `${label}: p50 ${s.p50.toFixed(0)} ms, p90 ${s.p90.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, max ${s.max.toFixed(0)} ms (n = ${s.n})`;

try {
  console.log(`recording bench against ${base}, ${new Date().toISOString()}, load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  // 1. Stop → complete.
  for (const size of sizes) {
    const s = await show(size);
    const times = [];
    for (let i = 0; i < takesPerSize; i++) times.push((await timedTake(s.host.page, size + 1)).ms);
    console.log(line(`Stop → all ${size + 1} tracks complete (${size} voices + program, ${takeSeconds} s takes)`, summarize(times)));
    await closeShow(s);
  }

  // 2 and 3. The same show without a take, then with one, in turn (twice each).
  const s = await show(2, { ownBrowsers: true });
  const caller = s.callers[0];
  const rows = { off: [], on: [] };
  for (const round of [1, 2]) {
    for (const phase of ['off', 'on']) {
      if (phase === 'on') await s.host.page.getByRole('button', { name: 'Start recording' }).click();
      await sleep(2_000);
      const workerBefore = workerdTicks();
      const [hostLoad, callerLoad] = await Promise.all([measureBrowser(s.host.wav, seconds), measureBrowser(caller.wav, seconds)]);
      const workerCpu = ((workerdTicks() - workerBefore) / CLK_TCK / seconds) * 100;
      rows[phase].push({ hostLoad, callerLoad, workerCpu });
      console.log(`round ${round}, ${phase === 'on' ? 'recording' : 'not recording'}:`);
      console.log(`  host page: ${describeLoad(hostLoad, seconds)}`);
      console.log(`  caller page: ${describeLoad(callerLoad, seconds)}`);
      console.log(`  workerd: ${workerCpu.toFixed(2)} % of a core`);
      if (phase === 'on') {
        await s.host.page.getByRole('button', { name: 'Stop recording' }).click();
        await sleep(3_000);
      }
    }
  }
  const mean = (list, pick) => list.reduce((sum, row) => sum + pick(row), 0) / list.length;
  for (const [name, pick] of [
    ['host page CPU (% of a core)', (r) => r.hostLoad.cpu],
    ['caller page CPU (% of a core)', (r) => r.callerLoad.cpu],
    ['host page memory PSS median (MB)', (r) => r.hostLoad.memoryMedianMb],
    ['caller page memory PSS median (MB)', (r) => r.callerLoad.memoryMedianMb],
    ['workerd CPU (% of a core)', (r) => r.workerCpu],
  ]) {
    const off = mean(rows.off, pick);
    const on = mean(rows.on, pick);
    console.log(`${name}: not recording ${off.toFixed(1)}, recording ${on.toFixed(1)}, added ${(on - off).toFixed(1)}`);
  }
  // A take here records 3 tracks (2 voices and the program): Worker CPU per track-hour.
  const addedCoreShare = (mean(rows.on, (r) => r.workerCpu) - mean(rows.off, (r) => r.workerCpu)) / 100;
  console.log(`workerd CPU per recorded track-hour: ${((addedCoreShare * 3600) / 3).toFixed(1)} s (3 tracks recorded at once)`);
  await closeShow(s);
} finally {
  await Promise.all(browsers.map((b) => b.close()));
  rmSync(dir, { recursive: true, force: true });
}
