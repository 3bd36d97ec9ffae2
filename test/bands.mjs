// Level of one tone's band, window by window, in decoded audio: the browser tests (through
// test/integration/studio-page.ts) and the studio benches judge what was heard with it.
import { spawnSync } from 'node:child_process';

/**
 * Level (dB) of `pcm` (f32le mono 48 kHz) around `hz` (three bandpass filters in a row, as
 * studio-page.ts's `bandLevel`) in every window of `windowSeconds`: a leak as short as one
 * window shows, where a mean over seconds would hide it.
 * @param {Buffer} pcm
 * @param {number} hz
 * @returns {number[]}
 */
/** The ffmpeg filter that keeps the band around `hz`: three narrow bandpasses in a row. @param {number} hz */
export const bandFilter = (hz) => Array(3).fill(`bandpass=f=${hz}:width_type=q:w=30`).join(',');

export function bandLevels(pcm, hz, windowSeconds = 0.25) {
  const filtered = spawnSync(
    'ffmpeg',
    ['-v', 'error', '-f', 'f32le', '-ar', '48000', '-ac', '1', '-i', '-', '-af', bandFilter(hz), '-f', 'f32le', '-'],
    { input: pcm, maxBuffer: 256 * 1024 * 1024 },
  ).stdout;
  const count = Math.floor(filtered.length / 4);
  const size = Math.round(windowSeconds * 48_000);
  const levels = [];
  for (let start = 0; start + size <= count; start += size) {
    let sum = 0;
    for (let i = start; i < start + size; i++) sum += filtered.readFloatLE(i * 4) ** 2;
    levels.push(sum > 0 ? 10 * Math.log10(sum / size) : -Infinity);
  }
  return levels;
}
