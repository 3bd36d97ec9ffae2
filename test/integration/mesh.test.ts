// The audio mesh of the real studio page, in real Chromium (its own script and CSP, every
// page relay-only through the real coturn): what a page holds open when peers come and go,
// also while its own signaling socket is down. What the page holds is read from the DOM:
// each strip's `data-connection` (its RTCPeerConnection's state) and the console's
// `data-peer-connections` / `data-mix-voices` counts.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { createShow as createShowFrom, expectMeterMoves, joinShow, launchBrowser, toneFile } from '../page-driver.mjs';
import { expectConnected, expectText, expectVisible } from './studio-page';
import { startWorker, type RunningWorker } from './worker';

const workerUrl = () => inject('workerUrl');
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
});

const createShow = (base = workerUrl()) => createShowFrom(browser, base, { show: 'Mesh' });

const join = (link: string, name: string, setup?: (page: Page) => Promise<void>) => joinShow(browser, link, name, { setup });

const strip = (page: Page, name: string) => page.getByRole('group', { name, exact: true });

/** What the page holds open: peer connections and voices in its mix (its own included). */
async function held(page: Page): Promise<{ connections: number; voices: number }> {
  const section = page.locator('#console');
  return {
    connections: Number(await section.getAttribute('data-peer-connections')),
    voices: Number(await section.getAttribute('data-mix-voices')),
  };
}

describe('the audio mesh of the studio page', () => {
  it('a peer who leaves is hung up: strip, connection and mix voice released', { timeout: 120_000 }, async () => {
    const { host, callerLink } = await createShow();
    const ann = await join(callerLink, 'Ann');
    const walt = await join(callerLink, 'Walt');
    await expectConnected(walt, 'Ann');
    await expectConnected(walt, 'Hanna');
    expect(await held(walt)).toEqual({ connections: 2, voices: 3 });

    await ann.getByRole('button', { name: 'Leave show' }).click();
    await expect.poll(() => strip(walt, 'Ann').count(), { timeout: 15_000 }).toBe(0);
    await expect.poll(() => held(walt), { timeout: 5_000 }).toEqual({ connections: 1, voices: 2 });
    for (const page of [host, ann, walt]) await page.context().close();
  });

  it(
    'a caller whose microphone opens only after Join show is heard once it does, on the same connection',
    { timeout: 120_000 },
    async () => {
      const dir = mkdtempSync(joinPath(tmpdir(), 'openstudio-mesh-late-mic-'));
      const asking = await launchBrowser(toneFile(dir, 660), { askForMicrophone: true });
      try {
        const { host, callerLink } = await createShow();
        // The browser refuses the microphone: the caller joins listening only.
        const mia = await joinShow(asking, callerLink, 'Mia');
        await expectText(mia.getByRole('alert'), 'Your microphone could not be opened. Check that the browser may use it, then reload.');
        await expectConnected(mia, 'Hanna');
        await expectMeterMoves(mia, 'Hanna level');
        expect(await held(mia)).toEqual({ connections: 1, voices: 1 });

        // Allowed now, and studio mode picked: the microphone opens inside the show, and the
        // connection made at Join show carries it (no second connection).
        await mia.context().grantPermissions(['microphone'], { origin: new URL(workerUrl()).origin });
        await mia.getByRole('checkbox', { name: 'Studio mode' }).check();
        await expectMeterMoves(host, 'Mia level');
        await expectMeterMoves(mia, 'My level');
        expect(await held(mia)).toEqual({ connections: 1, voices: 2 });
        for (const page of [host, mia]) await page.context().close();
      } finally {
        await asking.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('a refused resume followed by a refused join stops: the sentence, and no reconnect loop', { timeout: 150_000 }, async () => {
    const { host, callerLink } = await createShow();
    let down = false;
    let current: WebSocketRoute | null = null;
    let attempts = 0; // every WebSocket the page opens to the room
    const walt = await join(callerLink, 'Walt', (page) =>
      page.routeWebSocket(/\/ws/, (route) => {
        attempts += 1;
        if (down) return void route.close({ code: 4000, reason: 'network down' });
        route.connectToServer();
        current = route;
      }),
    );
    await expectConnected(walt, 'Hanna');

    // Walt is offline past the grace period, and meanwhile the host replaces the caller link.
    down = true;
    await current!.close({ code: 4000, reason: 'network down' });
    await host.getByRole('button', { name: 'New caller link' }).click();
    await expect.poll(() => host.getByRole('textbox', { name: 'Caller link' }).inputValue()).not.toBe(callerLink);
    await expect
      .poll(() => strip(host, 'Walt').count(), { timeout: 60_000, interval: 500, message: 'the room forgets Walt after its grace period' })
      .toBe(0);

    attempts = 0;
    down = false;
    // One resume (refused: too late), one fresh join (refused: revoked), then nothing more.
    await expectText(walt.getByRole('alert'), 'This invite link has been replaced by a new one. Ask the host for the new link.', {
      timeout: 20_000,
    });
    await new Promise((r) => setTimeout(r, 8_000));
    expect(attempts, 'WebSocket attempts after the network came back').toBe(2);
    await expectText(walt.getByRole('alert'), 'This invite link has been replaced by a new one. Ask the host for the new link.');
    for (const page of [host, walt]) await page.context().close();
  });

  it('a resumed welcome reconciles: the peer who left meanwhile is hung up, the newcomer connected', { timeout: 150_000 }, async () => {
    const { host, callerLink } = await createShow();
    const ann = await join(callerLink, 'Ann');
    // The network between Walt's page and the studio: pass through, or down.
    let down = false;
    let current: WebSocketRoute | null = null;
    const walt = await join(callerLink, 'Walt', (page) =>
      page.routeWebSocket(/\/ws/, (route) => {
        if (down) return void route.close({ code: 4000, reason: 'network down' });
        route.connectToServer();
        current = route;
      }),
    );
    await expectConnected(walt, 'Ann');
    await expectConnected(walt, 'Hanna');
    expect(await held(walt)).toEqual({ connections: 2, voices: 3 });

    // Walt's signaling goes down (audio keeps flowing); meanwhile Ann leaves and Ben joins.
    down = true;
    await current!.close({ code: 4000, reason: 'network down' });
    await expectText(walt.getByRole('alert'), 'Connection lost. Restoring it…');
    await ann.getByRole('button', { name: 'Leave show' }).click();
    await expect.poll(() => strip(host, 'Ann').count(), { timeout: 15_000 }).toBe(0);
    const ben = await join(callerLink, 'Ben');
    await expectConnected(host, 'Ben');
    // While down, Walt's page still holds Ann (nobody could tell it).
    expect(await strip(walt, 'Ann').count()).toBe(1);

    down = false;
    await expect.poll(() => walt.getByRole('alert').isVisible(), { timeout: 20_000 }).toBe(false);
    await expectConnected(walt, 'Ben');
    await expect.poll(() => strip(walt, 'Ann').count(), { timeout: 10_000 }).toBe(0);
    await expect.poll(() => held(walt), { timeout: 10_000 }).toEqual({ connections: 2, voices: 3 });
    await expectConnected(ben, 'Walt');
    for (const page of [host, ann, walt, ben]) await page.context().close();
  });

  it(
    'TURN credentials are refreshed before they expire: a peer joining after the first ones expired connects through TURN',
    { timeout: 180_000 },
    async () => {
      // A Worker of this test's own whose TURN credentials live 30 s (the page refreshes them
      // every 10 s then); every page is relay-only, so a connection needs valid credentials.
      const dir = mkdtempSync(joinPath(tmpdir(), 'openstudio-mesh-ttl-'));
      const random = () => randomBytes(24).toString('hex');
      const turnHost = `127.0.0.1:${inject('turnPort')}`;
      let dev: RunningWorker | undefined;
      try {
        dev = await startWorker(
          {
            TOKEN_SECRET: random(),
            TURN_SECRET: inject('turnSecret'),
            ICECAST_SOURCE_PASSWORD: random(),
            STUN_URLS: `stun:${turnHost}`,
            TURN_URLS: `turn:${turnHost}?transport=udp,turn:${turnHost}?transport=tcp`,
            TURN_TTL_SECONDS: '30',
          },
          dir,
        );
        const { host, callerLink } = await createShow(dev.url);
        const walt = await join(callerLink, 'Walt');
        await expectConnected(walt, 'Hanna');
        // The credentials Walt's page started with expire.
        await new Promise((r) => setTimeout(r, 40_000));
        const ben = await join(callerLink, 'Ben');
        await expectConnected(ben, 'Hanna');
        await expectConnected(walt, 'Ben');
        for (const page of [host, walt, ben]) await page.context().close();
      } finally {
        await dev?.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('a caller renaming itself many times a second cannot move the Kick button from under a press', { timeout: 90_000 }, async () => {
    const { host, callerLink } = await createShow();
    const hash = new URLSearchParams(new URL(callerLink).hash.slice(1));
    // A caller as a raw WebSocket client with the public caller link's token.
    const ann = new WebSocket(`${workerUrl().replace(/^http/, 'ws')}/rooms/${hash.get('room')}/ws?token=${hash.get('token')}`, {
      headers: { 'CF-Connecting-IP': `mesh-rename-${Math.random().toString(36).slice(2)}` },
    });
    const frames: { type: string }[] = [];
    let closedWith: number | null = null;
    ann.on('message', (data) => frames.push(JSON.parse(String(data))));
    ann.on('close', (code) => (closedWith = code));
    await expect.poll(() => frames.some((f) => f.type === 'welcome'), { timeout: 15_000 }).toBe(true);
    let renames = 0;
    const rename = () => ann.send(JSON.stringify({ type: 'set-name', name: `Ann ${++renames}` }));
    rename();
    const kick = host.getByRole('button', { name: /^Kick Ann \d+$/ });
    await expectVisible(kick);
    // Renames as fast as the room lets them through (it limits name changes; the rest are refused).
    const spam = setInterval(() => ann.readyState === WebSocket.OPEN && rename(), 50);
    try {
      // Where the button is (measured on one element: a replaced one measures nothing), in view.
      await kick.scrollIntoViewIfNeeded();
      let before = await kick.elementHandle();
      let box = await before!.boundingBox();
      for (let i = 0; !box && i < 20; i++) box = await (before = await kick.elementHandle())!.boundingBox();
      await host.mouse.move(box!.x + box!.width / 2, box!.y + box!.height / 2);
      await host.mouse.down();
      // Held until the page has shown a rename (the button's name changed under the pointer).
      const pressedLabel = await before!.getAttribute('aria-label');
      await expect
        .poll(() => kick.getAttribute('aria-label'), { timeout: 15_000, message: 'a rename reaches the host page' })
        .not.toBe(pressedLabel);
      const after = await kick.elementHandle();
      expect
        .soft(await host.evaluate(([a, b]) => a === b && a.isConnected, [before!, after!] as const), 'the same Kick button after a rename')
        .toBe(true);
      await host.mouse.up();
      await expect.poll(() => closedWith, { timeout: 15_000, message: 'Ann is kicked' }).toBe(4003);
    } finally {
      clearInterval(spam);
      ann.terminate();
    }
    expect(frames.some((f) => f.type === 'kicked')).toBe(true);
    await host.context().close();
  });

  it('a waiting caller receives no staff address but relays, before and while staff talk with it', { timeout: 120_000 }, async () => {
    // The host with the default ICE policy (host and server-reflexive candidates allowed).
    const { host, callerLink } = await createShowFrom(browser, workerUrl(), { show: 'Lobby', screening: true, relay: false });
    // Every frame the waiting caller's page receives on its room socket.
    const received: any[] = [];
    const wendy = await join(callerLink, 'Wendy', async (page) => {
      page.on('websocket', (socket) => {
        if (/\/ws/.test(socket.url())) socket.on('framereceived', ({ payload }) => void received.push(JSON.parse(String(payload))));
      });
    });
    await expectText(wendy.getByRole('status', { name: 'On-air status' }), 'Waiting to be let in');
    const hostId = () => received.find((f) => f.type === 'welcome')?.participants.find((p: any) => p.role === 'host')?.peerId;
    const fromHost = (type: string) => received.filter((f) => f.type === type && f.from === hostId());
    /** Candidate lines from staff: in trickled candidates and in any SDP. */
    const candidates = () => [
      ...fromHost('ice-candidate').flatMap((f) => (f.candidate?.candidate ? [f.candidate.candidate as string] : [])),
      ...[...fromHost('answer'), ...fromHost('offer')].flatMap((f) =>
        (f.sdp as string).split(/\r?\n/).filter((line) => line.startsWith('a=candidate')),
      ),
    ];
    const notRelay = () => candidates().filter((c) => !/ typ relay( |$)/.test(c));
    // The host answered and finished gathering (end of candidates) while Wendy waits.
    await expect
      .poll(() => fromHost('ice-candidate').some((f) => f.candidate === null), { timeout: 30_000, message: 'the host finished gathering' })
      .toBe(true);
    expect(notRelay(), 'staff candidates a waiting caller received').toEqual([]);
    expect(candidates().length, 'relay candidates from the host').toBeGreaterThan(0);

    // Talking privately: they hear each other, over the relay still.
    await host.getByRole('button', { name: 'Talk to Wendy' }).click();
    await expectMeterMoves(wendy, 'Hanna level');
    await expectMeterMoves(host, 'Wendy level');
    expect(notRelay(), 'staff candidates while talking privately').toEqual([]);
    for (const page of [host, wendy]) await page.context().close();
  });
});
