/**
 * Edge guards that run in the Worker before any Durable Object is touched: per-client
 * rate limits, Origin checks, CORS and security headers.
 */
import { cors } from 'itty-router';
import { CHUNK_HEADERS } from '../protocol/recording';
import { SOUND_NAME_HEADER } from '../protocol/sounds';
import type { Config } from '../server/config';
import { HttpError } from './http';

/**
 * Who a per-client limit counts: the client's IPv4 address, or the /64 of its IPv6 address
 * (one subscriber's prefix: rotating addresses within it must not buy a fresh budget).
 */
export function clientKey(request: Request): string {
  // Set by Cloudflare's edge (clients cannot forge it there); absent under local tools.
  const ip = request.headers.get('CF-Connecting-IP') ?? 'local';
  return ip.includes(':') ? ipv6Prefix64(ip) : ip;
}

/** The first four groups of an IPv6 address, `::` expanded (`2001:db8::1` → `2001:db8:0:0::/64`). */
export function ipv6Prefix64(ip: string): string {
  const address = ip
    .replace(/^\[|\]$/g, '')
    .split('%')[0]!
    .toLowerCase();
  const [head = '', tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) takes two groups.
  const groupsOf = (parts: string[]) => parts.reduce((n, part) => n + (part.includes('.') ? 2 : 1), 0);
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - groupsOf(left) - groupsOf(right))).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** The per-client limiters' window (wrangler.toml `period`): after it, a refused client has a fresh budget. */
export const LIMITER_WINDOW_SECONDS = 60;

/** Throws 429 `rate-limited` (with `Retry-After`) when this client has used up its budget for `what`. */
export async function enforceRateLimit(limiter: RateLimit, request: Request, what: string): Promise<void> {
  const { success } = await limiter.limit({ key: clientKey(request) });
  if (!success) {
    throw new HttpError(429, 'rate-limited', `too many ${what} from this client; try again in a minute`, {
      'Retry-After': String(LIMITER_WINDOW_SECONDS),
    });
  }
}

/**
 * Browsers always send Origin on a WebSocket upgrade, so checking it blocks cross-site
 * WebSocket hijacking. Non-browser clients send none and authenticate by token alone.
 */
export function originAllowed(request: Request, config: Config): boolean {
  const origin = request.headers.get('Origin');
  if (origin === null) return true;
  if (origin === new URL(request.url).origin) return true;
  return config.allowedOrigins.includes('*') || config.allowedOrigins.includes(origin);
}

const corsCache = new WeakMap<Config, ReturnType<typeof cors>>();

/** CORS for the HTTP API: only the Worker's own origin and ALLOWED_ORIGINS. */
export function corsFor(config: Config): ReturnType<typeof cors> {
  let pair = corsCache.get(config);
  if (!pair) {
    const allowed = config.allowedOrigins;
    pair = cors({
      origin: (origin: string) => (allowed.includes('*') || allowed.includes(origin) ? origin : undefined),
      allowMethods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
      // The recordings' chunk uploads say where a chunk sits in headers of their own; a sound upload names its pad.
      allowHeaders: ['Authorization', 'Content-Type', CHUNK_HEADERS.start, CHUNK_HEADERS.final, SOUND_NAME_HEADER],
      maxAge: 600,
    });
    corsCache.set(config, pair);
  }
  return pair;
}

const SECURITY_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
};

export function withSecurityHeaders(response: Response): Response {
  if (response.status === 101) return response;
  const secured = new Response(response.body, response);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    if (!secured.headers.has(name)) secured.headers.set(name, value);
  }
  return secured;
}
