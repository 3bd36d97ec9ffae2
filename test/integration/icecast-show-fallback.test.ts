// local-infra/icecast-show-fallback.sh on its own (the POSIX sh hook Icecast runs when a show's
// source connects), against the config rendered from icecast.xml.template: what it writes,
// when it has Icecast re-read, what it refuses, two shows at once, and the bound on shows
// kept. broadcast-faults.test.ts checks what Icecast then does with it. Then
// icecast-show-gone.sh with a real Icecast of its own (a short fill time): a show that does
// not come back has its fill ended, and its listeners with it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// @ts-expect-error plain ES module without types
import { ICECAST_TEMPLATE, renderTemplate, SHOW_FALLBACK_HOOK } from '../../local-infra/native.mjs';
import { icecastMounts, Listener, until } from './feed-client';
import { freePort } from './worker';

let dir: string;
let icecast: ChildProcess;
const PORT = 18_123;

/** Stands in for Icecast: its pid file, and a line in `hups` for every SIGHUP (a config re-read). */
async function setUpHookDir() {
  dir = mkdtempSync(join(tmpdir(), 'openstudio-hook-'));
  const config = renderTemplate(readFileSync(ICECAST_TEMPLATE, 'utf8'), {
    ICECAST_SOURCE_PASSWORD: 'source-password-for-test',
    ICECAST_ADMIN_PASSWORD: 'admin-password-for-test',
    ICECAST_PORT: PORT,
    ICECAST_BIND_ADDRESS: '127.0.0.1',
    ICECAST_STATE_DIR: dir,
  });
  writeFileSync(join(dir, 'icecast.xml'), config);
  copyFileSync(SHOW_FALLBACK_HOOK, join(dir, 'icecast-show-fallback.sh'));
  icecast = spawn('sh', ['-c', `trap 'echo hup >> "${dir}/hups"' HUP; while :; do sleep 0.05; done`], { stdio: 'ignore' });
  writeFileSync(join(dir, 'icecast.pid'), `${icecast.pid}\n`);
  await new Promise((r) => setTimeout(r, 100));
}
function removeHookDir() {
  icecast.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

const config = () => readFileSync(join(dir, 'icecast.xml'), 'utf8');
const hups = () => (existsSync(join(dir, 'hups')) ? readFileSync(join(dir, 'hups'), 'utf8').trim().split('\n').length : 0);
/** As Icecast runs it: an empty environment, the mount as the only argument. */
const connect = (mount: string) => {
  const run = spawnSync(join(dir, 'icecast-show-fallback.sh'), [mount], { env: {}, encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
};
const connectAsync = (mount: string) =>
  new Promise<number | null>((resolve) =>
    spawn(join(dir, 'icecast-show-fallback.sh'), [mount], { env: {}, stdio: 'ignore' }).on('exit', resolve),
  );
/** The show mounts with a block of their own, in config order, and their fills. */
const showBlocks = () =>
  [...config().matchAll(/<mount-name>(\/show-[^<*]+)<\/mount-name>\s*<fallback-mount>([^<]+)<\/fallback-mount>/g)].map(
    ([, show, fill]) => ({ show: show!, fill: fill! }),
  );
const waitForHups = async (n: number) => {
  for (let i = 0; i < 40 && hups() < n; i++) await new Promise((r) => setTimeout(r, 50));
  return hups();
};

describe("icecast-show-fallback.sh (the show mounts' <on-connect> hook)", () => {
  beforeEach(setUpHookDir);
  afterEach(removeHookDir);

  it('gives a show its own block before /show-*.ogg: a random fill, fallback-override, a hidden fill mount, an on-demand relay of the station fill; then Icecast re-reads', async () => {
    connect('/show-AbC_d-1.ogg');
    const text = config();
    const [block] = showBlocks();
    expect(block).toEqual({ show: '/show-AbC_d-1.ogg', fill: expect.stringMatching(/^\/fill-[0-9a-f]{32}\.ogg$/) });
    const own = text.indexOf('<mount-name>/show-AbC_d-1.ogg</mount-name>');
    // Icecast takes the first <mount> that matches: the show's own, not the wildcard.
    expect(own).toBeLessThan(text.indexOf('<mount-name>/show-*.ogg</mount-name>'));
    const showBlock = text.slice(own, text.indexOf('</mount>', own));
    expect(showBlock).toContain('<fallback-override>1</fallback-override>');
    // The wildcard's settings come along (the hook runs again on the next connect).
    expect(showBlock).toContain(`<on-connect>${dir}/icecast-show-fallback.sh</on-connect>`);
    expect(text).toContain(`<mount type="normal">\n    <mount-name>${block!.fill}</mount-name>\n  </mount>`);
    expect(text).toMatch(
      new RegExp(
        `<relay>\\s*<server>127\\.0\\.0\\.1</server>\\s*<port>${PORT}</port>\\s*<mount>/station-fill\\.ogg</mount>\\s*<local-mount>${block!.fill.replace(/\./g, '\\.')}</local-mount>\\s*<on-demand>1</on-demand>`,
      ),
    );
    expect(await waitForHups(1)).toBe(1);

    // A second show: a fill of its own. A show connecting again: nothing rewritten, no re-read.
    connect('/show-other.ogg');
    expect(await waitForHups(2)).toBe(2);
    const blocks = showBlocks();
    expect(blocks.map((b) => b.show)).toEqual(['/show-AbC_d-1.ogg', '/show-other.ogg']);
    expect(new Set(blocks.map((b) => b.fill)).size).toBe(2);
    const before = config();
    connect('/show-AbC_d-1.ogg');
    expect(config()).toBe(before);
    await new Promise((r) => setTimeout(r, 300));
    expect(hups()).toBe(2);
  });

  it('leaves anything else alone: other mounts, and names that could inject into the config', async () => {
    const before = config();
    for (const mount of [
      '/station-fill.ogg',
      '/fill-00.ogg',
      '/show-x.webm',
      '/show-a"b.ogg',
      '/show-a<b>.ogg',
      '/show-a b.ogg',
      '/show-a/../b.ogg',
      '',
    ])
      connect(mount);
    expect(config()).toBe(before);
    await new Promise((r) => setTimeout(r, 300));
    expect(hups()).toBe(0);
  });

  it('two shows at once: both get their block (one rewrite at a time)', async () => {
    const mounts = Array.from({ length: 8 }, (_, i) => `/show-together-${i}.ogg`);
    expect(await Promise.all(mounts.map(connectAsync))).toEqual(mounts.map(() => 0));
    expect(
      showBlocks()
        .map((b) => b.show)
        .sort(),
    ).toEqual([...mounts].sort());
  });

  it('keeps the 64 shows that connected last: the config does not grow without bound', () => {
    const mounts = Array.from({ length: 66 }, (_, i) => `/show-many-${i}.ogg`);
    for (const mount of mounts) connect(mount);
    const kept = showBlocks().map((b) => b.show);
    expect(kept).toHaveLength(64);
    expect(kept).not.toContain(mounts[0]);
    expect(kept).not.toContain(mounts[1]);
    expect(kept).toContain(mounts[65]);
    // Their fills and relays go with them.
    expect(config().match(/<relay>/g)).toHaveLength(64);
    expect(config().match(/<mount-name>\/fill-/g)).toHaveLength(64);
  });
});

describe("icecast-show-gone.sh (the show mounts' <on-disconnect> hook), with a real Icecast", () => {
  const FILL_SECONDS = 5;
  let infraEnv: Record<string, string>;
  let runDir: string;
  const native = (command: string) =>
    spawnSync(process.execPath, [fileURLToPath(new URL('../../local-infra/native.mjs', import.meta.url)), command], {
      env: { ...process.env, ...infraEnv },
      encoding: 'utf8',
      timeout: 60_000,
    });
  beforeEach(async () => {
    runDir = mkdtempSync(join(tmpdir(), 'openstudio-gone-'));
    const secret = () => randomBytes(16).toString('hex');
    infraEnv = {
      TURN_SECRET: secret(),
      ICECAST_SOURCE_PASSWORD: secret(),
      ICECAST_ADMIN_PASSWORD: secret(),
      TURN_PORT: String(await freePort(true)),
      TURN_MIN_PORT: '49720',
      TURN_MAX_PORT: '49730',
      ICECAST_PORT: String(await freePort()),
      ICECAST_FILL_SECONDS: String(FILL_SECONDS),
      LOCAL_INFRA_RUN_DIR: join(runDir, 'infra'),
    };
    const up = native('up');
    expect(up.status, up.stdout + up.stderr).toBe(0);
  });
  afterEach(() => {
    native('down');
    rmSync(runDir, { recursive: true, force: true });
  });

  it(
    'a show that does not come back within the fill time loses its listeners; one that comes back and goes again gets the full time again',
    { timeout: 60_000 },
    async () => {
      const url = `http://127.0.0.1:${infraEnv.ICECAST_PORT}`;
      const mount = '/show-gone-test.ogg';
      const source = () =>
        spawn(
          'ffmpeg',
          [
            '-nostdin',
            '-v',
            'error',
            '-re',
            '-f',
            'lavfi',
            '-i',
            'sine=frequency=660',
            '-c:a',
            'libopus',
            '-b:a',
            '64k',
            '-content_type',
            'application/ogg',
            '-f',
            'ogg',
            `icecast://source:${infraEnv.ICECAST_SOURCE_PASSWORD}@127.0.0.1:${infraEnv.ICECAST_PORT}${mount}`,
          ],
          { stdio: 'ignore' },
        );
      let show = source();
      const onAir = async () => (await icecastMounts(url, infraEnv.ICECAST_ADMIN_PASSWORD)).get(mount)?.fallback.startsWith('/fill-');
      try {
        await until(async () => ((await onAir()) ? true : undefined), 'the show with its own fill', 15_000);
        const listener = new Listener(`${url}${mount}`);
        await until(() => (listener.bytesSince(0) > 8_000 ? true : undefined), 'the listener hearing the show');
        // Gone, back after 1 s, gone again 1 s later: the first gap's time ends during the
        // second gap, and must not end the fill.
        show.kill('SIGKILL');
        const firstGoneAt = Date.now();
        await new Promise((r) => setTimeout(r, 1_000));
        show = source();
        await until(async () => ((await onAir()) ? true : undefined), 'the show back');
        await new Promise((r) => setTimeout(r, 1_000));
        show.kill('SIGKILL');
        const goneAt = Date.now();
        const firstGapEnds = firstGoneAt + FILL_SECONDS * 1_000;
        expect(firstGapEnds + 1_000).toBeLessThan(goneAt + FILL_SECONDS * 1_000 - 500); // the two overlap
        await new Promise((r) => setTimeout(r, firstGapEnds + 1_000 - Date.now()));
        expect(listener.ended).toBe(false); // on the fill, past the end of the first gap's time
        expect(listener.bytesSince(goneAt + 1_000)).toBeGreaterThan(0);
        await until(() => (listener.ended ? true : undefined), 'the listener dropped with the fill', (FILL_SECONDS + 5) * 1_000);
        console.log(`fill ended ${Date.now() - goneAt} ms after the show's source went (fill time ${FILL_SECONDS} s)`);
      } finally {
        show.kill('SIGKILL');
      }
    },
  );
});
