// Starting the three servers on loopback, each in its own process group.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { freePort, startGroup, waitFor } from './proc.mjs';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

/** Current wrangler needs Node ≥ 22.12: this Node if it is new enough, else the project's `node` devDependency. */
export function nodeForWrangler() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 12)) return process.execPath;
  const local = join(ROOT, 'node_modules', 'node', 'bin', 'node');
  if (existsSync(local)) return local;
  throw new Error(`wrangler needs Node >= 22.12 (this is ${process.version}); run through \`npm run bench\` after \`npm install\``);
}

/**
 * Copy a project's working tree (tracked and untracked-but-not-ignored files, as `git`
 * sees them) — or, with `ref`, a committed revision — to `dest`, with `node_modules`
 * linked to this repository's. `wrangler dev` reloads on every source change and drops
 * all WebSockets when it does; running from a snapshot keeps edits made during a run out
 * of it. Returns a description of the source.
 */
export function snapshotProject(src, dest, ref = null) {
  mkdirSync(dest, { recursive: true });
  if (ref) {
    const commit = execFileSync('git', ['rev-parse', '--short', `${ref}^{commit}`], { cwd: src, encoding: 'utf8' }).trim();
    const tar = join(dest, '..', `${commit}.tar`);
    execFileSync('git', ['archive', '--format=tar', '-o', tar, commit], { cwd: src });
    execFileSync('tar', ['-xf', tar, '-C', dest]);
    symlinkSync(join(ROOT, 'node_modules'), join(dest, 'node_modules'), 'dir');
    return { files: null, revision: commit };
  }
  let files;
  let revision = null;
  try {
    files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: src,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    })
      .split('\0')
      .filter(Boolean);
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: src, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: src, encoding: 'utf8' }).trim() !== '';
    revision = `${head}${dirty ? ' + uncommitted changes' : ''}`;
  } catch {
    throw new Error(`${src} is not a git checkout; cannot snapshot it`);
  }
  for (const file of files) {
    if (file.startsWith('node_modules/')) continue;
    const from = join(src, file);
    let stat;
    try {
      stat = lstatSync(from);
    } catch {
      continue; // tracked but deleted in the working tree
    }
    if (!stat.isFile()) continue;
    mkdirSync(dirname(join(dest, file)), { recursive: true });
    copyFileSync(from, join(dest, file));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dest, 'node_modules'), 'dir');
  return { files: files.length, revision };
}

/** Names wrangler would otherwise take from the environment (vars and secrets of wrangler.toml). */
function wranglerConfigNames(projectDir) {
  const toml = readFileSync(join(projectDir, 'wrangler.toml'), 'utf8');
  const names = new Set(['TOKEN_SECRET', 'TURN_SECRET', 'ICECAST_SOURCE_PASSWORD', 'ROOM_CREATION_KEY']);
  for (const m of toml.matchAll(/^([A-Z][A-Z0-9_]*)\s*=/gm)) names.add(m[1]);
  return names;
}

function wranglerEnv(projectDir, extra) {
  const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1', FORCE_COLOR: '0' };
  for (const name of wranglerConfigNames(projectDir)) delete env[name];
  return { ...env, ...extra };
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function checkAlive(handle) {
  if (handle.exited) {
    throw new Error(`${handle.name} exited (${handle.exitCode}) during startup:\n  ${handle.tail.slice(-15).join('\n  ')}`);
  }
}

/**
 * `wrangler dev` of a project (this repository by default), as a developer runs it, with a
 * throwaway state directory and secrets file (the developer's `.dev.vars` and
 * `.wrangler/state` are neither read nor touched), `--var` overrides and extra
 * environment variables for wrangler.
 */
export async function startWrangler({ workDir, projectDir = ROOT, vars = {}, secrets = {}, env = {}, label = 'ours', waitReady = true }) {
  const dir = join(workDir, `${label}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const envFile = join(dir, 'secrets.env');
  writeFileSync(
    envFile,
    `TOKEN_SECRET=${randomBytes(32).toString('hex')}\nTURN_SECRET=${randomBytes(32).toString('hex')}\n` +
      Object.entries(secrets)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    { mode: 0o600 },
  );
  const port = await freePort();
  const inspectorPort = await freePort();
  const args = [
    join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'),
    'dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--inspector-port',
    String(inspectorPort),
    '--persist-to',
    join(dir, 'state'),
    '--env-file',
    envFile,
    '--show-interactive-dev-session=false',
    ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
  ];
  const startedAt = performance.now();
  const handle = startGroup(label, nodeForWrangler(), args, {
    cwd: projectDir,
    env: wranglerEnv(projectDir, env),
    logPath: join(dir, 'wrangler.log'),
  });
  Object.assign(handle, { port, inspectorPort, base: `127.0.0.1:${port}`, startedAt, dir, args });
  if (waitReady) {
    await waitFor(
      async () => {
        checkAlive(handle);
        if (!(await tcpOpen(port))) return false;
        const r = await fetch(`http://${handle.base}/health`, { signal: AbortSignal.timeout(5000) }).catch(() => null);
        return r?.status === 200;
      },
      { timeoutMs: 60_000, what: `wrangler dev on ${port}` },
    );
    handle.readyMs = performance.now() - startedAt;
  }
  return handle;
}

/** Ours with the load test's raised per-connection limits (see run.mjs). */
export const startOurs = (opts) => startWrangler({ label: 'ours', ...opts });

async function startNodeServer(kind, script, { workDir, label = kind, healthPath, waitReady = true }) {
  const port = await freePort();
  const startedAt = performance.now();
  const handle = startGroup(label, process.execPath, [join(ROOT, 'bench', script), '--port', String(port)], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
    logPath: join(workDir, `${label}-${port}.log`),
  });
  Object.assign(handle, { port, base: `127.0.0.1:${port}`, startedAt });
  if (waitReady) {
    await waitFor(
      async () => {
        checkAlive(handle);
        if (!(await tcpOpen(port))) return false;
        const r = await fetch(`http://${handle.base}${healthPath}`, { signal: AbortSignal.timeout(5000) }).catch(() => null);
        return r?.status === 200;
      },
      { timeoutMs: 30_000, what: `${label} on ${port}` },
    );
    handle.readyMs = performance.now() - startedAt;
  }
  return handle;
}

export const startPeerjs = (opts) => startNodeServer('peerjs', 'peerjs-server.mjs', { ...opts, healthPath: '/' });
export const startFloor = (opts) => startNodeServer('floor', 'floor-server.mjs', { ...opts, healthPath: '/health' });
