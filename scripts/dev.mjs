#!/usr/bin/env node
// `npm run dev`: generate development secrets if missing, then run `wrangler dev` on its
// local embedded storage (.wrangler/state). Extra arguments go to wrangler.
import { spawn } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { ensureDevSecrets } from './secrets.mjs';

const bin = join(import.meta.dirname, '..', 'node_modules', '.bin');

ensureDevSecrets();
const port = process.env.PORT ?? '8787';
const args = ['dev', '--ip', '127.0.0.1', '--port', port, ...process.argv.slice(2)];
console.log(`starting wrangler dev on http://127.0.0.1:${port} (Ctrl-C to stop)`);
// The project's own Node (node_modules/.bin/node, ≥ 22) runs wrangler whatever node started us.
const child = spawn(join(bin, 'wrangler'), args, {
  stdio: 'inherit',
  env: {
    WRANGLER_SEND_METRICS: 'false',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    ...process.env,
    PATH: `${bin}${delimiter}${process.env.PATH}`,
  },
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code) => process.exit(code ?? 0));
