// The measurements. Each takes an adapter (how to talk to a server) and a running server
// handle, and returns raw samples; aggregation happens in run.mjs.
import { leaveAll, Peer, pool } from './client.mjs';
import { nowUs } from './payloads.mjs';
import { groupUsage } from './proc.mjs';
import { median } from './stats.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Join latency: `joins` sockets into ceil(joins/roomSize) rooms, at most `concurrency`
 * joins in flight. With `cpu`, also the server's CPU time per join (and its leave).
 */
export async function joinPhase(adapter, server, { joins, roomSize, concurrency, deflate, cpu }) {
  const nRooms = Math.ceil(joins / roomSize);
  const rooms = await adapter.makeRooms(server.base, nRooms);
  const peers = [];
  const cpu0 = cpu ? groupUsage(server.pgid).cpuSeconds : 0;
  try {
    // Round-robin over rooms, so concurrent joins mostly land in different rooms while
    // every room fills up to roomSize (later joiners get longer participant lists).
    return await pool(
      Array.from({ length: joins }, (_, i) => rooms[i % nRooms]),
      concurrency,
      (room) => {
        const peer = new Peer(adapter, server.base, { deflate });
        peers.push(peer);
        return peer.join(room);
      },
    );
  } finally {
    await leaveAll(peers);
    if (cpu) cpu.msPerJoin = ((groupUsage(server.pgid).cpuSeconds - cpu0) * 1000) / joins;
  }
}

/** Idle relay: two peers in one room, one message in flight; ICE candidates with `sdp` offers spread among them. */
export async function idleRelayPhase(adapter, server, { ice, sdp, deflate, timeoutMs = 5000 }) {
  const [room] = await adapter.makeRooms(server.base, 1);
  const a = new Peer(adapter, server.base, { deflate });
  const b = new Peer(adapter, server.base, { deflate });
  const out = { ice: [], sdp: [] };
  try {
    await a.join(room);
    await b.join(room);
    let waiting = null;
    a.onRelay = b.onRelay = (relayed, t) => waiting?.(relayed, t);
    const total = ice + sdp;
    const sdpAt = new Set(Array.from({ length: sdp }, (_, j) => Math.floor(((j + 0.5) * total) / sdp)));
    for (let i = 0; i < total; i++) {
      const kind = sdpAt.has(i) ? 'sdp' : 'ice';
      const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
      const got = new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${adapter.name}: relayed ${kind} not received within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiting = (relayed, t) => {
          clearTimeout(timer);
          resolve([relayed, t]);
        };
      });
      const ts = nowUs();
      from.send(kind === 'ice' ? adapter.iceFrame(to.peerId, ts) : adapter.sdpFrame(to.peerId, ts));
      const [relayed, t] = await got;
      if (relayed.sentAt !== ts || relayed.kind !== kind || relayed.from !== from.peerId) {
        throw new Error(`${adapter.name}: unexpected relayed frame ${JSON.stringify(relayed)}`);
      }
      out[kind].push((t - ts) / 1000);
    }
    return out;
  } finally {
    await leaveAll([a, b]);
  }
}

/** `rooms` × `peersPerRoom` joined peers, each knowing the other peers of its room. */
async function mesh(adapter, server, { rooms: nRooms, peersPerRoom, deflate, joinConcurrency = 8 }) {
  const rooms = await adapter.makeRooms(server.base, nRooms);
  const slots = rooms.flatMap((room) => Array.from({ length: peersPerRoom }, () => room));
  const peers = slots.map(() => new Peer(adapter, server.base, { deflate }));
  try {
    await pool(slots, joinConcurrency, (room, i) => peers[i].join(room));
  } catch (error) {
    await leaveAll(peers);
    throw error;
  }
  peers.forEach((p, i) => {
    const first = Math.floor(i / peersPerRoom) * peersPerRoom;
    p.targets = peers.slice(first, first + peersPerRoom).filter((q) => q !== p);
    p.inflight = 0;
    p.cursor = i; // stagger first targets
  });
  return { peers, byId: new Map(peers.map((p) => [p.peerId, p])) };
}

/**
 * Relay under load: `rooms` × `peersPerRoom` peers, each trickling ICE candidates to every
 * other peer of its room (round-robin) with up to `window` of its own messages in flight.
 * Latency of messages sent after the ramp; throughput of messages delivered in the
 * measured window; CPU of the server's process tree and of this process meanwhile.
 */
export async function loadPhase(adapter, server, opts) {
  const { seconds, rampSeconds, window } = opts;
  const { peers, byId } = await mesh(adapter, server, opts);
  try {
    let sending = true;
    let sent = 0;
    let received = 0;
    let deliveredInWindow = 0;
    let measureFrom = Infinity;
    let measureTo = Infinity;
    const latencies = [];
    let failure = null;

    const pump = (p) => {
      while (sending && p.inflight < window) {
        const to = p.targets[p.cursor++ % p.targets.length];
        const ts = nowUs();
        try {
          p.send(adapter.iceFrame(to.peerId, ts));
        } catch (error) {
          failure ??= error;
          sending = false;
          return;
        }
        p.inflight++;
        sent++;
      }
    };
    for (const p of peers) {
      p.onRelay = (relayed, t) => {
        received++;
        const src = byId.get(relayed.from);
        if (!src) return;
        src.inflight--;
        if (t >= measureFrom && t < measureTo) deliveredInWindow++;
        if (relayed.sentAt >= measureFrom && relayed.sentAt < measureTo) latencies.push((t - relayed.sentAt) / 1000);
        pump(src);
      };
    }

    peers.forEach(pump);
    await sleep(rampSeconds * 1000);
    const usage0 = groupUsage(server.pgid);
    const client0 = process.cpuUsage();
    measureFrom = nowUs();
    await sleep(seconds * 1000);
    measureTo = nowUs();
    const usage1 = groupUsage(server.pgid);
    const client1 = process.cpuUsage(client0);
    sending = false;
    // Drain: everything sent must arrive (bounded).
    const drainUntil = performance.now() + 10_000;
    while (received < sent && performance.now() < drainUntil && !failure) await sleep(20);
    if (failure) throw failure;
    const measuredS = (measureTo - measureFrom) / 1e6;
    const serverCpuS = usage1.cpuSeconds - usage0.cpuSeconds;
    const perProcess = usage1.processes.map((p) => {
      const before = usage0.processes.find((q) => q.pid === p.pid);
      return { comm: p.comm, cmd: p.cmd, cpuSeconds: p.cpuSeconds - (before?.cpuSeconds ?? 0) };
    });
    return {
      latencies,
      sent,
      received,
      lost: sent - received,
      measuredS,
      throughput: deliveredInWindow / measuredS,
      serverCpuS,
      serverCpuPerMsgUs: (serverCpuS / Math.max(1, deliveredInWindow)) * 1e6,
      serverCpuShare: serverCpuS / measuredS,
      clientCpuShare: (client1.user + client1.system) / 1e6 / measuredS,
      serverProcesses: perProcess.filter((p) => p.cpuSeconds > 0),
    };
  } finally {
    await leaveAll(peers);
  }
}

async function sampleRss(pgid, samples = 3, gapMs = 300) {
  const xs = [];
  for (let i = 0; i < samples; i++) {
    if (i) await sleep(gapMs);
    xs.push(groupUsage(pgid).rssBytes);
  }
  return median(xs);
}

/** Process-tree RSS before and after `sockets` idle connections (in rooms of `roomSize`). */
export async function memoryPhase(adapter, server, { sockets, roomSize, concurrency, settleMs, deflate }) {
  const before = await sampleRss(server.pgid);
  const processesBefore = groupUsage(server.pgid).processes;
  const rooms = await adapter.makeRooms(server.base, Math.ceil(sockets / roomSize));
  const slots = Array.from({ length: sockets }, (_, i) => rooms[Math.floor(i / roomSize)]);
  const peers = slots.map(() => new Peer(adapter, server.base, { deflate }));
  try {
    const t0 = performance.now();
    await pool(slots, concurrency, (room, i) => peers[i].join(room));
    const openMs = performance.now() - t0;
    await sleep(settleMs);
    const after = await sampleRss(server.pgid);
    const processesAfter = groupUsage(server.pgid).processes;
    return {
      sockets,
      rooms: rooms.length,
      openMs,
      rssBeforeBytes: before,
      rssAfterBytes: after,
      perConnectionBytes: (after - before) / sockets,
      processes: processesAfter.map((p) => ({
        comm: p.comm,
        cmd: p.cmd,
        rssBeforeBytes: processesBefore.find((q) => q.pid === p.pid)?.rssBytes ?? 0,
        rssAfterBytes: p.rssBytes,
      })),
    };
  } finally {
    await leaveAll(peers);
  }
}

/**
 * Relay at a fixed offered rate (open loop): the same mesh, every peer sending ICE
 * candidates to the others of its room at `rate / peers` per second, evenly paced, for
 * `seconds` after a ramp. Latency at a load every server sustains, not at saturation.
 */
export async function pacedPhase(adapter, server, opts) {
  const { seconds, rampSeconds, rate } = opts;
  const { peers, byId } = await mesh(adapter, server, opts);
  try {
    const periodUs = (1e6 * peers.length) / rate;
    const latencies = [];
    let sent = 0;
    let received = 0;
    let measureFrom = Infinity;
    let failure = null;
    for (const p of peers) {
      p.onRelay = (relayed, t) => {
        received++;
        if (!byId.has(relayed.from)) return;
        if (relayed.sentAt >= measureFrom) latencies.push((t - relayed.sentAt) / 1000);
      };
    }
    const start = nowUs();
    peers.forEach((p, i) => {
      p.nextAt = start + (periodUs * i) / peers.length; // spread the peers over one period
    });
    const endAt = start + (rampSeconds + seconds) * 1e6;
    measureFrom = start + rampSeconds * 1e6;
    await new Promise((resolve) => {
      const tick = () => {
        const now = nowUs();
        for (const p of peers) {
          while (p.nextAt <= now && p.nextAt < endAt) {
            const to = p.targets[p.cursor++ % p.targets.length];
            try {
              p.send(adapter.iceFrame(to.peerId, nowUs()));
            } catch (error) {
              failure ??= error;
            }
            sent++;
            p.nextAt += periodUs;
          }
        }
        if (now >= endAt || failure) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    const drainUntil = performance.now() + 10_000;
    while (received < sent && performance.now() < drainUntil && !failure) await sleep(20);
    if (failure) throw failure;
    return { latencies, sent, received, lost: sent - received, offeredRate: rate };
  } finally {
    await leaveAll(peers);
  }
}
