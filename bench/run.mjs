#!/usr/bin/env node
// `npm run bench`: OpenStudio signaling against its peers, in one run, on loopback.
//
// Servers (all on 127.0.0.1, free ports):
//   ours          `wrangler dev` of this repository, as `npm run dev` runs it (local request
//                 tracing off, X_LOCAL_OBSERVABILITY=false)
//   ours-shipped  the same at the shipped per-connection limits (the others raise them so the
//                 load test measures the relay, not the limiter); no load test
//   ours-traced   the same with wrangler's local request tracing on (wrangler's default)
//   do-floor      a minimal relay Durable Object (bench/do-floor) under the same wrangler dev,
//                 tracing off: what the platform alone costs
//   peerjs        the PeerJS server (`peer` package)
//   floor         a minimal Node `ws` relay (bench/floor-server.mjs)
// They all run for the whole benchmark and take turns: every round runs each measurement
// on every server, in an order that rotates from round to round, so machine drift hits
// all of them alike. Everything this starts is stopped at the end, on Ctrl-C and on errors.
//
//   npm run bench                 # full run (~4 min)
//   npm run bench -- --quick      # smoke run (~2 min)
//   npm run bench -- --help
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { ADAPTERS } from './lib/adapters.mjs';
import { Peer } from './lib/client.mjs';
import { idleRelayPhase, joinPhase, loadPhase, memoryPhase, pacedPhase } from './lib/phases.mjs';
import { groupUsage, killAllSync, startGroup, stopAll, waitFor } from './lib/proc.mjs';
import { nodeForWrangler, ROOT, snapshotProject, startFloor, startPeerjs, startWrangler } from './lib/servers.mjs';
import { int, median, ms, roundAll, summarize } from './lib/stats.mjs';

const HELP = `usage: npm run bench -- [options]

  --quick                 smoke run: fewer rounds, shorter load, 300 idle sockets, 1 cold start
  --rounds N              measurement rounds, servers alternating (default 3; quick 2)
  --joins N               joins per server per round (default 100; quick 40)
  --room-size N           participants per room for joins and idle sockets (default 16)
  --join-concurrency N    joins in flight at once (default 8)
  --serial-joins N        joins one at a time per server per round (default 30; quick 15)
  --idle-ice N            idle relays of an ICE candidate per server per round (default 200; quick 80)
  --idle-sdp N            idle relays of an SDP offer per server per round (default 50; quick 20)
  --load-rooms N          rooms in the load test (default 20)
  --load-peers N          peers per room in the load test (default 4)
  --load-seconds S        measured seconds of load per server per round (default 3; quick 2)
  --window N              messages in flight per peer under load (default 8)
  --paced-rate R          offered rate of the paced relay test, msg/s over all peers (default 2000)
  --paced-seconds S       measured seconds of the paced test per server per round (default 3; quick 2)
  --memory-sockets N      idle sockets for the memory figure (default 1000; quick 300)
  --cold-starts N         cold starts per server (default 3; quick 1)
  --servers LIST          comma-separated subset of ours,ours-shipped,ours-traced,do-floor,peerjs,floor (default all)
  --ours-dir DIR          project directory to run as ours (default: this repository)
  --ours-ref REF          run a committed revision (git ref) instead of the working tree
  --alt-dir DIR           a second checkout (e.g. a git worktree with a change) to run as
                          alt and alt-notrace next to ours in the same run (added to the
                          servers unless --servers names them)
  --phases LIST           comma-separated subset of join,idle,paced,load,memory,cold (default all)
  --no-deflate            do not offer permessage-deflate (browsers always offer it)
  --out FILE              results file (default bench/results.json)
  --keep                  keep the work directory (logs, wrangler state) afterwards
`;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    joins: { type: 'string' },
    'room-size': { type: 'string' },
    'join-concurrency': { type: 'string' },
    'serial-joins': { type: 'string' },
    'idle-ice': { type: 'string' },
    'idle-sdp': { type: 'string' },
    'load-rooms': { type: 'string' },
    'load-peers': { type: 'string' },
    'load-seconds': { type: 'string' },
    window: { type: 'string' },
    'paced-rate': { type: 'string' },
    'paced-seconds': { type: 'string' },
    'memory-sockets': { type: 'string' },
    'cold-starts': { type: 'string' },
    servers: { type: 'string', default: 'ours,ours-shipped,ours-traced,do-floor,peerjs,floor' },
    'ours-dir': { type: 'string' },
    'ours-ref': { type: 'string' },
    'alt-dir': { type: 'string' },
    'no-deflate': { type: 'boolean', default: false },
    phases: { type: 'string', default: 'join,idle,paced,load,memory,cold' },
    out: { type: 'string', default: join(ROOT, 'bench', 'results.json') },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}

const q = flags.quick;
const num = (name, full, quick) => {
  const raw = flags[name];
  const n = raw === undefined ? (q ? quick : full) : Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
  return n;
};
const config = {
  rounds: num('rounds', 3, 2),
  joins: num('joins', 100, 40),
  roomSize: num('room-size', 16, 16),
  joinConcurrency: num('join-concurrency', 8, 8),
  serialJoins: num('serial-joins', 30, 15),
  idleIce: num('idle-ice', 200, 80),
  idleSdp: num('idle-sdp', 50, 20),
  loadRooms: num('load-rooms', 20, 20),
  loadPeers: num('load-peers', 4, 4),
  loadSeconds: num('load-seconds', 3, 2),
  loadRampSeconds: q ? 0.3 : 0.5,
  window: num('window', 8, 8),
  pacedRate: num('paced-rate', 2000, 2000),
  pacedSeconds: num('paced-seconds', 3, 2),
  memorySockets: num('memory-sockets', 1000, 300),
  memorySettleMs: 3000,
  coldStarts: num('cold-starts', 3, 1),
  deflate: !flags['no-deflate'],
  servers: flags.servers
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  oursDir: flags['ours-dir'] ?? ROOT,
  altDir: flags['alt-dir'] ?? null,
  phases: new Set(flags.phases.split(',').map((s) => s.trim())),
};
if (!config.phases.has('memory')) config.memorySockets = 0;
if (!config.phases.has('cold')) config.coldStarts = config.memorySockets > 0 ? 1 : 0;
if (flags['alt-dir'] && !flags.servers.includes('alt')) config.servers.push('alt', 'alt-notrace');

/**
 * Limits passed to ours with `--var`: the relay under load is measured, not the rate
 * limiter (which still runs on every frame but never refuses). Room size stays default.
 */
const OURS_VARS = { RATE_LIMIT_PER_SECOND: '1000000', RATE_LIMIT_BURST: '1000000' };
const NO_TRACING = { X_LOCAL_OBSERVABILITY: 'false' };
const TRACING = { X_LOCAL_OBSERVABILITY: 'true' };

/** The servers: how each is started and spoken to. */
const SPECS = {
  ours: {
    adapter: 'ours',
    title: 'ours',
    describe: '`wrangler dev` of this repository, as `npm run dev` runs it (local request tracing off)',
    start: (o) => startWrangler({ ...o, projectDir: oursSrc, vars: OURS_VARS, env: NO_TRACING }),
  },
  'ours-shipped': {
    adapter: 'ours',
    title: 'ours, shipped limits',
    describe:
      'ours at the shipped per-connection limits (burst 400, 50/s): every phase but the load test, which sends faster than any client may',
    start: (o) => startWrangler({ ...o, projectDir: oursSrc, env: NO_TRACING }),
    skip: ['load'],
  },
  'ours-traced': {
    adapter: 'ours',
    title: 'ours, traced',
    describe: 'the same with wrangler local request tracing on (`X_LOCAL_OBSERVABILITY=true`, wrangler’s default)',
    start: (o) => startWrangler({ ...o, projectDir: oursSrc, vars: OURS_VARS, env: TRACING }),
  },
  alt: {
    adapter: 'ours',
    title: 'alt',
    describe: '`wrangler dev` of the --alt-dir checkout (defaults)',
    start: (o) => startWrangler({ ...o, projectDir: altSrc, vars: OURS_VARS }),
  },
  'alt-notrace': {
    adapter: 'ours',
    title: 'alt, no tracing',
    describe: 'the same, wrangler local request tracing off',
    start: (o) => startWrangler({ ...o, projectDir: altSrc, vars: OURS_VARS, env: NO_TRACING }),
  },
  'do-floor': {
    adapter: 'floor',
    title: 'DO floor',
    describe: 'minimal relay Durable Object (bench/do-floor) under `wrangler dev`, tracing off',
    start: (o) => startWrangler({ ...o, projectDir: doFloorSrc, env: NO_TRACING }),
  },
  peerjs: { adapter: 'peerjs', title: 'PeerJS', describe: 'PeerJS server (`peer` package) on Node', start: startPeerjs },
  floor: { adapter: 'floor', title: 'floor', describe: 'minimal Node `ws` relay (bench/floor-server.mjs)', start: startFloor },
};
for (const s of config.servers) if (!SPECS[s]) throw new Error(`unknown server "${s}" (${Object.keys(SPECS).join(', ')})`);
const adapterOf = (s) => ADAPTERS[SPECS[s].adapter];

const sleep = (ms_) => new Promise((r) => setTimeout(r, ms_));
const t0 = performance.now();
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s`;
const log = (...args) => console.log(`[${elapsed()}]`, ...args);

// Outside the repository: wrangler state, logs and the source snapshots (test runners and
// file watchers of the project must not see them).
const workDir = mkdtempSync(join(os.tmpdir(), 'openstudio-bench-'));
const oursSrc = join(workDir, 'ours-src');
const altSrc = join(workDir, 'alt-src');
const doFloorSrc = join(workDir, 'do-floor-src');

// ---- cleanup on every way out ------------------------------------------------------------
process.on('exit', () => killAllSync());
let stopping = false;
async function abort(reason, code) {
  if (stopping) return;
  stopping = true;
  console.error(`\n${reason}; stopping servers…`);
  const timer = setTimeout(() => {
    killAllSync();
    process.exit(code);
  }, 8000);
  await stopAll().catch(() => {});
  clearTimeout(timer);
  console.error(`logs kept in ${workDir}`);
  process.exit(code);
}
process.on('SIGINT', () => abort('interrupted', 130));
process.on('SIGTERM', () => abort('terminated', 143));
process.on('SIGHUP', () => abort('hung up', 129));
process.on('uncaughtException', (error) => abort(`error: ${error.stack ?? error}`, 1));
process.on('unhandledRejection', (error) => abort(`error: ${error?.stack ?? error}`, 1));

// ---- machine ------------------------------------------------------------------------------
function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}
const pkgVersion = (name) => {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
};
function machine() {
  const lscpu = sh('lscpu', []) ?? '';
  const field = (name) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(lscpu)?.[1] ?? null;
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
  const wranglerNode = nodeForWrangler();
  return {
    cpu: field('Model name') ?? os.cpus()[0]?.model,
    cpus: Number(field('CPU\\(s\\)') ?? os.cpus().length),
    hypervisor: field('Hypervisor vendor'),
    memTotalMiB: Math.round(memKb / 1024),
    kernel: os.release(),
    node: process.version,
    nodeForWrangler: wranglerNode === process.execPath ? process.version : sh(wranglerNode, ['-v']),
    wrangler: pkgVersion('wrangler'),
    workerd: pkgVersion('workerd'),
    peer: pkgVersion('peer'),
    ws: pkgVersion('ws'),
    loadavgAtStart: os.loadavg(),
  };
}

// ---- bundle size --------------------------------------------------------------------------
async function bundleSize() {
  const outdir = join(workDir, 'dist');
  const handle = startGroup(
    'wrangler-deploy-dry-run',
    nodeForWrangler(),
    [join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'), 'deploy', '--dry-run', '--outdir', outdir],
    {
      cwd: oursSrc,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' },
      logPath: join(workDir, 'deploy-dry-run.log'),
    },
  );
  await waitFor(() => handle.exited, { timeoutMs: 120_000, what: 'wrangler deploy --dry-run' });
  await handle.stop();
  if (handle.exitCode !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${handle.tail.join('\n')}`);
  const line = handle.tail.find((l) => /Total Upload/.test(l)) ?? '';
  const m = /Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/.exec(line);
  const js = readFileSync(join(outdir, 'index.js'));
  return {
    command: 'npx wrangler deploy --dry-run --outdir <tmp>',
    wranglerReport: line.trim(),
    uploadKiB: m ? Number(m[1]) : null,
    gzipKiB: m ? Number(m[2]) : null,
    indexJsBytes: js.length,
    indexJsGzip9Bytes: gzipSync(js, { level: 9 }).length,
  };
}

// ---- cold start, then memory on the fresh instance ---------------------------------------------
/**
 * Process start → first acknowledgement (ours: `POST /rooms` answered, then `welcome`).
 * With `memory`, the fresh instance then measures its process-tree RSS before and after
 * that many idle sockets.
 */
async function coldStart(name, memory) {
  const adapter = adapterOf(name);
  const handle = await SPECS[name].start({ workDir, label: `${name}-cold`, waitReady: false });
  try {
    let firstHttpMs = null;
    const room = await waitFor(
      async () => {
        if (handle.exited) throw new Error(`${name} exited during cold start:\n${handle.tail.join('\n')}`);
        try {
          const [r] = await adapter.makeRooms(handle.base, 1);
          // Only ours makes rooms over HTTP; the others' first contact is the join itself.
          if (adapter.name === 'ours') firstHttpMs = performance.now() - handle.startedAt;
          return r;
        } catch {
          return null;
        }
      },
      { timeoutMs: 90_000, everyMs: 10, what: `${name} to answer` },
    );
    const peer = await waitFor(
      async () => {
        if (handle.exited) throw new Error(`${name} exited during cold start:\n${handle.tail.join('\n')}`);
        const p = new Peer(adapter, handle.base, { deflate: config.deflate });
        try {
          await p.join(room, 10_000);
          return p;
        } catch {
          room.joined = 0;
          return null;
        }
      },
      { timeoutMs: 90_000, everyMs: 10, what: `${name} to acknowledge a join` },
    );
    const totalMs = performance.now() - handle.startedAt;
    await peer.leave();
    let mem = null;
    if (memory) {
      // Warm the fresh instance a little (code paths compiled, first rooms made) first.
      await joinPhase(adapter, handle, { joins: 32, roomSize: config.roomSize, concurrency: 8, deflate: config.deflate });
      await sleep(500);
      mem = await memoryPhase(adapter, handle, {
        sockets: config.memorySockets,
        roomSize: config.roomSize,
        concurrency: 16,
        settleMs: config.memorySettleMs,
        deflate: config.deflate,
      });
    }
    return { totalMs, firstHttpMs, memory: mem };
  } finally {
    await handle.stop();
  }
}

// ---- aggregation --------------------------------------------------------------------------
const order = (round) => config.servers.map((_, i) => config.servers[(i + round) % config.servers.length]);

function pooled(perRound) {
  return { ...summarize(perRound.flat()), roundMedians: perRound.map((xs) => median(xs)) };
}

// ---- main -----------------------------------------------------------------------------------
async function main() {
  log(`OpenStudio signaling benchmark — servers: ${config.servers.join(', ')}; work dir ${workDir}`);
  const snapshot = snapshotProject(config.oursDir, oursSrc, flags['ours-ref'] ?? null);
  mkdirSync(doFloorSrc);
  for (const f of ['wrangler.toml', 'index.js']) copyFileSync(join(ROOT, 'bench', 'do-floor', f), join(doFloorSrc, f));
  log(`ours: snapshot of ${relative(process.cwd(), config.oursDir) || '.'} at ${snapshot.revision}`);
  let altSnapshot = null;
  if (config.servers.some((s) => s.startsWith('alt'))) {
    if (!config.altDir) throw new Error('alt servers need --alt-dir');
    altSnapshot = snapshotProject(config.altDir, altSrc);
    log(`alt: snapshot of ${config.altDir} at ${altSnapshot.revision}`);
  }
  const meta = {
    date: new Date().toISOString(),
    machine: machine(),
    config: { ...config, oursDir: relative(ROOT, config.oursDir) || '.' },
    oursRevision: snapshot.revision,
    altRevision: altSnapshot?.revision ?? null,
    oursVars: OURS_VARS,
    servers: Object.fromEntries(config.servers.map((s) => [s, SPECS[s].describe])),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  };
  log(
    `machine: ${meta.machine.cpu}, ${meta.machine.cpus} CPUs, ${meta.machine.memTotalMiB} MiB; node ${meta.machine.node}, wrangler ${meta.machine.wrangler}, peer ${meta.machine.peer}`,
  );

  let bundle = null;
  if (config.servers.some((s) => SPECS[s].adapter === 'ours')) {
    log('bundle: wrangler deploy --dry-run …');
    bundle = await bundleSize();
    log(`bundle: ${bundle.wranglerReport}`);
  }

  const servers = {};
  for (const name of config.servers) {
    log(`starting ${name} …`);
    servers[name] = await SPECS[name].start({ workDir, label: name });
    log(`${name} ready on ${servers[name].base} after ${ms(servers[name].readyMs)} ms`);
  }

  const R = Object.fromEntries(
    config.servers.map((s) => [
      s,
      { join: [], joinCpuMs: [], serialJoin: [], idleIce: [], idleSdp: [], paced: [], load: [], loadRuns: [], memory: null, cold: [] },
    ]),
  );
  const base = (s) => ({ adapter: adapterOf(s), server: servers[s] });

  log('warm-up (not recorded) …');
  for (const s of config.servers) {
    const { adapter, server } = base(s);
    await joinPhase(adapter, server, {
      joins: 32,
      roomSize: config.roomSize,
      concurrency: config.joinConcurrency,
      deflate: config.deflate,
    });
    await idleRelayPhase(adapter, server, { ice: 100, sdp: 20, deflate: config.deflate });
    if (!SPECS[s].skip?.includes('load')) {
      await loadPhase(adapter, server, {
        rooms: config.loadRooms,
        peersPerRoom: config.loadPeers,
        seconds: 1,
        rampSeconds: 0.2,
        window: config.window,
        deflate: config.deflate,
      });
    }
  }

  for (let round = 0; round < config.rounds; round++) {
    for (const s of order(round)) {
      const { adapter, server } = base(s);
      const P = new Set([...config.phases].filter((phase) => !SPECS[s].skip?.includes(phase)));
      const joinCpu = {};
      const joins = P.has('join')
        ? await joinPhase(adapter, server, {
            joins: config.joins,
            roomSize: config.roomSize,
            concurrency: config.joinConcurrency,
            deflate: config.deflate,
            cpu: joinCpu,
          })
        : [];
      if (P.has('join')) R[s].joinCpuMs.push(joinCpu.msPerJoin);
      const serial = P.has('join')
        ? await joinPhase(adapter, server, {
            joins: config.serialJoins,
            roomSize: config.roomSize,
            concurrency: 1,
            deflate: config.deflate,
          })
        : [];
      const idle = P.has('idle')
        ? await idleRelayPhase(adapter, server, { ice: config.idleIce, sdp: config.idleSdp, deflate: config.deflate })
        : { ice: [], sdp: [] };
      const paced = P.has('paced')
        ? await pacedPhase(adapter, server, {
            rooms: config.loadRooms,
            peersPerRoom: config.loadPeers,
            seconds: config.pacedSeconds,
            rampSeconds: config.loadRampSeconds,
            rate: config.pacedRate,
            deflate: config.deflate,
          })
        : { latencies: [], lost: 0 };
      if (paced.lost > 0) throw new Error(`${s}: ${paced.lost} relayed messages never arrived (paced)`);
      const load = P.has('load')
        ? await loadPhase(adapter, server, {
            rooms: config.loadRooms,
            peersPerRoom: config.loadPeers,
            seconds: config.loadSeconds,
            rampSeconds: config.loadRampSeconds,
            window: config.window,
            deflate: config.deflate,
          })
        : { latencies: [], lost: 0, throughput: NaN, serverCpuShare: NaN, clientCpuShare: NaN, serverCpuPerMsgUs: NaN };
      if (load.lost > 0) throw new Error(`${s}: ${load.lost} relayed messages never arrived`);
      R[s].join.push(joins);
      R[s].serialJoin.push(serial);
      R[s].idleIce.push(idle.ice);
      R[s].idleSdp.push(idle.sdp);
      R[s].load.push(load.latencies);
      R[s].paced.push(paced.latencies);
      const { latencies, ...rest } = load;
      R[s].loadRuns.push({ ...rest, latency: summarize(latencies) });
      log(
        `round ${round + 1}/${config.rounds} ${s.padEnd(12)} join p50 ${ms(median(joins))} ms (alone ${ms(median(serial))}) · idle ice p50 ${ms(median(idle.ice))} ms, sdp ${ms(median(idle.sdp))} ms · ` +
          `paced p50 ${ms(median(paced.latencies))} p99 ${ms(summarize(paced.latencies).p99)} ms · ` +
          `load p50 ${ms(median(latencies))} p99 ${ms(summarize(latencies).p99)} ms, ${int(load.throughput)} msg/s, CPU server ${(load.serverCpuShare * 100).toFixed(0)}% client ${(load.clientCpuShare * 100).toFixed(0)}%`,
      );
    }
  }

  const negotiated = {};
  const rssAfterRounds = {};
  for (const s of config.servers) {
    const { adapter, server } = base(s);
    const [room] = await adapter.makeRooms(server.base, 1);
    const p = new Peer(adapter, server.base, { deflate: config.deflate });
    await p.join(room);
    negotiated[s] = p.ws.extensions || 'none';
    await p.leave();
    rssAfterRounds[s] = groupUsage(server.pgid).rssBytes;
  }
  await stopAll();

  for (let i = 0; i < config.coldStarts; i++) {
    for (const s of order(i)) {
      const c = await coldStart(s, i === 0 && config.memorySockets > 0);
      if (config.phases.has('cold')) R[s].cold.push(c);
      if (c.memory) R[s].memory = c.memory;
      const m = c.memory;
      log(
        `cold start ${i + 1}/${config.coldStarts} ${s.padEnd(12)} ${ms(c.totalMs)} ms to first acknowledgement${c.firstHttpMs ? ` (HTTP up at ${ms(c.firstHttpMs)} ms)` : ''}` +
          (m
            ? ` · memory: ${(m.rssBeforeBytes / 2 ** 20).toFixed(0)} → ${(m.rssAfterBytes / 2 ** 20).toFixed(0)} MiB with ${m.sockets} idle sockets, ${(m.perConnectionBytes / 1024).toFixed(1)} KiB each`
            : ''),
      );
    }
  }

  // ---- results ------------------------------------------------------------------------------
  const figures = {};
  for (const s of config.servers) {
    const r = R[s];
    const runs = r.loadRuns;
    figures[s] = {
      title: SPECS[s].title,
      describe: SPECS[s].describe,
      readyMs: servers[s].readyMs,
      wsExtensions: negotiated[s],
      joinMs: pooled(r.join),
      serialJoinMs: pooled(r.serialJoin),
      joinServerCpuMs: { median: median(r.joinCpuMs), perRound: r.joinCpuMs },
      idleIceMs: pooled(r.idleIce),
      idleSdpMs: pooled(r.idleSdp),
      pacedMs: pooled(r.paced),
      loadMs: pooled(r.load),
      loadThroughput: { median: median(runs.map((x) => x.throughput)), perRound: runs.map((x) => x.throughput) },
      loadServerCpuPerMsgUs: { median: median(runs.map((x) => x.serverCpuPerMsgUs)), perRound: runs.map((x) => x.serverCpuPerMsgUs) },
      loadServerCpuShare: median(runs.map((x) => x.serverCpuShare)),
      loadClientCpuShare: median(runs.map((x) => x.clientCpuShare)),
      loadRuns: runs,
      rssAfterRoundsBytes: rssAfterRounds[s],
      memory: r.memory,
      coldStartMs: { median: median(r.cold.map((c) => c.totalMs)), runs: r.cold.map(({ memory, ...c }) => c) },
    };
  }
  const frameBytes = Object.fromEntries(
    Object.entries(ADAPTERS).map(([k, a]) => [
      k,
      { ice: a.iceFrame('AbCdEfGhIjKl', 123456789).length, sdp: a.sdpFrame('AbCdEfGhIjKl', 123456789).length },
    ]),
  );
  const results = roundAll({
    meta: { ...meta, durationS: (performance.now() - t0) / 1000, loadavgAtEnd: os.loadavg(), frameBytes },
    bundle,
    figures,
  });
  writeFileSync(flags.out, sanitize(`${JSON.stringify(results, null, 2)}\n`));

  console.log(`\n${table(results)}\n`);
  log(`results written to ${relative(process.cwd(), flags.out)}`);
  console.log(summaryLine(results));
}

/** Results name files relative to the repository, never by this machine's absolute paths. */
function sanitize(text) {
  return text.replaceAll(`${ROOT}/`, '').replaceAll(ROOT, '.').replaceAll(workDir, '<tmp>');
}

/** The markdown table of docs/benchmarks.md: one column per server, then ratios of ours to the peers. */
function table({ figures: f, bundle }) {
  const S = config.servers;
  const mine = S.filter((s) => SPECS[s].adapter === 'ours');
  const peers = ['do-floor', 'floor', 'peerjs'].filter((s) => S.includes(s));
  const ratios = mine.flatMap((m) => peers.map((p) => [`${SPECS[m].title} ÷ ${SPECS[p].title}`, m, p]));
  const rows = [];
  const fixed = (d) => (v) => (Number.isFinite(v) ? v.toFixed(d) : '–');
  const row = (label, get, fmt = ms) => {
    const rs = ratios.map(([, a, b]) => {
      const x = get(f[a]);
      const y = get(f[b]);
      return Number.isFinite(x) && Number.isFinite(y) && y > 0 ? `${(x / y).toFixed(2)}×` : '–';
    });
    rows.push([label, ...S.map((s) => fmt(get(f[s]))), ...rs]);
  };
  row('join p50 (ms), 8 in flight', (x) => x.joinMs.p50);
  row('join p99 (ms), 8 in flight', (x) => x.joinMs.p99);
  row('join p50 (ms), one at a time', (x) => x.serialJoinMs.p50);
  row('server CPU per join + leave (ms)', (x) => x.joinServerCpuMs.median, fixed(2));
  row('relay idle, ICE p50 (ms)', (x) => x.idleIceMs.p50);
  row('relay idle, ICE p99 (ms)', (x) => x.idleIceMs.p99);
  row('relay idle, ICE max (ms)', (x) => x.idleIceMs.max);
  row('relay idle, SDP p50 (ms)', (x) => x.idleSdpMs.p50);
  row('relay idle, SDP p99 (ms)', (x) => x.idleSdpMs.p99);
  row('relay idle, SDP max (ms)', (x) => x.idleSdpMs.max);
  row(`relay at ${int(config.pacedRate)} msg/s, p50 (ms)`, (x) => x.pacedMs.p50);
  row(`relay at ${int(config.pacedRate)} msg/s, p99 (ms)`, (x) => x.pacedMs.p99);
  row(`relay at ${int(config.pacedRate)} msg/s, max (ms)`, (x) => x.pacedMs.max);
  row('relay under load p50 (ms)', (x) => x.loadMs.p50);
  row('relay under load p99 (ms)', (x) => x.loadMs.p99);
  row('relay under load max (ms)', (x) => x.loadMs.max);
  row('throughput under load (msg/s)', (x) => x.loadThroughput.median, int);
  row('server CPU per relayed msg (µs)', (x) => x.loadServerCpuPerMsgUs.median, fixed(1));
  row('client CPU share under load', (x) => x.loadClientCpuShare, fixed(2));
  row('memory per idle connection (KiB)', (x) => (x.memory ? x.memory.perConnectionBytes / 1024 : NaN), fixed(1));
  row('process-tree RSS, fresh (MiB)', (x) => (x.memory ? x.memory.rssBeforeBytes / 2 ** 20 : NaN), fixed(0));
  row('cold start to first ack (ms)', (x) => x.coldStartMs.median, fixed(0));
  const head = ['figure', ...S.map((s) => SPECS[s].title), ...ratios.map(([l]) => l)];
  const lines = [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    `WebSocket extension negotiated with a client that offers permessage-deflate (as browsers do): ${S.map((s) => `${SPECS[s].title}: ${f[s].wsExtensions}`).join('; ')}.`,
  ];
  if (bundle) lines.push(`Deployed bundle (ours): ${bundle.wranglerReport}.`);
  return lines.join('\n');
}

function summaryLine({ figures: f, bundle, meta }) {
  const parts = [];
  for (const s of config.servers) {
    const x = f[s];
    parts.push(
      `${s} join ${ms(x.joinMs.p50)}/${ms(x.joinMs.p99)} ms, relay idle ${ms(x.idleIceMs.p50)}/${ms(x.idleIceMs.p99)} ms, load ${ms(x.loadMs.p50)}/${ms(x.loadMs.p99)} ms @ ${int(x.loadThroughput.median)} msg/s, ${x.memory ? (x.memory.perConnectionBytes / 1024).toFixed(0) : '–'} KiB/conn, cold ${ms(x.coldStartMs.median)} ms`,
    );
  }
  if (bundle) parts.push(`bundle ${bundle.gzipKiB} KiB gz`);
  return `SUMMARY (p50/p99, ${meta.durationS.toFixed(0)} s) — ${parts.join(' | ')}`;
}

main()
  .then(() => {
    if (!flags.keep) rmSync(workDir, { recursive: true, force: true });
    process.exit(0);
  })
  .catch((error) => abort(`error: ${error?.stack ?? error}`, 1));
