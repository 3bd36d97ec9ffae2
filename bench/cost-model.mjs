#!/usr/bin/env node
// The cost model of docs/scale.md: what one show-hour (1 host + 5 callers) and 10,000
// concurrent shows cost on Cloudflare's Workers Paid plan. Every assumption is a named
// number below; change one and rerun (`node bench/cost-model.mjs`).
//
// Prices: https://developers.cloudflare.com/durable-objects/platform/pricing/ and
// https://developers.cloudflare.com/workers/platform/pricing/ (Workers Paid, Standard).

const PRICE = {
  base: 5, // $/month, Workers Paid minimum
  workerRequests: { included: 10e6, per: 0.3 / 1e6 },
  workerCpuMs: { included: 30e6, per: 0.02 / 1e6 },
  doRequests: { included: 1e6, per: 0.15 / 1e6 }, // incoming WebSocket messages count 1/20
  doGbSeconds: { included: 400_000, per: 12.5 / 1e6 }, // 128 MB per object while active
  rowsWritten: { included: 50e6, per: 1.0 / 1e6 }, // setAlarm() is one row written
  rowsRead: { included: 25e9, per: 0.001 / 1e6 },
};
const DO_GB = 0.125;
const WS_BILLING_RATIO = 20;

// ---- one show-hour: 1 host + 5 callers, full audio mesh -------------------------------------
const PER_CONNECTION = 1 + 1 + 2 * (8 + 1); // offer, answer, 8 trickled candidates + end-of-candidates each way
const SHOW = {
  participants: 6,
  meshAtStart: 15 * PER_CONNECTION, // 15 peer connections between 6 participants
  callerSwaps: 10, // a caller leaves (`leave`), a new one joins and connects to the 5 others
  iceRestarts: 5, // renegotiations (network changes)
  mutes: 60, // one mute or unmute a minute
  names: 6,
  drops: 3, // sockets lost without `leave`: 2 resume within the grace period, 1 times out
  resumes: 2,
  pingEverySeconds: 20, // the client library's default keepalive
  // The room's alarm checks for silent connections (PEER_SILENCE_SECONDS = 60): it is due
  // when the least recently heard socket would reach 60 s, i.e. 40-60 s after the last one
  // fired, with every client pinging every 20 s. Each check is an alarm and a setAlarm.
  silenceCheckEverySeconds: 50,
  iceRefreshes: 6, // GET /rooms/:id/ice once per participant (TURN credentials live 1 h)
  invites: 1,
};
// Measured per operation (rows written counted with SqlStorageCursor.rowsWritten on a local
// build; alarm operations counted separately and billed as one row each): the code before
// the storage changes described in docs/benchmarks.md, and the current code.
const ROWS = {
  before: { create: 3, join: 3, mute: 2, name: 2, leave: 3, drop: 4, resume: 4, timeout: 3, expiry: 2 },
  current: { create: 3, join: 1, mute: 1, name: 1, leave: 1, drop: 2, resume: 2, timeout: 1, expiry: 2 },
};
// Wall time a woken object is billed per event. 10 ms is Cloudflare's own example figure and a
// generous bound: locally, relaying a frame costs ~0.1 ms of CPU and a join ~3-6 ms.
const MS_PER_EVENT = 10;

function showHour(rows, silenceChecks = 3600 / SHOW.silenceCheckEverySeconds) {
  const joins = SHOW.participants + SHOW.callerSwaps + SHOW.resumes;
  const leaves = SHOW.callerSwaps + SHOW.participants;
  const wsMessages =
    SHOW.meshAtStart + SHOW.callerSwaps * 5 * PER_CONNECTION + SHOW.iceRestarts * PER_CONNECTION + SHOW.mutes + SHOW.names + leaves;
  const pings = SHOW.participants * (3600 / SHOW.pingEverySeconds);
  const rpc = 1 /* create */ + 2 * SHOW.invites /* authorize + generationFor */ + SHOW.iceRefreshes; /* authorize */
  const alarms = 1 /* grace timeout */ + 1 /* idle expiry */ + silenceChecks;
  const closes = leaves + SHOW.drops;
  const doRequests = wsMessages / WS_BILLING_RATIO + joins + rpc + alarms;
  const events = wsMessages + joins + rpc + alarms + closes;
  const gbSeconds = (events * MS_PER_EVENT * DO_GB) / 1000;
  const rowsWritten =
    rows.create +
    joins * rows.join -
    SHOW.resumes * rows.join +
    SHOW.mutes * rows.mute +
    SHOW.names * rows.name +
    leaves * rows.leave +
    SHOW.drops * rows.drop +
    SHOW.resumes * rows.resume +
    rows.timeout +
    rows.expiry +
    silenceChecks;
  const workerRequests = 1 /* POST /rooms */ + SHOW.invites + SHOW.iceRefreshes + joins;
  return {
    wsMessages,
    pings,
    joins,
    rpc,
    alarms,
    closes,
    events,
    doRequests,
    gbSeconds,
    rowsWritten,
    rowsRead: 150,
    workerRequests,
    workerCpuMs: workerRequests * 2,
  };
}

/** The program feed as first built: held by the room's Durable Object, which stays active. */
function feedHourInRoom(timesliceMs = 250) {
  const chunks = 3600_000 / timesliceMs;
  return { doRequests: chunks / WS_BILLING_RATIO, gbSeconds: 3600 * DO_GB, workerRequests: 0, workerCpuMs: 0, rowsWritten: 0 };
}

/**
 * The program feed as first moved out of the room: held by a Worker invocation (CPU only),
 * reporting to the room every 5 s. Cheapest, but one invocation's subrequest and CPU budgets
 * run out over a long show, and nothing restarts it (docs/scale.md).
 */
function feedHourInWorker(heartbeatSeconds = 5, cpuMsPerHour = 3000) {
  const rpcs = 3600 / heartbeatSeconds + 3;
  return {
    doRequests: rpcs,
    gbSeconds: (rpcs * MS_PER_EVENT * DO_GB) / 1000,
    workerRequests: 1,
    workerCpuMs: cpuMsPerHour,
    rowsWritten: 3, // connecting, live, idle
  };
}

/**
 * The program feed as built now: a Durable Object of its own per show (durable-objects/feed.ts).
 * It holds an outbound TCP socket, so it is active (billed for duration) for the whole show;
 * every incoming audio frame is a request (1/20), every alarm (4 s) is a request and a
 * `setAlarm` (one row written). The room hears a report on each change and at least every 8 s:
 * one RPC (woken for ~10 ms), and one row written when the state or the listener count changed.
 */
function feedHourInOwnObject({ timesliceMs = 250, alarmSeconds = 4, heartbeatSeconds = 8, changesPerHour = 120 } = {}) {
  const chunks = 3600_000 / timesliceMs;
  const alarms = 3600 / alarmSeconds;
  const reports = 3600 / heartbeatSeconds;
  return {
    doRequests: chunks / WS_BILLING_RATIO + alarms + 1 /* the upgrade */ + reports,
    gbSeconds: 3600 * DO_GB + (reports * MS_PER_EVENT * DO_GB) / 1000,
    workerRequests: 1,
    workerCpuMs: 2,
    rowsWritten: alarms + changesPerHour,
  };
}

function bill(volume) {
  const line = (p, v) => Math.max(0, v - p.included) * p.per;
  const cost = {
    base: PRICE.base,
    workerRequests: line(PRICE.workerRequests, volume.workerRequests),
    workerCpu: line(PRICE.workerCpuMs, volume.workerCpuMs),
    doRequests: line(PRICE.doRequests, volume.doRequests),
    doDuration: line(PRICE.doGbSeconds, volume.gbSeconds),
    rowsWritten: line(PRICE.rowsWritten, volume.rowsWritten),
    rowsRead: line(PRICE.rowsRead, volume.rowsRead),
  };
  return { ...cost, total: Object.values(cost).reduce((a, b) => a + b, 0) };
}

const marginal = (v) =>
  v.workerRequests * PRICE.workerRequests.per +
  v.workerCpuMs * PRICE.workerCpuMs.per +
  v.doRequests * PRICE.doRequests.per +
  v.gbSeconds * PRICE.doGbSeconds.per +
  v.rowsWritten * PRICE.rowsWritten.per +
  v.rowsRead * PRICE.rowsRead.per;

const scale = (v, n) => Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x * n]));
const fmt = (x) => (Number.isInteger(x) || x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 1 ? x.toFixed(2) : x.toPrecision(3));

const CONCURRENT = 10_000;
const HOURS = 720; // a 30-day month of round-the-clock shows
for (const [variant, hour] of [
  ['before the storage changes, no silence checks', showHour(ROWS.before, 0)],
  ['after the storage changes, no silence checks', showHour(ROWS.current, 0)],
  ['current: storage changes and silence checks', showHour(ROWS.current)],
]) {
  console.log(`\n== signaling, ${variant} ==`);
  console.log('one show-hour:', Object.fromEntries(Object.entries(hour).map(([k, x]) => [k, fmt(x)])));
  console.log(`one show-hour at marginal prices: $${marginal(hour).toPrecision(3)}`);
  const month = bill(scale(hour, CONCURRENT * HOURS));
  console.log(
    `${CONCURRENT.toLocaleString('en-US')} concurrent shows, ${HOURS} h:`,
    Object.fromEntries(Object.entries(month).map(([k, x]) => [k, `$${fmt(x)}`])),
  );
}
for (const [title, feed] of [
  ['program feed held by the room object (as first built)', feedHourInRoom()],
  ['program feed held by a Worker invocation (does not survive a long show)', feedHourInWorker()],
  ['program feed in its own Durable Object per show (current)', feedHourInOwnObject()],
]) {
  const hour = showHour(ROWS.current);
  for (const key of Object.keys(feed)) hour[key] += feed[key];
  console.log(`\n== signaling (current) + ${title}, 250 ms chunks ==`);
  console.log(`one show-hour at marginal prices: $${marginal(hour).toPrecision(3)}`);
  const month = bill(scale(hour, CONCURRENT * HOURS));
  console.log(
    `${CONCURRENT.toLocaleString('en-US')} concurrent shows, ${HOURS} h:`,
    Object.fromEntries(Object.entries(month).map(([k, x]) => [k, `$${fmt(x)}`])),
  );
}
