#!/usr/bin/env node
// local-infra the Compose way: compose.yaml run with Docker, or with podman through its
// Docker API, built from Debian packages only (Dockerfile.coturn, Dockerfile.icecast).
//
//   node local-infra/compose.mjs up | down | status
//
// Same settings as native.mjs: secrets from the environment or local-infra/.env; TURN_PORT,
// TURN_MIN_PORT / TURN_MAX_PORT, ICECAST_PORT; LOCAL_INFRA_RUN_DIR (here: the env file handed
// to Compose, podman's API socket). COMPOSE_PROJECT_NAME names the stack (default local-infra).
//
// With podman (no `docker compose` on PATH), this also does what a Docker engine would:
// - serves podman's Docker API on a socket of the run dir for Debian's `docker-compose`
//   (unless DOCKER_HOST already points at one), with container limits a restricted host
//   accepts (runtimes raise nofile/nproc by default; some hosts refuse: `error setting rlimit`);
// - builds `debian:bookworm-slim` from Debian packages (debootstrap, root) when podman has
//   none and cannot pull it; podman's image store keeps it;
// - runs the health checks (`podman healthcheck run`): podman schedules them with systemd
//   timers, which a machine without systemd does not have.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSystemPackages, SYSTEM_PACKAGES, SystemPackagesError } from '../scripts/system-packages.mjs';
import { checkSecrets, InfraError, settings } from './native.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const COMPOSE_FILE = join(here, 'compose.yaml');
export const BASE_IMAGE = 'docker.io/library/debian:bookworm-slim';
const SERVICES = ['coturn', 'icecast'];
const HEALTHY_TIMEOUT_MS = 90_000;

const log = (message) => console.log(`local-infra: ${message}`);

function which(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();
}

function run(bin, args, options = {}) {
  return spawnSync(bin, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
}

/**
 * How to run Compose here: `docker compose` when Docker has it, else Debian's
 * `docker-compose` against podman's Docker API. `close()` stops what this started;
 * `idleSeconds` > 0 lets podman's API service also stop by itself after that long unused
 * (in case the caller is killed before it can close it).
 */
const hasDockerCompose = () => Boolean(which('docker')) && run('docker', ['compose', 'version']).status === 0;

export async function openEngine(env = process.env, { idleSeconds = 0 } = {}) {
  const { runDir } = settings(env);
  if (hasDockerCompose()) {
    return { kind: 'docker', compose: ['docker', 'compose'], env: { ...env }, close() {} };
  }
  // No Docker: podman, installed from Debian packages when missing (root), with Debian's
  // docker-compose as the client.
  try {
    ensureSystemPackages(SYSTEM_PACKAGES.compose, { log });
  } catch (error) {
    if (error instanceof SystemPackagesError)
      throw new InfraError(`no Docker with \`docker compose\` here, and podman is not ready: ${error.message}`);
    throw error;
  }
  if (env.DOCKER_HOST) return { kind: 'podman', compose: ['docker-compose'], env: { ...env }, podmanEnv: env, close() {} };

  const dir = join(runDir, 'compose');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const socket = join(dir, 'podman.sock');
  rmSync(socket, { force: true });
  const conf = join(dir, 'containers.conf');
  writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n');
  const podmanEnv = { ...env, CONTAINERS_CONF: conf };
  // Its own process group: a Ctrl-C meant for the caller must not take the API away before
  // the caller's clean-up has used it.
  const service = spawn('podman', ['system', 'service', `--time=${idleSeconds}`, `unix://${socket}`], {
    env: podmanEnv,
    detached: true,
    stdio: 'ignore',
  });
  service.unref();
  const engine = {
    kind: 'podman',
    compose: ['docker-compose'],
    env: { ...podmanEnv, DOCKER_HOST: `unix://${socket}` },
    podmanEnv,
    close() {
      try {
        process.kill(service.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    },
  };
  const started = Date.now();
  while (run('curl', ['-fsS', '--unix-socket', socket, 'http://d/_ping']).status !== 0) {
    if (service.exitCode !== null || Date.now() - started > 15_000) {
      engine.close();
      throw new InfraError(`podman system service did not answer on ${socket}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return engine;
}

/** Debian's `bookworm-slim` for podman from Debian packages, when it has none (cached in its store). */
export function ensureBaseImage(engine) {
  if (engine.kind !== 'podman' || run('podman', ['image', 'exists', BASE_IMAGE], { env: engine.podmanEnv }).status === 0) return;
  if (process.getuid?.() !== 0 || !which('debootstrap')) {
    log(
      `podman has no ${BASE_IMAGE}; the build will try to pull it (as root with debootstrap installed, it is made from Debian packages instead)`,
    );
    return;
  }
  const started = Date.now();
  log(`building ${BASE_IMAGE} from Debian packages (debootstrap: a minute or more; kept in podman's image store)…`);
  const rootfs = mkdtempSync(join(tmpdir(), 'openstudio-debian-'));
  try {
    const strap = run('debootstrap', ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 600_000,
    });
    if (strap.status !== 0) throw new InfraError(`debootstrap failed:\n${strap.stderr}`);
    // The package sources of Debian's own image (updates and security too), so the images get
    // the same coturn and Icecast builds as this machine's packages.
    rmSync(join(rootfs, 'etc/apt/sources.list'), { force: true });
    const source = (uri, suites) =>
      `Types: deb\nURIs: ${uri}\nSuites: ${suites}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`;
    writeFileSync(
      join(rootfs, 'etc/apt/sources.list.d/debian.sources'),
      `${source('http://deb.debian.org/debian', 'bookworm bookworm-updates')}\n${source('http://deb.debian.org/debian-security', 'bookworm-security')}`,
    );
    for (const cache of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      rmSync(join(rootfs, cache), { recursive: true, force: true });
      mkdirSync(join(rootfs, cache, 'partial'), { recursive: true });
    }
    const imported = run('sh', ['-c', `tar -C "$1" -c . | podman import --change 'CMD ["bash"]' - "$2"`, 'sh', rootfs, BASE_IMAGE], {
      env: engine.podmanEnv,
    });
    if (imported.status !== 0) throw new InfraError(`podman import failed:\n${imported.stderr}`);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
  log(`${BASE_IMAGE} built in ${Math.round((Date.now() - started) / 1000)} s`);
}

/** The base image ahead of time (as `npm test` does, so its progress shows): podman only, Docker pulls it. */
export function prepareBaseImage(env = process.env) {
  if (!hasDockerCompose() && which('podman')) ensureBaseImage({ kind: 'podman', podmanEnv: env });
}

/** The env file Compose reads: this run's secrets and ports, nothing from the shell. */
function envFile(env) {
  const s = settings(env);
  const dir = join(s.runDir, 'compose');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const values = {
    ...s.secrets,
    TURN_PORT: s.turnPort,
    ICECAST_PORT: s.icecastPort,
    ...(s.turnMinPort ? { TURN_MIN_PORT: s.turnMinPort } : {}),
    ...(s.turnMaxPort ? { TURN_MAX_PORT: s.turnMaxPort } : {}),
  };
  const file = join(dir, 'compose.env');
  writeFileSync(
    file,
    Object.entries(values)
      .filter(([, v]) => v !== '')
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
    { mode: 0o600 },
  );
  return file;
}

/** Run a Compose command on compose.yaml with this run's settings. */
export function compose(engine, args, { timeout = 300_000, stdio } = {}) {
  const [bin, ...pre] = engine.compose;
  // Secrets reach Compose through the env file only; a shell's exported values do not win.
  const env = Object.fromEntries(
    Object.entries(engine.env).filter(([key]) => !['TURN_SECRET', 'ICECAST_SOURCE_PASSWORD', 'ICECAST_ADMIN_PASSWORD'].includes(key)),
  );
  return run(bin, [...pre, '-p', project(engine), '-f', COMPOSE_FILE, '--env-file', envFile(engine.env), ...args], { env, timeout, stdio });
}

/** The Compose project: COMPOSE_PROJECT_NAME, else the folder's name, as Compose itself names it. */
export function project(engine) {
  return engine.env.COMPOSE_PROJECT_NAME || 'local-infra';
}

/** Docker's or podman's own CLI (faster than asking Compose). */
function engineCli(engine, args, options = {}) {
  return run(engine.kind, args, { env: engine.podmanEnv ?? engine.env, timeout: 15_000, ...options });
}

/** Container ids of this project, by the labels Compose puts on them (all, or one service's). */
export function containerIds(engine, service) {
  const filters = [
    `label=com.docker.compose.project=${project(engine)}`,
    ...(service ? [`label=com.docker.compose.service=${service}`] : []),
  ];
  const ps = engineCli(engine, ['ps', '-a', '-q', ...filters.flatMap((f) => ['--filter', f])]);
  return ps.stdout.split('\n').filter(Boolean);
}

/** Container id of each service (empty when not created). */
export function containers(engine) {
  return Object.fromEntries(SERVICES.map((service) => [service, containerIds(engine, service)[0] ?? '']));
}

/** Docker's or podman's health status of a container ('healthy', 'starting', 'unhealthy', or '' when gone). */
export function health(engine, id) {
  if (engine.kind === 'podman') engineCli(engine, ['healthcheck', 'run', id]);
  const inspect = engineCli(engine, ['inspect', '--format', '{{.State.Health.Status}}', id]);
  return inspect.status === 0 ? inspect.stdout.trim() : '';
}

/** Wait until both services report healthy; throws with the logs when they do not. */
export async function waitHealthy(engine, timeoutMs = HEALTHY_TIMEOUT_MS) {
  const started = Date.now();
  let last = {};
  while (Date.now() - started < timeoutMs) {
    const ids = containers(engine);
    last = Object.fromEntries(SERVICES.map((service) => [service, ids[service] ? health(engine, ids[service]) : 'not created']));
    if (SERVICES.every((service) => last[service] === 'healthy')) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 500));
  }
  const logs = compose(engine, ['logs', '--no-color', '--tail', '30']);
  throw new InfraError(`not healthy within ${timeoutMs / 1000} s (${JSON.stringify(last)}); logs:\n${logs.stdout}${logs.stderr}`);
}

/**
 * podman without systemd never runs health checks by itself: run them every `intervalMs`
 * (compose.yaml's interval) until stopped. Asynchronous, so the caller's event loop keeps
 * serving its own sockets meanwhile. Nothing to do with Docker.
 */
export function runHealthchecks(engine, intervalMs = 10_000) {
  if (engine.kind !== 'podman') return () => {};
  const podman = (args) =>
    new Promise((resolve) =>
      execFile('podman', args, { env: engine.podmanEnv, timeout: 15_000 }, (error, stdout) => resolve(error ? '' : stdout)),
    );
  let stopped = false;
  let timer;
  const round = async () => {
    const ids = (await podman(['ps', '-q', '--filter', `label=com.docker.compose.project=${project(engine)}`])).split('\n').filter(Boolean);
    await Promise.all(ids.map((id) => podman(['healthcheck', 'run', id])));
    if (!stopped) timer = setTimeout(round, intervalMs).unref();
  };
  timer = setTimeout(round, intervalMs).unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Build the images and start both services detached; wait until both are healthy. */
export async function up(engine) {
  checkSecrets(settings(engine.env).secrets);
  ensureBaseImage(engine);
  let started = Date.now();
  log('building the coturn and Icecast images (Debian packages; cached after the first time) and starting them…');
  // A first build downloads both images' packages from Debian: minutes on a slow mirror.
  const result = compose(engine, ['up', '-d', '--build'], { stdio: ['ignore', 'inherit', 'pipe'], timeout: 600_000 });
  if (result.status !== 0) throw new InfraError(`compose up failed:\n${result.stderr}`);
  log(`started in ${Math.round((Date.now() - started) / 1000)} s; waiting until both are healthy…`);
  started = Date.now();
  const healthyMs = await waitHealthy(engine);
  const s = settings(engine.env);
  log(`healthy in ${healthyMs} ms: stun:127.0.0.1:${s.turnPort} turn:127.0.0.1:${s.turnPort} http://127.0.0.1:${s.icecastPort}/`);
}

/** Stop and remove the containers and the network (the images stay, as a cache). */
export function down(engine) {
  const result = compose(engine, ['down', '--remove-orphans', '--timeout', '5']);
  if (result.status !== 0) throw new InfraError(`compose down failed:\n${result.stderr}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const command = process.argv[2];
  const commands = {
    up: async (engine) => {
      await up(engine);
      if (engine.kind === 'podman') log('health statuses go stale without systemd: `npm run stack -- --compose` keeps checking');
      return true;
    },
    down: async (engine) => (down(engine), true),
    status: async (engine) => {
      const ids = containers(engine);
      const states = SERVICES.map((service) => [service, ids[service] ? health(engine, ids[service]) : 'not running']);
      for (const [service, state] of states) log(`${service}: ${state}`);
      return states.every(([, state]) => state === 'healthy');
    },
  };
  if (!commands[command]) {
    console.error('usage: node local-infra/compose.mjs up|down|status');
    process.exit(2);
  }
  const engine = await openEngine().catch((error) => {
    console.error(`local-infra: ${error.message}`);
    process.exit(1);
  });
  commands[command](engine).then(
    (ok) => {
      engine.close();
      process.exit(ok ? 0 : 1);
    },
    (error) => {
      engine.close();
      console.error(`local-infra: ${error instanceof InfraError ? error.message : error.stack}`);
      process.exit(1);
    },
  );
}
