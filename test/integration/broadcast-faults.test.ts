// A show stays on air through what a live show meets, with nobody touching anything:
// Icecast killed and started again, Icecast frozen, the broadcaster's connection dropping,
// the Worker (wrangler dev) restarting (listeners wait on their show's own fill meanwhile).
// Only this run's own Icecast and wrangler are touched (their pids from this run's state), and
// every fault is undone by the test.
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  createRoom,
  decodes,
  heardAgain,
  icecastMounts,
  icecastPid,
  lastSeconds,
  Listener,
  logicalStreams,
  NodeBroadcaster,
  startIcecastAgain,
  startIcecastAgainAsync,
  STATION_FILL_TONE,
  toneLevel,
  until,
  watchRoom,
} from './feed-client';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function onAir(frequency = 440, format: 'ogg' | 'webm' = 'ogg') {
  const room = await createRoom();
  const watcher = await watchRoom(room.roomId, room.tokens.host!);
  const show = new NodeBroadcaster(room.roomId, room.tokens.host!, frequency, undefined, format).start();
  cleanups.push(() => (show.stop(), watcher.socket.close()));
  const live = await until(() => watcher.states.find((s) => s.broadcast.state === 'live')?.broadcast, 'live', 20_000);
  return { room, watcher, show, listenUrl: live.listenUrl as string };
}

/** Band level of a tone that was never there (a present one is above -35 dB). */
const ABSENT_DB = -50;
/** How long the Worker stays down in the restart tests: listeners wait on the fill meanwhile. */
const DOWN_MS = 5_000;
const mountOf = (listenUrl: string) => new URL(listenUrl).pathname;

const statesSince = (watcher: { states: { at: number; broadcast: any }[] }, at: number) =>
  watcher.states.filter((s) => s.at >= at).map((s) => s.broadcast);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** From durable-objects/feed.ts (a module that loads only in workerd). */
const MAX_EARLY_MS = 300;

describe('a show stays on air through faults', () => {
  it(
    'Icecast killed mid-show and started again: heard again within 10 s, reconnecting then live, nobody clicked',
    { timeout: 90_000 },
    async () => {
      const { watcher, show, listenUrl } = await onAir();
      const killedAt = Date.now();
      process.kill(icecastPid(), 'SIGKILL');
      cleanups.push(() => startIcecastAgain()); // whatever happens below, Icecast comes back
      const left = await until(() => statesSince(watcher, killedAt).find((b) => b.state === 'reconnecting'), 'reconnecting');
      expect(left.reason).toMatch(/streaming server/);
      await new Promise((r) => setTimeout(r, 2_000));
      startIcecastAgain();
      const backAt = Date.now();
      const heardAt = await heardAgain(listenUrl, 440, 10_000);
      console.log(`Icecast restart: program heard again ${heardAt - backAt} ms after Icecast was back`);
      const after = statesSince(watcher, killedAt).map((b) => b.state);
      expect(after.indexOf('live')).toBeGreaterThan(after.indexOf('reconnecting'));
      expect(show.connects).toBe(1); // the broadcaster's socket survived
      expect(show.streams).toBe(1); // and its recorder: the feed begins the new source with the headers it kept
    },
  );

  it(
    'Icecast down 6 s while the broadcaster keeps sending: after the reconnect the program is not behind live (old audio is not replayed)',
    { timeout: 90_000 },
    async () => {
      const { watcher, listenUrl } = await onAir(440);
      const killedAt = Date.now();
      process.kill(icecastPid(), 'SIGKILL');
      cleanups.push(() => startIcecastAgain());
      await until(() => statesSince(watcher, killedAt).find((b) => b.state === 'reconnecting'), 'reconnecting');
      await sleep(6_000); // the broadcaster's encoder runs on in real time meanwhile
      await startIcecastAgainAsync();
      const back = await until(() => watcher.states.find((s) => s.at > killedAt && s.broadcast.state === 'live'), 'live again', 20_000);
      const listener = new Listener(listenUrl);
      cleanups.push(() => listener.close());
      await sleep(4_000);
      listener.close();
      // The new source's stream began when the feed went live again. Its granule position is all
      // the audio sent on it; more than the time since is audio listeners hear late.
      const stream = logicalStreams(listener.recording()).at(-1)!;
      const sentS = stream.pages.at(-1)!.granule / 48_000;
      const elapsedS = (listener.chunks.at(-1)!.at - back.at) / 1_000;
      console.log(`after an Icecast reconnect: ${sentS.toFixed(2)} s of audio sent in ${elapsedS.toFixed(2)} s`);
      expect(sentS - elapsedS).toBeLessThan(MAX_EARLY_MS / 1_000 + 1); // budget: what is kept, and a second of slack
    },
  );

  it(
    'Icecast frozen for 20 s: the state leaves live within 10 s, the show recovers after, and a listener from before is still there',
    { timeout: 90_000 },
    async () => {
      const { watcher, listenUrl } = await onAir();
      const listener = new Listener(listenUrl);
      cleanups.push(() => listener.close());
      await until(() => (listener.bytesSince(0) > 4_000 ? true : undefined), 'a listener hearing the show');
      const pid = icecastPid();
      const frozenAt = Date.now();
      process.kill(pid, 'SIGSTOP');
      cleanups.push(() => process.kill(pid, 'SIGCONT'));
      // At the show's own rate, socket buffers take the audio for a long while: the liveness
      // probe (statistics unanswered) is what notices.
      const left = await until(() => statesSince(watcher, frozenAt).find((b) => b.state !== 'live'), 'leaving live', 15_000);
      const leftAfterMs = watcher.states.find((s) => s.broadcast === left)!.at - frozenAt;
      console.log(`Icecast frozen: left live after ${leftAfterMs} ms (${left.state}: ${left.reason})`);
      expect(leftAfterMs).toBeLessThan(10_000);
      await new Promise((r) => setTimeout(r, Math.max(0, frozenAt + 20_000 - Date.now())));
      process.kill(pid, 'SIGCONT');
      const thawedAt = Date.now();
      // Live again (a new source, a fresh stream), then heard on the listen URL.
      await until(() => (statesSince(watcher, thawedAt).some((b) => b.state === 'live') ? true : undefined), 'live again', 30_000);
      const heardAt = await heardAgain(listenUrl, 440, 15_000);
      console.log(`Icecast thawed: live again and heard ${heardAt - thawedAt} ms later`);
      // The listener from before the freeze was moved to the show's fill and back: still there, hearing the show.
      const since = Date.now();
      await until(() => (listener.bytesSince(since) > 8_000 ? true : undefined), 'the listener from before hearing the show again', 15_000);
      expect(listener.ended).toBe(false);
      expect(toneLevel(lastSeconds(listener.recording(), 1.5), 440)).toBeGreaterThan(-35);
    },
  );

  // Away longer than Icecast's source-timeout (10 s): only the feed's silence keeps the mount,
  // and its listeners, alive. WebM is what Chromium records: a new recorder is a new file.
  it.each(['ogg', 'webm'] as const)(
    'the broadcaster (%s) is away 12 s: it reconnects by itself; a listener connected before stays connected, hears silence, then the show, in one stream',
    { timeout: 90_000 },
    async (format) => {
      const { watcher, show, listenUrl } = await onAir(550, format);
      const listener = new Listener(listenUrl);
      cleanups.push(() => listener.close());
      await until(() => (listener.bytesSince(0) > 8_000 ? true : undefined), 'the listener hearing the show');
      const droppedAt = Date.now();
      show.dropConnection(12_000);
      await until(() => (show.connects >= 2 ? true : undefined), 'the broadcaster to reconnect', 30_000);
      const backAt = Date.now();
      await until(
        () =>
          statesSince(watcher, backAt).some((b) => b.state === 'live') || watcher.states.at(-1)?.broadcast.state === 'live'
            ? true
            : undefined,
        'live again',
      );
      const resumedAt = Date.now();
      await until(() => (listener.bytesSince(resumedAt) > 8_000 ? true : undefined), 'the listener hearing the show again');
      expect(listener.ended).toBe(false);
      // While the broadcaster was away, the stream went on (silence), past Icecast's source-timeout.
      expect(listener.chunks.filter((c) => c.at > droppedAt + 9_000 && c.at < backAt).length).toBeGreaterThan(0);
      // One stream from before the drop to after it: ffmpeg decodes all of it without a complaint,
      // the show's tone at the end, silence while the broadcaster was away.
      const recording = listener.recording();
      expect(decodes(recording)).toBe(true);
      const endedAt = listener.chunks.at(-1)!.at;
      expect(toneLevel(lastSeconds(recording, 1.5), 550)).toBeGreaterThan(-35);
      expect(toneLevel(lastSeconds(recording, (endedAt - droppedAt) / 1_000 - 4, 4), 550)).toBeLessThan(-60);
      const states = statesSince(watcher, droppedAt);
      expect(states.map((b) => b.state)).toContain('reconnecting');
      console.log(`broadcaster (${format}) away 12 s: ${states.map((b) => b.state).join(' → ')}`);
    },
  );

  it(
    "the Worker restarts mid-show: a listener connected before stays connected (on the show's fill) and hears the show again; the broadcaster reconnects by itself",
    { timeout: 120_000 },
    async () => {
      const { watcher, show, listenUrl } = await onAir(660);
      await until(
        async () => ((await icecastMounts()).get(mountOf(listenUrl))?.fallback.startsWith('/fill-') ? true : undefined),
        "the show's own fill",
      );
      const before = new Listener(listenUrl);
      cleanups.push(() => before.close());
      await until(() => (before.bytesSince(0) > 4_000 ? true : undefined), 'a listener hearing the show');
      const restartAt = Date.now();
      const restarted = await fetch(`${inject('controlUrl')}/restart-worker?downMs=${DOWN_MS}`, { method: 'POST' });
      expect(restarted.status).toBe(200);
      const { upMs } = (await restarted.json()) as { upMs: number };
      const upAt = Date.now();
      const heardAt = await heardAgain(listenUrl, 660, 30_000);
      expect(show.connects).toBeGreaterThanOrEqual(2);
      // The listener from before is still connected and hears the show's tone again (decoded).
      await until(
        () => {
          if (before.ended) throw new Error('the listener connected before the restart was dropped');
          return toneLevel(lastSeconds(before.recording(), 1.5), 660) > -35 ? true : undefined;
        },
        'the listener from before hearing the show again',
        30_000,
      );
      expect(before.ended).toBe(false);
      expect(toneLevel(before.recording(), STATION_FILL_TONE)).toBeGreaterThan(-50); // it heard the station fill meanwhile
      console.log(
        `Worker restart: wrangler dev answering again after ${upMs} ms; program heard again ${heardAt - restartAt} ms after the restart began ` +
          `(${heardAt - upAt} ms after the Worker was back); the listener connected before the restart stayed connected`,
      );
      // The room's view: the signaling socket dropped with the Worker; a new one sees the show live.
      watcher.socket.close();
      const again = await watchRoom(show.roomId, show.token);
      cleanups.push(() => again.socket.close());
      const welcome = await until(() => again.frames.find((f) => f.type === 'welcome'), 'welcome');
      await until(() => ((again.states.at(-1)?.broadcast ?? welcome.broadcast).state === 'live' ? true : undefined), 'live in the room');
    },
  );

  it(
    "two shows in fallback at once: each show's listeners come back to it and only to it; the fills are paced, hidden and name nothing",
    { timeout: 240_000 },
    async () => {
      const shows = [await onAir(660), await onAir(1500)];
      const tones = [660, 1500];
      const mounts = shows.map((show) => mountOf(show.listenUrl));
      const fills = await until(async () => {
        const live = await icecastMounts();
        const found = mounts.map((mount) => live.get(mount)?.fallback ?? '');
        return found.every((fill) => fill.startsWith('/fill-')) ? found : undefined;
      }, "each show's own fill");
      // A fill mount of its own per show, named at random: nothing of the show's (secret) mount in it.
      expect(new Set(fills).size).toBe(2);
      for (const fill of fills) expect(fill).toMatch(/^\/fill-[0-9a-f]{32}\.ogg$/);
      for (const [i, mount] of mounts.entries()) expect(fills[i]).not.toContain(mount.replace(/^\/show-|\.ogg$/g, ''));
      const listeners = shows.map((show) => new Listener(show.listenUrl));
      cleanups.push(() => listeners.forEach((listener) => listener.close()));
      await until(
        () => (listeners.every((listener) => listener.bytesSince(0) > 4_000) ? true : undefined),
        'both listeners hearing their show',
      );

      const restartAt = Date.now();
      const restart = fetch(`${inject('controlUrl')}/restart-worker?downMs=${DOWN_MS}`, { method: 'POST' });
      // While the Worker is down, each show's listener is on that show's fill...
      await until(
        async () => {
          const live = await icecastMounts();
          const onFill = fills.every((fill) => live.get(fill)?.listeners === 1) && mounts.every((mount) => !live.has(mount));
          return onFill ? true : undefined;
        },
        'both listeners on their own fill',
        DOWN_MS,
      );
      // ...which the public status pages do not show, nor the station fill they relay.
      for (const page of ['/status-json.xsl', '/status.xsl']) {
        const text = await (await fetch(`${inject('icecastUrl')}${page}`)).text();
        for (const name of [...fills, ...mounts, '/station-fill.ogg']) expect(text).not.toContain(name);
      }
      // The fill comes at its own pace, 3.1 kB/s (a fallback *file* would come at ~75 kB/s: a
      // player would buffer minutes of fill and stay that far behind the show).
      const paceFrom = Date.now();
      const receivedBefore = listeners.map((listener) => listener.bytesSince(0));
      await new Promise((r) => setTimeout(r, 2_000));
      const stillOnFill = await icecastMounts();
      expect(fills.map((fill) => stillOnFill.get(fill)?.listeners)).toEqual([1, 1]);
      const paces = listeners.map((listener, i) => (listener.bytesSince(0) - receivedBefore[i]!) / ((Date.now() - paceFrom) / 1_000));
      console.log(`fill pace: ${paces.map((pace) => pace.toFixed(0)).join(' and ')} B/s`);
      for (const pace of paces) {
        expect(pace).toBeGreaterThan(0);
        expect(pace).toBeLessThan(12_000);
      }
      expect((await restart).status).toBe(200);

      // Both shows are back (heard on their listen URLs); give their listeners time to be moved back.
      for (const [i, show] of shows.entries()) await heardAgain(show.listenUrl, tones[i]!, 30_000);
      await new Promise((r) => setTimeout(r, 4_000));
      for (const [i, listener] of listeners.entries()) {
        expect(listener.ended).toBe(false);
        // Every byte it got, from before the restart to now: never the other show...
        const all = listener.recording();
        console.log(
          `listener ${i}: own tone ${toneLevel(all, tones[i]!).toFixed(1)} dB, fill ${toneLevel(all, STATION_FILL_TONE).toFixed(1)} dB, other show ${toneLevel(all, tones[1 - i]!).toFixed(1)} dB; ${Date.now() - restartAt} ms since the restart`,
        );
        expect(toneLevel(all, tones[1 - i]!)).toBeLessThan(ABSENT_DB);
        // ...the fill while its show was gone, and its own show again after.
        expect(toneLevel(all, STATION_FILL_TONE)).toBeGreaterThan(-50);
        expect(toneLevel(lastSeconds(all, 1.5), tones[i]!)).toBeGreaterThan(-35);
      }
    },
  );
});
