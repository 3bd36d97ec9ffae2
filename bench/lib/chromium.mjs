// The CPU and memory of one Chromium's whole process tree, for the studio benches (they
// launch and drive Chromium with the page driver, test/page-driver.mjs).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { summarize } from './stats.mjs';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

function procStat(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The Chromium browser process launched with `wav`, and all its descendants (renderers, audio and network services). */
function processTree(wav) {
  const stats = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((pid) => {
      try {
        return [{ pid, ppid: procStat(pid)[1], cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8') }];
      } catch {
        return [];
      }
    });
  const root = stats.find((s) => s.cmdline.includes(wav) && !s.cmdline.includes('--type='));
  const tree = new Set([root.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const s of stats) if (!tree.has(s.pid) && tree.has(s.ppid)) (tree.add(s.pid), (grew = true));
  }
  return [...tree];
}

/** A Chromium process's part: `renderer`, `utility:audio.mojom.AudioService`, `gpu-process`, or `browser`. */
function processKind(pid) {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/); // Chromium rewrites its title: spaces
    const type = args.find((a) => a.startsWith('--type='))?.slice(7);
    const sub = args.find((a) => a.startsWith('--utility-sub-type='))?.slice(19);
    return type ? (sub ? `${type}:${sub}` : type) : 'browser';
  } catch {
    return 'gone';
  }
}

function cpuTicks(pid) {
  try {
    const fields = procStat(pid);
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return 0; // gone
  }
}

/** CPU ticks of every thread of `pids`, by `<process kind> <thread name>` ("renderer WebRTC_W_and_N"). */
function threadTicks(pids) {
  const ticks = new Map();
  for (const pid of pids) {
    const kind = processKind(pid);
    let threads = [];
    try {
      threads = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of threads) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const name = `${kind} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`;
        ticks.set(`${pid}/${tid}`, { name, ticks: Number(fields[11]) + Number(fields[12]) });
      } catch {
        // gone
      }
    }
  }
  return ticks;
}

function memoryMb(pids) {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/Pss:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}

/**
 * The browser launched with `wav` over `seconds`: mean CPU in % of a core (whole tree and by
 * process kind) and memory (PSS, sampled every second).
 */
export async function measureBrowser(wav, seconds) {
  const tree = processTree(wav);
  const before = new Map(tree.map((pid) => [pid, cpuTicks(pid)]));
  const threadsBefore = threadTicks(tree);
  const memory = [];
  for (let s = 0; s < seconds; s++) {
    await new Promise((r) => setTimeout(r, 1_000));
    memory.push(memoryMb(tree));
  }
  const byKind = new Map();
  let total = 0;
  for (const pid of tree) {
    const cpu = ((cpuTicks(pid) - before.get(pid)) / CLK_TCK / seconds) * 100;
    const kind = processKind(pid);
    total += cpu;
    byKind.set(kind, (byKind.get(kind) ?? 0) + cpu);
  }
  const byThread = new Map();
  for (const [id, { name, ticks }] of threadTicks(tree)) {
    const cpu = ((ticks - (threadsBefore.get(id)?.ticks ?? ticks)) / CLK_TCK / seconds) * 100;
    byThread.set(name, (byThread.get(name) ?? 0) + cpu);
  }
  const { p50, max } = summarize(memory);
  return { cpu: total, byKind, byThread, processes: tree.length, memoryMedianMb: p50, memoryMaxMb: max };
}

const largest = (byName, count) =>
  [...byName]
    .sort((a, b) => b[1] - a[1])
    .filter(([, v]) => v >= 0.5)
    .slice(0, count)
    .map(([k, v]) => `${k} ${v.toFixed(0)} %`)
    .join(', ');

/** A few lines for a `measureBrowser` result. */
export function describeLoad({ cpu, byKind, byThread, processes, memoryMedianMb, memoryMaxMb }, seconds) {
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  return (
    `CPU ${cpu.toFixed(0)} % of a core (mean over ${seconds} s, whole browser: ${processes} processes), ` +
    `memory PSS median ${Math.round(memoryMedianMb)} MB, max ${Math.round(memoryMaxMb)} MB; load average ${load}\n` +
    `    CPU by process: ${largest(byKind, 8)}\n    busiest threads (Chromium's names): ${largest(byThread, 8)}`
  );
}
