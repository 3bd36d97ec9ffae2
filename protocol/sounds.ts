/**
 * The soundboard, defined once: a sound on the wire, its pad's state, and the limits. The
 * room keeps the pads and says who plays what; every page that may hear the show plays the
 * sound itself from the same file, started at the same moment on the room's clock, so the
 * program, the staff and every on-air caller hear it, and nobody's voice carries it
 * (docs/soundboard.md).
 */
import * as v from 'valibot';

export const SOUND_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
/** Pads a room may hold. */
export const MAX_SOUNDS = 32;
export const SOUND_NAME_MAX = 64;
/** A pad's level, as its slider shows it: 0–200 %. */
export const SOUND_LEVEL_MAX = 2;
/** The upload's name for the pad (the file's name without extension, or one given). */
export const SOUND_NAME_HEADER = 'X-Sound-Name';

export type SoundFormat = 'mp3' | 'wav' | 'ogg' | 'flac';

export interface SoundInfo {
  soundId: string;
  name: string;
  format: SoundFormat;
  bytes: number;
  /** Seconds, when the file says. */
  duration: number | null;
  /** 0 … SOUND_LEVEL_MAX, for everyone who hears it. */
  level: number;
  loop: boolean;
  /** Playing since `startedAt` (room clock, epoch ms); each Play is a new `playId`. */
  playing: { playId: string; startedAt: number } | null;
}

/** A pad's name: what a person reads on the button (no control characters, trimmed). */
export const SoundName = v.pipe(
  v.string(),
  v.trim(),
  v.minLength(1),
  v.maxLength(SOUND_NAME_MAX),
  v.regex(/^[^\p{Cc}]*$/u, 'must not contain control characters'),
);

/** The pad's name from a file name: without its folder and its extension. */
export function soundNameFromFile(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? '';
  return base.replace(/\.[A-Za-z0-9]{1,5}$/, '').trim() || 'Sound';
}

export const SoundId = v.pipe(v.string(), v.regex(SOUND_ID_PATTERN, 'must be a sound id'));
