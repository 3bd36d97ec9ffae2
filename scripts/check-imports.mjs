#!/usr/bin/env node
// The folders lean one way (README, "How the parts depend on each other"). This check keeps
// them so: it reads every relative import of the server and client code and fails, naming
// the file and the import, when one crosses a boundary the wrong way. Run by `npm run typecheck`.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

/** Which top-level folders each folder may import from (besides itself and packages). */
const ALLOWED = {
  protocol: [],
  server: ['protocol'],
  'durable-objects': ['protocol', 'server'],
  // The Worker exports the Durable Objects (its entry point) and routes to them (their types
  // for the stubs): nothing else of theirs.
  worker: ['protocol', 'server'],
  client: ['protocol'],
};
/** The one file of the Worker that exports the Durable Object classes for the runtime. */
const WORKER_ENTRY = 'worker/index.ts';

function* sources(dir) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist') yield* sources(path);
    } else if (/\.(ts|mjs|js)$/.test(entry.name)) yield path;
  }
}

const IMPORT =
  /(?:^|\n)\s*(import\s+type\s|import\s|export\s)[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

const problems = [];
for (const folder of Object.keys(ALLOWED)) {
  for (const file of sources(folder)) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      const typeOnly = /^import\s+type\s/.test(match[1] ?? '');
      const specifier = match[2] ?? match[3];
      const target = relative(root, resolve(root, dirname(file), specifier)).split('/')[0];
      if (target === folder || !(target in ALLOWED)) continue;
      const routing = folder === 'worker' && target === 'durable-objects' && (typeOnly || file === WORKER_ENTRY);
      const allowed = ALLOWED[folder].includes(target) || routing;
      if (!allowed)
        problems.push(
          `${file}: imports ${specifier} (${folder}/ may import only ${ALLOWED[folder].join(', ') || 'nothing of the others'})`,
        );
    }
  }
}

if (problems.length > 0) {
  console.error(`imports that cross a boundary the wrong way:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`imports: every folder leans the right way (${Object.keys(ALLOWED).join(', ')})`);
