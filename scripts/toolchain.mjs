// The project's toolchain, for scripts that may start on a fresh clone or under any Node:
// install dependencies when they are missing or stale, and run tools on the project's own
// Node (node_modules/.bin/node, ≥ 22, which current wrangler needs).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const root = join(import.meta.dirname, '..');
export const bin = join(root, 'node_modules', '.bin');

export function ensureInstalled() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  const fresh = existsSync(join(bin, 'wrangler')) && existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs;
  if (fresh) return;
  console.log('installing dependencies (npm ci; the first time takes a minute or two)…');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error('npm ci failed; see the messages above');
    process.exit(result.status ?? 1);
  }
}

/** Environment for child tools: project binaries first on PATH, no telemetry or network lookups. */
export function toolEnv(extra = {}) {
  return {
    WRANGLER_SEND_METRICS: 'false',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    ...process.env,
    ...extra,
    PATH: `${bin}${delimiter}${process.env.PATH}`,
  };
}
