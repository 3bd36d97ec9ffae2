#!/usr/bin/env node
// `npm run stack`: coturn + Icecast (native.mjs, no Docker) and the Worker (`npm run dev`)
// wired together on loopback. Ctrl-C stops the Worker, then the infra this run started.
// Extra arguments go to wrangler, as with `npm run dev`.
import { spawn } from 'node:child_process';
import { ensureDevSecrets } from '../scripts/secrets.mjs';
import { InfraError, down, settings, up } from './native.mjs';

// One source for the shared secrets: the Worker reads .dev.vars, coturn and Icecast get
// the same values here, whatever the shell happens to export.
const secrets = ensureDevSecrets();
const env = {
  ...process.env,
  TURN_SECRET: secrets.TURN_SECRET,
  ICECAST_SOURCE_PASSWORD: secrets.ICECAST_SOURCE_PASSWORD,
  ICECAST_ADMIN_PASSWORD: secrets.ICECAST_ADMIN_PASSWORD,
};

let started = false;
try {
  ({ started } = await up(env));
} catch (error) {
  console.error(`local-infra: ${error instanceof InfraError ? error.message : error.stack}`);
  process.exit(1);
}

// The Worker hands out this coturn and pushes the program to this Icecast (TURN_PORT and
// ICECAST_PORT may have moved them from wrangler.toml's 3478 and 8000).
const { turnPort, icecastPort } = settings(env);
const turn = `127.0.0.1:${turnPort}`;
const wranglerArgs = [
  '--var', `STUN_URLS:stun:${turn}`,
  '--var', `TURN_URLS:turn:${turn}?transport=udp,turn:${turn}?transport=tcp`,
  '--var', `ICECAST_URL:http://127.0.0.1:${icecastPort}`,
  ...process.argv.slice(2),
];
console.log(`local-infra: Icecast on http://127.0.0.1:${icecastPort}; each show's listen URL is shown in the studio when it goes live`);
const child = spawn('npm', ['run', 'dev', '--', ...wranglerArgs], { stdio: 'inherit', env });

// Ctrl-C reaches the whole foreground group (npm, wrangler) by itself; a signal sent to
// this process alone is passed on. Either way, clean up once the Worker has stopped.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', async (code, signal) => {
  if (started) await down(env);
  else console.log('local-infra: left running (it was already up before this stack started)');
  process.exit(code ?? (signal ? 1 : 0));
});
