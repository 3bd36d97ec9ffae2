import { defineConfig } from 'vitest/config';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { randomBytes } from 'node:crypto';

// Secrets for the workers tests: fresh random values each run, never written anywhere.
const secrets = {
  TOKEN_SECRET: randomBytes(32).toString('hex'),
  TURN_SECRET: randomBytes(32).toString('hex'),
  ICECAST_SOURCE_PASSWORD: randomBytes(32).toString('hex'),
};

// Two projects, one run:
// - workers: the Worker and the room Durable Object inside workerd (Miniflare), offline;
// - integration: real coturn, Icecast and Chromium processes on loopback, driven from Node.
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            // Short timers so grace-period, idle-expiry and silence tests run in seconds; a
            // small resume queue so its cap is reached by a test; Icecast on the discard port,
            // where nothing listens: every source connection is refused.
            miniflare: {
              bindings: {
                ...secrets,
                RESUME_GRACE_SECONDS: '2',
                ROOM_IDLE_SECONDS: '4',
                PEER_SILENCE_SECONDS: '3',
                RESUME_QUEUE_MAX: '20',
                ICECAST_URL: 'http://127.0.0.1:9',
              },
            },
          }),
        ],
        test: { name: 'workers', include: ['test/workers/**/*.test.ts'] },
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
        },
      },
    ],
  },
});
