// The program feed end to end: a host streams Ogg/Opus over the broadcast WebSocket, the
// show's feed pushes it into the real Icecast as the source of the show's own mount, and a
// listener hears audio that ffmpeg decodes. The room sees the state; callers cannot
// broadcast; several shows are on air at once, each on its own mount.
import { spawn } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { REASONS } from '../../durable-objects/broadcast-state';
import {
  clientIp,
  createRoom,
  decodes,
  listen,
  Listener,
  mountLive,
  NodeBroadcaster,
  toneLevel,
  until,
  watchRoom,
  workerWs,
} from './feed-client';

const stateOf = (room: { states: { broadcast: any }[] }) => room.states.at(-1)?.broadcast;

describe('broadcast to Icecast through the show’s feed', () => {
  it('a host streams the program to the show’s own mount; listeners hear it; the room sees the state', { timeout: 60_000 }, async () => {
    const room = await createRoom({ name: 'Drive time' });
    const watcher = await watchRoom(room.roomId, room.tokens.caller!);
    await until(() => watcher.frames.find((f) => f.type === 'welcome'), 'welcome');
    expect(watcher.frames[0].broadcast).toEqual({ state: 'idle' });

    // A caller may not broadcast.
    const refused = new WebSocket(`${workerWs()}/rooms/${room.roomId}/broadcast?token=${room.tokens.caller}`, {
      headers: { 'CF-Connecting-IP': clientIp() },
    });
    const refusal = await new Promise<any>((resolve) => refused.on('message', (data) => resolve(JSON.parse(String(data)))));
    expect(refusal).toMatchObject({ type: 'error', code: 'forbidden' });

    const show = new NodeBroadcaster(room.roomId, room.tokens.host!, 440).start();
    const live = await until(() => (stateOf(watcher)?.state === 'live' ? stateOf(watcher) : undefined), 'live');
    expect(live).toMatchObject({ by: 'host' });
    expect(live.since).toBeGreaterThan(Date.now() - 30_000);
    // The show's own mount: on this Icecast, named for this show only, not after the room id.
    expect(live.listenUrl).toMatch(new RegExp(`^${inject('icecastUrl')}/show-[A-Za-z0-9_-]{22}\\.ogg$`));
    expect(live.listenUrl).not.toContain(room.roomId);
    expect(JSON.stringify(watcher.frames)).not.toContain(inject('icecastSourcePassword'));
    // ...and hidden from Icecast's public status page, so a private show's mount is not listed.
    expect(await (await fetch(`${inject('icecastUrl')}/status-json.xsl`)).text()).not.toContain(new URL(live.listenUrl).pathname);

    // Only one program per room at a time.
    const second = new WebSocket(`${workerWs()}/rooms/${room.roomId}/broadcast?token=${room.tokens.producer}`, {
      headers: { 'CF-Connecting-IP': clientIp() },
    });
    expect(await new Promise<any>((resolve) => second.on('message', (data) => resolve(JSON.parse(String(data)))))).toMatchObject({
      code: 'broadcast-busy',
    });

    const heard = await listen(live.listenUrl, 3_000);
    expect(heard.status).toBe(200);
    expect(heard.bytes.length).toBeGreaterThan(10_000);
    expect(decodes(heard.bytes)).toBe(true);
    expect(toneLevel(heard.bytes, 440)).toBeGreaterThan(-35);

    // Listener count reaches the room (the feed reads it from Icecast every few seconds).
    const listener = new Listener(live.listenUrl);
    const counted = await until(
      () => (stateOf(watcher)?.listeners?.current >= 1 ? stateOf(watcher) : undefined),
      'a listener counted',
      15_000,
    );
    expect(counted.listeners.peak).toBeGreaterThanOrEqual(counted.listeners.current);
    listener.close();

    // Stopping the feed ends the broadcast; the room sees it go idle; Icecast frees the mount.
    show.stop();
    await until(() => (stateOf(watcher)?.state === 'idle' ? true : undefined), 'idle');
    await until(async () => ((await mountLive(live.listenUrl)) ? undefined : true), 'the mount to be free');
    watcher.socket.close();
  });

  it('two shows on air at once, each heard on its own listen URL with its own audio', { timeout: 60_000 }, async () => {
    const rooms = [await createRoom(), await createRoom()];
    const watchers = await Promise.all(rooms.map((room) => watchRoom(room.roomId, room.tokens.host!)));
    const shows = [
      new NodeBroadcaster(rooms[0]!.roomId, rooms[0]!.tokens.host!, 440).start(),
      new NodeBroadcaster(rooms[1]!.roomId, rooms[1]!.tokens.host!, 660).start(),
    ];
    const urls = await Promise.all(
      watchers.map((w) => until(() => (stateOf(w)?.state === 'live' ? (stateOf(w).listenUrl as string) : undefined), 'live')),
    );
    expect(urls[0]).not.toBe(urls[1]);
    const [a, b] = await Promise.all(urls.map((url) => listen(url, 3_000)));
    expect(decodes(a!.bytes) && decodes(b!.bytes)).toBe(true);
    // Each tone ≈ −21 dB in its own band; the other show's band only sees filter leakage (≈ −49 dB).
    expect(toneLevel(a!.bytes, 440)).toBeGreaterThan(-35);
    expect(toneLevel(a!.bytes, 660)).toBeLessThan(toneLevel(a!.bytes, 440) - 20);
    expect(toneLevel(b!.bytes, 660)).toBeGreaterThan(-35);
    expect(toneLevel(b!.bytes, 440)).toBeLessThan(toneLevel(b!.bytes, 660) - 20);
    for (const show of shows) show.stop();
    for (const w of watchers) w.socket.close();
  });

  it(
    'a mount held by another source is retried with a plain reason, and the show goes live once it is free',
    { timeout: 60_000 },
    async () => {
      const room = await createRoom();
      const watcher = await watchRoom(room.roomId, room.tokens.host!);
      // Learn the show's mount, then let another source take it first.
      const first = new NodeBroadcaster(room.roomId, room.tokens.host!, 440).start();
      const listenUrl = await until(
        () => (stateOf(watcher)?.state === 'live' ? (stateOf(watcher).listenUrl as string) : undefined),
        'live',
      );
      first.stop();
      await until(() => (stateOf(watcher)?.state === 'idle' ? true : undefined), 'idle');
      await until(async () => ((await mountLive(listenUrl)) ? undefined : true), 'the mount to be free');
      const squatter = spawn('ffmpeg', [
        '-v',
        'error',
        '-re',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=220:duration=30',
        '-c:a',
        'libopus',
        '-f',
        'ogg',
        '-content_type',
        'audio/ogg',
        `icecast://source:${inject('icecastSourcePassword')}@${new URL(inject('icecastUrl')).host}${new URL(listenUrl).pathname}`,
      ]);
      try {
        await until(async () => ((await mountLive(listenUrl)) ? true : undefined), 'squatter on the mount');
        const show = new NodeBroadcaster(room.roomId, room.tokens.host!, 440).start();
        const busy = await until(() => watcher.states.find((s) => /in use/.test(s.broadcast.reason ?? ''))?.broadcast, 'the busy reason');
        expect(busy.reason).toBe('The streaming server says the show’s mount is still in use; retrying.');
        // Reasons are sentences from a fixed set: no status code, no address.
        for (const { broadcast } of watcher.states) if (broadcast.reason) expect(Object.values(REASONS)).toContain(broadcast.reason);
        squatter.kill('SIGKILL');
        await until(() => (stateOf(watcher)?.state === 'live' ? true : undefined), 'live once the mount is free', 20_000);
        show.stop();
      } finally {
        squatter.kill('SIGKILL');
      }
      watcher.socket.close();
    },
  );

  it('a host stops a producer’s broadcast from the signaling socket', { timeout: 30_000 }, async () => {
    const room = await createRoom();
    const host = await watchRoom(room.roomId, room.tokens.host!);
    const show = new NodeBroadcaster(room.roomId, room.tokens.producer!, 440).start();
    const live = await until(() => (stateOf(host)?.state === 'live' ? stateOf(host) : undefined), 'live');
    expect(live.by).toBe('producer');
    host.socket.send(JSON.stringify({ type: 'stop-broadcast' }));
    // The room tells the feed at once; the broadcaster is told with 1000.
    await until(() => (show.closes.includes(1000) ? true : undefined), 'the feed closed with 1000');
    await until(() => (stateOf(host)?.state === 'idle' ? true : undefined), 'idle');
    await until(async () => ((await mountLive(live.listenUrl)) ? undefined : true), 'the mount to be free');
    expect(show.connects).toBe(1); // a stop is final: no reconnect
    host.socket.close();
  });
});
