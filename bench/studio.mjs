#!/usr/bin/env node
// The studio console's own figures, by hand (results go to docs/benchmarks.md):
//   1. opening a caller link to hearing the host: p50/p95 over N joins, timed on the caller
//      page's own clock (navigation start → form ready, Join show clicked → host heard), for
//      a caller who types a name and turns on studio mode, and for a returning caller whose
//      name the page remembers and who clicks Join show as soon as it is there;
//   2. a moderator's mute (the click on the host page) to silence at another participant;
//   3. the host page's CPU and memory on air as callers join, step by step up to 7 callers
//      (bench/host-load.mjs measures it up to 16 participants, with synthetic callers).
// Real Chromium (one process per voice, each with its own tone as microphone), the real
// studio page, relay-only through coturn. Needs a running stack with a wide relay range:
//   TURN_MIN_PORT=49720 TURN_MAX_PORT=49999 npm run stack
//   node bench/studio.mjs [--url http://127.0.0.1:8787] [--joins 20] [--mutes 10] [--steps 1,3,5,7] [--seconds 30]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createShow, expectMeterMoves, joinShow, launchBrowser, relayed, toneFile } from '../test/page-driver.mjs';
import { describeLoad, measureBrowser } from './lib/chromium.mjs';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8787' },
    joins: { type: 'string', default: '20' },
    mutes: { type: 'string', default: '10' },
    steps: { type: 'string', default: '1,3,5,7' },
    seconds: { type: 'string', default: '30' },
  },
});
const base = args.url;
const dir = mkdtempSync(join(tmpdir(), 'openstudio-bench-'));
const browsers = [];

/** A browser whose microphone plays a tone of `hz` (its WAV path also finds its processes). */
async function launch(hz) {
  const wav = toneFile(dir, hz);
  const browser = await launchBrowser(wav);
  browsers.push(browser);
  return { browser, wav };
}

/** A caller joins in studio mode (the tones pass unprocessed). */
const joinInStudioMode = async (hz, link, name) => joinShow((await launch(hz)).browser, link, name, { studioMode: true });

/**
 * Recorded in the caller page from its first script on, on the page's own clock: when Studio
 * mode and Join show are clicked, and when the page's meter for the host first shows it above -40 dBFS.
 * Only listens; the page's own code is untouched.
 */
function recordJoinTimes() {
  window.joinTimes = {};
  document.addEventListener(
    'click',
    (event) => {
      if (!(event.target instanceof Element)) return;
      if (event.target.closest('button')?.textContent === 'Join show') window.joinTimes.clicked ??= performance.now();
      if (event.target.closest('label')?.textContent.trim() === 'Studio mode') window.joinTimes.studioModeClicked = performance.now();
    },
    { capture: true },
  );
  new MutationObserver((mutations) => {
    for (const { target } of mutations) {
      if (target.getAttribute('aria-label') === 'Hanna level' && Number(target.getAttribute('aria-valuenow')) > -40)
        window.joinTimes.heard ??= performance.now();
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
}

/**
 * One caller's join, timed on the page: `typed` fills the name and turns on studio mode as a
 * script does; `remembered` is a returning caller (the page fills in the remembered name)
 * who clicks Join show as soon as it can be clicked. Returns milliseconds from navigation start.
 */
async function timedJoin(browser, link, name, scenario) {
  const started = Date.now();
  const origin = new URL(link).origin;
  const storageState =
    scenario === 'remembered'
      ? { cookies: [], origins: [{ origin, localStorage: [{ name: 'openstudio:name', value: name }] }] }
      : undefined;
  const context = await browser.newContext({ storageState });
  await context.addInitScript(recordJoinTimes);
  const page = await context.newPage();
  const harness = Date.now() - started; // Playwright's newContext + newPage, not the product
  await page.goto(relayed(link), { waitUntil: 'commit' });
  if (scenario === 'typed') {
    await page.getByRole('textbox', { name: 'Your name' }).fill(name);
    await page.getByRole('checkbox', { name: 'Studio mode' }).check();
  }
  await page.getByRole('button', { name: 'Join show' }).click();
  await page.waitForFunction(() => window.joinTimes.heard !== undefined, null, { polling: 20, timeout: 30_000 });
  const times = await page.evaluate(() => {
    const mark = (name) => performance.getEntriesByName(`openstudio:${name}`).map((e) => e.startTime);
    const navigation = performance.getEntriesByType('navigation')[0];
    const assets = performance.getEntriesByType('resource').filter((e) => /\/(studio\.js|style\.css)$/.test(e.name));
    return {
      ...window.joinTimes,
      origin: performance.timeOrigin,
      htmlTtfb: navigation.responseStart - navigation.requestStart,
      htmlEnd: navigation.responseEnd,
      assetTtfb: Math.max(...assets.map((e) => e.responseStart - e.requestStart)),
      assetsEnd: Math.max(...assets.map((e) => e.responseEnd)),
      form: mark('join-form')[0],
      microphone: mark('microphone'),
      connecting: mark('connecting')[0],
    };
  });
  await context.close();
  return { ...times, harness, wall: times.origin + times.heard - started };
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const summary = (values) =>
  `p50 ${Math.round(percentile(values, 50))} ms, p95 ${Math.round(percentile(values, 95))} ms, p99 ${Math.round(percentile(values, 99))} ms (n=${values.length})`;

try {
  console.log(`studio bench against ${base}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const { browser: hostBrowser, wav: hostWav } = await launch(440);
  // The host page's size when the figures in docs/benchmarks.md were measured (Playwright's default).
  const { host, callerLink: link } = await createShow(hostBrowser, base, {
    show: 'Bench',
    studioMode: true,
    viewport: { width: 1280, height: 720 },
  });

  // 1. Caller link opened → host heard (the caller page's meter for the host moves), on the
  // caller page's clock. What a caller waits for: navigation start → the form is ready, plus
  // Join show clicked → host heard; typing is the caller's own time, and whatever the page
  // makes a caller wait for at Join show (the microphone, say) is inside the second part.
  const { browser: joiner } = await launch(660);
  const rows = { typed: [], remembered: [] };
  for (let i = 0; i < Number(args.joins); i++) {
    for (const scenario of ['typed', 'remembered']) {
      rows[scenario].push(await timedJoin(joiner, link, `Joiner ${i}`, scenario));
      await new Promise((r) => setTimeout(r, 1_500)); // the room sees the leave; under the join rate limit
    }
  }
  const loadNow = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  for (const [scenario, joins] of Object.entries(rows)) {
    const line = (label, pick) => console.log(`  ${label}: ${summary(joins.map(pick))}`);
    console.log(
      scenario === 'typed'
        ? 'caller types a name and turns on studio mode, then clicks Join show (ms, caller page clock):'
        : 'returning caller (name remembered) clicks Join show as soon as it is there (ms, caller page clock):',
    );
    line('what the caller waits for (navigation start → form ready, + Join show → host heard)', (j) => j.form + j.heard - j.clicked);
    line('· navigation start → form ready (join form shown by the page script)', (j) => j.form);
    line('  · index.html: server time to first byte', (j) => j.htmlTtfb);
    line('  · studio.js, style.css: slower one, server time to first byte', (j) => j.assetTtfb);
    line('  · navigation start → both assets received', (j) => j.assetsEnd);
    line('· navigation start → microphone check live (own level meter runs)', (j) => j.microphone[0]);
    if (scenario === 'remembered') line("navigation start → host heard (includes the script's own delay before its click)", (j) => j.heard);
    line('· Join show clicked → host heard', (j) => j.heard - j.clicked);
    line('  · Join show clicked → room connection opened by the page', (j) => j.connecting - j.clicked);
    if (scenario === 'typed')
      line('· Studio mode clicked → microphone re-opened (own level meter runs again)', (j) => j.microphone.at(-1) - j.studioModeClicked);
    line('harness: Playwright newContext + newPage', (j) => j.harness);
    line('harness: wall clock from newContext to host heard (incl. the script filling the form)', (j) => j.wall);
  }
  console.log(`load average after the joins: ${loadNow()}`);

  // 2. Moderator mute → silence at another participant (its meter for the muted voice).
  const ann = await joinInStudioMode(550, link, 'Ann');
  const ben = await joinInStudioMode(770, link, 'Ben');
  await expectMeterMoves(ben, 'Ann level', -40, 30_000);
  const muteTimes = [];
  for (let i = 0; i < Number(args.mutes); i++) {
    await ben.evaluate(() => {
      const meter = document.querySelector('[role=meter][aria-label="Ann level"]');
      window.silentAt = new Promise((resolve) => {
        const observer = new MutationObserver(() => {
          if (Number(meter.getAttribute('aria-valuenow')) <= -55) (observer.disconnect(), resolve(Date.now()));
        });
        observer.observe(meter, { attributes: true, attributeFilter: ['aria-valuenow'] });
      });
    });
    // From the click as the host page gets it (the same machine clock as Ben's page).
    await host.evaluate(() => {
      window.clickedAt = new Promise((resolve) =>
        document.addEventListener('click', () => resolve(Date.now()), { capture: true, once: true }),
      );
    });
    await host.getByRole('button', { name: 'Mute Ann', exact: true }).click();
    muteTimes.push((await ben.evaluate(() => window.silentAt)) - (await host.evaluate(() => window.clickedAt)));
    await host.getByRole('button', { name: 'Unmute Ann', exact: true }).click();
    await expectMeterMoves(ben, 'Ann level', -40, 30_000);
  }
  console.log(`moderator mute → silent at another page: ${summary(muteTimes)} (meters update every 50 ms)`);

  // 3. The host page on air, measured as callers join (Ann and Ben are already in).
  await host.getByRole('button', { name: 'Go live' }).click();
  await host.getByRole('button', { name: 'Stop broadcast' }).waitFor();
  const names = ['Ann', 'Ben'];
  for (const step of args.steps.split(',').map(Number)) {
    while (names.length < step) {
      const name = `Caller ${names.length + 1}`;
      await joinInStudioMode(990 + 110 * names.length, link, name);
      names.push(name);
    }
    // Everyone heard on the host page before measuring (a loaded machine takes its time).
    for (const name of names.slice(0, step)) await expectMeterMoves(host, `${name} level`, -40, 180_000);
    await new Promise((r) => setTimeout(r, 5_000));
    const seconds = Number(args.seconds);
    console.log(`host page on air with ${names.length} callers: ${describeLoad(await measureBrowser(hostWav, seconds), seconds)}`);
  }
  await host.getByRole('button', { name: 'Stop broadcast' }).click();
  await ann.context().close();
  await ben.context().close();
} finally {
  await Promise.all(browsers.map((b) => b.close()));
  rmSync(dir, { recursive: true, force: true });
}
