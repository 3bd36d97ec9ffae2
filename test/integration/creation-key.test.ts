// An operator's ROOM_CREATION_KEY, put in a `.dev.vars`-style file next to the required
// secrets, must protect a real `wrangler dev` exactly as it protects a deployment.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from './worker';

const dir = mkdtempSync(join(tmpdir(), 'openstudio-creation-key-'));
const started: RunningWorker[] = [];
const random = () => randomBytes(24).toString('hex');

async function devWith(name: string, roomCreationKey: string): Promise<string> {
  const own = join(dir, name);
  mkdirSync(own);
  // Written to a `.dev.vars`-style file, as an operator writes the key next to the secrets.
  const dev = await startWorker(
    { TOKEN_SECRET: random(), TURN_SECRET: random(), ICECAST_SOURCE_PASSWORD: random(), ROOM_CREATION_KEY: roomCreationKey },
    own,
  );
  started.push(dev);
  return dev.url;
}

function createRoom(url: string, key?: string): Promise<Response> {
  const headers: Record<string, string> = { 'CF-Connecting-IP': random() };
  if (key !== undefined) headers.Authorization = `Bearer ${key}`;
  return fetch(`${url}/rooms`, { method: 'POST', headers, body: '{}' });
}

afterAll(async () => {
  for (const dev of started) await dev.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('ROOM_CREATION_KEY under wrangler dev', () => {
  it('is loaded from the file and enforced: 401 without the key, 201 with it', async () => {
    const key = random();
    const url = await devWith('keyed', key);
    const without = await createRoom(url);
    expect(without.status).toBe(401);
    expect(await without.json()).toMatchObject({ error: { code: 'unauthorized' } });
    expect((await createRoom(url, random())).status).toBe(401);
    expect((await createRoom(url, key)).status).toBe(201);
  });

  it('a key too short to be one closes room creation (misconfigured) instead of opening it', async () => {
    const url = await devWith('short', 'hunter2');
    for (const key of [undefined, 'hunter2']) {
      const response = await createRoom(url, key);
      expect(response.status).toBe(500);
      expect(await response.json()).toMatchObject({
        error: { code: 'misconfigured', message: expect.stringContaining('ROOM_CREATION_KEY') },
      });
    }
  });
});
