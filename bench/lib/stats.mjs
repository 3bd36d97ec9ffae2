// Percentiles (nearest rank) and small formatting helpers.

export function summarize(samples) {
  const xs = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = xs.length;
  if (n === 0) return { n: 0 };
  const at = (p) => xs[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  return { n, p50: at(50), p90: at(90), p95: at(95), p99: at(99), max: xs[n - 1], min: xs[0], mean };
}

/** The median (mean of the middle two for an even count); for per-round figures. */
export function median(samples) {
  const xs = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (xs.length === 0) return NaN;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

export function round(x, digits = 3) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function roundAll(obj, digits = 3) {
  if (typeof obj === 'number') return round(obj, digits);
  if (Array.isArray(obj)) return obj.map((x) => roundAll(x, digits));
  if (obj && typeof obj === 'object') return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, roundAll(v, digits)]));
  return obj;
}

export const ms = (x) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)) : '–');
export const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
