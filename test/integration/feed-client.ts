/**
 * Test parts for the program feed: a broadcaster made of a WebSocket and ffmpeg that behaves
 * like the browser's (a fresh encoder, with its Ogg/Opus headers, for every new socket and
 * on the server's `restart-stream`; reconnects by itself with backoff), and listeners.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import WebSocket from 'ws';
import { checkFrame, FeedMessageSchema, ServerMessageSchema } from '../../protocol/server-messages';
import { bandFilter } from '../bands.mjs';

export const workerHttp = () => inject('workerUrl');
export const workerWs = () => workerHttp().replace(/^http/, 'ws');
export const clientIp = () => `feed-${Math.random().toString(36).slice(2)}`;

export async function until<T>(check: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `worker` (here and below): another Worker than the run's own, e.g. one wired to the Compose stack. */
export async function createRoom(
  body: Record<string, unknown> = {},
  worker = workerHttp(),
): Promise<{ roomId: string; tokens: Record<string, string> }> {
  const created = await fetch(`${worker}/rooms`, {
    method: 'POST',
    headers: { 'CF-Connecting-IP': clientIp() },
    body: JSON.stringify(body),
  });
  if (created.status !== 201) throw new Error(`POST /rooms → ${created.status}`);
  return (await created.json()) as { roomId: string; tokens: Record<string, string> };
}

/** A signaling socket that records every frame, and every broadcast state with its time. */
export async function watchRoom(roomId: string, token: string, worker = workerHttp()) {
  const socket = new WebSocket(`${worker.replace(/^http/, 'ws')}/rooms/${roomId}/ws?token=${token}`, {
    headers: { 'CF-Connecting-IP': clientIp() },
  });
  const frames: any[] = [];
  const states: { at: number; broadcast: any }[] = [];
  socket.on('message', (data) => {
    const frame: any = checkFrame(ServerMessageSchema, JSON.parse(String(data))); // only frames the protocol names
    frames.push(frame);
    if (frame.type === 'broadcast-updated') states.push({ at: Date.now(), broadcast: frame.broadcast });
  });
  await new Promise((resolve, reject) => (socket.on('open', resolve), socket.on('error', reject)));
  return { socket, frames, states };
}

/** An encoder like the browser's MediaRecorder: Opus in real time, in Ogg (small pages) or WebM (as Chromium records). */
function encoder(frequency: number, format: 'ogg' | 'webm'): ChildProcess {
  const container =
    format === 'ogg' ? ['-page_duration', '200000', '-f', 'ogg'] : ['-cluster_time_limit', '200', '-live', '1', '-f', 'webm'];
  return spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'error',
      '-re',
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=${frequency}:sample_rate=48000`,
      '-c:a',
      'libopus',
      '-b:a',
      '64k',
      ...container,
      '-',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
}

export class NodeBroadcaster {
  socket: WebSocket | null = null;
  broadcastId: string | null = null;
  /** Text frames from the server, in order. */
  readonly frames: any[] = [];
  connects = 0;
  streams = 0;
  closes: number[] = [];
  private ffmpeg: ChildProcess | null = null;
  private stopped = false;
  private attempt = 0;
  private awayUntil = 0;

  constructor(
    readonly roomId: string,
    readonly token: string,
    readonly frequency: number,
    readonly worker = workerHttp(),
    readonly format: 'ogg' | 'webm' = 'ogg',
  ) {}

  start(): this {
    this.connect();
    return this;
  }

  private connect(): void {
    if (this.stopped) return;
    const url = new URL(`${this.worker.replace(/^http/, 'ws')}/rooms/${this.roomId}/broadcast`);
    url.searchParams.set('token', this.token);
    url.searchParams.set('format', this.format);
    if (this.broadcastId) url.searchParams.set('resume', this.broadcastId);
    const socket = new WebSocket(url, { headers: { 'CF-Connecting-IP': clientIp() } });
    this.socket = socket;
    socket.on('open', () => {
      this.connects += 1;
      this.attempt = 0;
      this.restartStream(); // a new socket always starts a new stream, headers first
    });
    socket.on('message', (data, binary) => {
      if (binary) return;
      const frame = checkFrame(FeedMessageSchema, JSON.parse(String(data))); // only frames the protocol names
      this.frames.push(frame);
      if (frame.type === 'feed-accepted') this.broadcastId = frame.broadcastId;
      if (frame.type === 'restart-stream') this.restartStream();
    });
    socket.on('error', () => {});
    socket.on('close', (code) => {
      if (socket !== this.socket) return;
      this.closes.push(code);
      this.stopEncoder();
      // Stopped, refused, or given up by the server: no reconnect; anything else: reconnect.
      if (this.stopped || code === 1000 || code === 1011 || (code >= 4000 && code !== 4010)) return;
      const backoff = Math.min(3_000, 250 * 2 ** this.attempt++);
      const delay = Math.max(backoff / 2 + (Math.random() * backoff) / 2, this.awayUntil - Date.now());
      setTimeout(() => this.connect(), delay);
    });
  }

  private restartStream(): void {
    this.stopEncoder();
    const socket = this.socket;
    const ffmpeg = encoder(this.frequency, this.format);
    this.ffmpeg = ffmpeg;
    this.streams += 1;
    ffmpeg.stdout!.on('data', (chunk: Buffer) => {
      if (this.ffmpeg === ffmpeg && socket?.readyState === WebSocket.OPEN) socket.send(chunk);
    });
  }

  private stopEncoder(): void {
    this.ffmpeg?.kill('SIGKILL');
    this.ffmpeg = null;
  }

  /** The connection drops without a close handshake (network loss), and stays away at least `awayMs`. */
  dropConnection(awayMs = 0): void {
    this.awayUntil = Date.now() + awayMs;
    this.socket?.terminate();
  }

  stop(): void {
    this.stopped = true;
    this.stopEncoder();
    this.socket?.close(1000);
  }
}

/** A listener that stays connected and records what it receives, with arrival times. */
export class Listener {
  readonly chunks: { at: number; bytes: Buffer }[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  private request: http.ClientRequest;

  constructor(readonly url: string) {
    this.request = http.get(url, (response) => {
      this.status = response.statusCode ?? 0;
      this.headers = response.headers;
      response.on('data', (bytes: Buffer) => this.chunks.push({ at: Date.now(), bytes }));
      response.on('end', () => (this.ended = true));
      response.on('error', () => (this.ended = true));
    });
    this.request.on('error', () => (this.ended = true));
  }

  bytesSince(at: number): number {
    return this.chunks.filter((c) => c.at >= at).reduce((n, c) => n + c.bytes.length, 0);
  }

  recording(since = 0): Buffer {
    return Buffer.concat(this.chunks.filter((c) => c.at >= since).map((c) => c.bytes));
  }

  close(): void {
    this.request.destroy();
  }
}

/** Listen for `ms` and return what arrived. */
export async function listen(url: string, ms: number): Promise<{ status: number; bytes: Buffer }> {
  const listener = new Listener(url);
  await new Promise((r) => setTimeout(r, ms));
  listener.close();
  return { status: listener.status, bytes: listener.recording() };
}

/** ffmpeg decodes it without a complaint. */
export function decodes(recording: Buffer): boolean {
  const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', '-', '-f', 'null', '-'], { input: recording, encoding: 'utf8' });
  return recording.length > 0 && decode.status === 0 && decode.stderr === '';
}

/**
 * Mean level (dB) of a narrow band around `frequency` in the decoded stream (three bandpasses
 * in a row, as bands.mjs: the show's tone does not read as the station fill's 110 Hz away);
 * ≈ −40 present, < −60 absent.
 */
export function toneLevel(recording: Buffer, frequency: number): number {
  const out = spawnSync(
    'ffmpeg',
    ['-v', 'info', '-nostats', '-i', '-', '-af', `${bandFilter(frequency)},volumedetect`, '-f', 'null', '-'],
    { input: recording, encoding: 'utf8' },
  );
  const match = /mean_volume: (-?[\d.]+|-inf) dB/.exec(out.stderr);
  return match && match[1] !== '-inf' ? Number(match[1]) : -Infinity;
}

/**
 * A stretch of a listener's recording, decoded from its start (a piece cut from the middle
 * of one Ogg stream has no headers to decode with): `fromEndS` seconds before its end.
 */
export function lastSeconds(recording: Buffer, fromEndS: number, seconds = fromEndS): Buffer {
  const raw = ['-f', 's16le', '-ac', '1', '-ar', '48000'];
  const pcm = spawnSync('ffmpeg', ['-v', 'error', '-i', '-', ...raw, '-'], { input: recording, maxBuffer: 256 * 1024 * 1024 }).stdout;
  const end = pcm.length - Math.round(fromEndS * 48_000) * 2;
  const piece = pcm.subarray(Math.max(0, end), Math.max(0, end + Math.round(seconds * 48_000) * 2));
  return spawnSync('ffmpeg', ['-v', 'error', ...raw, '-i', '-', '-f', 'wav', '-'], { input: piece, maxBuffer: 64 * 1024 * 1024 }).stdout;
}

/** Icecast's admin list of the mounts on air (hidden ones too): each one's fallback mount and listeners. */
export async function icecastMounts(
  icecastUrl = inject('icecastUrl'),
  adminPassword = inject('icecastAdminPassword'),
): Promise<Map<string, { fallback: string; listeners: number }>> {
  const auth = Buffer.from(`admin:${adminPassword}`).toString('base64');
  const response = await fetch(`${icecastUrl}/admin/listmounts`, {
    headers: { Authorization: `Basic ${auth}` },
    signal: AbortSignal.timeout(5_000),
  });
  const mounts = new Map<string, { fallback: string; listeners: number }>();
  for (const [, mount, fallback, listeners] of (await response.text()).matchAll(
    /<source mount="([^"]+)"><fallback>([^<]*)<\/fallback><listeners>(\d+)<\/listeners>/g,
  )) {
    mounts.set(mount!, { fallback: fallback!, listeners: Number(listeners) });
  }
  return mounts;
}

/** Is the mount on air (admin statistics: show mounts are hidden from the public status page)? */
export async function mountLive(listenUrl: string): Promise<boolean> {
  const mount = new URL(listenUrl).pathname;
  const auth = Buffer.from(`admin:${inject('icecastAdminPassword')}`).toString('base64');
  try {
    const response = await fetch(`${inject('icecastUrl')}/admin/listmounts`, {
      headers: { Authorization: `Basic ${auth}` },
      signal: AbortSignal.timeout(2_000),
    });
    return (await response.text()).includes(`mount="${mount}"`);
  } catch {
    return false;
  }
}

const root = fileURLToPath(new URL('../..', import.meta.url));

/** An Icecast that native.mjs started (this run's by default), for fault tests: its pid and its directory (config, hooks). */
export function icecastState(runDir = inject('infraEnv').LOCAL_INFRA_RUN_DIR!): { pid: number; stateDir: string } {
  return JSON.parse(readFileSync(join(runDir, 'state.json'), 'utf8')).icecast;
}

export const icecastPid = (): number => icecastState().pid;

/** `native.mjs up` starts what is not running: here, Icecast again. */
export function startIcecastAgain(): void {
  const up = spawnSync(process.execPath, [join(root, 'local-infra', 'native.mjs'), 'up'], {
    env: { ...process.env, ...inject('infraEnv') },
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (up.status !== 0) throw new Error(`native.mjs up failed: ${up.stdout}${up.stderr}`);
}

/**
 * The same without blocking this process, so its broadcasters keep sending in real time
 * meanwhile (audio held up here would reach the feed late, in a burst, as old audio).
 */
export async function startIcecastAgainAsync(): Promise<void> {
  const up = spawn(process.execPath, [join(root, 'local-infra', 'native.mjs'), 'up'], {
    env: { ...process.env, ...inject('infraEnv') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [up.stdout!, up.stderr!]) stream.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => up.on('exit', resolve));
  if (code !== 0) throw new Error(`native.mjs up failed: ${output}`);
}

/**
 * The tone of local-infra/station-fill.ogg: what a show's mount plays while its source is gone
 * (its listeners wait on the show's own fill). No show in the tests uses it.
 */
export const STATION_FILL_TONE = 330;

/**
 * Poll the listen URL until a short listen decodes (to the show's tone, when given), and is
 * the show, not its station fill; returns when it first did.
 */
export async function heardAgain(listenUrl: string, frequency: number | null, timeoutMs: number): Promise<number> {
  return until(
    async () => {
      const { status, bytes } = await listen(listenUrl, 1_500);
      const ok =
        status === 200 &&
        bytes.length > 4_000 &&
        decodes(bytes) &&
        (frequency === null || toneLevel(bytes, frequency) > -35) &&
        toneLevel(bytes, STATION_FILL_TONE) < -45;
      return ok ? Date.now() : undefined;
    },
    'the program on the listen URL',
    timeoutMs,
  );
}

/** The Ogg pages in a recording, in order: serial number, flags (BOS 0x02, EOS 0x04), granule position, bytes. */
export function oggPages(bytes: Buffer): { serial: number; flags: number; granule: number; bytes: Buffer }[] {
  const pages: { serial: number; flags: number; granule: number; bytes: Buffer }[] = [];
  for (let at = bytes.indexOf('OggS'); at >= 0 && at + 27 <= bytes.length;) {
    const segments = bytes[at + 26]!;
    const length = 27 + segments + bytes.subarray(at + 27, at + 27 + segments).reduce((sum, n) => sum + n, 0);
    if (at + length > bytes.length) break; // cut short by the end of the recording
    const granule = bytes.readUInt32LE(at + 6) + bytes.readUInt32LE(at + 10) * 2 ** 32;
    pages.push({ serial: bytes.readUInt32LE(at + 14), flags: bytes[at + 5]!, granule, bytes: bytes.subarray(at, at + length) });
    at += length;
  }
  return pages;
}

/** The logical streams of a (chained) Ogg recording, in order, each with its pages. */
export function logicalStreams(bytes: Buffer): { serial: number; pages: ReturnType<typeof oggPages> }[] {
  const streams: { serial: number; pages: ReturnType<typeof oggPages> }[] = [];
  for (const page of oggPages(bytes)) {
    if (streams.at(-1)?.serial !== page.serial) streams.push({ serial: page.serial, pages: [] });
    streams.at(-1)!.pages.push(page);
  }
  return streams;
}
