// Types the Worker's own exports for `ctx.exports` / `exports` from 'cloudflare:workers'.
declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import('./index');
    durableNamespaces: 'Room' | 'Feed' | 'Recordings';
  }
}

// Secrets (README, Configuration): `wrangler secret put` in production, `.dev.vars` locally.
// They are not declared in wrangler.toml (see there why), so `wrangler types` may not list
// them; the Worker checks each at runtime (server/config.ts) and refuses to run without.
interface Env {
  TOKEN_SECRET: string;
  TURN_SECRET: string;
  ICECAST_SOURCE_PASSWORD: string;
}
declare namespace Cloudflare {
  interface Env {
    TOKEN_SECRET: string;
    TURN_SECRET: string;
    ICECAST_SOURCE_PASSWORD: string;
  }
}
