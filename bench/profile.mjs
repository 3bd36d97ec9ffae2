#!/usr/bin/env node
// CPU profile of ours (the Worker and the room Durable Object, in workerd) while it relays
// under load or accepts joins, through `wrangler dev --inspector-port` and the V8 profiler.
// Writes a .cpuprofile (open it in Chrome DevTools → Performance) and prints where the
// time went: by function (self time) and by source file.
//
//   node bench/profile.mjs                      # relay under load, 5 s
//   node bench/profile.mjs --phase join         # joins
//   node bench/profile.mjs --no-tracing         # wrangler's local request tracing off
//   node bench/profile.mjs --ours-dir ../wt     # another checkout (e.g. a git worktree)
//   node bench/profile.mjs --seconds 10 --out relay.cpuprofile
import { writeFileSync } from 'node:fs';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { ADAPTERS } from './lib/adapters.mjs';
import { joinPhase, loadPhase } from './lib/phases.mjs';
import { groupUsage, killAllSync, stopAll } from './lib/proc.mjs';
import { ROOT, snapshotProject, startWrangler } from './lib/servers.mjs';

const { values: flags } = parseArgs({
  options: {
    phase: { type: 'string', default: 'load' },
    seconds: { type: 'string', default: '5' },
    joins: { type: 'string', default: '400' },
    window: { type: 'string', default: '8' },
    interval: { type: 'string', default: '100' },
    'no-deflate': { type: 'boolean', default: false },
    'no-tracing': { type: 'boolean', default: false },
    'ours-dir': { type: 'string', default: ROOT },
    out: { type: 'string', default: join(ROOT, 'bench', '.work', 'ours.cpuprofile') },
    top: { type: 'string', default: '25' },
  },
});

process.on('exit', () => killAllSync());
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stopAll().finally(() => process.exit(130)));

mkdirSync(join(ROOT, 'bench', '.work'), { recursive: true });
const workDir = mkdtempSync(join(os.tmpdir(), 'openstudio-profile-'));
const adapter = ADAPTERS.ours;
const deflate = !flags['no-deflate'];

/** Minimal Chrome DevTools Protocol client. */
async function cdp(url) {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let id = 0;
  const pending = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(`${msg.error.message}`));
      else resolve(msg.result);
    }
  });
  return {
    send(method, params = {}) {
      const n = ++id;
      ws.send(JSON.stringify({ id: n, method, params }));
      return new Promise((resolve, reject) => pending.set(n, { resolve, reject }));
    },
    close: () => ws.close(),
  };
}

function summarizeProfile(profile, top) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const keyOf = (c) => {
    const url = c.url ? c.url.replace(/^.*\/(?=[^/]+$)/, '') : '';
    return `${c.functionName || '(anonymous)'} ${url}${url ? `:${c.lineNumber + 1}` : ''}`;
  };
  // Inclusive time: every function on a sample's stack, counted once per sample.
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map();
  for (const [nodeId, us] of self) {
    const seen = new Set();
    for (let id = nodeId; id !== undefined; id = parent.get(id)) {
      const key = keyOf(byId.get(id).callFrame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const fn = new Map();
  const file = new Map();
  for (const [nodeId, us] of self) {
    const { callFrame: c } = byId.get(nodeId);
    const url = c.url ? c.url.replace(/^.*\/(?=[^/]+$)/, '') : '';
    const key = `${c.functionName || '(anonymous)'} ${url}${url ? `:${c.lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const f = url || c.functionName || '(native)';
    file.set(f, (file.get(f) ?? 0) + us);
  }
  const rows = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  inclusive.delete('(root) ');
  return { totalMs: total / 1000, byFunction: rows(fn), byFile: rows(file), inclusive: rows(inclusive) };
}

async function main() {
  const src = join(workDir, 'src');
  const snapshot = snapshotProject(flags['ours-dir'], src);
  console.log(`profiling a snapshot of ${flags['ours-dir']} at ${snapshot.revision}`);
  const server = await startWrangler({
    workDir,
    projectDir: src,
    vars: { RATE_LIMIT_PER_SECOND: '1000000', RATE_LIMIT_BURST: '1000000' },
    env: flags['no-tracing'] ? { X_LOCAL_OBSERVABILITY: 'false' } : {},
  });
  console.log(`ours on ${server.base}, inspector on ${server.inspectorPort}`);
  const targets = await fetch(`http://127.0.0.1:${server.inspectorPort}/json/list`).then((r) => r.json());
  const session = await cdp(targets[0].webSocketDebuggerUrl);
  await session.send('Profiler.enable');
  await session.send('Profiler.setSamplingInterval', { interval: Number(flags.interval) });

  // Warm up first (JIT), then profile.
  await loadPhase(adapter, server, { rooms: 20, peersPerRoom: 4, seconds: 1, rampSeconds: 0.2, window: Number(flags.window), deflate });
  const usage0 = groupUsage(server.pgid);
  await session.send('Profiler.start');
  const t0 = performance.now();
  let result;
  if (flags.phase === 'join') {
    const lat = await joinPhase(adapter, server, { joins: Number(flags.joins), roomSize: 16, concurrency: 8, deflate });
    result = `${lat.length} joins`;
  } else {
    const load = await loadPhase(adapter, server, {
      rooms: 20,
      peersPerRoom: 4,
      seconds: Number(flags.seconds),
      rampSeconds: 0.3,
      window: Number(flags.window),
      deflate,
    });
    result = `${Math.round(load.throughput)} msg/s, ${load.serverCpuPerMsgUs.toFixed(0)} µs server CPU per message`;
  }
  const wallMs = performance.now() - t0;
  const { profile } = await session.send('Profiler.stop');
  const usage1 = groupUsage(server.pgid);
  session.close();
  writeFileSync(flags.out, JSON.stringify(profile));

  console.log(`${flags.phase}: ${result}; wall ${wallMs.toFixed(0)} ms`);
  console.log('CPU seconds by process meanwhile:');
  for (const p of usage1.processes) {
    const before = usage0.processes.find((q) => q.pid === p.pid)?.cpuSeconds ?? 0;
    if (p.cpuSeconds - before > 0)
      console.log(`  ${(p.cpuSeconds - before).toFixed(2).padStart(6)} s  ${p.cmd.replace(ROOT + '/', '').slice(0, 110)}`);
  }
  const s = summarizeProfile(profile, Number(flags.top));
  console.log(`\nV8 samples in the worker isolate: ${s.totalMs.toFixed(0)} ms (includes "(idle)" and "(program)" = outside JS)`);
  console.log('\nself time by function:');
  for (const line of s.byFunction) console.log(`  ${line}`);
  console.log('\ninclusive time by function (self + callees):');
  for (const line of s.inclusive) console.log(`  ${line}`);
  console.log('\nself time by file:');
  for (const line of s.byFile) console.log(`  ${line}`);
  console.log(`\nprofile written to ${relative(process.cwd(), flags.out)}`);
  await stopAll();
  rmSync(workDir, { recursive: true, force: true });
}

main().catch(async (error) => {
  console.error(error);
  await stopAll();
  process.exit(1);
});
