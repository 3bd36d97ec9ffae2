// What was heard, measured: the level of one tone's band window by window in decoded audio,
// and a recording's loudness as ffmpeg's ebur128 reads it. The browser tests (through
// test/integration/studio-page.ts) and the studio benches judge with these.
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

/**
 * Loudness of a recording as ffmpeg's `ebur128` filter measures it (ITU-R BS.1770 / EBU R 128):
 * integrated (LUFS), loudness range (LU) and true peak (dBTP), skipping the first `skipSeconds`.
 * `dualMono`: a mono file counts as both channels of a stereo one (so a mono program track
 * reads as the stereo program it was cut from).
 * @param {Buffer} file
 * @returns {{ integrated: number; range: number; truePeak: number }}
 */
export function loudnessOf(file, { skipSeconds = 0, dualMono = false } = {}) {
  const out = spawnSync(
    'ffmpeg',
    ['-nostats', '-ss', String(skipSeconds), '-i', '-', '-af', `ebur128=peak=true${dualMono ? ':dualmono=true' : ''}`, '-f', 'null', '-'],
    { input: file, maxBuffer: 64 * 1024 * 1024 },
  );
  const text = out.stderr.toString();
  const summary = text.slice(text.lastIndexOf('Summary:'));
  /** @param {RegExp} pattern */
  const number = (pattern) => {
    const match = pattern.exec(summary);
    if (!match) throw new Error(`ebur128 summary without ${pattern}: ${summary.slice(0, 500)}`);
    return match[1] === '-inf' ? -Infinity : Number(match[1]);
  };
  return {
    integrated: number(/I:\s+(-?[\d.]+|-inf) LUFS/),
    range: number(/LRA:\s+(-?[\d.]+) LU/),
    truePeak: number(/True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS/),
  };
}
