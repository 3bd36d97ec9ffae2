/**
 * Deployment settings, read once from the Worker environment (wrangler.toml `[vars]` and
 * secrets). Every limit has a safe default; secrets have none.
 */

export interface Config {
  tokenTtlSeconds: number;
  maxMessageBytes: number;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  /** Rejected frames (rate or size) in a row before the socket is closed with 4008. */
  abuseStrikes: number;
  maxParticipants: number;
  /** Seats in every room that callers cannot take, so hosts and producers can always join. */
  staffSeats: number;
  /** A connected peer that sends nothing (not even a ping) for this long counts as disconnected. */
  peerSilenceSeconds: number;
  resumeGraceSeconds: number;
  roomIdleSeconds: number;
  /** Relayed frames kept per disconnected peer during its grace period, by count and by bytes. */
  resumeQueueMax: number;
  resumeQueueMaxBytes: number;
  allowedOrigins: string[];
  stunUrls: string[];
  turnUrls: string[];
  turnTtlSeconds: number;
  /** Icecast for the program feed: where sources push, and the base URL listeners open. */
  icecastUrl: string;
  icecastPublicUrl: string;
  /** Stopped takes are deleted this many days after their stop (docs/recording.md). */
  recordingRetentionDays: number;
  /** What one room's recordings may hold in R2, in bytes; an upload past it is refused. */
  recordingMaxBytesPerRoom: number;
  /** The largest sound file the soundboard takes, in bytes. */
  soundMaxBytes: number;
}

export const DEFAULTS: Config = {
  tokenTtlSeconds: 86_400,
  maxMessageBytes: 64 * 1024,
  rateLimitPerSecond: 50,
  rateLimitBurst: 400,
  abuseStrikes: 20,
  maxParticipants: 16,
  staffSeats: 2,
  peerSilenceSeconds: 60,
  resumeGraceSeconds: 30,
  roomIdleSeconds: 86_400,
  resumeQueueMax: 500,
  resumeQueueMaxBytes: 256 * 1024,
  allowedOrigins: [],
  stunUrls: [],
  turnUrls: [],
  turnTtlSeconds: 3_600,
  icecastUrl: '',
  icecastPublicUrl: '',
  recordingRetentionDays: 30,
  recordingMaxBytesPerRoom: 5 * 1024 ** 3,
  soundMaxBytes: 20_000_000,
};

type Vars = Partial<Record<string, unknown>>;

function positiveInt(vars: Vars, name: string, fallback: number): number {
  const raw = vars[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    throw new ConfigError(`${name} must be a positive integer, got ${JSON.stringify(raw)}`, name);
  }
  return n;
}

function list(vars: Vars, name: string): string[] {
  const raw = vars[name];
  if (typeof raw !== 'string') return [];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function text(vars: Vars, name: string, fallback: string): string {
  const raw = vars[name];
  return typeof raw === 'string' && raw.trim() !== '' ? raw.trim() : fallback;
}

/**
 * A setting or secret is missing or malformed. `message` is the detail for the operator's
 * log (it may quote a value); clients get `publicMessage`, which names the setting only.
 */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly setting: string,
  ) {
    super(message);
  }

  get publicMessage(): string {
    return `this deployment is misconfigured (${this.setting}); the operator's log says why`;
  }
}

const cache = new WeakMap<object, Config>();

export function readConfig(env: object): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const vars = env as Vars;
  const config: Config = {
    tokenTtlSeconds: positiveInt(vars, 'TOKEN_TTL_SECONDS', DEFAULTS.tokenTtlSeconds),
    maxMessageBytes: positiveInt(vars, 'MAX_MESSAGE_BYTES', DEFAULTS.maxMessageBytes),
    rateLimitPerSecond: positiveInt(vars, 'RATE_LIMIT_PER_SECOND', DEFAULTS.rateLimitPerSecond),
    rateLimitBurst: positiveInt(vars, 'RATE_LIMIT_BURST', DEFAULTS.rateLimitBurst),
    abuseStrikes: positiveInt(vars, 'ABUSE_STRIKES', DEFAULTS.abuseStrikes),
    maxParticipants: positiveInt(vars, 'MAX_PARTICIPANTS', DEFAULTS.maxParticipants),
    staffSeats: positiveInt(vars, 'STAFF_SEATS', DEFAULTS.staffSeats),
    peerSilenceSeconds: positiveInt(vars, 'PEER_SILENCE_SECONDS', DEFAULTS.peerSilenceSeconds),
    resumeGraceSeconds: positiveInt(vars, 'RESUME_GRACE_SECONDS', DEFAULTS.resumeGraceSeconds),
    roomIdleSeconds: positiveInt(vars, 'ROOM_IDLE_SECONDS', DEFAULTS.roomIdleSeconds),
    resumeQueueMax: positiveInt(vars, 'RESUME_QUEUE_MAX', DEFAULTS.resumeQueueMax),
    resumeQueueMaxBytes: positiveInt(vars, 'RESUME_QUEUE_MAX_BYTES', DEFAULTS.resumeQueueMaxBytes),
    allowedOrigins: list(vars, 'ALLOWED_ORIGINS'),
    stunUrls: list(vars, 'STUN_URLS'),
    turnUrls: list(vars, 'TURN_URLS'),
    turnTtlSeconds: positiveInt(vars, 'TURN_TTL_SECONDS', DEFAULTS.turnTtlSeconds),
    icecastUrl: text(vars, 'ICECAST_URL', DEFAULTS.icecastUrl),
    icecastPublicUrl: '',
    recordingRetentionDays: positiveInt(vars, 'RECORDING_RETENTION_DAYS', DEFAULTS.recordingRetentionDays),
    recordingMaxBytesPerRoom: positiveInt(vars, 'RECORDING_MAX_BYTES_PER_ROOM', DEFAULTS.recordingMaxBytesPerRoom),
    soundMaxBytes: positiveInt(vars, 'SOUND_MAX_BYTES', DEFAULTS.soundMaxBytes),
  };
  // Every show has its own mount now: a setting naming one program mount would be ignored,
  // and a station relying on it would be surprised. Refuse it.
  for (const gone of ['ICECAST_MOUNT', 'ICECAST_LISTEN_URL']) {
    if (text(vars, gone, '')) throw new ConfigError(`${gone} is no longer used: each show has its own mount; set ICECAST_PUBLIC_URL`, gone);
  }
  config.icecastPublicUrl = text(vars, 'ICECAST_PUBLIC_URL', config.icecastUrl);
  if (config.icecastUrl && !/^https?:\/\/[^/?#]+\/?$/.test(config.icecastUrl)) {
    throw new ConfigError(`ICECAST_URL must be an http(s) origin without a path, got ${JSON.stringify(config.icecastUrl)}`, 'ICECAST_URL');
  }
  if (config.icecastPublicUrl && !/^https?:\/\/[^?#]+$/.test(config.icecastPublicUrl)) {
    throw new ConfigError(
      `ICECAST_PUBLIC_URL must be an http(s) URL without query, got ${JSON.stringify(config.icecastPublicUrl)}`,
      'ICECAST_PUBLIC_URL',
    );
  }
  config.icecastPublicUrl = config.icecastPublicUrl.replace(/\/+$/, '');
  cache.set(env, config);
  return config;
}

/** Secrets shorter than this are refused: an HMAC key must not be guessable. */
export const MIN_SECRET_LENGTH = 32;

/**
 * A secret the deployment may leave unset (`undefined`). Once set it must be a real key:
 * a short or empty value is a misconfiguration, never "no key".
 */
export function optionalSecret(env: object, name: string): string | undefined {
  const value = (env as Vars)[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(
      `secret ${name} is set but shorter than ${MIN_SECRET_LENGTH} characters; ` +
        `set a longer value (e.g. \`openssl rand -hex 32\`) or remove it`,
      name,
    );
  }
  return value;
}

export function requireSecret(env: object, name: string): string {
  const value = (env as Vars)[name];
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(
      `secret ${name} is not set (or shorter than ${MIN_SECRET_LENGTH} characters); ` +
        `set it with \`wrangler secret put ${name}\` (production) or run \`npm run dev\` (development)`,
      name,
    );
  }
  return value;
}
