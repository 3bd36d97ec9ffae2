/**
 * A real `wrangler dev` for integration tests: this run's vars and secrets from an env file
 * (the developer's .dev.vars is neither read nor written), free ports, its own state dir.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import dgram from 'node:dgram';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bin, toolEnv } from '../../scripts/toolchain.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A port free on 127.0.0.1 for TCP (and UDP when asked) at this moment. */
export async function freePort(udpToo = false): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (!udpToo) return port;
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = dgram.createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port on 127.0.0.1');
}

export function tail(file: string, lines = 30): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '(no log)';
}

export interface RunningWorker {
  url: string;
  log: string;
  /** wrangler's process group (wrangler, workerd). */
  pgid: number;
  /** How long it took to answer /health. */
  readyMs: number;
  /** Let wrangler stop workerd itself, then make sure the whole process group is gone. */
  stop(): Promise<void>;
  /** Synchronous, for an 'exit' handler: kill the process group. */
  kill(): void;
}

/**
 * Start `wrangler dev` with `vars` (secrets included) and wait until /health answers. State
 * and log live in `dir`; started again with the same `dir` and ports, it is the same Worker
 * restarted (as a deploy would).
 */
export async function startWorker(
  vars: Record<string, string>,
  dir: string,
  { port, inspectorPort, env = {} }: { port?: number; inspectorPort?: number; env?: Record<string, string> } = {},
): Promise<RunningWorker> {
  const envFile = join(dir, 'worker.env');
  writeFileSync(
    envFile,
    Object.entries(vars)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
    { mode: 0o600 },
  );
  port ??= await freePort();
  inspectorPort ??= await freePort();
  const log = join(dir, 'wrangler.log');
  const logFd = openSync(log, 'a');
  const childEnv: NodeJS.ProcessEnv = toolEnv();
  // wrangler also reads secrets from its environment: make sure none of the
  // developer's shell values win over this run's.
  for (const key of Object.keys(vars)) delete childEnv[key];
  Object.assign(childEnv, env);
  const wrangler = spawn(
    join(bin, 'wrangler'),
    [
      'dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(inspectorPort),
      '--env-file',
      envFile,
      '--persist-to',
      join(dir, 'wrangler-state'),
      '--show-interactive-dev-session=false',
    ],
    { cwd: root, env: childEnv, detached: true, stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  const pgid = wrangler.pid!;
  let exitCode: number | null = null;
  const exited = new Promise((resolve) => wrangler.once('exit', (code) => resolve((exitCode = code ?? -1))));
  const kill = () => {
    process.off('exit', kill);
    try {
      process.kill(-pgid, 'SIGKILL'); // wrangler → workerd: the whole process group
    } catch {
      // already gone
    }
  };
  // Its own process group outlives an interrupted vitest unless killed on the way out.
  process.once('exit', kill);
  const stop = async () => {
    try {
      process.kill(-pgid, 'SIGTERM');
    } catch {
      // already gone
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    kill();
  };

  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  try {
    for (;;) {
      if (exitCode !== null) throw new Error(`wrangler dev exited (${exitCode}):\n${tail(log)}`);
      if (Date.now() - started > 60_000) throw new Error(`wrangler dev did not answer /health in 60 s:\n${tail(log)}`);
      try {
        if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) })).ok) break;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, log, pgid, readyMs: Date.now() - started, stop, kill };
}
