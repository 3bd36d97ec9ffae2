#!/usr/bin/env node
// `npm run dev`: install dependencies if needed, generate development secrets if missing,
// then run `wrangler dev` on its local embedded storage (.wrangler/state).
// Extra arguments go to wrangler; PORT picks the port (default 8787).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureDevSecrets } from './secrets.mjs';
import { bin, ensureInstalled, root, toolEnv } from './toolchain.mjs';

ensureInstalled();
ensureDevSecrets();
const port = process.env.PORT ?? '8787';
const args = ['dev', '--ip', '127.0.0.1', '--port', port, ...process.argv.slice(2)];
console.log(`starting wrangler dev on http://127.0.0.1:${port} (Ctrl-C to stop)`);
// Its own process group (wrangler → node → workerd), so a stop reaches all of them.
// wrangler's local request tracing costs each Durable Object event about as much as the
// event itself (docs/benchmarks.md); X_LOCAL_OBSERVABILITY=true turns it back on.
// OPENSTUDIO_DEV_BUILD: a failing client rebuild (a half-typed file) keeps the last good build.
const env = toolEnv({ X_LOCAL_OBSERVABILITY: process.env.X_LOCAL_OBSERVABILITY ?? 'false', OPENSTUDIO_DEV_BUILD: '1' });
const child = spawn(join(bin, 'wrangler'), args, { cwd: root, stdio: 'inherit', env, detached: true });
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  });
}
child.on('exit', (code) => process.exit(code ?? 0));
