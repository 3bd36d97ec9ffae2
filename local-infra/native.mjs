#!/usr/bin/env node
// local-infra without Docker: Debian's coturn and icecast2 on loopback, from the same
// config files compose.yaml uses (turnserver.conf, icecast.xml.template).
//
//   node local-infra/native.mjs up | down | status
//
// `up` starts what is not running; after a crash of one service it starts only that one.
//
// Secrets come from the environment, else from local-infra/.env (`node scripts/secrets.mjs`
// writes it); nothing starts without them. Ports and the run dir can be moved with
// environment variables so a test run does not collide with a developer's stack:
//   TURN_PORT (3478), TURN_MIN_PORT / TURN_MAX_PORT (turnserver.conf), ICECAST_PORT (8000),
//   LOCAL_INFRA_RUN_DIR (local-infra/.run: rendered configs, pids, logs; git-ignored).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { chownSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnvFile } from '../scripts/secrets.mjs';
import { ensureSystemPackages, SYSTEM_PACKAGES, SystemPackagesError } from '../scripts/system-packages.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const TURNSERVER_CONF = join(here, 'turnserver.conf');
export const ICECAST_TEMPLATE = join(here, 'icecast.xml.template');
/** Icecast's <on-connect> hook of the show mounts: each show's own fill (see README.md). */
export const SHOW_FALLBACK_HOOK = join(here, 'icecast-show-fallback.sh');
/** Its <on-disconnect> hook: ends the fill of a show that does not come back. */
export const SHOW_GONE_HOOK = join(here, 'icecast-show-gone.sh');
/** The source of /station-fill.ogg, which the shows' fills relay. */
export const STATION_FILL_SCRIPT = join(here, 'icecast-station-fill.sh');
export const STATION_FILL = join(here, 'station-fill.ogg');
export const ENV_FILE = join(here, '.env');
const SECRET_KEYS = ['TURN_SECRET', 'ICECAST_SOURCE_PASSWORD', 'ICECAST_ADMIN_PASSWORD'];
const READY_TIMEOUT_MS = 15_000;
const ICECAST_START_ATTEMPTS = 3;

const log = (message) => console.log(`local-infra: ${message}`);

export class InfraError extends Error {}
class ExitedDuringStartUp extends InfraError {}

/** Settings from the environment (which wins) and local-infra/.env. */
export function settings(env = process.env) {
  const file = parseEnvFile(ENV_FILE);
  const pick = (key) => env[key] || file[key] || '';
  const secrets = Object.fromEntries(SECRET_KEYS.map((key) => [key, pick(key)]));
  const whole = (key, fallback, max, what) => {
    const raw = env[key] || file[key];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InfraError(`${key} must be ${what}, got ${JSON.stringify(raw)}`);
    return n;
  };
  const port = (key, fallback) => whole(key, fallback, 65535, 'a port number');
  return {
    secrets,
    turnPort: port('TURN_PORT', 3478),
    // Unset: the range in turnserver.conf applies.
    turnMinPort: port('TURN_MIN_PORT', undefined),
    turnMaxPort: port('TURN_MAX_PORT', undefined),
    icecastPort: port('ICECAST_PORT', 8000),
    // Unset: 120 s (icecast-show-gone.sh).
    fillSeconds: whole('ICECAST_FILL_SECONDS', undefined, 86400, 'a number of seconds (1 to 86400)'),
    runDir: resolve(env.LOCAL_INFRA_RUN_DIR || join(here, '.run')),
  };
}

export function checkSecrets(secrets) {
  for (const [key, value] of Object.entries(secrets)) {
    if (!value) {
      throw new InfraError(`${key} is not set: run \`node scripts/secrets.mjs\` (writes local-infra/.env) or export it`);
    }
    // The values go into an XML file, a coturn config line and (compose) a shell-expanded
    // argument: keep them to characters that mean nothing in any of those.
    if (!/^[A-Za-z0-9._~+=/-]{16,}$/.test(value)) {
      throw new InfraError(`${key} must be at least 16 characters of [A-Za-z0-9._~+=/-]`);
    }
  }
}

function which(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();
}

/** Install coturn/icecast2 from Debian packages when missing (root only). */
export function ensurePackages() {
  try {
    ensureSystemPackages(SYSTEM_PACKAGES.infra, { log });
  } catch (error) {
    if (error instanceof SystemPackagesError) throw new InfraError(error.message);
    throw error;
  }
}

function xmlEscape(value) {
  return value.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Fill `${NAME}` placeholders; an unknown name is an error, not an empty string. */
export function renderTemplate(text, values) {
  return text.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name) => {
    if (values[name] === undefined) throw new InfraError(`template needs ${name}`);
    return xmlEscape(String(values[name]));
  });
}

function statePath(runDir) {
  return join(runDir, 'state.json');
}

function readState(runDir) {
  try {
    return JSON.parse(readFileSync(statePath(runDir), 'utf8'));
  } catch {
    return null;
  }
}

/** Alive and still the program we started (a pid can be reused after a reboot). */
function isOurProcess(pid, bin) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0].endsWith(bin);
  } catch {
    return false;
  }
}

function portFree(port, type) {
  return new Promise((done) => {
    const onError = () => done(false);
    if (type === 'udp') {
      const socket = dgram.createSocket('udp4');
      socket.once('error', onError);
      socket.bind(port, '127.0.0.1', () => socket.close(() => done(true)));
    } else {
      const server = net.createServer();
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
    }
  });
}

async function requirePortsFree(name, port, types) {
  for (const type of types) {
    if (!(await portFree(port, type))) {
      throw new InfraError(
        `${type} port ${port} on 127.0.0.1 is in use, ${name} cannot start ` +
          `(another ${name}? e.g. the system service: \`systemctl stop ${name === 'coturn' ? 'coturn' : 'icecast2'}\`; or set ${name === 'coturn' ? 'TURN_PORT' : 'ICECAST_PORT'})`,
      );
    }
  }
}

function startDetached(bin, args, logFile, env = {}) {
  const fd = openSync(logFile, 'a');
  // Own session: a Ctrl-C in the terminal does not reach it, `down` stops it by pid.
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  child.unref();
  return child.pid;
}

function tail(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function tcpListening(port) {
  return new Promise((done) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

async function stunAnswers(port) {
  // turnutils_stunclient waits for ever when nothing answers: only ask once coturn
  // listens (its TCP listener comes up with the UDP one), and with a timeout all the same.
  if (!(await tcpListening(port))) return false;
  return spawnSync('turnutils_stunclient', ['-p', String(port), '127.0.0.1'], { timeout: 2_000, stdio: 'ignore' }).status === 0;
}

async function icecastAnswers(port) {
  // Parsed, not just fetched: Icecast 2.4 serves malformed JSON here for its first ~0.3 s,
  // until its stats thread has filled in.
  try {
    const response = await fetch(`http://127.0.0.1:${port}/status-json.xsl`, { signal: AbortSignal.timeout(2_000) });
    if (!response.ok) return false;
    return Boolean((await response.json()).icestats);
  } catch {
    return false;
  }
}

/** /station-fill.ogg is a live mount (Icecast answers 404 for a mount without a source). */
async function stationFillOnAir(port) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 2_000);
  try {
    const response = await fetch(`http://127.0.0.1:${port}/station-fill.ogg`, { signal: abort.signal });
    return response.ok;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

async function waitReady(name, pid, bin, logFile, probe) {
  const started = Date.now();
  while (Date.now() - started < READY_TIMEOUT_MS) {
    if (!isOurProcess(pid, bin)) {
      throw new ExitedDuringStartUp(`${name} exited during start-up; last lines of ${logFile}:\n${tail(logFile)}`);
    }
    if (await probe()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new InfraError(`${name} did not answer within ${READY_TIMEOUT_MS / 1000} s; see ${logFile}:\n${tail(logFile)}`);
}

function startCoturn(s) {
  const dir = join(s.runDir, 'coturn');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // turnserver.conf as it is, then this run's values (later lines win). Written 0600:
  // it holds the shared secret, which stays out of the process list this way.
  const lines = [
    readFileSync(TURNSERVER_CONF, 'utf8'),
    '# --- added by local-infra/native.mjs for this run ---',
    `listening-port=${s.turnPort}`,
    ...(s.turnMinPort ? [`min-port=${s.turnMinPort}`] : []),
    ...(s.turnMaxPort ? [`max-port=${s.turnMaxPort}`] : []),
    `static-auth-secret=${s.secrets.TURN_SECRET}`,
    // Its own (empty) database and pid file instead of the system-wide ones.
    `userdb=${join(dir, 'turndb')}`,
    `pidfile=${join(dir, 'turnserver.pid')}`,
    // coturn block-buffers stdout when it is a file: let it write the log file itself.
    `log-file=${join(dir, 'turnserver.log')}`,
  ];
  const conf = join(dir, 'turnserver.conf');
  writeFileSync(conf, `${lines.join('\n')}\n`, { mode: 0o600 });
  const logFile = join(dir, 'turnserver.log');
  const pid = startDetached(which('turnserver'), ['-c', conf], logFile);
  return { pid, logFile };
}

function startIcecast(s) {
  const dir = join(s.runDir, 'icecast');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Icecast's own directory: the config, its pid file and the show-fallback hook, which
  // rewrites the config and has Icecast re-read it. Run as root, Icecast re-reads it as the
  // icecast2 user, who must reach it: a directory of its own under the system's temporary
  // directory (the run dir may sit where that user cannot go), removed by `down`.
  const stateDir = mkdtempSync(join(tmpdir(), 'openstudio-icecast-'));
  const xml = renderTemplate(readFileSync(ICECAST_TEMPLATE, 'utf8'), {
    ...s.secrets,
    ICECAST_PORT: s.icecastPort,
    ICECAST_BIND_ADDRESS: '127.0.0.1',
    ICECAST_STATE_DIR: stateDir,
  });
  const conf = join(stateDir, 'icecast.xml');
  writeFileSync(conf, xml, { mode: 0o600 });
  const owned = [stateDir, conf];
  for (const hook of [SHOW_FALLBACK_HOOK, SHOW_GONE_HOOK]) {
    owned.push(join(stateDir, basename(hook)));
    copyFileSync(hook, owned.at(-1));
  }
  // How long listeners wait on a show's fill before it counts as ended (icecast-show-gone.sh).
  if (s.fillSeconds) {
    owned.push(join(stateDir, 'fill-seconds'));
    writeFileSync(owned.at(-1), `${s.fillSeconds}\n`);
  }
  if (process.getuid?.() === 0) {
    const id = (flag) => Number(spawnSync('id', [flag, 'icecast2'], { encoding: 'utf8' }).stdout.trim());
    for (const path of owned) chownSync(path, id('-u'), id('-g'));
  }
  const logFile = join(dir, 'icecast.log');
  const pid = startDetached(which('icecast2'), ['-c', conf], logFile);
  // Ends by itself when this Icecast does; the password reaches it in its environment.
  const fillLog = join(dir, 'station-fill.log');
  const fillPid = startDetached('/bin/sh', [STATION_FILL_SCRIPT, String(pid), stateDir], fillLog, {
    ICECAST_PORT: String(s.icecastPort),
    ICECAST_SOURCE_PASSWORD: s.secrets.ICECAST_SOURCE_PASSWORD,
  });
  return { pid, logFile, stateDir, fillPid };
}

/** The station fill's source (it would end by itself with its Icecast) and Icecast's own directory. */
function stopIcecastExtras({ fillPid, stateDir }) {
  let command = '';
  try {
    command = readFileSync(`/proc/${fillPid}/cmdline`, 'utf8');
  } catch {}
  if (command.includes(STATION_FILL_SCRIPT)) {
    // Its own process group (started detached): the loop, its curl and its sleep.
    try {
      process.kill(-fillPid, 'SIGTERM');
    } catch {}
  }
  if (stateDir?.startsWith(join(tmpdir(), 'openstudio-icecast-'))) rmSync(stateDir, { recursive: true, force: true });
}

async function stopPid(name, pid, bin) {
  if (!isOurProcess(pid, bin)) return false;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && isOurProcess(pid, bin); i++) await new Promise((r) => setTimeout(r, 100));
  if (isOurProcess(pid, bin)) {
    log(`${name} (pid ${pid}) ignored SIGTERM, killing it`);
    process.kill(pid, 'SIGKILL');
  }
  return true;
}

const SERVICES = [
  { name: 'coturn', bin: 'turnserver' },
  { name: 'icecast', bin: 'icecast2' },
];

/** Start both (unless already running from this run dir) and wait until they answer. */
export async function up(env = process.env) {
  const s = settings(env);
  checkSecrets(s.secrets);
  // Secrets, ports and config files: a running pair started with other values is restarted.
  const fingerprint = createHash('sha256')
    .update(JSON.stringify(s))
    .update(readFileSync(TURNSERVER_CONF))
    .update(readFileSync(ICECAST_TEMPLATE))
    .update(readFileSync(SHOW_FALLBACK_HOOK))
    .update(readFileSync(SHOW_GONE_HOOK))
    .update(readFileSync(STATION_FILL_SCRIPT))
    .update(readFileSync(STATION_FILL))
    .digest('hex');
  const previous = readState(s.runDir);
  const alive = SERVICES.filter(({ name, bin }) => isOurProcess(previous?.[name]?.pid, bin)).map(({ name }) => name);
  const same = previous?.fingerprint === fingerprint;
  if (same && alive.length === SERVICES.length) {
    log(`already running from ${s.runDir} (coturn pid ${previous.coturn.pid}, icecast pid ${previous.icecast.pid})`);
    return { started: false, state: previous };
  }
  if (alive.length > 0 && !same) log('settings or config files changed: restarting');
  // Same settings and one of them died (or was stopped): start only that one again.
  const keep = same ? alive : [];
  if (previous && keep.length === 0) await down(env, { quiet: true });
  ensurePackages();
  if (!keep.includes('coturn')) await requirePortsFree('coturn', s.turnPort, ['udp', 'tcp']);
  if (!keep.includes('icecast')) await requirePortsFree('icecast', s.icecastPort, ['tcp']);
  mkdirSync(s.runDir, { recursive: true, mode: 0o700 });

  const state = { runDir: s.runDir, fingerprint, ...(keep.length ? Object.fromEntries(keep.map((name) => [name, previous[name]])) : {}) };
  const save = () => writeFileSync(statePath(s.runDir), `${JSON.stringify(state, null, 2)}\n`);
  try {
    if (!keep.includes('coturn')) {
      log(`starting coturn on 127.0.0.1:${s.turnPort} (udp+tcp)`);
      const coturn = startCoturn(s);
      state.coturn = { pid: coturn.pid, port: s.turnPort, log: coturn.logFile };
      save();
      const coturnMs = await waitReady('coturn', coturn.pid, 'turnserver', coturn.logFile, () => stunAnswers(s.turnPort));
      log(`coturn ready in ${coturnMs} ms (pid ${coturn.pid}): stun:127.0.0.1:${s.turnPort} turn:127.0.0.1:${s.turnPort}`);
    }
    if (!keep.includes('icecast')) {
      if (previous?.icecast) stopIcecastExtras(previous.icecast);
      // Debian's Icecast 2.4.4 now and then dies of a segfault in its first second (a race
      // inside it, seen about once in a few hundred starts): that start is tried again.
      for (let attempt = 1; ; attempt++) {
        log(`starting icecast on 127.0.0.1:${s.icecastPort}`);
        const icecast = startIcecast(s);
        state.icecast = {
          pid: icecast.pid,
          port: s.icecastPort,
          log: icecast.logFile,
          stateDir: icecast.stateDir,
          fillPid: icecast.fillPid,
        };
        save();
        try {
          // Ready once the station fill is on the air too: the shows' fills relay it.
          const icecastMs = await waitReady(
            'icecast',
            icecast.pid,
            'icecast2',
            icecast.logFile,
            async () => (await icecastAnswers(s.icecastPort)) && (await stationFillOnAir(s.icecastPort)),
          );
          log(
            `icecast ready in ${icecastMs} ms (pid ${icecast.pid}): http://127.0.0.1:${s.icecastPort}/ (one mount per show, /show-….ogg)`,
          );
          break;
        } catch (error) {
          if (!(error instanceof ExitedDuringStartUp) || attempt === ICECAST_START_ATTEMPTS) throw error;
          log(`icecast exited during start-up (attempt ${attempt} of ${ICECAST_START_ATTEMPTS}); starting it again`);
          stopIcecastExtras(icecast);
        }
      }
    }
  } catch (error) {
    await down(env, { quiet: true });
    throw error;
  }
  return { started: true, state };
}

/**
 * coturn alone, configured as `up` configures it, in `runDir`: for a test that kills it and
 * starts it again on the same ports. Resolves once it answers STUN; stopping it (by pid) is
 * the caller's job.
 */
export async function startCoturnOnly({ runDir, turnPort, turnMinPort, turnMaxPort, turnSecret }) {
  const s = { runDir, turnPort, turnMinPort, turnMaxPort, secrets: { TURN_SECRET: turnSecret } };
  checkSecrets(s.secrets);
  await requirePortsFree('coturn', turnPort, ['udp', 'tcp']);
  const coturn = startCoturn(s);
  try {
    await waitReady('coturn', coturn.pid, 'turnserver', coturn.logFile, () => stunAnswers(turnPort));
  } catch (error) {
    await stopPid('coturn', coturn.pid, 'turnserver');
    throw error;
  }
  return coturn;
}

/** Stop what `up` started from this run dir, by pid. */
export async function down(env = process.env, { quiet = false } = {}) {
  const { runDir } = settings(env);
  const state = readState(runDir);
  if (!state) {
    if (!quiet) log(`nothing running from ${runDir}`);
    return;
  }
  for (const { name, bin } of SERVICES) {
    const pid = state[name]?.pid;
    if (pid && (await stopPid(name, pid, bin)) && !quiet) log(`stopped ${name} (pid ${pid})`);
  }
  if (state.icecast) stopIcecastExtras(state.icecast);
  rmSync(statePath(runDir), { force: true });
}

/** Exit 0 when both are running and answering. */
export async function status(env = process.env) {
  const { runDir } = settings(env);
  const state = readState(runDir);
  let ok = Boolean(state);
  for (const { name, bin } of SERVICES) {
    const entry = state?.[name];
    const running = entry && isOurProcess(entry.pid, bin);
    const answering = running && (await (name === 'coturn' ? stunAnswers(entry.port) : icecastAnswers(entry.port)));
    ok &&= Boolean(answering);
    log(
      `${name}: ${!running ? 'not running' : answering ? `running (pid ${entry.pid}, port ${entry.port})` : `running (pid ${entry.pid}) but not answering on port ${entry.port}`}`,
    );
  }
  return ok;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const command = process.argv[2];
  const commands = { up: async () => (await up(), true), down: async () => (await down(), true), status };
  if (!commands[command]) {
    console.error('usage: node local-infra/native.mjs up|down|status');
    process.exit(2);
  }
  commands[command]().then(
    (ok) => process.exit(ok ? 0 : 1),
    (error) => {
      console.error(`local-infra: ${error instanceof InfraError ? error.message : error.stack}`);
      process.exit(1);
    },
  );
}
