// Every way the studio can keep someone out, as the person sees it: a plain sentence in the
// real page (its own script and CSP), driven by clicks in real Chromium.
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { signToken } from '../../worker/tokens';
import { createShow as createShowFrom, joinShow, launchBrowser, openPage } from '../page-driver.mjs';
import { expectText, expectVisible } from './studio-page';

const workerUrl = () => inject('workerUrl');
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
});

const createShow = (screening = false) => createShowFrom(browser, workerUrl(), { show: 'Refusals', screening });

const join = (link: string, name: string, setup?: (page: Page) => Promise<void>) => joinShow(browser, link, name, { setup });

const notice = (page: Page) => page.getByRole('alert');

describe('refusals and a lost connection, as the page says them', () => {
  it('kicked, invite revoked, invite expired, show ended', { timeout: 90_000 }, async () => {
    const { host, callerLink } = await createShow();
    const carl = await join(callerLink, 'Carl');
    await host.getByRole('button', { name: 'Kick Carl' }).click();
    await expectText(notice(carl), 'You were removed from the show.');

    // "New caller link" revokes the old one.
    await host.getByRole('button', { name: 'New caller link' }).click();
    await expect.poll(() => host.getByRole('textbox', { name: 'Caller link' }).inputValue()).not.toBe(callerLink);
    const late = await join(callerLink, 'Late');
    await expectText(notice(late), 'This invite link has been replaced by a new one. Ask the host for the new link.');

    // An invite past its expiry.
    const roomId = new URL(callerLink).hash.match(/room=([^&]+)/)![1]!;
    const { token } = await signToken(inject('tokenSecret'), { roomId, role: 'producer', generation: 0 }, -60);
    const stale = await join(`${workerUrl()}/#room=${roomId}&token=${encodeURIComponent(token)}`, 'Stale');
    await expectText(notice(stale), 'This invite link has expired or is not valid. Ask the host for a new one.');

    // The host ends the show: everyone still in it is told.
    const newLink = await host.getByRole('textbox', { name: 'Caller link' }).inputValue();
    const dora = await join(newLink, 'Dora');
    await expectVisible(host.getByRole('group', { name: 'Dora' }));
    await host.getByRole('button', { name: 'End show' }).click();
    await expectText(notice(dora), 'The host has ended the show.');
    for (const page of [host, carl, late, stale, dora]) await page.context().close();
  });

  it('room full', { timeout: 60_000 }, async () => {
    const created = await fetch(`${workerUrl()}/rooms`, {
      method: 'POST',
      headers: { 'CF-Connecting-IP': 'refusals-full' },
      body: '{"maxParticipants":2}',
    });
    const room = (await created.json()) as { roomId: string; tokens: Record<string, string> };
    // Callers take every seat a caller may take.
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 16; i++) {
      const socket = new WebSocket(`${workerUrl().replace(/^http/, 'ws')}/rooms/${room.roomId}/ws?token=${room.tokens.caller}`, {
        headers: { 'CF-Connecting-IP': `refusals-full-${i}` },
      });
      sockets.push(socket);
      const first = await new Promise<any>((resolve) => socket.once('message', (data) => resolve(JSON.parse(String(data)))));
      if (first.type === 'error') break;
    }
    const page = await join(`${workerUrl()}/#room=${room.roomId}&token=${encodeURIComponent(room.tokens.caller!)}`, 'Eve');
    await expectText(notice(page), 'This show is full right now. Try again in a little while.');
    for (const socket of sockets) socket.close();
    await page.context().close();
  });

  it('a lost connection is said, restored, and a join refused for its rate says it retries', { timeout: 60_000 }, async () => {
    const { host, callerLink } = await createShow();
    // The network between the caller's page and the studio: pass through, cut, or refuse.
    let mode: 'pass' | 'down' | 'rate-limited' = 'rate-limited';
    let current: WebSocketRoute | null = null;
    const fay = await join(callerLink, 'Fay', (page) =>
      page.routeWebSocket(/\/ws/, (route) => {
        if (mode === 'pass') {
          route.connectToServer();
          current = route;
        } else if (mode === 'rate-limited') {
          route.send(JSON.stringify({ type: 'error', code: 'rate-limited', message: 'too many joins from this client' }));
          route.close({ code: 1013, reason: 'try again later' });
        } else route.close({ code: 4000, reason: 'network down' });
      }),
    );
    await expectText(notice(fay), 'Too many attempts to join from your network. Trying again in a moment…');
    mode = 'pass';
    const fayOnHost = host.getByRole('group', { name: 'Fay' }).locator('.detail');
    await expectText(fayOnHost, 'connected', { contains: true, timeout: 20_000 });
    await expect.poll(() => notice(fay).isVisible()).toBe(false);

    // The connection drops and stays down a while: the page says so, then recovers by itself.
    mode = 'down';
    await current!.close({ code: 4000, reason: 'network down' });
    await expectText(notice(fay), 'Connection lost. Restoring it…');
    await new Promise((r) => setTimeout(r, 1_500));
    await expectText(notice(fay), 'Connection lost. Restoring it…');
    mode = 'pass';
    await expect.poll(() => notice(fay).isVisible(), { timeout: 20_000 }).toBe(false);
    await expectText(fayOnHost, 'caller · connected');
    for (const page of [host, fay]) await page.context().close();
  });

  it('a feed refused for now waits as long as it is told, sends nothing, and is live only once accepted', { timeout: 90_000 }, async () => {
    const { host } = await createShow();
    // The feed endpoint as the Worker answers a transient refusal (accept, error frame with
    // the wait, close 1013), twice; the first refusal only after holding the socket 3 s.
    // The third attempt is accepted.
    const RETRY_AFTER_S = 2;
    const attempts: { openedAt: number; closedAt?: number; audioFrames: number }[] = [];
    await host.routeWebSocket(/\/broadcast/, (route) => {
      const attempt: { openedAt: number; closedAt?: number; audioFrames: number } = { openedAt: Date.now(), audioFrames: 0 };
      attempts.push(attempt);
      route.onMessage((message) => {
        if (typeof message !== 'string') attempt.audioFrames += 1;
      });
      const refuse = () => {
        route.send(
          JSON.stringify({
            type: 'error',
            code: 'rate-limited',
            message: 'too many joins from this client',
            retryAfterSeconds: RETRY_AFTER_S,
          }),
        );
        void route.close({ code: 1013, reason: 'try again later' });
        attempt.closedAt = Date.now();
      };
      if (attempts.length === 1) setTimeout(refuse, 3_000);
      else if (attempts.length === 2) refuse();
      else route.send(JSON.stringify({ type: 'feed-accepted', broadcastId: 'accepted' }));
    });
    const broadcaster = () => host.locator('#console').getAttribute('data-broadcaster');
    await host.getByRole('button', { name: 'Go live' }).click();
    // An open socket without `feed-accepted` is not a feed: not live, and no audio sent.
    await expect.poll(() => attempts.length).toBe(1);
    for (let i = 0; i < 10; i++) {
      expect(await broadcaster(), 'before the feed accepted it').not.toBe('live');
      await new Promise((r) => setTimeout(r, 200));
    }
    await expect.poll(() => attempts.length, { timeout: 30_000 }).toBe(3);
    await expect.poll(broadcaster, { timeout: 10_000 }).toBe('live');
    for (let i = 1; i < attempts.length; i++) {
      const waited = attempts[i]!.openedAt - attempts[i - 1]!.closedAt!;
      expect(waited, `wait before attempt ${i + 1} (ms)`).toBeGreaterThanOrEqual(RETRY_AFTER_S * 1000 - 100);
    }
    expect(attempts.map((a) => a.audioFrames).slice(0, 2), 'audio sent on refused sockets').toEqual([0, 0]);
    await expect.poll(() => attempts[2]!.audioFrames, { timeout: 10_000, message: 'audio once accepted' }).toBeGreaterThan(0);
    await host.getByRole('button', { name: 'Stop broadcast' }).click();
    await host.context().close();
  });

  it('a show that could not be created holds no audio context for it', { timeout: 60_000 }, async () => {
    const page = await openPage(browser, `${workerUrl()}/?relay`);
    // Chromium's own count of the page's audio contexts (DevTools' Web Audio domain).
    const open = new Set<string>();
    const cdp = await page.context().newCDPSession(page);
    cdp.on('WebAudio.contextCreated', ({ context }) => void open.add(context.contextId));
    cdp.on('WebAudio.contextChanged', ({ context }) => void (context.contextState === 'closed' && open.delete(context.contextId)));
    cdp.on('WebAudio.contextWillBeDestroyed', ({ contextId }) => void open.delete(contextId));
    await cdp.send('WebAudio.enable');
    let refused = 0;
    await page.route(`${workerUrl()}/rooms`, (route) => {
      if (route.request().method() !== 'POST' || refused >= 4) return route.continue();
      refused += 1;
      return route.fulfill({ status: 503, json: { error: { code: 'unavailable', message: 'the studio is busy' } } });
    });
    await page.getByRole('textbox', { name: 'Show name' }).fill('Refused');
    for (let i = 1; i <= 4; i++) {
      await page.getByRole('button', { name: 'Create show' }).click();
      await expect.poll(() => refused).toBe(i);
      await expectText(notice(page), 'The show could not be created: the studio is busy.');
    }
    expect(open.size, 'audio contexts after four refused tries').toBeLessThanOrEqual(1);
    // The fifth try is created, with the same one.
    await page.getByRole('button', { name: 'Create show' }).click();
    await expectVisible(page.getByRole('textbox', { name: 'Caller link' }));
    expect(open.size, 'audio contexts in the console').toBe(1);
    await page.context().close();
  });
});
