/**
 * Integration run: real coturn and Icecast (local-infra/native.mjs, as a developer runs
 * them) and the real Worker (`wrangler dev`), wired together on loopback with test-only
 * random secrets, free ports and a temporary run dir, so a developer's own stack
 * (local-infra/.run, .dev.vars, .wrangler/state) is neither used nor disturbed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { freePort, startWorker as startWrangler, type RunningWorker } from './worker';

declare module 'vitest' {
  export interface ProvidedContext {
    workerUrl: string;
    /** The Worker's TOKEN_SECRET in this run (to forge an expired invite in a test). */
    tokenSecret: string;
    turnSecret: string;
    turnPort: number;
    turnMinPort: number;
    turnMaxPort: number;
    icecastUrl: string;
    icecastSourcePassword: string;
    icecastAdminPassword: string;
    /** Environment for `local-infra/native.mjs` of this run (to restart its Icecast). */
    infraEnv: Record<string, string>;
    /**
     * `POST <controlUrl>/restart-worker?downMs=N` stops this run's `wrangler dev` and starts it
     * again; `GET <controlUrl>/worker-rss` is the resident memory of its processes, in bytes.
     */
    controlUrl: string;
  }
}

const root = fileURLToPath(new URL('../..', import.meta.url));
// Relay ports apart from the developer default (49160-49200 in turnserver.conf). Every
// relay-only peer connection takes two (UDP and TCP TURN); a five-voice show in the browser
// tests holds about 40 at once.
const TURN_MIN_PORT = 49210;
const TURN_MAX_PORT = 49710;

/**
 * Icecast as the Worker reaches a remote one in production: through a TLS-terminating TCP
 * proxy (certificate from a CA made for this run), with real latency (Icecast's answers
 * are delayed, so audio a broadcaster sends before Icecast has answered really arrives
 * early). The Worker's source connection and its statistics requests go through it;
 * listeners connect to Icecast directly.
 */
function tlsLink(targetPort: number, delayMs: number, tlsOptions: tls.TlsOptions): Promise<tls.Server> {
  const server = tls.createServer(tlsOptions, (inbound) => {
    const outbound = net.connect(targetPort, '127.0.0.1');
    inbound.pipe(outbound);
    outbound.on('data', (chunk) => setTimeout(() => inbound.write(chunk), delayMs));
    outbound.on('end', () => setTimeout(() => inbound.end(), delayMs));
    for (const socket of [inbound, outbound]) socket.on('error', () => inbound.destroy() && outbound.destroy());
    inbound.on('close', () => outbound.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** A CA and a certificate for `localhost` signed by it, valid for a day (openssl). */
function testCertificates(dir: string): { caFile: string; key: string; cert: string } {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', '/CN=OpenStudio test CA');
  openssl('req', ...ec, '-keyout', file('icecast.key'), '-out', file('icecast.csr'), '-subj', '/CN=localhost');
  writeFileSync(file('icecast.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(
    'x509',
    '-req',
    '-in',
    file('icecast.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('icecast.pem'),
    '-days',
    '1',
    '-extfile',
    file('icecast.ext'),
  );
  return { caFile: file('ca.pem'), key: readFileSync(file('icecast.key'), 'utf8'), cert: readFileSync(file('icecast.pem'), 'utf8') };
}

const secret = () => randomBytes(24).toString('hex');

/** Resident memory of every process in a process group (wrangler, workerd), from /proc. */
function groupRssBytes(pgid: number | undefined): number {
  if (pgid === undefined) return 0;
  let total = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      // Fields after the command name: state ppid pgrp … ; rss is field 24 (pages).
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) total += Number(fields[21]) * 4096;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'openstudio-integration-'));
  const infraEnv = {
    TURN_SECRET: secret(),
    ICECAST_SOURCE_PASSWORD: secret(),
    ICECAST_ADMIN_PASSWORD: secret(),
    TURN_PORT: String(await freePort(true)),
    TURN_MIN_PORT: String(TURN_MIN_PORT),
    TURN_MAX_PORT: String(TURN_MAX_PORT),
    ICECAST_PORT: String(await freePort()),
    LOCAL_INFRA_RUN_DIR: join(dir, 'infra'),
  };
  const native = (command: 'up' | 'down') =>
    spawnSync(process.execPath, [join(root, 'local-infra', 'native.mjs'), command], {
      cwd: root,
      env: { ...process.env, ...infraEnv },
      encoding: 'utf8',
      timeout: 110_000,
    });

  let worker: RunningWorker | undefined;
  let cleanedUp = false;
  let icecastLink: tls.Server | undefined;
  let control: http.Server | undefined;
  // Synchronous, so it can also run from an 'exit' handler if vitest is interrupted
  // before teardown: nothing of this run may be left behind.
  const cleanup = () => {
    if (cleanedUp) return;
    cleanedUp = true;
    icecastLink?.close();
    control?.close();
    worker?.kill();
    const down = native('down');
    if (down.status !== 0) console.error(down.stdout, down.stderr);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  const stopWorker = async () => {
    await worker?.stop();
    worker = undefined;
  };
  const teardown = async () => {
    await stopWorker();
    cleanup();
    process.off('exit', cleanup);
  };

  try {
    const started = Date.now();
    const up = native('up');
    process.stdout.write(up.stdout);
    if (up.status !== 0) throw new Error(`local-infra/native.mjs up failed:\n${up.stdout}\n${up.stderr}`);
    const infraMs = Date.now() - started;

    // The Worker, configured like `npm run dev` but with this run's secrets and the test
    // coturn's port. --env-file replaces .dev.vars for this process: the developer's file
    // is neither read nor written.
    const turnHost = `127.0.0.1:${infraEnv.TURN_PORT}`;
    const certificates = testCertificates(dir);
    icecastLink = await tlsLink(Number(infraEnv.ICECAST_PORT), 300, { key: certificates.key, cert: certificates.cert });
    const workerVars = {
      TOKEN_SECRET: secret(),
      TURN_SECRET: infraEnv.TURN_SECRET,
      ICECAST_SOURCE_PASSWORD: infraEnv.ICECAST_SOURCE_PASSWORD,
      // https: the source password crosses the link encrypted, as it must to a remote Icecast.
      ICECAST_URL: `https://localhost:${(icecastLink.address() as net.AddressInfo).port}`,
      // Listeners go to Icecast directly, not through the slow link.
      ICECAST_PUBLIC_URL: `http://127.0.0.1:${infraEnv.ICECAST_PORT}`,
      STUN_URLS: `stun:${turnHost}`,
      TURN_URLS: `turn:${turnHost}?transport=udp,turn:${turnHost}?transport=tcp`,
    };
    const workerPort = await freePort();
    const inspectorPort = await freePort();
    const workerUrl = `http://127.0.0.1:${workerPort}`;
    /** Start `wrangler dev` (same port, same state dir) and wait until it answers /health. */
    const startWorker = async () => {
      // The test CA: wrangler hands NODE_EXTRA_CA_CERTS to workerd as trusted certificates.
      const env = { NODE_EXTRA_CA_CERTS: certificates.caFile };
      worker = await startWrangler(workerVars, dir, { port: workerPort, inspectorPort, env });
      return worker.readyMs;
    };
    const workerMs = await startWorker();
    console.log(`integration: coturn + Icecast up in ${infraMs} ms, wrangler dev answering in ${workerMs} ms at ${workerUrl}`);

    // Fault tests restart the Worker as a deploy would; only this run's wrangler, by its group.
    const controlPath = `/${randomBytes(12).toString('hex')}`;
    control = http.createServer(async (request, response) => {
      const url = new URL(request.url ?? '/', 'http://control');
      if (request.method === 'GET' && url.pathname === `${controlPath}/worker-rss`) {
        return void response.writeHead(200).end(String(groupRssBytes(worker?.pgid)));
      }
      if (request.method !== 'POST' || url.pathname !== `${controlPath}/restart-worker`) return void response.writeHead(404).end();
      try {
        const downMs = Math.min(Number(url.searchParams.get('downMs') ?? 0) || 0, 30_000);
        await stopWorker();
        await new Promise((r) => setTimeout(r, downMs));
        const upMs = await startWorker();
        response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ upMs }));
      } catch (error) {
        response.writeHead(500).end(String(error));
      }
    });
    await new Promise<void>((resolve) => control!.listen(0, '127.0.0.1', resolve));

    project.provide('workerUrl', workerUrl);
    project.provide('tokenSecret', workerVars.TOKEN_SECRET);
    project.provide('turnSecret', infraEnv.TURN_SECRET);
    project.provide('turnPort', Number(infraEnv.TURN_PORT));
    project.provide('turnMinPort', TURN_MIN_PORT);
    project.provide('turnMaxPort', TURN_MAX_PORT);
    project.provide('icecastUrl', `http://127.0.0.1:${infraEnv.ICECAST_PORT}`);
    project.provide('icecastSourcePassword', infraEnv.ICECAST_SOURCE_PASSWORD);
    project.provide('icecastAdminPassword', infraEnv.ICECAST_ADMIN_PASSWORD);
    project.provide('infraEnv', infraEnv);
    project.provide('controlUrl', `http://127.0.0.1:${(control.address() as net.AddressInfo).port}${controlPath}`);
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}
