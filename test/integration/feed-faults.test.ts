// The program feed against an Icecast that misbehaves on purpose: a small fake on loopback
// that takes the source like Icecast 2.4 (an HTTP PUT whose body is the stream), answers the
// statistics request the way a test asks, and can stop reading the source while its
// statistics stay answered. Its own `wrangler dev` points at it; nothing else is touched.
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { REASONS } from '../../durable-objects/broadcast-state';
import { OggOpusReader, OggOpusWriter } from '../../durable-objects/opus-stream';
import { clientIp, createRoom, logicalStreams, NodeBroadcaster, until, watchRoom } from './feed-client';
import { freePort, startWorker, type RunningWorker } from './worker';

/** From durable-objects/feed.ts and icecast.ts (modules that load only in workerd). */
const FEED_ALARM_MS = 4_000;
const FEED_HEARTBEAT_MS = 8_000;
const WRITE_TIMEOUT_MS = 4_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SourceConnection {
  socket: net.Socket;
  /** The stream as it arrived (the request body). */
  data: Buffer[];
  bytes: number;
  closed: boolean;
}

/** Enough of Icecast for the feed: the source PUT, and /admin/stats answered with `stats`. */
class FakeIcecast {
  readonly sources: SourceConnection[] = [];
  readonly statsRequests: string[] = [];
  /** How the statistics request is answered. */
  stats: { status: number; location?: string } = { status: 200 };
  private readonly server = net.createServer((socket) => this.accept(socket));
  port = 0;

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onHead);
      const requestLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      if (requestLine.startsWith('PUT ')) {
        const body = head.subarray(end + 4);
        const source: SourceConnection = { socket, data: [body], bytes: body.length, closed: false };
        this.sources.push(source);
        socket.on('data', (data) => {
          source.data.push(data);
          source.bytes += data.length;
        });
        socket.on('close', () => (source.closed = true));
        socket.write('HTTP/1.0 200 OK\r\n\r\n');
      } else {
        this.statsRequests.push(requestLine);
        const { status, location } = this.stats;
        const body = status === 200 ? '<icestats><source mount="/m.ogg"><listeners>0</listeners></source></icestats>' : '';
        const headers = [`HTTP/1.1 ${status} Whatever`, 'Connection: close', `Content-Length: ${body.length}`, ...(location ? [`Location: ${location}`] : [])];
        socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
      }
    };
    socket.on('data', onHead);
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
      ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=2', '-ac', '2', '-c:a', 'libopus', '-b:a', '510k', '-f', 'ogg', '-'],
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
const icecast = new FakeIcecast();
/** Anything sent here came from following a redirect the fake Icecast answered with. */
const elsewhere: { url: string; authorization: string | undefined }[] = [];
const trap = http.createServer((request, response) => {
  elsewhere.push({ url: request.url ?? '', authorization: request.headers.authorization });
  response.end('<icestats></icestats>');
});
let dev: RunningWorker;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  await icecast.listen();
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  const random = () => randomBytes(24).toString('hex');
  dev = await startWorker(
    { TOKEN_SECRET: random(), TURN_SECRET: random(), ICECAST_SOURCE_PASSWORD: random(), ICECAST_URL: `http://127.0.0.1:${icecast.port}` },
    dir,
    { port: await freePort() },
  );
}, 120_000);

afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

afterAll(async () => {
  await dev?.stop();
  icecast.close();
  trap.close();
  rmSync(dir, { recursive: true, force: true });
});

async function onAir<T extends { stop(): void }>(broadcast: (roomId: string, token: string) => T) {
  const room = await createRoom({}, dev.url);
  const watcher = await watchRoom(room.roomId, room.tokens.host!, dev.url);
  const show = broadcast(room.roomId, room.tokens.host!);
  cleanups.push(() => (show.stop(), watcher.socket.close()));
  await until(() => watcher.states.find((s) => s.broadcast.state === 'live'), 'live', 20_000);
  return { watcher, show };
}

describe('the feed’s source connection', () => {
  it('a host’s stop: the broadcaster is closed at once, and the stream ends with its end-of-stream page before the source closes', { timeout: 60_000 }, async () => {
    const { watcher, show } = await onAir((roomId, token) => new NodeBroadcaster(roomId, token, 440, dev.url).start());
    const source = icecast.sources.at(-1)!;
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
  });
});

describe('the feed against a misbehaving Icecast', () => {
  it('statistics answered 401, 404 or a redirect: Icecast is alive, the show stays on its one source connection, and the source password goes nowhere else', { timeout: 90_000 }, async () => {
    const { watcher } = await onAir((roomId, token) => new NodeBroadcaster(roomId, token, 440, dev.url).start());
    const sources = icecast.sources.length;
    const answers = [{ status: 401 }, { status: 404 }, { status: 302, location: `http://127.0.0.1:${(trap.address() as net.AddressInfo).port}/collect` }];
    for (const answer of answers) {
      icecast.stats = answer;
      const asked = icecast.statsRequests.length;
      await until(() => (icecast.statsRequests.length > asked ? true : undefined), `a statistics request answered ${answer.status}`, FEED_ALARM_MS * 3);
    }
    await sleep(1_000); // the last answer's consequences, if any
    icecast.stats = { status: 200 };
    expect(icecast.sources.length).toBe(sources);
    expect(icecast.sources.at(-1)!.closed).toBe(false);
    const fromLive = watcher.states.slice(watcher.states.findIndex((s) => s.broadcast.state === 'live'));
    expect(fromLive.map((s) => s.broadcast.state).filter((state) => state !== 'live')).toEqual([]);
    expect(elsewhere).toEqual([]);
  });

  it('a flood of valid audio while Icecast takes nothing for 2.5 s: the source is dropped once 256 KiB wait, not queued until the write timeout', { timeout: 90_000 }, async () => {
    const { watcher, show } = await onAir((roomId, token) => new PacketBroadcaster(dev.url, roomId, token));
    const source = icecast.sources.at(-1)!;
    const sources = icecast.sources.length;
    const stalledAt = Date.now();
    source.socket.pause(); // takes nothing more; its statistics are still answered
    show.flood(6 * 2 ** 20);
    // Shorter than the write timeout (socket buffers take the first few MB): only the cap on what
    // waits for Icecast can notice. Statistics are answered all along: no probe fails either.
    await sleep(2_500);
    source.socket.resume();
    show.flood(0);
    await sleep(WRITE_TIMEOUT_MS);
    const left = watcher.states.filter((s) => s.at >= stalledAt).map((s) => s.broadcast).find((b) => b.state !== 'live');
    // Without the cap, all of the flood would be queued in the Worker and then sent (~15 MB here).
    console.log(`flooded while Icecast took nothing: ${source.bytes} bytes reached it on that connection; ${left ? `left live (${left.reason})` : 'stayed live'}`);
    expect(left).toMatchObject({ state: 'reconnecting', reason: REASONS.stalled });
    expect(icecast.sources.length).toBeGreaterThan(sources); // and it reconnected
  });
});
