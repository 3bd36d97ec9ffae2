#!/usr/bin/env node
// Program latency, source to listener, and a soak of one show: `node bench/broadcast-latency.mjs`.
//
// Starts its own Icecast (local-infra/native.mjs, free ports, a temporary run dir) and
// `wrangler dev`, creates a room and broadcasts into it like the browser does: an Opus
// encoder in real time (ffmpeg, 200 ms Ogg pages, standing in for MediaRecorder's 250 ms
// slices) sending over the feed WebSocket. The program is silence with a 50 ms 1 kHz burst
// every `--period` seconds. A listener decodes the show's listen URL (ffmpeg to PCM) and
// notes when each burst arrives: latency = arrival − the moment the encoder produced it.
// That is the live edge a listener receives; a player adds its own buffer on top (at least
// Icecast's burst-on-connect, reported alongside).
//
// With --minutes N it keeps going for N minutes and also reports gaps in the decoded
// stream, the Worker's CPU and memory over time, and feed reconnects (zero expected).
//
//   node bench/broadcast-latency.mjs                 # 30 bursts, ~2 minutes
//   node bench/broadcast-latency.mjs --minutes 60    # the soak
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { freePort, groupUsage, killAllSync, stopAll } from './lib/proc.mjs';
import { ROOT, snapshotProject, startWrangler } from './lib/servers.mjs';
import { summarize } from './lib/stats.mjs';

const { values: opts } = parseArgs({
  options: {
    bursts: { type: 'string', default: '30' },
    period: { type: 'string', default: '4' },
    minutes: { type: 'string' },
    bitrate: { type: 'string', default: '64k' },
    'page-ms': { type: 'string', default: '200' },
  },
});
const PERIOD_S = Number(opts.period);
const percentiles = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
  return { ...summarize(xs), p95: at(95) };
};
const DURATION_S = opts.minutes ? Number(opts.minutes) * 60 : Number(opts.bursts) * PERIOD_S + 2;
const RATE = 48_000;

const dir = mkdtempSync(join(os.tmpdir(), 'openstudio-latency-'));
const secret = () => randomBytes(24).toString('hex');
const infraEnv = {
  ...process.env,
  TURN_SECRET: secret(),
  ICECAST_SOURCE_PASSWORD: secret(),
  ICECAST_ADMIN_PASSWORD: secret(),
  TURN_PORT: String(await freePort()),
  ICECAST_PORT: String(await freePort()),
  LOCAL_INFRA_RUN_DIR: join(dir, 'infra'),
};
const native = (command) =>
  spawnSync(process.execPath, [join(ROOT, 'local-infra', 'native.mjs'), command], { env: infraEnv, encoding: 'utf8' });
const children = [];
const cleanup = async () => {
  for (const child of children) child.kill('SIGKILL');
  await stopAll();
  native('down');
  rmSync(dir, { recursive: true, force: true });
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
process.on('exit', () => killAllSync());

try {
  const up = native('up');
  if (up.status !== 0) throw new Error(`native.mjs up failed: ${up.stdout}${up.stderr}`);
  const icecast = `http://127.0.0.1:${infraEnv.ICECAST_PORT}`;
  // From a snapshot: wrangler dev reloads (and drops every socket) when its sources change.
  const project = join(dir, 'project');
  const { revision } = snapshotProject(ROOT, project);
  const worker = await startWrangler({
    workDir: dir,
    projectDir: project,
    vars: { ICECAST_URL: icecast, ICECAST_PUBLIC_URL: icecast },
    secrets: { ICECAST_SOURCE_PASSWORD: infraEnv.ICECAST_SOURCE_PASSWORD },
  });
  const room = await (await fetch(`http://${worker.base}/rooms`, { method: 'POST', body: '{}' })).json();

  // The broadcaster: a fresh encoder for every new socket and on restart-stream, like the browser's.
  let t0 = 0; // when the current encoder produced its first output: burst k is at t0 + k·PERIOD
  let reconnects = -1;
  let restarts = 0;
  let listenUrl = '';
  const encoderArgs = [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    '-re',
    '-f',
    'lavfi',
    '-i',
    `aevalsrc='if(lt(mod(t,${PERIOD_S}),0.05),0.5*sin(2*PI*1000*t),0)':s=${RATE}:c=mono`,
    '-c:a',
    'libopus',
    '-b:a',
    opts.bitrate,
    '-page_duration',
    String(Number(opts['page-ms']) * 1000),
    '-f',
    'ogg',
    '-',
  ];
  let encoder = null;
  const startEncoder = (socket) => {
    encoder?.kill('SIGKILL');
    const child = spawn('ffmpeg', encoderArgs, { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(child);
    encoder = child;
    let first = true;
    child.stdout.on('data', (chunk) => {
      if (first) ((t0 = Date.now()), (first = false));
      if (encoder === child && socket.readyState === WebSocket.OPEN) socket.send(chunk);
    });
  };
  const connect = (broadcastId) => {
    const url = new URL(`ws://${worker.base}/rooms/${room.roomId}/broadcast?token=${room.tokens.host}`);
    if (broadcastId) url.searchParams.set('resume', broadcastId);
    const socket = new WebSocket(url);
    let id = broadcastId;
    socket.on('open', () => ((reconnects += 1), startEncoder(socket)));
    socket.on('message', (data, binary) => {
      if (binary) return;
      const frame = JSON.parse(String(data));
      if (frame.type === 'feed-accepted') id = frame.broadcastId;
      if (frame.type === 'restart-stream') ((restarts += 1), startEncoder(socket));
      if (frame.type === 'broadcast-updated' && frame.broadcast.listenUrl) listenUrl = frame.broadcast.listenUrl;
    });
    socket.on('error', () => {}); // the close that follows decides
    socket.on('close', (code) => {
      // Refused or stopped: a bench that reconnects to a refusal measures nothing.
      if (code >= 4000 || code === 1000 || code === 1011) {
        if (!stopping) console.error(`feed closed with ${code}`);
        return;
      }
      if (!stopping) setTimeout(() => connect(id), 500);
    });
    return socket;
  };
  let stopping = false;
  const feed = connect(null);
  const deadline = Date.now() + 20_000;
  while (!listenUrl && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1_000)); // on air

  // The listener: decode to PCM as it arrives; find burst onsets.
  const listener = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'error',
      '-fflags',
      'nobuffer',
      '-probesize',
      '32',
      '-analyzeduration',
      '0',
      '-i',
      listenUrl,
      '-f',
      's16le',
      '-ac',
      '1',
      '-ar',
      String(RATE),
      '-',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  children.push(listener);
  const latencies = [];
  let samples = 0;
  let quietSince = 0;
  let inBurst = false;
  let lastDataAt = Date.now();
  const gaps = [];
  listener.stdout.on('data', (chunk) => {
    const now = Date.now();
    if (now - lastDataAt > 1_000) gaps.push(now - lastDataAt);
    lastDataAt = now;
    for (let i = 0; i + 1 < chunk.length; i += 2) {
      const loud = Math.abs(chunk.readInt16LE(i)) > 4_000;
      if (loud && !inBurst && samples - quietSince > RATE / 2) {
        const k = Math.floor((now - t0) / (PERIOD_S * 1000));
        latencies.push(now - (t0 + k * PERIOD_S * 1000));
      }
      if (loud) inBurst = true;
      else if (inBurst) ((inBurst = false), (quietSince = samples));
      samples += 1;
    }
  });

  const usage = [];
  const started = Date.now();
  while (Date.now() - started < DURATION_S * 1000) {
    await new Promise((r) => setTimeout(r, Math.min(60_000, started + DURATION_S * 1000 - Date.now())));
    const { rssBytes, cpuSeconds, processes } = groupUsage(worker.pgid);
    const perProcess = Object.fromEntries(processes.map((p) => [`${p.comm}:${p.pid}`, Math.round(p.rssBytes / 2 ** 20)]));
    usage.push({
      atSeconds: Math.round((Date.now() - started) / 1000),
      rssMiB: Math.round(rssBytes / 2 ** 20),
      perProcess,
      cpuSeconds: Math.round(cpuSeconds * 10) / 10,
    });
  }
  stopping = true;
  feed.close(1000);
  const decodedS = samples / RATE;
  const elapsedS = (Date.now() - started) / 1000;
  const burstBytes = Number(
    /<burst-size>(\d+)<\/burst-size>/.exec(readFileSync(join(ROOT, 'local-infra', 'icecast.xml.template'), 'utf8'))?.[1] ?? 0,
  );
  const result = {
    date: new Date().toISOString(),
    revision,
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model}, load ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
    settings: {
      bitrate: opts.bitrate,
      pageMs: Number(opts['page-ms']),
      periodS: PERIOD_S,
      durationS: DURATION_S,
      icecastBurstBytes: burstBytes,
    },
    latencyMs: percentiles(latencies.slice(1)), // the first burst can straddle the listener's start
    playerBufferFromBurstMs: Math.round(((burstBytes * 8) / (parseInt(opts.bitrate, 10) * 1000)) * 1000),
    decodedSeconds: Math.round(decodedS * 10) / 10,
    elapsedSeconds: Math.round(elapsedS * 10) / 10,
    drift: `${(((decodedS - elapsedS) / elapsedS) * 100).toFixed(2)} %`,
    gapsOver1s: gaps,
    feedReconnects: reconnects,
    streamRestarts: restarts,
    workerUsage: usage,
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  await cleanup();
}
