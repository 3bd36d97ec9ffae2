#!/usr/bin/env node
// `npm run stack`: coturn + Icecast (native.mjs, no Docker) and the Worker (`npm run dev`)
// wired together on loopback. Ctrl-C stops the Worker, then the infra this run started.
// `npm run stack -- --compose`: the same with coturn and Icecast from compose.yaml (Docker or
// podman, see compose.mjs). Other arguments go to wrangler, as with `npm run dev`.
import { spawn } from 'node:child_process';
import { ensureDevSecrets } from '../scripts/secrets.mjs';
import * as composeWay from './compose.mjs';
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

const useCompose = process.argv.includes('--compose');
const extraArgs = process.argv.slice(2).filter((arg) => arg !== '--compose');

/** Start coturn and Icecast one way or the other; returns how to stop what was started. */
async function startInfra() {
  if (!useCompose) {
    const { started } = await up(env);
    if (started) return () => down(env);
    return () => console.log('local-infra: left running (it was already up before this stack started)');
  }
  const engine = await composeWay.openEngine(env);
  try {
    await composeWay.up(engine);
  } catch (error) {
    engine.close();
    throw error;
  }
  const stopHealthchecks = composeWay.runHealthchecks(engine);
  return () => {
    stopHealthchecks();
    composeWay.down(engine);
    console.log('local-infra: compose stack stopped and removed');
    engine.close();
  };
}

let stopInfra;
try {
  stopInfra = await startInfra();
} catch (error) {
  console.error(`local-infra: ${error instanceof InfraError ? error.message : error.stack}`);
  process.exit(1);
}

// The Worker hands out this coturn and pushes the program to this Icecast (TURN_PORT and
// ICECAST_PORT may have moved them from wrangler.toml's 3478 and 8000).
const { turnPort, icecastPort } = settings(env);
const turn = `127.0.0.1:${turnPort}`;
const wranglerArgs = [
  '--var',
  `STUN_URLS:stun:${turn}`,
  '--var',
  `TURN_URLS:turn:${turn}?transport=udp,turn:${turn}?transport=tcp`,
  '--var',
  `ICECAST_URL:http://127.0.0.1:${icecastPort}`,
  ...extraArgs,
];
console.log(`local-infra: Icecast on http://127.0.0.1:${icecastPort}; each show's listen URL is shown in the studio when it goes live`);
const child = spawn('npm', ['run', 'dev', '--', ...wranglerArgs], { stdio: 'inherit', env });

// Ctrl-C reaches the whole foreground group (npm, wrangler) by itself; a signal sent to
// this process alone is passed on. Either way, clean up once the Worker has stopped.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', async (code, signal) => {
  await stopInfra();
  process.exit(code ?? (signal ? 1 : 0));
});
