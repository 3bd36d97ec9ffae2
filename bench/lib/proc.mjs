// Child processes of the benchmark: started in their own process group (so a server's
// whole tree — e.g. wrangler → workerd — can be measured and stopped together), tracked
// in one registry, and all stopped on exit, Ctrl-C or error.
import { spawn } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

const PAGE_SIZE = 4096;
const CLK_TCK = 100;
const running = new Set();

/** A free TCP port on 127.0.0.1 (bound and released at once). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Start `command args` as the leader of a new process group. Output goes to `logPath`;
 * the last lines are kept for error messages.
 */
export function startGroup(name, command, args, { env, cwd, logPath }) {
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = logPath ? createWriteStream(logPath) : null;
  const tail = [];
  const keep = (chunk) => {
    log?.write(chunk);
    for (const line of chunk.toString().split('\n')) {
      if (line.trim()) tail.push(line);
    }
    if (tail.length > 40) tail.splice(0, tail.length - 40);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const handle = {
    name,
    child,
    pgid: child.pid,
    exited: false,
    exitCode: null,
    tail,
    stop: () => stopGroup(handle),
  };
  child.on('exit', (code, signal) => {
    handle.exited = true;
    handle.exitCode = code ?? signal;
    log?.end();
  });
  child.on('error', (error) => {
    handle.exited = true;
    handle.exitCode = String(error);
  });
  running.add(handle);
  return handle;
}

function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // group already gone
  }
}

/** SIGTERM the whole group, then SIGKILL whatever is left after a grace period. */
export async function stopGroup(handle, graceMs = 3000) {
  if (!running.has(handle)) return;
  running.delete(handle);
  signalGroup(handle.pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && groupPids(handle.pgid).length > 0) {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (groupPids(handle.pgid).length > 0) signalGroup(handle.pgid, 'SIGKILL');
}

/** Synchronous last resort (process 'exit' handler): SIGKILL every group still running. */
export function killAllSync() {
  for (const handle of running) signalGroup(handle.pgid, 'SIGKILL');
  running.clear();
}

export async function stopAll() {
  await Promise.all([...running].map((h) => stopGroup(h)));
}

function readStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    // f[0] is field 3 (state): ppid=4, pgrp=5, utime=14, stime=15, rss=24
    return {
      pid,
      comm,
      pgrp: Number(f[2]),
      cpuTicks: Number(f[11]) + Number(f[12]),
      rssBytes: Number(f[21]) * PAGE_SIZE,
    };
  } catch {
    return null;
  }
}

/** Every live process of a process group. */
export function groupPids(pgid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.pgrp === pgid) out.push(stat);
  }
  return out;
}

/** RSS and CPU time of a process group, summed and per process. */
export function groupUsage(pgid) {
  const procs = groupPids(pgid);
  const byProcess = procs.map((p) => {
    let cmd = p.comm;
    try {
      cmd = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(0, 3).join(' ');
    } catch {}
    return { pid: p.pid, comm: p.comm, cmd, rssBytes: p.rssBytes, cpuSeconds: p.cpuTicks / CLK_TCK };
  });
  return {
    rssBytes: procs.reduce((s, p) => s + p.rssBytes, 0),
    cpuSeconds: procs.reduce((s, p) => s + p.cpuTicks, 0) / CLK_TCK,
    processes: byProcess,
  };
}

/** Resolve when `check()` returns truthy; poll every `everyMs`; reject after `timeoutMs`. */
export async function waitFor(check, { timeoutMs, everyMs = 25, what }) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
