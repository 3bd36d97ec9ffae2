#!/usr/bin/env node
// The PeerJS server (npm package `peer`) as its users start it, on loopback.
//
//   node bench/peerjs-server.mjs --port 9000 [--host 127.0.0.1]
import { parseArgs } from 'node:util';
import { PeerServer } from 'peer';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port ?? 9000);

// Defaults of the package, except the listen address; `concurrent_limit` (default 5000)
// is above anything the benchmark opens at once.
PeerServer({ port, host: values.host, path: '/', key: 'peerjs' }, () => console.log(`peerjs server listening on ${values.host}:${port}`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
