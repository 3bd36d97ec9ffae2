import { defineConfig } from 'vitest/config';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { randomBytes } from 'node:crypto';

// Secrets for the workers tests: fresh random values each run, never written anywhere.
const secrets = {
  TOKEN_SECRET: randomBytes(32).toString('hex'),
  TURN_SECRET: randomBytes(32).toString('hex'),
  ICECAST_SOURCE_PASSWORD: randomBytes(32).toString('hex'),
};

/**
 * The Worker and the room inside workerd (Miniflare), offline, with short timers so
 * grace-period, idle-expiry and silence tests run in seconds; a small resume queue so its cap
 * is reached by a test; Icecast on the discard port, where nothing listens: every source
 * connection is refused. `bindings` adds to or overrides these.
 */
function workersProject(name: string, files: { include: string[]; exclude?: string[] }, bindings: Record<string, string> = {}) {
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: './wrangler.toml' },
        miniflare: {
          bindings: {
            ...secrets,
            RESUME_GRACE_SECONDS: '2',
            ROOM_IDLE_SECONDS: '4',
            PEER_SILENCE_SECONDS: '3',
            RESUME_QUEUE_MAX: '20',
            ICECAST_URL: 'http://127.0.0.1:9',
            // Small enough that a test sends one byte more than it.
            SOUND_MAX_BYTES: '300000',
            ...bindings,
          },
        },
      }),
    ],
    // Budgets, not performance asserts: a loaded machine may take seconds for what is instant.
    test: { name, ...files, testTimeout: 30_000, sequence: { groupOrder: 0 } },
  };
}

// One run, in two groups that never overlap (sequence.groupOrder), so the browser tests do
// not compete with workerd for the CPU:
// - workers: the Worker and the room Durable Object inside workerd, offline; the
//   per-connection token bucket in a project of its own with a slow refill (one token a
//   second), so a burst is a burst however slowly a loaded machine delivers it;
// - client: the client library's pure parts (reach rules, HTTP calls) in Node, beside them;
// - unit: signal and file-format code against ffmpeg, in Node, beside them too;
// - integration: real coturn, Icecast and Chromium processes on loopback, driven from Node.
export default defineConfig({
  test: {
    projects: [
      workersProject('workers', { include: ['test/workers/**/*.test.ts'], exclude: ['test/workers/rate-limit.test.ts'] }),
      workersProject(
        'workers-rate',
        { include: ['test/workers/rate-limit.test.ts'] },
        { RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '100' },
      ),
      {
        test: { name: 'client', include: ['test/client/**/*.test.ts'], environment: 'node', sequence: { groupOrder: 0 } },
      },
      // Pure signal and file-format code (the program's loudness processor, the sound checks)
      // in Node, judged against ffmpeg on files ffmpeg makes.
      {
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node', testTimeout: 60_000, sequence: { groupOrder: 0 } },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
