#!/usr/bin/env node
// Development secrets: generated at random on first use, never committed (both files are
// git-ignored). The Worker reads `.dev.vars`; local-infra (coturn, Icecast) reads
// `local-infra/.env`. Shared values (TURN_SECRET, ICECAST_SOURCE_PASSWORD) are kept equal
// in both so the Worker's TURN credentials and broadcast source work against local-infra.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DEV_VARS = join(root, '.dev.vars');
export const INFRA_ENV = join(root, 'local-infra', '.env');

const WORKER_KEYS = ['TOKEN_SECRET', 'TURN_SECRET', 'ICECAST_SOURCE_PASSWORD'];
const INFRA_KEYS = ['TURN_SECRET', 'ICECAST_SOURCE_PASSWORD', 'ICECAST_ADMIN_PASSWORD'];

export function parseEnvFile(path) {
  const values = {};
  if (!existsSync(path)) return values;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*"?([^"\n]*)"?\s*$/.exec(line);
    if (match) values[match[1]] = match[2];
  }
  return values;
}

function writeEnvFile(path, header, keys, values) {
  const body = keys.map((key) => `${key}=${values[key]}`).join('\n');
  writeFileSync(path, `# ${header}\n# Generated at random for development; never commit this file.\n${body}\n`, { mode: 0o600 });
}

/** Make sure both files exist and agree; returns the merged values. */
export function ensureDevSecrets({ quiet = false } = {}) {
  const worker = parseEnvFile(DEV_VARS);
  const infra = parseEnvFile(INFRA_ENV);
  const values = { ...infra, ...worker };
  let changed = false;
  for (const key of new Set([...WORKER_KEYS, ...INFRA_KEYS])) {
    if (!values[key]) {
      values[key] = randomBytes(32).toString('hex');
      changed = true;
    }
  }
  if (changed || WORKER_KEYS.some((k) => worker[k] !== values[k])) {
    // Keys the developer added (ROOM_CREATION_KEY, variable overrides) are kept.
    const keys = [...new Set([...WORKER_KEYS, ...Object.keys(worker)])];
    writeEnvFile(DEV_VARS, 'Worker development secrets (wrangler dev reads this file).', keys, values);
    if (!quiet) console.log(`wrote ${DEV_VARS}`);
  }
  if (changed || INFRA_KEYS.some((k) => infra[k] !== values[k])) {
    writeEnvFile(INFRA_ENV, 'local-infra secrets (coturn and Icecast read this file).', INFRA_KEYS, values);
    if (!quiet) console.log(`wrote ${INFRA_ENV}`);
  }
  return values;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensureDevSecrets();
