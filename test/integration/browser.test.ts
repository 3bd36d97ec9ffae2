// A call-in show in real Chromium, driven through the real studio page as its users drive
// it (clicks, keys, accessible names; the page's own script and CSP). Every voice is its
// own Chromium process with its own tone as microphone; every page forces TURN (`?relay`),
// so all audio crosses the real coturn. The program is heard as a listener hears it, from
// Icecast, and measured per tone.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page, Route, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cspViolations, expectMeterMoves, launchBrowser, launchChromium, openPage, relayed, toneFile } from '../page-driver.mjs';
import { bandLevel, bandLevels, decode, expectMeterSilent, expectText, expectVisible, listen, screenshotPath } from './studio-page';
import { Listener } from './feed-client';

const TONES = { Hanna: 440, Ann: 660, Ben: 880, Wendy: 1100, Robin: 1320 } as const;
type Voice = keyof typeof TONES;
/** Band levels (dB) of a voice in the program: a tone at 100 % is about -18. */
const PRESENT_DB = -30;
const ABSENT_DB = -50;

const workerUrl = () => inject('workerUrl');
let dir: string;
const browsers: Browser[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'openstudio-tones-'));
});

afterAll(async () => {
  await Promise.all(browsers.map((b) => b.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function browserFor(voice: Voice): Promise<Browser> {
  const browser = await launchBrowser(toneFile(dir, TONES[voice]));
  browsers.push(browser);
  return browser;
}

/** A caller opens the invite link, checks the microphone in studio mode, and joins. */
async function joinAsCaller(browser: Browser, link: string, name: string, viewport?: { width: number; height: number }): Promise<Page> {
  const page = await openPage(browser, relayed(link), viewport);
  await page.getByRole('textbox', { name: 'Your name' }).fill(name);
  await page.getByRole('checkbox', { name: 'Studio mode' }).check();
  await expectMeterMoves(page, 'My level', -40);
  await page.getByRole('button', { name: 'Join show' }).click();
  return page;
}

interface ProgramLevels {
  /** Band level per voice over the whole listen. */
  mean: Record<Voice, number>;
  /** The loudest quarter second of each voice's band: a short leak shows here. */
  peak: Record<Voice, number>;
}

/** Which tones the program carries now (band level per voice). */
async function program(listenUrl: string): Promise<ProgramLevels> {
  const pcm = await listen(listenUrl);
  const per = (measure: (hz: number) => number) =>
    Object.fromEntries(Object.entries(TONES).map(([voice, hz]) => [voice, measure(hz)])) as Record<Voice, number>;
  return { mean: per((hz) => bandLevel(pcm, hz)), peak: per((hz) => Math.max(...bandLevels(pcm, hz))) };
}

function expectInProgram(levels: ProgramLevels, present: Voice[], absent: Voice[]): void {
  console.log('program band levels (dB):', levels);
  const shown = JSON.stringify(Object.fromEntries(Object.entries(levels.mean).map(([v, db]) => [v, Math.round(db)])));
  for (const voice of present) expect(levels.mean[voice], `${voice} should be in the program ${shown}`).toBeGreaterThan(PRESENT_DB);
  for (const voice of absent)
    expect(levels.peak[voice], `${voice} should not be in the program at any moment ${shown}`).toBeLessThan(ABSENT_DB);
}

/** The studio's own Content-Security-Policy (client/public/_headers), for the rogue's page too. */
const STUDIO_CSP = readFileSync(join(import.meta.dirname, '../../client/public/_headers'), 'utf8').match(
  /Content-Security-Policy: (.+)/,
)![1]!;

/**
 * A caller that ignores a moderator's mute: an attacker's own page (test/integration/rogue/),
 * served on the studio's origin under the studio's CSP, that uses the published client
 * library to send an oscillator and never turns it off. What it does cannot be trusted; the
 * pages that receive it must silence it.
 */
async function joinAsRogue(roomId: string, token: string, name: string, hz: number): Promise<Page> {
  // Its own browser: a page the test serves has no network address of its own, and
  // Chromium's local-network checks would otherwise stop it reaching the studio on loopback.
  const browser = await launchChromium(['--disable-features=LocalNetworkAccessChecks']);
  browsers.push(browser);
  const page = await (await browser.newContext()).newPage();
  const serve = (file: string, type: string) => (route: Route) =>
    route.fulfill({
      path: join(import.meta.dirname, 'rogue', file),
      headers: { 'Content-Type': type, 'Content-Security-Policy': STUDIO_CSP },
    });
  await page.route(`${workerUrl()}/rogue-caller.html`, serve('rogue.html', 'text/html; charset=utf-8'));
  await page.route(`${workerUrl()}/rogue-caller.js`, serve('rogue.js', 'text/javascript'));
  const hash = new URLSearchParams({ room: roomId, token, name, hz: String(hz) });
  await page.goto(`${workerUrl()}/rogue-caller.html#${hash}`);
  await expect.poll(() => page.locator('body').getAttribute('data-state'), { timeout: 20_000 }).toBe('joined');
  return page;
}

/**
 * A host page whose signaling (its room socket only; the program feed goes on) the test can
 * drop and let back, creating a show in studio mode; `restore` waits until the page has
 * resumed and returns when it had.
 */
async function droppableHost(browser: Browser, screening: boolean) {
  const host = await openPage(browser, `${workerUrl()}/?relay`);
  let down = false;
  let current: WebSocketRoute | null = null;
  await host.routeWebSocket(/\/ws/, (route) => {
    if (down) return void route.close({ code: 4000, reason: 'network down' });
    route.connectToServer();
    current = route;
  });
  await host.getByRole('textbox', { name: 'Show name' }).fill('Gap');
  await host.getByRole('textbox', { name: 'Your name' }).fill('Hanna');
  if (!screening) await host.getByRole('checkbox', { name: 'Screen callers' }).uncheck();
  await host.getByRole('button', { name: 'Create show' }).click();
  await host.getByRole('checkbox', { name: 'Studio mode' }).check();
  const callerLink = await host.getByRole('textbox', { name: 'Caller link' }).inputValue();
  const producerLink = await host.getByRole('textbox', { name: 'Producer link' }).inputValue();
  return {
    host,
    callerLink,
    producerLink,
    async drop(): Promise<void> {
      down = true;
      await current!.close({ code: 4000, reason: 'network down' });
      await expectText(host.getByRole('alert'), 'Connection lost. Restoring it…');
    },
    async restore(): Promise<number> {
      down = false;
      await expect.poll(() => host.getByRole('alert').isVisible(), { timeout: 20_000, message: 'the host page resumes' }).toBe(false);
      return Date.now();
    },
  };
}

/** Go live from the host page; returns the listen URL. */
async function goLive(host: Page): Promise<string> {
  await host.getByRole('button', { name: 'Go live' }).click();
  await expectText(host.getByRole('status', { name: 'On-air status' }), 'ON AIR', { contains: true, timeout: 30_000 });
  return (await host.getByRole('link', { name: 'Listen link' }).getAttribute('href'))!;
}

/**
 * A listener's recording as band levels per voice, a quarter second at a time, and the
 * quarter second at which `at` fell (what had arrived by then).
 */
function heardAround(listener: Listener, at: number): { levels: Record<Voice, number[]>; mark: number } {
  const pcm = decode(listener.recording());
  const untilAt = decode(Buffer.concat(listener.chunks.filter((c) => c.at < at).map((c) => c.bytes)));
  const levels = Object.fromEntries(Object.entries(TONES).map(([voice, hz]) => [voice, bandLevels(pcm, hz)])) as Record<Voice, number[]>;
  const mark = Math.floor(untilAt.length / 4 / 12_000);
  console.log(
    `program by quarter seconds (mark at ${mark}):`,
    Object.fromEntries(Object.entries(levels).map(([v, l]) => [v, l.map(Math.round).join(' ')])),
  );
  return { levels, mark };
}

/** Mean level (dB) of quarter-second levels. */
const meanDb = (levels: number[]) => 10 * Math.log10(levels.reduce((sum, db) => sum + 10 ** (db / 10), 0) / levels.length);

/** The program heard through a change: a listener from a second before `change` to 5 s after it. */
async function throughChange(listenUrl: string, change: () => Promise<void>): Promise<{ levels: Record<Voice, number[]>; mark: number }> {
  const listener = new Listener(listenUrl);
  try {
    await new Promise((r) => setTimeout(r, 1_000));
    const at = Date.now();
    await change();
    await new Promise((r) => setTimeout(r, 5_000));
    listener.close();
    return heardAround(listener, at);
  } finally {
    listener.close();
  }
}

/**
 * What the program carried through a change, a quarter second at a time: `stayAbsent` at no
 * moment from the change on; the change itself (the first moment `present` are in and `absent`
 * out, within a budget of 5 s: the pipeline's delay comes first) and, from then on, `absent`
 * at no moment and `present` throughout (mean).
 */
function expectThrough(
  heard: { levels: Record<Voice, number[]>; mark: number },
  expected: { present: Voice[]; absent?: Voice[]; stayAbsent?: Voice[] },
): void {
  const { levels, mark } = heard;
  const { present, absent = [], stayAbsent = [] } = expected;
  const shown = (voice: Voice, from: number) => `${voice}: ${levels[voice].slice(from).map(Math.round).join(' ')}`;
  for (const voice of stayAbsent)
    expect(Math.max(...levels[voice].slice(mark)), `${voice} at any moment from the change (${shown(voice, mark)})`).toBeLessThan(
      ABSENT_DB,
    );
  const done = levels[present[0]!].findIndex(
    (_, i) => i >= mark && present.every((v) => levels[v][i]! > PRESENT_DB) && absent.every((v) => levels[v][i]! < ABSENT_DB),
  );
  expect(done, `the change heard in the program (${[...present, ...absent].map((v) => shown(v, mark)).join('; ')})`).toBeGreaterThanOrEqual(
    0,
  );
  expect(done - mark, 'quarter seconds from the change to the program changed (budget 5 s)').toBeLessThanOrEqual(20);
  expect(levels[present[0]!].length - done, 'quarter seconds heard after the change').toBeGreaterThanOrEqual(8);
  for (const voice of absent)
    expect(Math.max(...levels[voice].slice(done)), `${voice} at any moment after the change (${shown(voice, done)})`).toBeLessThan(
      ABSENT_DB,
    );
  for (const voice of present)
    expect(meanDb(levels[voice].slice(done)), `${voice} in the program after the change`).toBeGreaterThan(PRESENT_DB);
}

describe('the studio page: a call-in show in real Chromium', () => {
  it('screening, meters, program, faders and moderator mute hold on air', { timeout: 240_000 }, async () => {
    const [hostBrowser, annBrowser, benBrowser, wendyBrowser] = await Promise.all([
      browserFor('Hanna'),
      browserFor('Ann'),
      browserFor('Ben'),
      browserFor('Wendy'),
    ]);

    // The host creates a screened show and lands in the console at once.
    const host = await openPage(hostBrowser, `${workerUrl()}/?relay`);
    await host.getByRole('textbox', { name: 'Show name' }).fill('Late Night Calls');
    await host.getByRole('textbox', { name: 'Your name' }).fill('Hanna');
    await expect.poll(() => host.getByRole('checkbox', { name: 'Screen callers' }).isChecked()).toBe(true);
    await host.getByRole('button', { name: 'Create show' }).click();
    await host.getByRole('checkbox', { name: 'Studio mode' }).check();
    const callerLink = await host.getByRole('textbox', { name: 'Caller link' }).inputValue();
    expect(callerLink).toMatch(/#room=.+&token=.+/);
    const roomId = new URL(callerLink).hash.match(/room=([^&]+)/)![1]!;
    const callerToken = decodeURIComponent(new URL(callerLink).hash.match(/token=([^&]+)/)![1]!);

    // Four callers: three get in, one stays waiting. Ann has a phone-sized screen.
    const ann = await joinAsCaller(annBrowser, callerLink, 'Ann', { width: 390, height: 844 });
    const ben = await joinAsCaller(benBrowser, callerLink, 'Ben');
    const wendy = await joinAsCaller(wendyBrowser, callerLink, 'Wendy');
    const robin = await joinAsRogue(roomId, callerToken, 'Robin', TONES.Robin);
    await expectText(wendy.getByRole('status', { name: 'On-air status' }), 'Waiting to be let in');
    for (const name of ['Ann', 'Ben', 'Robin']) await host.getByRole('button', { name: `Admit ${name}`, exact: true }).click();
    await expectVisible(host.getByRole('button', { name: 'Admit Wendy' }));

    // The pages run under their own strict CSP, and it blocks nothing of theirs.
    for (const page of [host, ann, ben, wendy]) expect(cspViolations(page)).toEqual([]);
    expect(await host.locator('header').evaluate((e) => getComputedStyle(e).display), 'the stylesheet applies').toBe('flex');

    // Every page hears every remote voice on air (meters move) and lists no waiting caller.
    await Promise.all([
      ...['Ann', 'Ben', 'Robin'].map((n) => expectMeterMoves(host, `${n} level`)),
      ...['Hanna', 'Ben', 'Robin'].map((n) => expectMeterMoves(ann, `${n} level`)),
      ...['Hanna', 'Ann', 'Robin'].map((n) => expectMeterMoves(ben, `${n} level`)),
    ]);
    for (const page of [ann, ben]) expect(await page.getByRole('group', { name: 'Wendy' }).count()).toBe(0);
    // The host and the waiting caller do not hear each other until they talk.
    await Promise.all([expectMeterSilent(host, 'Wendy level', 1_000), expectMeterSilent(wendy, 'Hanna level', 1_000)]);
    await host.screenshot({ path: screenshotPath('host-console.png'), fullPage: true, timeout: 60_000 });
    await ann.screenshot({ path: screenshotPath('caller-phone.png'), fullPage: true, timeout: 60_000 });

    // On air: the program carries every voice on air, not the waiting caller.
    await host.getByRole('button', { name: 'Go live' }).click();
    await expectText(host.getByRole('status', { name: 'On-air status' }), 'ON AIR', { contains: true, timeout: 30_000 });
    await expectVisible(host.getByRole('button', { name: 'Stop broadcast' }));
    await expectText(ann.getByRole('status', { name: 'On-air status' }), 'You are on air');
    const listenUrl = (await host.getByRole('link', { name: 'Listen link' }).getAttribute('href'))!;
    expect(listenUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    await expectMeterMoves(host, 'Program level');
    expectInProgram(await program(listenUrl), ['Hanna', 'Ann', 'Ben', 'Robin'], ['Wendy']);

    // Screening: the host talks privately with Wendy. They hear each other; the program
    // and the callers on air hear neither, from the click on.
    const talking = await throughChange(listenUrl, () => host.getByRole('button', { name: 'Talk to Wendy' }).click());
    expectThrough(talking, { present: ['Ann', 'Ben'], absent: ['Hanna'], stayAbsent: ['Wendy'] });
    await Promise.all([expectMeterMoves(wendy, 'Hanna level'), expectMeterMoves(host, 'Wendy level')]);
    await expectMeterSilent(ann, 'Hanna level');
    await host.getByRole('button', { name: 'End talk with Wendy' }).click();
    await expectMeterMoves(ann, 'Hanna level');

    // The host's fader at 0 takes Ann out of the program only: Ben still hears her.
    const annFader = host.getByRole('slider', { name: 'Ann program level' });
    await annFader.focus();
    const faded = await throughChange(listenUrl, () => annFader.press('Home'));
    expect(await annFader.inputValue()).toBe('0');
    expectThrough(faded, { present: ['Hanna', 'Ben', 'Robin'], absent: ['Ann'], stayAbsent: ['Wendy'] });
    await expectMeterMoves(ben, 'Ann level');
    await annFader.fill('100');

    // A moderator mute silences Robin in the program and at every page, though Robin's
    // own client keeps sending.
    const muted = await throughChange(listenUrl, () => host.getByRole('button', { name: 'Mute Robin' }).click());
    expectThrough(muted, { present: ['Hanna', 'Ann', 'Ben'], absent: ['Robin'], stayAbsent: ['Wendy'] });
    await expectVisible(host.getByRole('button', { name: 'Unmute Robin' }));
    await Promise.all([
      expectMeterSilent(host, 'Robin level'),
      expectMeterSilent(ann, 'Robin level'),
      expectMeterSilent(ben, 'Robin level'),
    ]);

    // Admitting Wendy brings her on air without any reload.
    const admitted = await throughChange(listenUrl, () => host.getByRole('button', { name: 'Admit Wendy' }).click());
    expectThrough(admitted, { present: ['Hanna', 'Ann', 'Ben', 'Wendy'], stayAbsent: ['Robin'] });
    await expectText(wendy.getByRole('status', { name: 'On-air status' }), 'You are on air');
    await Promise.all([expectMeterMoves(ann, 'Wendy level'), expectMeterMoves(wendy, 'Ben level'), expectMeterMoves(host, 'Wendy level')]);

    await host.getByRole('button', { name: 'Stop broadcast' }).click();
    await expectText(host.getByRole('status', { name: 'On-air status' }), 'Off air', { timeout: 30_000 });
    await robin.close();
  });

  it('the page is served with its strict Content-Security-Policy, and Chromium enforces it', { timeout: 60_000 }, async () => {
    const served = await fetch(`${workerUrl()}/`);
    expect(served.headers.get('content-security-policy'), 'the CSP header as client/public/_headers sets it').toBe(STUDIO_CSP);
    // Enforced: the same document with an inline script added on the way (the headers as
    // served) has that script refused, and the page's own script still runs.
    const browser = await launchChromium();
    browsers.push(browser);
    const page = await (await browser.newContext()).newPage();
    const refused: string[] = [];
    page.on('console', (message) => void (/Content Security Policy/i.test(message.text()) && refused.push(message.text())));
    await page.route(`${workerUrl()}/`, async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace('</body>', '<script>document.body.dataset.inline = "ran"</script></body>');
      await route.fulfill({ response, body });
    });
    await page.goto(`${workerUrl()}/`);
    await expectVisible(page.getByRole('button', { name: 'Create show' }));
    await expect.poll(() => refused.some((text) => /inline script/i.test(text)), { message: 'the inline script is refused' }).toBe(true);
    expect(await page.locator('body').getAttribute('data-inline')).toBeNull();
  });

  it(
    'a host page back from a signaling drop applies what changed meanwhile: a caller muted in the gap is out of the program from then on',
    { timeout: 240_000 },
    async () => {
      const [hostBrowser, benBrowser] = await Promise.all([browserFor('Hanna'), browserFor('Ben')]);
      const { host, callerLink, producerLink, drop, restore } = await droppableHost(hostBrowser, false);
      const roomId = new URL(callerLink).hash.match(/room=([^&]+)/)![1]!;
      const callerToken = decodeURIComponent(new URL(callerLink).hash.match(/token=([^&]+)/)![1]!);
      // Ben produces; Robin is a caller whose own page ignores any mute.
      const ben = await joinAsCaller(benBrowser, producerLink, 'Ben');
      const robin = await joinAsRogue(roomId, callerToken, 'Robin', TONES.Robin);
      await Promise.all([expectMeterMoves(host, 'Robin level'), expectMeterMoves(ben, 'Robin level')]);
      // A listener from before the drop to well after the host is back.
      const listener = new Listener(await goLive(host));
      try {
        await new Promise((r) => setTimeout(r, 4_000));

        // The host's signaling drops; meanwhile the producer mutes Robin. The host's page
        // cannot know yet: Robin is still in its program.
        await drop();
        await ben.getByRole('button', { name: 'Mute Robin' }).click();
        await expectVisible(ben.getByRole('button', { name: 'Unmute Robin' }));
        await expectMeterSilent(ben, 'Robin level', 500);
        await expectMeterMoves(host, 'Robin level');

        // Back: the welcome brings the mute.
        const resumedAt = await restore();
        await expectText(host.getByRole('group', { name: 'Robin' }).locator('.detail'), 'muted by the studio', { contains: true });
        await new Promise((r) => setTimeout(r, 6_000));
        listener.close();

        // The program as the listener heard it, a quarter second at a time: Robin in it until
        // the host was back, then out at every moment (the host's voice in it throughout).
        const { levels, mark } = heardAround(listener, resumedAt);
        const robinLevels = levels.Robin;
        const shown = (l: number[]) => l.map(Math.round).join(' ');
        expect(Math.max(...robinLevels.slice(0, mark)), 'Robin in the program during the gap').toBeGreaterThan(PRESENT_DB);
        // Where Robin went out with the host still heard (a moment where the whole program
        // dropped, a glitch on a loaded machine, is not it): searched from a second before the
        // mark (the pipeline's delay puts it after), within a budget of 5 s; from there, every
        // quarter second is checked.
        const out = robinLevels.findIndex((db, i) => i >= mark - 4 && db < ABSENT_DB && levels.Hanna[i]! > PRESENT_DB);
        expect(out, `Robin out of the program after the resume: ${shown(robinLevels.slice(mark - 4))}`).toBeGreaterThanOrEqual(0);
        expect(out - mark, 'quarter seconds from the resume to Robin out (budget 5 s)').toBeLessThanOrEqual(20);
        const after = robinLevels.slice(out);
        expect(after.length, 'quarter seconds heard after Robin went out').toBeGreaterThanOrEqual(16);
        expect(Math.max(...after), `Robin at any moment after: ${shown(after)}`).toBeLessThan(ABSENT_DB);
        expect(meanDb(levels.Hanna.slice(out)), 'the host in the program after').toBeGreaterThan(PRESENT_DB);
        // And the host page itself hears Robin no more.
        await expectMeterSilent(host, 'Robin level', 1_000);
      } finally {
        listener.close();
      }
      await host.getByRole('button', { name: 'Stop broadcast' }).click();
      for (const page of [host, ben, robin]) await page.context().close();
    },
  );

  it(
    'a host page back from a signaling drop: its private talk with a caller who left ends, a caller admitted meanwhile is on air',
    { timeout: 240_000 },
    async () => {
      const [hostBrowser, benBrowser, annBrowser, wendyBrowser] = await Promise.all([
        browserFor('Hanna'),
        browserFor('Ben'),
        browserFor('Ann'),
        browserFor('Wendy'),
      ]);
      const { host, callerLink, producerLink, drop, restore } = await droppableHost(hostBrowser, true);
      const ben = await joinAsCaller(benBrowser, producerLink, 'Ben');
      const ann = await joinAsCaller(annBrowser, callerLink, 'Ann');
      const wendy = await joinAsCaller(wendyBrowser, callerLink, 'Wendy');
      for (const page of [ann, wendy]) await expectText(page.getByRole('status', { name: 'On-air status' }), 'Waiting to be let in');
      const listenUrl = await goLive(host);
      // The host screens Wendy: off the program while they talk.
      await host.getByRole('button', { name: 'Talk to Wendy' }).click();
      await expectMeterMoves(wendy, 'Hanna level');
      const listener = new Listener(listenUrl);
      try {
        await new Promise((r) => setTimeout(r, 4_000));

        // While the host's signaling is down, Wendy leaves and the producer lets Ann in.
        await drop();
        await wendy.getByRole('button', { name: 'Leave show' }).click();
        await expect.poll(() => ben.getByRole('group', { name: 'Wendy' }).count(), { timeout: 15_000 }).toBe(0);
        await ben.getByRole('button', { name: 'Admit Ann' }).click();
        await expectText(ann.getByRole('status', { name: 'On-air status' }), 'You are on air');
        await expectMeterMoves(ben, 'Ann level');

        // Back: the host is on the program again and Ann is in it.
        const resumedAt = await restore();
        await expect.poll(() => host.locator('#talk-banner').isVisible(), { message: 'the talk banner is gone' }).toBe(false);
        await new Promise((r) => setTimeout(r, 6_000));
        listener.close();

        const { levels, mark } = heardAround(listener, resumedAt);
        const before = (l: number[]) => l.slice(Math.max(0, mark - 8), Math.max(0, mark - 4)); // the second before the last one
        expect(Math.max(...before(levels.Hanna)), 'the host off the program while talking privately').toBeLessThan(ABSENT_DB);
        expect(Math.max(...before(levels.Ann)), "Ann out of the host's program before the host was back").toBeLessThan(ABSENT_DB);
        // Both in from a moment after the resume (budget 5 s); Wendy, who only ever waited, never.
        const back = levels.Hanna.findIndex((db, i) => i >= mark - 4 && db > PRESENT_DB && levels.Ann[i]! > PRESENT_DB);
        expect(back, 'the host and Ann in the program after the resume').toBeGreaterThanOrEqual(0);
        expect(back - mark, 'quarter seconds from the resume to both in (budget 5 s)').toBeLessThanOrEqual(20);
        expect(levels.Hanna.length - back, 'quarter seconds heard after').toBeGreaterThanOrEqual(16);
        expect(meanDb(levels.Hanna.slice(back)), 'the host in the program after').toBeGreaterThan(PRESENT_DB);
        expect(meanDb(levels.Ann.slice(back)), 'Ann in the program after').toBeGreaterThan(PRESENT_DB);
        expect(Math.max(...levels.Wendy), 'Wendy at any moment').toBeLessThan(ABSENT_DB);
      } finally {
        listener.close();
      }
      await host.getByRole('button', { name: 'Stop broadcast' }).click();
      for (const page of [host, ben, ann, wendy]) await page.context().close();
    },
  );
});
