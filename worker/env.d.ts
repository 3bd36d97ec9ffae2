// Types the Worker's own exports for `ctx.exports` / `exports` from 'cloudflare:workers'.
declare namespace Cloudflare {
  interface GlobalProps {
    mainModule: typeof import('./index');
    durableNamespaces: 'Room' | 'Feed';
  }
}
