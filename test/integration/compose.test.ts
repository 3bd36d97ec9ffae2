// local-infra/compose.yaml: valid for Compose (checked offline by Debian's docker-compose,
// there is no Docker engine here), refuses to start without its secrets, and runs coturn
// and Icecast from the very config files the native way (local-infra/native.mjs) uses —
// which the other integration tests exercise against the real servers.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ES module without types
import { ICECAST_TEMPLATE, TURNSERVER_CONF } from '../../local-infra/native.mjs';

const infra = fileURLToPath(new URL('../../local-infra/', import.meta.url));
const composeFile = join(infra, 'compose.yaml');
const SECRETS = ['TURN_SECRET', 'ICECAST_SOURCE_PASSWORD', 'ICECAST_ADMIN_PASSWORD'];
const dummy: Record<string, string> = {
  TURN_SECRET: 'dummy-turn-secret-0123456789abcdef',
  ICECAST_SOURCE_PASSWORD: 'dummy-source-password-0123456789',
  ICECAST_ADMIN_PASSWORD: 'dummy-admin-password-0123456789',
};

let dir: string;
// docker-compose (Debian's v1) comes with `npm test`'s system packages (the compose group).
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'openstudio-compose-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function compose(env: Record<string, string>, ...args: string[]) {
  const envFile = join(dir, `${Object.keys(env).join('-') || 'empty'}.env`);
  writeFileSync(
    envFile,
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  );
  // No inherited secrets: only the env file may supply them.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !SECRETS.includes(key)));
  return spawnSync('docker-compose', ['-f', composeFile, '--env-file', envFile, ...args], {
    encoding: 'utf8',
    env: clean,
    timeout: 30_000,
  });
}

const yamlToJson = (text: string) => {
  const run = spawnSync('python3', ['-c', 'import json,sys,yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {
    input: text,
    encoding: 'utf8',
  });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
};

describe('local-infra/compose.yaml', () => {
  it('is valid Compose (docker-compose config -q) and uses no obsolete keys', () => {
    const run = compose(dummy, 'config', '-q');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    // Current Compose spec: no `version:`; no top-level `name:` either (v1 rejects it).
    expect(Object.keys(yamlToJson(readFileSync(composeFile, 'utf8')))).toEqual(['services']);
  });

  it('refuses to start without each secret', () => {
    for (const key of SECRETS) {
      const partial = Object.fromEntries(Object.entries(dummy).filter(([k]) => k !== key));
      const run = compose(partial, 'config', '-q');
      expect(run.status, key).not.toBe(0);
      expect(run.stderr).toContain(`${key} is not set`);
    }
    // The committed example has no values: copied as it is, nothing starts.
    const example = readFileSync(join(infra, '.env.example'), 'utf8');
    for (const key of SECRETS) expect(example).toMatch(new RegExp(`^${key}=$`, 'm'));
  });

  it('runs coturn and Icecast from the same config files as the native way', () => {
    const run = compose(dummy, 'config');
    expect(run.status, run.stderr).toBe(0);
    const { services } = yamlToJson(run.stdout);
    expect(Object.keys(services).sort()).toEqual(['coturn', 'icecast']);

    const { coturn, icecast } = services;
    // Both images are ours, built from Debian's packages as the native way installs them.
    expect(coturn.build.dockerfile).toBe('Dockerfile.coturn');
    for (const dockerfile of ['Dockerfile.coturn', 'Dockerfile.icecast']) {
      expect(readFileSync(join(infra, dockerfile), 'utf8')).toMatch(/^FROM debian:bookworm-slim$/m);
    }
    expect(coturn.network_mode).toBe('host');
    expect(coturn.volumes).toContain(`${TURNSERVER_CONF}:/etc/coturn/turnserver.conf:ro`);
    expect(coturn.command.join(' ')).toContain('-c /etc/coturn/turnserver.conf');
    expect(coturn.command).toContain(`--static-auth-secret=${dummy.TURN_SECRET}`);
    expect(coturn.healthcheck.test).toContain('turnutils_stunclient');

    expect(icecast.build.dockerfile).toBe('Dockerfile.icecast');
    expect(icecast.volumes).toContain(`${ICECAST_TEMPLATE}:/etc/icecast2/icecast.xml.template:ro`);
    expect(icecast.environment).toMatchObject({
      ICECAST_SOURCE_PASSWORD: dummy.ICECAST_SOURCE_PASSWORD,
      ICECAST_ADMIN_PASSWORD: dummy.ICECAST_ADMIN_PASSWORD,
    });
    expect(icecast.ports.map((p: string | { host_ip?: string }) => (typeof p === 'string' ? p : p.host_ip))).toEqual([
      expect.stringMatching(/^127\.0\.0\.1/),
    ]);
    expect(icecast.healthcheck.test.join(' ')).toContain('/status-json.xsl');

    // The container renders the template with exactly the names it uses.
    const placeholders = new Set([...readFileSync(ICECAST_TEMPLATE, 'utf8').matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]));
    const entrypoint = readFileSync(join(infra, 'icecast-entrypoint.sh'), 'utf8');
    expect(entrypoint).toContain('/etc/icecast2/icecast.xml.template');
    const substituted = new Set([.../envsubst '([^']+)'/.exec(entrypoint)![1]!.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]));
    expect(substituted).toEqual(placeholders);
    // Each comes from compose.yaml, except the directory the entrypoint derives from the config's place.
    expect(entrypoint).toMatch(/^ICECAST_STATE_DIR=/m);
    for (const name of placeholders) if (name !== 'ICECAST_STATE_DIR') expect(Object.keys(icecast.environment)).toContain(name);
  });

  it("the Icecast image's entrypoint renders the template and Icecast serves with those passwords", async () => {
    // The script the container runs, run here against Debian's icecast2 (what the image
    // installs), with the file locations moved out of /etc.
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const config = join(dir, 'icecast.xml');
    const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !SECRETS.includes(key)));
    const icecast = spawn('sh', [join(infra, 'icecast-entrypoint.sh')], {
      env: {
        ...clean,
        ICECAST_SOURCE_PASSWORD: dummy.ICECAST_SOURCE_PASSWORD,
        ICECAST_ADMIN_PASSWORD: dummy.ICECAST_ADMIN_PASSWORD,
        ICECAST_TEMPLATE,
        ICECAST_CONFIG: config,
        ICECAST_PORT: String(port),
        ICECAST_BIND_ADDRESS: '127.0.0.1',
      },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => icecast.once('exit', resolve));
    try {
      const url = `http://127.0.0.1:${port}`;
      const statusCode = () =>
        fetch(`${url}/status-json.xsl`).then(
          (r) => r.status,
          () => 0,
        );
      await expect.poll(statusCode, { timeout: 10_000, interval: 100 }).toBe(200);
      expect(readFileSync(config, 'utf8')).not.toMatch(/\$\{/);
      const admin = (password: string) =>
        fetch(`${url}/admin/stats`, { headers: { Authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
      expect((await admin(dummy.ICECAST_ADMIN_PASSWORD!)).status).toBe(200);
      expect((await admin(dummy.ICECAST_SOURCE_PASSWORD!)).status).toBe(401);
    } finally {
      icecast.kill();
      await exited;
    }
  });

  it('keeps the relay port range small and has no static TURN users', () => {
    const conf = readFileSync(TURNSERVER_CONF, 'utf8');
    const setting = (name: string) => new RegExp(`^${name}(=(.*))?$`, 'm').exec(conf);
    expect(setting('use-auth-secret')).not.toBeNull();
    expect(setting('user')).toBeNull();
    expect(setting('lt-cred-mech')).toBeNull();
    const range = Number(setting('max-port')![2]) - Number(setting('min-port')![2]);
    expect(range).toBeGreaterThan(0);
    expect(range).toBeLessThanOrEqual(100);
    // compose.yaml passes the range explicitly (so it can be moved): its defaults are these.
    const { services } = yamlToJson(compose(dummy, 'config').stdout);
    expect(services.coturn.command).toEqual(
      expect.arrayContaining([`--min-port=${setting('min-port')![2]}`, `--max-port=${setting('max-port')![2]}`]),
    );
  });
});
