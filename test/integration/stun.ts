/**
 * A small STUN/TURN client (RFC 5389/5766) over UDP or TCP, just enough to prove what a
 * browser relies on: Binding, Allocate with long-term credentials, CreatePermission and
 * data through the relay (Send/Data indications). Used against the real coturn only.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';

const MAGIC = 0x2112a442;

export const Method = { Binding: 0x001, Allocate: 0x003, CreatePermission: 0x008, Send: 0x006, Data: 0x007 } as const;
export const Attr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedTransport: 0x0019,
  XorMappedAddress: 0x0020,
  Fingerprint: 0x8028,
} as const;

export type Class = 'request' | 'indication' | 'success' | 'error';
const CLASS_BITS: Record<Class, number> = { request: 0x000, indication: 0x010, success: 0x100, error: 0x110 };

export interface Message {
  method: number;
  cls: Class;
  transactionId: Buffer;
  attrs: Map<number, Buffer>;
  raw: Buffer;
}

export interface Address {
  address: string;
  port: number;
}

function typeOf(method: number, cls: Class): number {
  // Method bits interleaved with the two class bits (RFC 5389 section 6).
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | CLASS_BITS[cls];
}

function decodeType(type: number): { method: number; cls: Class } {
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const bits = type & 0x0110;
  const cls = (Object.keys(CLASS_BITS) as Class[]).find((c) => CLASS_BITS[c] === bits)!;
  return { method, cls };
}

function attribute(type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(value.length, 2);
  const padding = Buffer.alloc((4 - (value.length % 4)) % 4);
  return Buffer.concat([header, value, padding]);
}

export function xorAddress({ address, port }: Address): Buffer {
  const value = Buffer.alloc(8);
  value.writeUInt8(0x01, 1); // IPv4
  value.writeUInt16BE(port ^ (MAGIC >>> 16), 2);
  const ip = address.split('.').reduce((n, octet) => (n << 8) | Number(octet), 0) >>> 0;
  value.writeUInt32BE((ip ^ MAGIC) >>> 0, 4);
  return value;
}

export function readXorAddress(value: Buffer): Address {
  const port = value.readUInt16BE(2) ^ (MAGIC >>> 16);
  const ip = (value.readUInt32BE(4) ^ MAGIC) >>> 0;
  return { address: [24, 16, 8, 0].map((shift) => (ip >>> shift) & 0xff).join('.'), port };
}

export interface Credentials {
  username: string;
  password: string;
  realm: string;
  nonce: Buffer;
}

/** Encode a message; with credentials, adds USERNAME, REALM, NONCE and MESSAGE-INTEGRITY. */
export function encode(
  method: number,
  cls: Class,
  attrs: [number, Buffer][],
  credentials?: Credentials,
  transactionId = randomBytes(12),
): Buffer {
  const parts = attrs.map(([type, value]) => attribute(type, value));
  if (credentials) {
    parts.push(attribute(Attr.Username, Buffer.from(credentials.username)));
    parts.push(attribute(Attr.Realm, Buffer.from(credentials.realm)));
    parts.push(attribute(Attr.Nonce, credentials.nonce));
  }
  const header = (bodyLength: number) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(typeOf(method, cls), 0);
    h.writeUInt16BE(bodyLength, 2);
    h.writeUInt32BE(MAGIC, 4);
    transactionId.copy(h, 8);
    return h;
  };
  let body = Buffer.concat(parts);
  if (credentials) {
    // Long-term credential key: MD5(username:realm:password); the HMAC covers the message
    // with its length already counting the 24-byte MESSAGE-INTEGRITY attribute.
    const key = createHash('md5').update(`${credentials.username}:${credentials.realm}:${credentials.password}`).digest();
    const hmac = createHmac('sha1', key)
      .update(Buffer.concat([header(body.length + 24), body]))
      .digest();
    body = Buffer.concat([body, attribute(Attr.MessageIntegrity, hmac)]);
  }
  return Buffer.concat([header(body.length), body]);
}

export function decode(raw: Buffer): Message {
  if (raw.length < 20 || raw.readUInt32BE(4) !== MAGIC) throw new Error('not a STUN message');
  const { method, cls } = decodeType(raw.readUInt16BE(0));
  const attrs = new Map<number, Buffer>();
  const end = 20 + raw.readUInt16BE(2);
  for (let offset = 20; offset + 4 <= end;) {
    const type = raw.readUInt16BE(offset);
    const length = raw.readUInt16BE(offset + 2);
    if (!attrs.has(type)) attrs.set(type, raw.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length + ((4 - (length % 4)) % 4);
  }
  return { method, cls, transactionId: raw.subarray(8, 20), attrs, raw };
}

/** `{code, reason}` of an error response. */
export function errorOf(message: Message): { code: number; reason: string } | undefined {
  const value = message.attrs.get(Attr.ErrorCode);
  if (!value) return undefined;
  return { code: (value.readUInt8(2) & 0x7) * 100 + value.readUInt8(3), reason: value.subarray(4).toString() };
}

/** One client "socket" to the server, UDP or TCP (STUN messages are self-delimiting on TCP). */
export class StunClient {
  private pending = new Map<string, (m: Message) => void>();
  private indications: Message[] = [];
  private indicationWaiters: ((m: Message) => void)[] = [];
  private udp?: dgram.Socket;
  private tcp?: net.Socket;
  private buffered = Buffer.alloc(0);
  localPort = 0;

  private constructor(
    readonly transport: 'udp' | 'tcp',
    readonly server: Address,
  ) {}

  static async connect(transport: 'udp' | 'tcp', server: Address): Promise<StunClient> {
    const client = new StunClient(transport, server);
    if (transport === 'udp') {
      const socket = dgram.createSocket('udp4');
      client.udp = socket;
      socket.on('message', (raw) => client.receive(raw));
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      client.localPort = socket.address().port;
    } else {
      const socket = net.connect(server.port, server.address);
      client.tcp = socket;
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      client.localPort = socket.localPort!;
      socket.on('data', (chunk: Buffer) => {
        client.buffered = Buffer.concat([client.buffered, chunk]);
        while (client.buffered.length >= 20) {
          const size = 20 + client.buffered.readUInt16BE(2);
          if (client.buffered.length < size) break;
          client.receive(client.buffered.subarray(0, size));
          client.buffered = client.buffered.subarray(size);
        }
      });
    }
    return client;
  }

  private receive(raw: Buffer) {
    let message: Message;
    try {
      message = decode(raw);
    } catch {
      return;
    }
    if (message.cls === 'indication') {
      const waiter = this.indicationWaiters.shift();
      if (waiter) waiter(message);
      else this.indications.push(message);
      return;
    }
    this.pending.get(message.transactionId.toString('hex'))?.(message);
  }

  send(raw: Buffer) {
    if (this.udp) this.udp.send(raw, this.server.port, this.server.address);
    else this.tcp!.write(raw);
  }

  /** Send a request and wait for its response (UDP: retransmitted, as RFC 5389 asks). */
  request(raw: Buffer, timeoutMs = 5_000): Promise<Message> {
    const id = raw.subarray(8, 20).toString('hex');
    return new Promise((resolve, reject) => {
      const retransmit = this.udp ? setInterval(() => this.send(raw), 500) : undefined;
      const timer = setTimeout(() => {
        clearInterval(retransmit);
        this.pending.delete(id);
        reject(new Error(`no STUN response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (message) => {
        clearInterval(retransmit);
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(message);
      });
      this.send(raw);
    });
  }

  nextIndication(timeoutMs = 5_000): Promise<Message> {
    const queued = this.indications.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no indication within ${timeoutMs} ms`)), timeoutMs);
      this.indicationWaiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  close() {
    this.udp?.close();
    this.tcp?.destroy();
  }
}

export type AllocateResult =
  | { ok: true; relayed: Address; mapped: Address; lifetime: number; credentials: Credentials }
  | { ok: false; code: number; reason: string; realm: string };

/**
 * The TURN Allocate exchange a browser does: an unauthenticated request, the 401 with
 * REALM and NONCE, then the request again with MESSAGE-INTEGRITY keyed by the password.
 */
export async function allocate(client: StunClient, username: string, password: string): Promise<AllocateResult> {
  const transport = Buffer.from([17, 0, 0, 0]); // relay over UDP, whatever carries the control channel
  const first = await client.request(encode(Method.Allocate, 'request', [[Attr.RequestedTransport, transport]]));
  const challenge = errorOf(first);
  if (first.cls !== 'error' || challenge?.code !== 401) throw new Error(`expected a 401 challenge, got ${first.cls} ${challenge?.code}`);
  const realm = first.attrs.get(Attr.Realm)!.toString();
  const credentials: Credentials = { username, password, realm, nonce: first.attrs.get(Attr.Nonce)! };
  const second = await client.request(encode(Method.Allocate, 'request', [[Attr.RequestedTransport, transport]], credentials));
  if (second.cls === 'success') {
    return {
      ok: true,
      relayed: readXorAddress(second.attrs.get(Attr.XorRelayedAddress)!),
      mapped: readXorAddress(second.attrs.get(Attr.XorMappedAddress)!),
      lifetime: second.attrs.get(Attr.Lifetime)!.readUInt32BE(0),
      credentials,
    };
  }
  const error = errorOf(second)!;
  return { ok: false, code: error.code, reason: error.reason, realm };
}
