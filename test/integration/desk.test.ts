// The producer's desk in real Chromium, the real page: talkback heard in its listener's ears
// and nowhere else (the program judged at Icecast, a caller's ears by its meter), hold,
// messages shown as text, and mute all. Each voice its own Chromium and tone.
import { describe, expect, inject, it } from 'vitest';
import { createShow, cspViolations, expectMeterMoves, joinShow } from '../page-driver.mjs';
import { takes, trackPcm, trackStatus } from './recordings';
import { bandLevel, bandLevels, expectConnected, expectMeterSilent, expectText, listen, toneBrowsers } from './studio-page';

const workerUrl = () => inject('workerUrl');
const TONES = { host: 440, producer: 660, ann: 880 } as const;
const { browsers } = toneBrowsers(TONES);

/** Host Hanna (on air), producer Pat and caller Ann, all in studio mode (tones pass whole). */
async function onAirShow() {
  const { host, callerLink } = await createShow(browsers.host!, workerUrl(), { show: 'Desk', studioMode: true });
  const producerLink = await host.getByRole('textbox', { name: 'Producer link' }).inputValue();
  const pat = await joinShow(browsers.producer!, producerLink, 'Pat', { studioMode: true });
  const ann = await joinShow(browsers.ann!, callerLink, 'Ann', { studioMode: true });
  for (const [page, names] of [
    [host, ['Pat', 'Ann']],
    [pat, ['Hanna', 'Ann']],
    [ann, ['Hanna', 'Pat']],
  ] as const) {
    for (const name of names) await expectConnected(page, name);
  }
  await host.getByRole('button', { name: 'Go live' }).click();
  await expectText(host.getByRole('status', { name: 'On-air status' }), 'ON AIR', { contains: true, timeout: 30_000 });
  const listenUrl = (await host.getByRole('link', { name: 'Listen link' }).getAttribute('href'))!;
  return { host, pat, ann, listenUrl };
}

describe("the producer's desk", () => {
  it(
    'talkback to the host: in the host’s ears only; not in the program, not in a caller’s ears; the host stays on air',
    { timeout: 180_000 },
    async () => {
      const { host, pat, ann, listenUrl } = await onAirShow();
      // Recorded too: the talkback must stay off every track.
      await host.getByRole('button', { name: 'Start recording' }).click();
      const before = await listen(listenUrl, 4, 2);
      expect(bandLevel(before, TONES.producer), 'Pat in the program before').toBeGreaterThan(-45);

      const talk = pat.getByRole('button', { name: 'Talk back to Hanna', exact: true });
      await talk.click();
      const talkFrom = Date.now();
      await expect.poll(() => talk.getAttribute('aria-pressed')).toBe('true');
      await expectText(host.getByRole('status', { name: 'Talkback status' }), 'Pat talking to you');
      await expectMeterMoves(host, 'Pat level');
      await expectMeterSilent(ann, 'Pat level');
      const during = await listen(listenUrl, 5, 3);
      const hostLevel = bandLevel(during, TONES.host);
      expect(hostLevel, 'the host in the program during the talkback').toBeGreaterThan(-45);
      expect(bandLevel(during, TONES.producer), 'Pat in the program during the talkback').toBeLessThan(hostLevel - 30);
      // Ann's status says nothing: it is not her talkback.
      await expectText(ann.getByRole('status', { name: 'Talkback status' }), '');

      const talkTo = Date.now();
      await talk.click();
      await expectText(host.getByRole('status', { name: 'Talkback status' }), '');
      await expectMeterMoves(ann, 'Pat level');
      const after = await listen(listenUrl, 4, 2);
      expect(bandLevel(after, TONES.producer), 'Pat back in the program').toBeGreaterThan(-45);

      // The tape: Pat's own track and the program hold no Pat while the talkback ran, and the host throughout.
      await host.getByRole('button', { name: 'Stop recording' }).click();
      for (const name of ['Hanna', 'Pat', 'Ann', 'Program']) {
        await expectText(trackStatus(host, name), 'complete', { timeout: 30_000 });
      }
      const [take] = await takes(host);
      const span = (levels: number[]) =>
        levels.slice(Math.ceil((talkFrom + 500 - take!.startedAt) / 250), Math.floor((talkTo - take!.startedAt) / 250));
      const program = await trackPcm(take!, 'Program');
      // Pat's tone would be about -18 dB (studio mode). Nine quarter seconds in ten must be
      // silent and none loud: a gate's click or a frame skipped under load is one quarter second.
      const loudest = (levels: number[]) => Math.max(...levels);
      const mostly = (levels: number[]) => [...levels].sort((a, b) => a - b)[Math.floor(levels.length * 0.9)]!;
      const absent = (levels: number[], what: string) => {
        expect(mostly(levels), `${what}, nine quarter seconds in ten`).toBeLessThan(-70);
        expect(loudest(levels), `${what}, the loudest quarter second`).toBeLessThan(-45);
      };
      absent(span(bandLevels(program, TONES.producer)), 'Pat in the program track during the talkback');
      expect(Math.min(...span(bandLevels(program, TONES.host))), 'the host in the program track during the talkback').toBeGreaterThan(-45);
      absent(span(bandLevels(await trackPcm(take!, 'Pat'), TONES.producer)), "Pat's own track during the talkback");
      for (const name of ['Hanna', 'Ann']) absent(span(bandLevels(await trackPcm(take!, name), TONES.producer)), `Pat in ${name}'s track`);
      for (const page of [host, pat, ann]) await page.context().close();
    },
  );

  it('talk back to everyone, hold and admit, a message shown as text, mute all callers', { timeout: 180_000 }, async () => {
    const { host, pat, ann, listenUrl } = await onAirShow();
    // Everyone on air hears Pat in their ears, also while she is muted on air; the program does not.
    await pat.getByRole('button', { name: 'Mute me' }).click();
    await expectMeterSilent(ann, 'Pat level');
    await pat.getByRole('button', { name: 'Talk back to everyone', exact: true }).click();
    for (const page of [host, ann]) await expectText(page.getByRole('status', { name: 'Talkback status' }), 'Pat talking to you');
    await expectMeterMoves(ann, 'Pat level');
    const during = await listen(listenUrl, 5, 3);
    expect(bandLevel(during, TONES.producer), 'Pat in the program during talkback to everyone').toBeLessThan(
      bandLevel(during, TONES.host) - 30,
    );
    await pat.getByRole('button', { name: 'Talk back to everyone', exact: true }).click();
    await expectText(ann.getByRole('status', { name: 'Talkback status' }), '');
    // Let go, she is muted on air again: nobody hears her.
    await expectMeterSilent(ann, 'Pat level');

    // Hold: Ann leaves the program and hears nothing of the show, without a reload; Admit brings her back.
    await host.getByRole('button', { name: 'Hold Ann', exact: true }).click();
    await expectText(ann.locator('#my-role'), 'You are waiting to be let into the show. Someone from the studio will talk with you first.');
    await expectMeterSilent(pat, 'Ann level');
    await expect.poll(() => ann.getByRole('group', { name: 'Hanna', exact: true }).count(), { timeout: 10_000 }).toBe(1);
    await expectMeterSilent(ann, 'Hanna level');
    await expectMeterSilent(ann, 'Pat level');
    const held = await listen(listenUrl, 4, 2);
    expect(bandLevel(held, TONES.ann), 'Ann in the program while held').toBeLessThan(bandLevel(held, TONES.host) - 30);
    // The screening queue shows how long she waits.
    const detail = host.getByRole('group', { name: 'Ann', exact: true }).locator('.detail');
    await expect.poll(() => detail.textContent(), { timeout: 5_000 }).toMatch(/waiting \d+:\d\d/);
    // It counts: read again two seconds later, it says more.
    const seconds = (text: string | null) => {
      const [, m, s] = /waiting (\d+):(\d\d)/.exec(text ?? '') ?? [];
      return Number(m) * 60 + Number(s);
    };
    const first = seconds(await detail.textContent());
    await new Promise((r) => setTimeout(r, 2_000));
    expect(seconds(await detail.textContent())).toBeGreaterThan(first);
    // While she waits, a message ("you're next", and one that looks like markup) arrives as
    // those characters; nothing runs.
    await pat.getByRole('textbox', { name: 'Message to Ann', exact: true }).fill("you're next, about two minutes");
    await pat.getByRole('button', { name: 'Send to Ann', exact: true }).click();
    await expectText(ann.getByRole('log', { name: 'Messages from the studio' }), "Pat: you're next, about two minutes");
    const markup = '<img src=x onerror="document.title=\'pwned\'">';
    await pat.getByRole('textbox', { name: 'Message to Ann', exact: true }).fill(markup);
    await pat.getByRole('button', { name: 'Send to Ann', exact: true }).click();
    await expectText(ann.getByRole('log', { name: 'Messages from the studio' }), `Pat: you're next, about two minutesPat: ${markup}`);
    expect(await ann.getByRole('log', { name: 'Messages from the studio' }).locator('img').count()).toBe(0);
    expect(await ann.title()).toBe('OpenStudio');
    expect(cspViolations(ann)).toEqual([]);
    // The staff chat and the note: staff only.
    await host.getByRole('textbox', { name: 'Message to staff' }).fill('thirty seconds to the break');
    await host.getByRole('button', { name: 'Send to staff' }).click();
    await expectText(pat.getByRole('log', { name: 'Staff chat' }), 'thirty seconds to the break', { contains: true });
    await pat.getByRole('textbox', { name: 'Note on Ann', exact: true }).fill('Ann from Dayton, the bridge');
    await pat.getByRole('textbox', { name: 'Note on Ann', exact: true }).blur();
    await expect
      .poll(() => host.getByRole('textbox', { name: 'Note on Ann', exact: true }).inputValue(), { timeout: 10_000 })
      .toBe('Ann from Dayton, the bridge');
    expect(await ann.getByText('thirty seconds').count()).toBe(0);
    expect(await ann.getByText('Dayton').count()).toBe(0);

    await host.getByRole('button', { name: 'Admit Ann', exact: true }).click();
    await expectText(ann.locator('#my-role'), 'You are in the show as caller.');
    await expectMeterMoves(ann, 'Hanna level');
    await expectMeterMoves(pat, 'Ann level');

    // Mute all callers: silence from Ann in the program and at every receiver.
    await host.getByRole('button', { name: 'Mute all callers' }).click();
    await expectMeterSilent(pat, 'Ann level');
    await expectMeterSilent(host, 'Ann level');
    const muted = await listen(listenUrl, 4, 2);
    expect(bandLevel(muted, TONES.ann), 'Ann in the program after mute all').toBeLessThan(bandLevel(muted, TONES.host) - 30);
    for (const page of [host, pat, ann]) await page.context().close();
  });
});
