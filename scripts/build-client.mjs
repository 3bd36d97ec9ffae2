#!/usr/bin/env node
// Builds the studio into client/dist/, the Worker's static assets: the studio app
// (studio.js), the recorder's audio worklet (pcm-capture.js), the program's loudness
// processor, an audio worklet too (program-processor.js), the client library as one ES module
// (lib/openstudio.js) for anyone building another studio, and the files of client/public/.
// wrangler.toml's [build] runs this for `wrangler dev` (again on every change) and
// `wrangler deploy`; `npm test` runs it too.
import { build } from 'esbuild';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const client = join(root, 'client');
const dist = join(client, 'dist');

export async function buildClient() {
  // Written over in place, never emptied first: a running `wrangler dev` serves this folder
  // and would briefly see it without the page's script.
  mkdirSync(dist, { recursive: true });
  cpSync(join(client, 'public'), dist, { recursive: true });
  const common = { bundle: true, format: 'esm', target: 'es2022', sourcemap: true, minify: true, logLevel: 'warning' };
  await build({ ...common, entryPoints: [join(client, 'src/app/main.ts')], outfile: join(dist, 'studio.js') });
  await build({ ...common, entryPoints: [join(client, 'src/lib/index.ts')], outfile: join(dist, 'lib/openstudio.js') });
  // The recorder's AudioWorklet: a module of its own, loaded from this origin (the CSP allows no other).
  await build({
    ...common,
    format: 'iife',
    entryPoints: [join(client, 'src/worklets/pcm-capture.ts')],
    outfile: join(dist, 'pcm-capture.js'),
  });
  // The program's loudness processor (leveler, true-peak limiter, meter): an AudioWorklet too.
  await build({
    ...common,
    format: 'iife',
    entryPoints: [join(client, 'src/worklets/program-processor.ts')],
    outfile: join(dist, 'program-processor.js'),
  });
}

if (process.argv[1] === import.meta.filename) {
  const started = Date.now();
  try {
    await buildClient();
    console.log(`client built into client/dist in ${Date.now() - started} ms`);
  } catch (error) {
    // Under `npm run dev` a half-typed file must not stop the server: keep serving the last
    // good build (esbuild has printed what is wrong). Anywhere else, e.g. a deploy, fail.
    if (process.env.OPENSTUDIO_DEV_BUILD !== '1') throw error;
    console.error('client build failed; still serving the previous build');
  }
}
