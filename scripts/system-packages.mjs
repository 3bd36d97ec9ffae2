// Debian packages the project's tools and tests run for real (coturn, Icecast, ffmpeg,
// Chromium, …): checked with dpkg, installed with apt-get when missing and the user is root;
// anyone else gets the exact command to run. One list, used by `npm test`, `npm run stack`
// and local-infra/native.mjs.
import { spawnSync } from 'node:child_process';

/** local-infra/native.mjs: real coturn and Icecast on loopback (curl: the station fill's source). */
const infra = ['coturn', 'icecast2', 'curl'];
/**
 * local-infra/compose.mjs without Docker: compose.yaml run by podman (runc as its runtime)
 * through its Docker API with Debian's docker-compose; debootstrap makes the Debian base image.
 */
const compose = ['podman', 'runc', 'debootstrap', 'docker-compose', 'curl'];

/** What each group of tests or tools needs (Debian package names). */
export const SYSTEM_PACKAGES = {
  infra,
  compose,
  /** Integration tests: both ways of running the infra, decoding listeners' audio, real browsers. */
  integration: [...infra, ...compose, 'ffmpeg', 'chromium', 'fonts-dejavu-core', 'gettext-base', 'unzip'],
};

export class SystemPackagesError extends Error {}

export function missingPackages(packages) {
  return [...new Set(packages)].filter((name) => {
    const status = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
    return !(status.status === 0 && status.stdout.includes('install ok installed'));
  });
}

/**
 * Install what is missing of `packages`. Prints progress; throws SystemPackagesError with the
 * command to run when it cannot install (not root, or apt-get failed).
 */
export function ensureSystemPackages(packages, { log = (m) => console.log(m) } = {}) {
  const missing = missingPackages(packages);
  if (missing.length === 0) return [];
  const command = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0) {
    throw new SystemPackagesError(`missing Debian packages: ${missing.join(', ')}; install them with:\n  sudo sh -c '${command}'`);
  }
  log(`installing ${missing.join(', ')} from Debian packages (a fresh machine takes about 2 minutes)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const started = Date.now();
  // Several test runs may install at once: wait for dpkg's lock instead of failing on it.
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', ...missing],
  ]) {
    const result = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (result.status !== 0) throw new SystemPackagesError(`apt-get ${args.join(' ')} failed; run it yourself:\n  ${command}`);
  }
  const still = missingPackages(missing);
  if (still.length) throw new SystemPackagesError(`apt-get did not install ${still.join(', ')}`);
  log(`installed ${missing.join(', ')} in ${Math.round((Date.now() - started) / 1000)} s`);
  return missing;
}
