// The program feed against a real Icecast (this file's own, from local-infra/native.mjs)
// through a link that misbehaves on purpose: a TCP proxy between the feed's own `wrangler dev`
// and Icecast that can stop reading the source connection (a stall) while statistics requests
// still go through, and that acts as a front end when asked: it sends statistics requests to
// another Icecast (this run's, only read) or answers them itself with a redirect.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { REASONS } from '../../durable-objects/broadcast-state';
import { OggOpusReader, OggOpusWriter } from '../../durable-objects/opus-stream';
// @ts-expect-error plain ES module without types
import { down, up } from '../../local-infra/native.mjs';
import { clientIp, createRoom, icecastMounts, icecastState, logicalStreams, NodeBroadcaster, until, watchRoom } from './feed-client';
import { freePort, startWorker, type RunningWorker } from './worker';

/** From durable-objects/feed.ts and icecast.ts (modules that load only in workerd). */
const FEED_ALARM_MS = 4_000;
const FEED_HEARTBEAT_MS = 8_000;
const WRITE_TIMEOUT_MS = 4_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secret = () => randomBytes(24).toString('hex');

interface SourceConnection {
  /** The feed's side of it. */
  socket: net.Socket;
  /** Icecast's answer to the source request. */
  status: number;
  /** The stream as it went to Icecast (the request body). */
  data: Buffer[];
  bytes: number;
  closed: boolean;
}

const statusOf = (answer: Buffer) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer.toString('latin1'))?.[1] ?? 0);

/**
 * The network between the feed and Icecast, as `tlsLink` in global-setup.ts but plain TCP,
 * recording what it carries: every source connection (the feed's PUT) and the answer to every
 * statistics request.
 */
class IcecastLink {
  readonly sources: SourceConnection[] = [];
  readonly statsAnswers: number[] = [];
  /** Where statistics requests go (a front end may send them to another Icecast than the source's). */
  statsPort: number;
  /** When set, the front end answers statistics requests itself with a redirect here. */
  redirect: string | null = null;
  private readonly server = net.createServer((inbound) => this.accept(inbound));
  port = 0;

  constructor(private readonly icecastPort: number) {
    this.statsPort = icecastPort;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private accept(inbound: net.Socket): void {
    inbound.on('error', () => {});
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      inbound.off('data', onHead);
      const isSource = head.subarray(0, 4).toString('latin1') === 'PUT ';
      if (!isSource && this.redirect) {
        this.statsAnswers.push(302);
        return void inbound.end(`HTTP/1.1 302 Found\r\nLocation: ${this.redirect}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      }
      const outbound = net.connect(isSource ? this.icecastPort : this.statsPort, '127.0.0.1');
      outbound.write(head);
      for (const socket of [inbound, outbound]) socket.on('error', () => (inbound.destroy(), outbound.destroy()));
      outbound.on('end', () => inbound.end());
      inbound.on('close', () => outbound.end()); // what it sent reaches Icecast first
      outbound.on('data', (answer) => inbound.write(answer));
      if (!isSource) return void outbound.once('data', (answer) => this.statsAnswers.push(statusOf(answer)));
      const body = head.subarray(end + 4);
      const source: SourceConnection = { socket: inbound, status: 0, data: [body], bytes: body.length, closed: false };
      this.sources.push(source);
      outbound.once('data', (answer) => (source.status = statusOf(answer)));
      inbound.on('data', (data) => {
        source.data.push(data);
        source.bytes += data.length;
        outbound.write(data);
      });
      inbound.on('close', () => (source.closed = true));
    };
    inbound.on('data', onHead);
  }

  close(): void {
    for (const source of this.sources) source.socket.destroy();
    this.server.close();
  }
}

/**
 * A broadcaster that sends a ready-made Ogg/Opus stream (a tone at the highest bitrate, so
 * packets are large): in real time, and on demand far faster. A flood of valid audio: the
 * feed demuxes it, remuxes it and hands all of it to the Icecast source.
 */
class PacketBroadcaster {
  private readonly socket: WebSocket;
  private readonly packets: Uint8Array[];
  private readonly writer: OggOpusWriter;
  private next = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Extra audio, on top of real time: since when, how fast, how much so far. */
  private extra = { from: 0, bytesPerSecond: 0, sent: 0 };

  constructor(worker: string, roomId: string, token: string) {
    const ogg = spawnSync(
      'ffmpeg',
      [
        '-v',
        'error',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:sample_rate=48000:duration=2',
        '-ac',
        '2',
        '-c:a',
        'libopus',
        '-b:a',
        '510k',
        '-f',
        'ogg',
        '-',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    ).stdout;
    const events = new OggOpusReader().push(new Uint8Array(ogg));
    this.packets = events.flatMap((e) => (e.type === 'packet' ? [e.packet] : []));
    this.writer = new OggOpusWriter(events.find((e) => e.type === 'head')!.head);
    const url = `${worker.replace(/^http/, 'ws')}/rooms/${roomId}/broadcast?token=${token}&format=ogg`;
    this.socket = new WebSocket(url, { headers: { 'CF-Connecting-IP': clientIp() } });
    this.socket.on('error', () => {});
    this.socket.on('open', () => {
      this.socket.send(this.writer.begin());
      this.timer = setInterval(() => {
        this.send(2); // 40 ms of real time
        // The flood's share, caught up however late the timer fires, in messages of up to 256 KiB.
        const { from, bytesPerSecond } = this.extra;
        for (let due = (bytesPerSecond * (Date.now() - from)) / 1_000 - this.extra.sent; due > 0; due -= 256 * 1024) {
          this.extra.sent += this.send(Math.ceil(Math.min(due, 256 * 1024) / this.packets[0]!.length));
        }
      }, 40);
    });
  }

  /** Send `count` packets as one Ogg message; returns its size. */
  private send(count: number): number {
    const pages = this.writer.packets(Array.from({ length: count }, () => this.packets[this.next++ % this.packets.length]!));
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(pages);
    return pages.length;
  }

  /** From now on, send this much more audio a second than real time (0: real time only). */
  flood(bytesPerSecond: number): void {
    this.extra = { from: Date.now(), bytesPerSecond, sent: 0 };
  }

  stop(): void {
    clearInterval(this.timer);
    this.socket.close(1000);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'openstudio-feed-faults-'));
/** This file's Icecast, started by native.mjs as a developer starts it (coturn comes along, unused). */
const infraEnv = {
  TURN_SECRET: secret(),
  // The run's own: this run's Icecast, the other server behind the front end below, then
  // judges the statistics request by its mount, not by its password.
  ICECAST_SOURCE_PASSWORD: inject('icecastSourcePassword'),
  ICECAST_ADMIN_PASSWORD: secret(),
  TURN_PORT: '',
  TURN_MIN_PORT: '49740',
  TURN_MAX_PORT: '49750',
  ICECAST_PORT: '',
  // Icecast's on-disconnect hook waits this long (not 120 s) before it ends a show's fill.
  ICECAST_FILL_SECONDS: '5',
  LOCAL_INFRA_RUN_DIR: join(dir, 'infra'),
};
const icecastUrl = () => `http://127.0.0.1:${infraEnv.ICECAST_PORT}`;
let link: IcecastLink;
/** Anything sent here came from following a redirect the front end answered with. */
const elsewhere: { url: string; authorization: string | undefined }[] = [];
const trap = http.createServer((request, response) => {
  elsewhere.push({ url: request.url ?? '', authorization: request.headers.authorization });
  response.end('<icestats></icestats>');
});
let dev: RunningWorker;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  infraEnv.TURN_PORT = String(await freePort(true));
  infraEnv.ICECAST_PORT = String(await freePort());
  await up({ ...process.env, ...infraEnv });
  link = new IcecastLink(Number(infraEnv.ICECAST_PORT));
  await link.listen();
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  dev = await startWorker(
    {
      TOKEN_SECRET: secret(),
      TURN_SECRET: infraEnv.TURN_SECRET,
      ICECAST_SOURCE_PASSWORD: infraEnv.ICECAST_SOURCE_PASSWORD,
      ICECAST_URL: `http://127.0.0.1:${link.port}`,
      ICECAST_PUBLIC_URL: icecastUrl(),
    },
    dir,
    { port: await freePort() },
  );
}, 120_000);

afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

afterAll(async () => {
  await dev?.stop();
  link?.close();
  trap.close();
  await down({ ...process.env, ...infraEnv });
  rmSync(dir, { recursive: true, force: true });
});

async function onAir<T extends { stop(): void }>(broadcast: (roomId: string, token: string) => T) {
  const room = await createRoom({}, dev.url);
  const watcher = await watchRoom(room.roomId, room.tokens.host!, dev.url);
  const show = broadcast(room.roomId, room.tokens.host!);
  cleanups.push(() => (show.stop(), watcher.socket.close()));
  const live = await until(() => watcher.states.find((s) => s.broadcast.state === 'live')?.broadcast, 'live', 20_000);
  return { watcher, show, mount: new URL(live.listenUrl).pathname };
}

/**
 * Give a show's mount a source password of its own in Icecast's config and have Icecast re-read
 * it (SIGHUP keeps sources on air), as an operator changing it mid-show would: Icecast then
 * refuses the feed's password for that mount's statistics. Returns the undo.
 */
function ownMountPassword(mount: string): () => void {
  const { pid, stateDir } = icecastState(infraEnv.LOCAL_INFRA_RUN_DIR);
  const file = join(stateDir, 'icecast.xml');
  const config = readFileSync(file, 'utf8');
  const name = `<mount-name>${mount}</mount-name>`; // the show's own block (the on-connect hook's)
  expect(config).toContain(name);
  writeFileSync(file, config.replace(name, `${name}\n    <password>${secret()}</password>`));
  process.kill(pid, 'SIGHUP');
  return () => (writeFileSync(file, config), process.kill(pid, 'SIGHUP'));
}

describe('the feed’s source connection', () => {
  it(
    'a host’s stop: the broadcaster is closed at once, and the stream ends with its end-of-stream page before the source closes',
    { timeout: 60_000 },
    async () => {
      const { watcher, show } = await onAir((roomId, token) => new NodeBroadcaster(roomId, token, 440, dev.url).start());
      const source = link.sources.at(-1)!;
      expect(source.status).toBe(200);
      await sleep(1_000);
      watcher.socket.send(JSON.stringify({ type: 'stop-broadcast' }));
      // Budget: well under the heartbeat, which is all a stop answered in a report would wait for.
      await until(() => (show.closes.includes(1000) ? true : undefined), 'the broadcaster closed with 1000', FEED_HEARTBEAT_MS / 2);
      await until(() => (source.closed ? true : undefined), 'the source connection closed');
      const streams = logicalStreams(Buffer.concat(source.data));
      expect(streams).toHaveLength(1);
      const flags = streams[0]!.pages.map((page) => page.flags);
      expect(flags[0]).toBe(0x02); // beginning of stream
      expect(flags.at(-1)).toBe(0x04); // end of stream (RFC 3533 §4): a player knows the stream ended
      expect(flags.slice(1, -1).every((f) => f === 0)).toBe(true);
    },
  );
});

describe('the feed against a misbehaving Icecast', () => {
  it(
    'statistics answered 401, 400 or a redirect: Icecast is alive, the show stays on its one source connection, and the source password goes nowhere else',
    { timeout: 120_000 },
    async () => {
      const { watcher, mount } = await onAir((roomId, token) => new NodeBroadcaster(roomId, token, 440, dev.url).start());
      const adminPassword = infraEnv.ICECAST_ADMIN_PASSWORD;
      await until(
        async () => ((await icecastMounts(icecastUrl(), adminPassword)).get(mount)?.fallback.startsWith('/fill-') ? true : undefined),
        'the show’s own mount block',
      );
      const sources = link.sources.length;
      const answered = async (status: number, what: string) => {
        const asked = link.statsAnswers.length;
        await until(
          () => {
            // The answer before this one had its consequences meanwhile, if any.
            if (link.sources.length !== sources || link.sources.at(-1)!.closed)
              throw new Error(`the source connection was dropped; statistics answered so far: ${link.statsAnswers.join(', ')}`);
            return link.statsAnswers.slice(asked).includes(status) ? true : undefined;
          },
          `a statistics request answered ${status} (${what})`,
          FEED_ALARM_MS * 3,
        );
      };
      // Icecast itself: the feed's password is no longer good for this mount.
      const restore = ownMountPassword(mount);
      try {
        await answered(401, 'the mount has a password of its own');
      } finally {
        restore();
      }
      // A front end that sends the request to another Icecast (this run's), which does not carry the show.
      link.statsPort = Number(new URL(inject('icecastUrl')).port);
      await answered(400, 'a server without the mount');
      link.statsPort = Number(infraEnv.ICECAST_PORT);
      // The front end itself (e.g. an HTTPS redirect) points elsewhere.
      link.redirect = `http://127.0.0.1:${(trap.address() as net.AddressInfo).port}/collect`;
      await answered(302, 'a redirect');
      await sleep(1_000); // the last answer's consequences, if any
      link.redirect = null;
      expect(link.sources.length).toBe(sources);
      expect(link.sources.at(-1)!.closed).toBe(false);
      expect((await icecastMounts(icecastUrl(), adminPassword)).has(mount)).toBe(true); // still on air at Icecast
      const fromLive = watcher.states.slice(watcher.states.findIndex((s) => s.broadcast.state === 'live'));
      expect(fromLive.map((s) => s.broadcast.state).filter((state) => state !== 'live')).toEqual([]);
      expect(elsewhere).toEqual([]);
    },
  );

  it(
    'a flood of valid audio while Icecast takes nothing for 2.5 s: the source is dropped once 256 KiB wait, not queued until the write timeout',
    { timeout: 90_000 },
    async () => {
      const { watcher, show } = await onAir((roomId, token) => new PacketBroadcaster(dev.url, roomId, token));
      const source = link.sources.at(-1)!;
      const sources = link.sources.length;
      const stalledAt = Date.now();
      source.socket.pause(); // the link stops reading the source: a stall on the way to Icecast; statistics still go through
      show.flood(6 * 2 ** 20);
      // Shorter than the write timeout (socket buffers take the first few MB): only the cap on what
      // waits for Icecast can notice. Statistics are answered all along: no probe fails either.
      await sleep(2_500);
      source.socket.resume();
      show.flood(0);
      await sleep(WRITE_TIMEOUT_MS);
      const left = watcher.states
        .filter((s) => s.at >= stalledAt)
        .map((s) => s.broadcast)
        .find((b) => b.state !== 'live');
      // Without the cap, all of the flood would be queued in the Worker and then sent (~15 MB here).
      console.log(
        `flooded while Icecast took nothing: ${source.bytes} bytes were sent on that connection; ${left ? `left live (${left.reason})` : 'stayed live'}`,
      );
      expect(left).toMatchObject({ state: 'reconnecting', reason: REASONS.stalled });
      // And it reconnected: Icecast took a new source (once the old one's end reached it).
      await until(
        () => (link.sources.slice(sources).some((s) => s.status === 200) ? true : undefined),
        'a new source taken by Icecast',
        30_000,
      );
    },
  );
});
