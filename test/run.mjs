#!/usr/bin/env node
// `npm test`: every vitest project in one run (workers in workerd, then integration
// against real coturn, Icecast and Chromium), then one summary line `N passed, M failed`
// taken from vitest's own JSON report. Extra arguments go to vitest (e.g. `--project workers`).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { prepareBaseImage } from '../local-infra/compose.mjs';
import { InfraError } from '../local-infra/native.mjs';
import { ensureSystemPackages, SYSTEM_PACKAGES, SystemPackagesError } from '../scripts/system-packages.mjs';
import { bin, ensureInstalled, root, toolEnv } from '../scripts/toolchain.mjs';

ensureInstalled();
process.chdir(root);
// The studio page is the Worker's static assets (client/dist): build it first, also so the
// workers project finds the assets directory wrangler.toml names.
await (await import('../scripts/build-client.mjs')).buildClient();

// The integration project runs real coturn, Icecast, ffmpeg and Chromium: bring them first
// (as root), or stop with the exact command to run; the unit project needs ffmpeg only.
// `--project workers` alone needs none.
const args = process.argv.slice(2);
const projects = args.flatMap((arg, i) => (arg === '--project' ? [args[i + 1]] : arg.startsWith('--project=') ? [arg.slice(10)] : []));
if (projects.length === 0 || projects.includes('integration') || projects.includes('unit')) {
  try {
    const integration = projects.length === 0 || projects.includes('integration');
    ensureSystemPackages(integration ? SYSTEM_PACKAGES.integration : ['ffmpeg']);
    // The Compose stack's images build FROM debian:bookworm-slim: with podman, made here from
    // Debian packages the first time (about a minute), then kept in podman's image store.
    if (integration) prepareBaseImage();
  } catch (error) {
    if (!(error instanceof SystemPackagesError || error instanceof InfraError)) throw error;
    console.error(error.message);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

mkdirSync('test-results', { recursive: true });
const report = 'test-results/vitest.json';
rmSync(report, { force: true });
const run = spawnSync(join(bin, 'vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...args], {
  stdio: 'inherit',
  env: toolEnv(),
});
let passed = 0;
let failed = 0;
if (existsSync(report)) {
  const results = JSON.parse(readFileSync(report, 'utf8'));
  passed = results.numPassedTests;
  // Pending/todo tests are not passes; a suite that failed to load counts as a failure.
  failed = results.numFailedTests + results.numPendingTests + results.numTodoTests;
  failed += results.testResults.filter((file) => file.status === 'failed' && file.assertionResults.length === 0).length;
  // A run that failed outside any test (a global set-up that could not start) is a failure too.
  if (!results.success && failed === 0) failed = 1;
} else {
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
