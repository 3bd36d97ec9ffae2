// Broadcast output against the real Icecast, configured from local-infra/icecast.xml.template:
// a source pushes Ogg/Opus to a show's mount and a listener hears decodable Opus, then the
// show's fill when the source ends; show mounts are hidden from the public status page; wrong
// passwords are refused.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { Listener, mountLive, STATION_FILL_TONE, toneLevel } from './feed-client';

const MOUNT = '/show-icecast-test.ogg'; // any show's mount: settings from the template's default mount
const icecast = () => inject('icecastUrl');
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

interface IceStats {
  icestats: { server_id: string; source?: IceSource | IceSource[] };
}
interface IceSource {
  listenurl: string;
  public?: string;
  server_type?: string;
}

async function status(): Promise<IceStats> {
  const response = await fetch(`${icecast()}/status-json.xsl`);
  expect(response.status).toBe(200);
  return (await response.json()) as IceStats;
}

/** A source is on the show's mount (admin list: the public page hides it, and admin statistics also list mounts that only have a <mount> block). */
const onAir = () => mountLive(`${icecast()}${MOUNT}`);

/** The source on the show's mount as the admin statistics list it (the public page hides it). */
async function programSource(): Promise<IceSource | undefined> {
  const response = await fetch(`${icecast()}/admin/stats`, { headers: { Authorization: basic('admin', inject('icecastAdminPassword')) } });
  const block = new RegExp(`<source mount="${MOUNT}">([\\s\\S]*?)</source>`).exec(await response.text())?.[1];
  if (!block) return undefined;
  const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(block)?.[1];
  return { listenurl: field('listenurl') ?? '', server_type: field('server_type'), public: field('public') };
}

/** ffmpeg as the source: a 440 Hz sine, encoded to Opus in Ogg, in real time. */
function pushSine(password: string, seconds: number) {
  const port = new URL(icecast()).port;
  const child = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-nostdin',
      '-loglevel',
      'error',
      '-re',
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=440:duration=${seconds}`,
      '-c:a',
      'libopus',
      '-b:a',
      '64k',
      '-content_type',
      'application/ogg',
      '-f',
      'ogg',
      `icecast://source:${password}@127.0.0.1:${port}${MOUNT}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
  return { child, done };
}

describe('Icecast (real icecast2, the shared config)', () => {
  it('answers /status-json.xsl with CORS open for browser listeners', async () => {
    const response = await fetch(`${icecast()}/status-json.xsl`);
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    const body = (await response.json()) as IceStats;
    expect(body.icestats.server_id).toMatch(/^Icecast 2\./);
    expect(await onAir()).toBe(false); // nothing on air yet
  });

  it('a source pushed to the program mount is heard by a listener as decodable Ogg/Opus', async () => {
    const source = pushSine(inject('icecastSourcePassword'), 4);
    try {
      await expect.poll(onAir, { timeout: 10_000, interval: 100 }).toBe(true);
      await expect.poll(programSource, { timeout: 10_000, interval: 100 }).toMatchObject({ server_type: 'application/ogg', public: '0' });
      // Hidden: the public status page does not list a show's mount (its name is the secret).
      expect(await (await fetch(`${icecast()}/status-json.xsl`)).text()).not.toContain(MOUNT);

      const listener = new Listener(`${icecast()}${MOUNT}`);
      expect(await source.done).toEqual({ code: 0, stderr: '' });
      // The listener stays connected when the source ends: Icecast moves it to the show's fill,
      // a new Ogg stream (its own OpusHead) of the station fill's tone. The fill relay joins
      // the station fill where it is, a second or so later on a busy machine: listen until
      // its tone is there (at most 10 s).
      const fillOf = (bytes: Buffer) => {
        const second = bytes.indexOf('OpusHead', bytes.indexOf('OpusHead') + 1);
        return second < 0 ? Buffer.alloc(0) : bytes.subarray(bytes.lastIndexOf('OggS', second));
      };
      const deadline = Date.now() + 10_000;
      do await new Promise((r) => setTimeout(r, 1_000));
      while (Date.now() < deadline && !(toneLevel(fillOf(listener.recording()), STATION_FILL_TONE) > -50));
      listener.close();
      expect(listener.status).toBe(200);
      expect(listener.headers['content-type']).toBe('application/ogg');
      expect(listener.headers['access-control-allow-origin']).toBe('*');
      expect(listener.ended).toBe(false);
      const received = listener.recording();
      const fillStart = received.lastIndexOf('OggS', received.indexOf('OpusHead', received.indexOf('OpusHead') + 1));
      expect(fillStart).toBeGreaterThan(0);
      expect(toneLevel(received.subarray(fillStart), STATION_FILL_TONE)).toBeGreaterThan(-50);
      // The show's stream, in whole Ogg pages (the move cut its last page short).
      const audio = received.subarray(0, received.lastIndexOf('OggS', fillStart - 1));
      expect(audio.subarray(0, 4).toString()).toBe('OggS');
      expect(audio.includes(Buffer.from('OpusHead'))).toBe(true);

      const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', '-', '-f', 'null', '-'], {
        input: audio,
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(decode.stderr).toBe('');
      expect(decode.status).toBe(0);
      // From a file: ffprobe cannot tell the duration of a pipe.
      const dir = mkdtempSync(join(tmpdir(), 'openstudio-listen-'));
      const file = join(dir, 'listened.ogg');
      writeFileSync(file, audio);
      const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name:format=duration', '-of', 'json', file], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      rmSync(dir, { recursive: true, force: true });
      const info = JSON.parse(probe.stdout) as { streams: { codec_name: string }[]; format: { duration: string } };
      expect(info.streams.map((s) => s.codec_name)).toEqual(['opus']);
      expect(Number(info.format.duration)).toBeGreaterThan(2); // most of the 4 s program
    } finally {
      source.child.kill();
      await source.done;
    }
  });

  it('refuses a source with the wrong password', async () => {
    const wrong = `${inject('icecastSourcePassword')}x`;
    await expect.poll(onAir, { timeout: 5_000, interval: 100 }).toBe(false);
    const ffmpeg = await pushSine(wrong, 1).done;
    expect(ffmpeg.code).not.toBe(0);
    expect(ffmpeg.stderr).toMatch(/401/);

    // A plain HTTP PUT source, refused just the same.
    const put = await fetch(`${icecast()}${MOUNT}`, {
      method: 'PUT',
      headers: { Authorization: basic('source', wrong), 'Content-Type': 'application/ogg' },
      body: Buffer.from('OggS'),
    });
    expect(put.status).toBe(401);
    expect(await onAir()).toBe(false);
  });

  it('admin pages need the admin password', async () => {
    const stats = (password: string) => fetch(`${icecast()}/admin/stats`, { headers: { Authorization: basic('admin', password) } });
    expect((await stats(`${inject('icecastAdminPassword')}x`)).status).toBe(401);
    expect((await stats(inject('icecastSourcePassword'))).status).toBe(401);
    expect((await stats(inject('icecastAdminPassword'))).status).toBe(200);
  });
});
