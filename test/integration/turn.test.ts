// NAT traversal against the real coturn: STUN Binding, then TURN allocations with the
// credentials the running Worker mints (GET /rooms/:roomId/ice), data through the relay,
// and the refusals that keep the relay from being an open proxy.
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import dgram from 'node:dgram';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Attr, Method, StunClient, allocate, encode, errorOf, readXorAddress, xorAddress, type Address } from './stun';

interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}
interface IceInfo {
  iceServers: IceServer[];
  expiresAt: number;
}

const workerUrl = () => inject('workerUrl');
const coturn = (): Address => ({ address: '127.0.0.1', port: inject('turnPort') });
const now = () => Math.floor(Date.now() / 1000);
const sign = (secret: string, username: string) => createHmac('sha1', secret).update(username).digest('base64');

let roomId: string;
let tokens: Record<string, string>;
let ice: IceInfo;
let turn: IceServer;

async function fetchIce(token?: string) {
  return fetch(`${workerUrl()}/rooms/${roomId}/ice`, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
}

/** host:port and transport of a `turn:` URL. */
function parseTurnUrl(url: string): { server: Address; transport: 'udp' | 'tcp' } {
  const match = /^turn:([^:?]+):(\d+)\?transport=(udp|tcp)$/.exec(url);
  if (!match) throw new Error(`unexpected TURN url ${url}`);
  return { server: { address: match[1]!, port: Number(match[2]) }, transport: match[3] as 'udp' | 'tcp' };
}

const clients: StunClient[] = [];
async function connect(transport: 'udp' | 'tcp', server = coturn()) {
  const client = await StunClient.connect(transport, server);
  clients.push(client);
  return client;
}
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

beforeAll(async () => {
  // One room for the whole file: room creation is rate-limited per client address.
  const created = await fetch(`${workerUrl()}/rooms`, { method: 'POST', body: '{"name":"turn test"}' });
  expect(created.status).toBe(201);
  ({ roomId, tokens } = (await created.json()) as { roomId: string; tokens: Record<string, string> });
  const response = await fetchIce(tokens.caller);
  expect(response.status).toBe(200);
  ice = (await response.json()) as IceInfo;
  turn = ice.iceServers.find((server) => server.urls.some((url) => url.startsWith('turn:')))!;
});

describe('STUN against the real coturn', () => {
  it("answers a Binding request from coturn's own client", () => {
    const run = spawnSync('turnutils_stunclient', ['-p', String(coturn().port), '127.0.0.1'], { encoding: 'utf8', timeout: 10_000 });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/UDP reflexive addr: 127\.0\.0\.1:\d+/);
  });

  it.each(['udp', 'tcp'] as const)("reports the client's own address over %s (XOR-MAPPED-ADDRESS)", async (transport) => {
    const client = await connect(transport);
    const response = await client.request(encode(Method.Binding, 'request', []));
    expect(response.cls).toBe('success');
    expect(readXorAddress(response.attrs.get(Attr.XorMappedAddress)!)).toEqual({ address: '127.0.0.1', port: client.localPort });
  });
});

describe('TURN with the credentials the Worker mints', () => {
  it('GET /rooms/:roomId/ice points at this coturn with REST credentials signed by its secret', () => {
    const stun = ice.iceServers.find((server) => server.urls.some((url) => url.startsWith('stun:')));
    expect(stun?.urls).toEqual([`stun:127.0.0.1:${coturn().port}`]);
    expect(turn.urls.map((url) => parseTurnUrl(url).transport).sort()).toEqual(['tcp', 'udp']);
    for (const url of turn.urls) expect(parseTurnUrl(url).server).toEqual(coturn());

    const [expiry, id] = turn.username!.split(':');
    expect(Number(expiry)).toBe(ice.expiresAt);
    expect(ice.expiresAt).toBeGreaterThan(now() + 60);
    expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(turn.credential).toBe(sign(inject('turnSecret'), turn.username!));
  });

  it('mints nothing without a valid room token', async () => {
    expect((await fetchIce()).status).toBe(401);
    expect((await fetchIce(`${tokens.caller}x`)).status).toBe(401);
    expect((await fetchIce(tokens.host)).status).toBe(200);
  });

  it('allocates a relay over UDP, and data crosses it both ways', async () => {
    const { server, transport } = parseTurnUrl(turn.urls.find((url) => url.endsWith('udp'))!);
    const client = await connect(transport, server);
    const result = await allocate(client, turn.username!, turn.credential!);
    if (!result.ok) throw new Error(`allocation refused: ${result.code} ${result.reason}`);
    expect(result.credentials.realm).toBe('openstudio'); // turnserver.conf's realm
    expect(result.relayed.address).toBe('127.0.0.1');
    expect(result.relayed.port).toBeGreaterThanOrEqual(inject('turnMinPort'));
    expect(result.relayed.port).toBeLessThanOrEqual(inject('turnMaxPort'));
    expect(result.mapped).toEqual({ address: '127.0.0.1', port: client.localPort });
    expect(result.lifetime).toBeGreaterThan(0);

    // A peer on loopback, as the other browser would be.
    const peer = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve));
    const peerAddress: Address = { address: '127.0.0.1', port: peer.address().port };
    try {
      const permission = await client.request(
        encode(Method.CreatePermission, 'request', [[Attr.XorPeerAddress, xorAddress(peerAddress)]], result.credentials),
      );
      expect(permission.cls).toBe('success');

      const received = new Promise<{ data: Buffer; from: Address }>((resolve) =>
        peer.once('message', (data, rinfo) => resolve({ data, from: { address: rinfo.address, port: rinfo.port } })),
      );
      client.send(
        encode(Method.Send, 'indication', [
          [Attr.XorPeerAddress, xorAddress(peerAddress)],
          [Attr.Data, Buffer.from('hello from behind the NAT')],
        ]),
      );
      const atPeer = await received;
      expect(atPeer.data.toString()).toBe('hello from behind the NAT');
      expect(atPeer.from).toEqual(result.relayed); // the peer only ever sees the relay

      peer.send('hello back', atPeer.from.port, atPeer.from.address);
      const indication = await client.nextIndication();
      expect(indication.method).toBe(Method.Data);
      expect(indication.attrs.get(Attr.Data)!.toString()).toBe('hello back');
      expect(readXorAddress(indication.attrs.get(Attr.XorPeerAddress)!)).toEqual(peerAddress);
    } finally {
      peer.close();
    }
  });

  it('allocates over TCP (turn:…?transport=tcp), as a browser behind a UDP-blocking firewall does', async () => {
    const { server, transport } = parseTurnUrl(turn.urls.find((url) => url.endsWith('tcp'))!);
    const client = await connect(transport, server);
    const result = await allocate(client, turn.username!, turn.credential!);
    expect(result).toMatchObject({ ok: true, relayed: { address: '127.0.0.1' } });
  });

  it("coturn's own client (turnutils_uclient) relays with the Worker's credentials", () => {
    // -y: two clients of its own talk to each other through their relays; 5 messages each.
    const run = spawnSync(
      'turnutils_uclient',
      ['-u', turn.username!, '-w', turn.credential!, '-p', String(coturn().port), '-n', '5', '-l', '100', '-y', '127.0.0.1'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    const output = run.stdout + run.stderr;
    expect(output).not.toMatch(/Cannot complete Allocation/);
    expect(Number(/tot_recv_msgs=(\d+)\n/.exec(output)?.[1])).toBeGreaterThan(0);
    expect(output).toMatch(/Total lost packets 0 /);
    expect(run.status).toBe(0);
  });
});

describe('TURN refusals', () => {
  const refused = async (username: string, password: string) => {
    const client = await connect('udp');
    return allocate(client, username, password);
  };

  it('refuses expired credentials (401)', async () => {
    const username = `${now() - 60}:expired`;
    expect(await refused(username, sign(inject('turnSecret'), username))).toMatchObject({ ok: false, code: 401 });
  });

  it('refuses credentials signed with another secret (401)', async () => {
    const username = `${now() + 3600}:forged`;
    expect(await refused(username, sign('not-the-turn-secret-0123456789abcdef', username))).toMatchObject({ ok: false, code: 401 });
  });

  it('refuses tampered Worker credentials (401)', async () => {
    const [expiry, id] = turn.username!.split(':');
    // A later expiry with the same credential: the HMAC no longer matches.
    expect(await refused(`${Number(expiry) + 86_400}:${id}`, turn.credential!)).toMatchObject({ ok: false, code: 401 });
    // Someone else's id.
    expect(await refused(`${expiry}:someone-else`, turn.credential!)).toMatchObject({ ok: false, code: 401 });
    // The credential itself altered.
    const altered = (turn.credential!.startsWith('A') ? 'B' : 'A') + turn.credential!.slice(1);
    expect(await refused(turn.username!, altered)).toMatchObject({ ok: false, code: 401 });
  });

  it('refuses a nonce it never issued (438 Stale Nonce)', async () => {
    const client = await connect('udp');
    const credentials = {
      username: turn.username!,
      password: turn.credential!,
      realm: 'openstudio',
      nonce: Buffer.from('0123456789abcdef'),
    };
    const response = await client.request(
      encode(Method.Allocate, 'request', [[Attr.RequestedTransport, Buffer.from([17, 0, 0, 0])]], credentials),
    );
    expect(response.cls).toBe('error');
    expect(errorOf(response)?.code).toBe(438);
  });
});
