// The one page driver of the browser tests (test/integration) and the studio benches (bench/):
// Debian's Chromium with the project's flags, a tone file as fake microphone, the relay-only
// policy, and the studio page driven as its users drive it (clicks, typing, accessible names),
// its state read from what the page shows. Plain JavaScript so the benches run it on any Node.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/** @typedef {import('playwright-core').Browser} Browser */
/** @typedef {import('playwright-core').Page} Page */

// Fake media devices and no stray network (DNS lookups, updates, sync).
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
];

// Several browsers share a few cores: keep every page's timers and audio running.
const UNTHROTTLED = [
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/**
 * Chromium with the project's flags and `extraArgs`. `askForMicrophone`: no fake permission
 * prompt, so (headless) the microphone is refused until the context grants it.
 * @param {string[]} [extraArgs]
 * @returns {Promise<Browser>}
 */
export function launchChromium(extraArgs = [], { askForMicrophone = false } = {}) {
  const args = askForMicrophone ? CHROMIUM_ARGS.filter((arg) => arg !== '--use-fake-ui-for-media-stream') : CHROMIUM_ARGS;
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: [...args, ...extraArgs] });
}

/**
 * An audio file made by ffmpeg from a lavfi source (`sine=…`, `aevalsrc=…`, `anullsrc`),
 * mono, with `outputArgs` (a codec, a length) before the file name.
 * @param {string} file
 * @param {string} source
 * @param {string[]} [outputArgs]
 */
export function makeAudioFile(file, source, outputArgs = []) {
  const made = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', source, '-ac', '1', ...outputArgs, file]);
  if (made.status !== 0) throw new Error(`ffmpeg: ${made.stderr}`);
  return file;
}

/** A 20 s sine (the fake capture loops it) as a WAV file in `dir`. */
export function toneFile(dir, hz) {
  return makeAudioFile(join(dir, `tone-${hz}.wav`), `sine=frequency=${hz}:sample_rate=48000:duration=20`);
}

/**
 * Waits until `page`'s connection to `name` is connected (the strip's RTCPeerConnection
 * state), for the benches; the tests use studio-page.ts's `expectConnected`.
 */
export async function waitConnected(page, name, timeoutMs = 30_000) {
  const strip = page.getByRole('group', { name, exact: true });
  const end = Date.now() + timeoutMs;
  while ((await strip.getAttribute('data-connection', { timeout: 1_000 }).catch(() => null)) !== 'connected') {
    if (Date.now() > end) throw new Error(`${name} never connected`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One voice: a Chromium process, never throttled, whose microphone plays `wav` (or Chromium's
 * own beep without one). `askForMicrophone`: pages may use it only once their context grants it.
 * @param {string} [wav]
 * @returns {Promise<Browser>}
 */
export function launchBrowser(wav, options = {}) {
  return launchChromium(wav ? [...UNTHROTTLED, `--use-file-for-fake-audio-capture=${wav}`] : UNTHROTTLED, options);
}

/** The same link with `?relay`: the page then connects through TURN only. */
export function relayed(link) {
  const url = new URL(link);
  url.search = '?relay';
  return url.toString();
}

/** @type {WeakMap<Page, string[]>} */
const violations = new WeakMap();

/**
 * A page in a fresh context, watched for script errors and Content-Security-Policy refusals.
 * @param {Browser} browser
 * @returns {Promise<Page>}
 */
export async function openPage(browser, url, viewport = { width: 1280, height: 900 }) {
  const page = await (await browser.newContext({ viewport })).newPage();
  /** @type {string[]} */
  const refused = [];
  violations.set(page, refused);
  page.on('pageerror', (error) => console.error('page error:', error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) refused.push(message.text());
  });
  await page.goto(url);
  return page;
}

/** What the page's CSP refused so far (console reports of violations). @param {Page} page */
export function cspViolations(page) {
  return violations.get(page) ?? [];
}

/**
 * Host Hanna creates a show from the page (relay-only unless `relay: false`; in studio mode
 * with `studioMode`); returns the page and its caller link.
 * @param {Browser} browser
 * @returns {Promise<{ host: Page; callerLink: string }>}
 */
export async function createShow(
  browser,
  base,
  { show = 'Show', screening = false, relay = true, studioMode = false, viewport = undefined } = {},
) {
  const host = await openPage(browser, relay ? `${base}/?relay` : `${base}/`, viewport);
  await host.getByRole('textbox', { name: 'Show name' }).fill(show);
  await host.getByRole('textbox', { name: 'Your name' }).fill('Hanna');
  if (!screening) await host.getByRole('checkbox', { name: 'Screen callers' }).uncheck();
  await host.getByRole('button', { name: 'Create show' }).click();
  if (studioMode) await host.getByRole('checkbox', { name: 'Studio mode' }).check();
  const callerLink = await host.getByRole('textbox', { name: 'Caller link' }).inputValue();
  return { host, callerLink };
}

/**
 * A caller opens the link (relay-only) in a fresh context and joins (in studio mode with
 * `studioMode`); `setup` runs before the page loads.
 * @param {Browser} browser
 * @param {{ setup?: (page: Page) => Promise<void>; studioMode?: boolean }} [options]
 * @returns {Promise<Page>}
 */
export async function joinShow(browser, link, name, { setup, studioMode = false } = {}) {
  const page = await (await browser.newContext()).newPage();
  await setup?.(page);
  await page.goto(relayed(link));
  await page.getByRole('textbox', { name: 'Your name' }).fill(name);
  if (studioMode) await page.getByRole('checkbox', { name: 'Studio mode' }).check();
  await page.getByRole('button', { name: 'Join show' }).click();
  return page;
}

/**
 * The meter's level and held peak in dBFS (aria-valuenow, aria-valuetext "L dBFS, peak P dBFS").
 * @param {Page} page
 * @returns {Promise<{ level: number; peak: number }>}
 */
export async function meterReading(page, name) {
  const meter = page.getByRole('meter', { name, exact: true });
  const [now, text] = await Promise.all([
    meter.getAttribute('aria-valuenow', { timeout: 5_000 }),
    meter.getAttribute('aria-valuetext', { timeout: 5_000 }),
  ]);
  const level = Number(now);
  const peak = /peak (-?\d+)/.exec(text ?? '')?.[1];
  return { level, peak: peak === undefined ? level : Number(peak) };
}

/** @param {Page} page */
export async function meterValue(page, name) {
  return (await meterReading(page, name)).level;
}

/**
 * Waits until the meter reads above `db` (the voice is heard), read every 250 ms; a meter not
 * shown yet is read again.
 * @param {Page} page
 */
export async function expectMeterMoves(page, name, db = -40, timeout = 20_000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      if ((await meterValue(page, name)) > db) return;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= end) throw new Error(`${name} should move; the page shows: ${await describePage(page)}`, { cause: last });
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** What a page shows: its notice, every meter and every strip (for failure messages). @param {Page} page */
export function describePage(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('#notice, #my-role, [role=meter], .strip .detail')]
      .map((e) => `${e.getAttribute('aria-label') ?? e.id ?? ''}=${e.getAttribute('aria-valuenow') ?? e.textContent}`)
      .join(' | '),
  );
}
