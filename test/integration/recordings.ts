// What the browser tests read of a show's recordings: the staff listing, a track's WAV,
// and its samples, the way a user's download gets them (over HTTP from the Worker).
import { spawnSync } from 'node:child_process';
import type { Page } from 'playwright-core';
import { expect, inject } from 'vitest';
import type { TakeListing } from '../../protocol/recording';

const workerUrl = () => inject('workerUrl');

/** The room and the host's token, from the host's own link (the page puts it in its address). */
export function hostLink(host: Page): { roomId: string; token: string } {
  const params = new URLSearchParams(new URL(host.url()).hash.slice(1));
  return { roomId: params.get('room')!, token: params.get('token')! };
}

/** A track's state on the Recordings panel (`Program` for the program). */
export const trackStatus = (page: Page, name: string) => page.getByRole('status', { name: `${name} track status`, exact: true });

export async function takes(host: Page, base = workerUrl()): Promise<TakeListing[]> {
  const { roomId, token } = hostLink(host);
  const response = await fetch(`${base}/rooms/${roomId}/recordings`, { headers: { Authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { takes: TakeListing[] }).takes;
}

/** A WAV as f32le mono 48 kHz, and its header's sample count. */
export function samplesOf(wav: Buffer): { pcm: Buffer; samples: number } {
  expect(wav.subarray(0, 4).toString()).toBe('RIFF');
  expect(wav.readUInt32LE(24), 'sample rate').toBe(48_000);
  expect(wav.readUInt16LE(34), 'bits per sample').toBe(16);
  const pcm = spawnSync('ffmpeg', ['-v', 'error', '-i', '-', '-f', 'f32le', '-ac', '1', '-ar', '48000', '-'], {
    input: wav,
    maxBuffer: 512 * 1024 * 1024,
  }).stdout;
  return { pcm, samples: pcm.length / 4 };
}

export async function fetchWav(path: string, base = workerUrl()): Promise<Buffer> {
  const response = await fetch(`${base}${path}`);
  expect(response.status, path).toBe(200);
  expect(response.headers.get('content-type')).toBe('audio/wav');
  return Buffer.from(await response.arrayBuffer());
}

/** The WAV of the track named `name` (`Program` for the program) of `take`, as samples. */
export async function trackPcm(take: TakeListing, name: string, base = workerUrl()): Promise<Buffer> {
  const track = take.tracks.find((t) => (name === 'Program' ? t.kind === 'program' : t.name === name));
  expect(track, `a track of ${name}`).toBeDefined();
  return samplesOf(await fetchWav(take.links.tracks[track!.trackId]!.wav, base)).pcm;
}
