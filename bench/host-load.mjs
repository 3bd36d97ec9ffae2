#!/usr/bin/env node
// The host page at full size, by hand (results go to docs/benchmarks.md): its CPU and memory
// on air as participants join, step by step up to 15 others (16 participants, the
// room's default limit). Only the host is a browser (real Chromium, the real studio page, its own tone as
// microphone, relay-only through coturn); the others are synthetic (lib/synthetic-peer.mjs:
// the room protocol and pre-encoded Opus, no codec), so the machine's cores measure the host
// page rather than 15 browsers' encoders and decoders. The host page still does all its own
// work: it encodes its voice for every peer, decodes, meters and mixes every peer, and
// records and sends the program. Needs a running stack with a wide relay range:
//   TURN_MIN_PORT=49720 TURN_MAX_PORT=49999 npm run stack
//   node bench/host-load.mjs [--url http://127.0.0.1:8787] [--steps 0,1,3,7,15] [--seconds 30] [--caller-seats 14]
//     [--silent-peers] [--off-air]
// Past the caller seats (MAX_PARTICIPANTS 16 less STAFF_SEATS 2) the others join as producers.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createShow, expectMeterMoves, launchBrowser, toneFile } from '../test/page-driver.mjs';
import { describeLoad, measureBrowser } from './lib/chromium.mjs';
import { SyntheticPeer, encodeTone } from './lib/synthetic-peer.mjs';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8787' },
    steps: { type: 'string', default: '0,1,3,7,15' },
    seconds: { type: 'string', default: '30' },
    'caller-seats': { type: 'string', default: '14' },
    // Where the host page's CPU goes: without the others' voices (no decoding) …
    'silent-peers': { type: 'boolean', default: false },
    // … or off air (no program recording and upload).
    'off-air': { type: 'boolean', default: false },
  },
});
const base = args.url;
const seconds = Number(args.seconds);
const dir = mkdtempSync(join(tmpdir(), 'openstudio-host-load-'));
const peers = [];
let browser;

try {
  console.log(`host page load against ${base}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const wav = toneFile(dir, 440); // its path also finds the browser's processes
  browser = await launchBrowser(wav);
  // The host page's size when the figures in docs/benchmarks.md were measured (Playwright's default).
  const { host, callerLink } = await createShow(browser, base, { show: 'Bench', studioMode: true, viewport: { width: 1280, height: 720 } });
  const producerLink = await host.getByRole('textbox', { name: 'Producer link' }).inputValue();
  // Callers take every caller seat (all but STAFF_SEATS, default 2); producers the rest.
  const invite = (link) => new URLSearchParams(new URL(link).hash.slice(1));
  const callerSeats = Number(args['caller-seats']);
  if (!args['off-air']) {
    await host.getByRole('button', { name: 'Go live' }).click();
    await host.getByRole('button', { name: 'Stop broadcast' }).waitFor();
  }

  for (const step of args.steps.split(',').map(Number)) {
    while (peers.length < step) {
      const producer = peers.length >= callerSeats;
      const name = `${producer ? 'Producer' : 'Caller'} ${peers.length + 1}`;
      const link = invite(producer ? producerLink : callerLink);
      const peer = new SyntheticPeer({
        base,
        roomId: link.get('room'),
        token: link.get('token'),
        name,
        packets: args['silent-peers'] ? null : encodeTone(dir, 300 + 40 * peers.length),
      });
      await peer.join();
      peers.push(peer);
    }
    // Everyone heard on the host page before measuring (or, silent, at least connected).
    for (const peer of peers) {
      if (peer.options.packets) await expectMeterMoves(host, `${peer.options.name} level`, -40, 60_000);
      else await peer.connected();
    }
    await new Promise((r) => setTimeout(r, 5_000));
    const received = peers.map((c) => c.received);
    const ownCpu = process.cpuUsage();
    const load = await measureBrowser(wav, seconds);
    const own = process.cpuUsage(ownCpu);
    // The host's voice reached every one of them all along (50 packets a second).
    const rates = peers.map((c, i) => (c.received - received[i]) / seconds);
    const heard = peers.length
      ? `; the host's voice at every one of them: ${Math.round(Math.min(...rates))}–${Math.round(Math.max(...rates))} packets/s`
      : '';
    const status = (await host.getByRole('status', { name: 'On-air status' }).textContent()).trim();
    console.log(`host page (${status}) with ${peers.length} others: ${describeLoad(load, seconds)}`);
    console.log(
      `    the synthetic participants (this process): ${(((own.user + own.system) / 1e6 / seconds) * 100).toFixed(0)} % of a core${heard}`,
    );
  }
  if (!args['off-air']) await host.getByRole('button', { name: 'Stop broadcast' }).click();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  for (const peer of peers) peer.leave();
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(); // werift's sockets may outlive their closed connections
}
