/**
 * Edge guards that run in the Worker before any Durable Object is touched: per-client
 * rate limits, Origin checks, CORS and security headers.
 */
import { cors } from 'itty-router';
import type { Config } from './config';
import { HttpError } from './http';

export function clientKey(request: Request): string {
  // Set by Cloudflare's edge (clients cannot forge it there); absent under local tools.
  return request.headers.get('CF-Connecting-IP') ?? 'local';
}

/** Throws 429 `rate-limited` when this client has used up its budget for `what`. */
export async function enforceRateLimit(limiter: RateLimit, request: Request, what: string): Promise<void> {
  const { success } = await limiter.limit({ key: clientKey(request) });
  if (!success) throw new HttpError(429, 'rate-limited', `too many ${what} from this client; try again in a minute`);
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
      allowMethods: ['GET', 'POST', 'OPTIONS'],
      allowHeaders: ['Authorization', 'Content-Type'],
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
