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
const child = spawn(join(bin, 'wrangler'), args, { cwd: root, stdio: 'inherit', env: toolEnv(), detached: true });
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
