/**
 * The per-client limits (Cloudflare's rate-limiting binding, and miniflare's in tests) count
 * in fixed windows aligned to the wall clock. A burst that straddles a window's edge is
 * counted half in each window and never reaches the limit, so a test of a limit starts its
 * burst where the window has room left: now, or at the next window's start.
 */
export async function awayFromWindowEdge(periodSeconds = 60, neededMs = 15_000): Promise<void> {
  const left = periodSeconds * 1000 - (Date.now() % (periodSeconds * 1000));
  if (left < neededMs) await new Promise((resolve) => setTimeout(resolve, left + 50));
}
