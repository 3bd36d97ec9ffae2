/**
 * The room's soundboard: its pads and which play, kept in the room's storage. It decides and
 * keeps; the room (room.ts) checks who asks and tells everyone on the show. A Play is a
 * moment on the room's clock: each page that hears the show starts the sound from it.
 */
import type { Refusal } from '../protocol/handoff';
import { MAX_SOUNDS, type SoundInfo } from '../protocol/sounds';
import { randomId } from '../server/random';
import type { RoomStorage } from './room-storage';

export type SoundChange = { ok: true; sound: SoundInfo } | Refusal;

const notFound = (): Refusal => ({ ok: false, code: 'sound-not-found', message: 'no such sound: it was deleted' });

/** A play of a sound that does not loop is over once its length has passed. */
function over(sound: SoundInfo, now: number): boolean {
  const { playing, loop, duration } = sound;
  return playing !== null && !loop && duration !== null && now >= playing.startedAt + duration * 1000;
}

export class Soundboard {
  private pads = new Map<string, SoundInfo>();

  constructor(private readonly storage: RoomStorage) {}

  load(): void {
    this.pads = new Map(this.storage.sounds().map((sound) => [sound.soundId, sound]));
  }

  /** Every pad as it is now (a play that ended is no longer playing). */
  list(now = Date.now()): SoundInfo[] {
    return [...this.pads.values()].map((sound) => (over(sound, now) ? { ...sound, playing: null } : sound));
  }

  get size(): number {
    return this.pads.size;
  }

  has(soundId: string): boolean {
    return this.pads.has(soundId);
  }

  add(sound: Omit<SoundInfo, 'level' | 'loop' | 'playing'>): SoundChange {
    if (this.pads.size >= MAX_SOUNDS) {
      return { ok: false, code: 'quota-exceeded', message: `a show holds at most ${MAX_SOUNDS} sounds; delete one first` };
    }
    return { ok: true, sound: this.save({ ...sound, level: 1, loop: false, playing: null }) };
  }

  remove(soundId: string): boolean {
    if (!this.pads.delete(soundId)) return false;
    this.storage.deleteSound(soundId);
    return true;
  }

  /** From the top, also when it plays already. */
  play(soundId: string, now = Date.now()): SoundChange {
    const sound = this.pads.get(soundId);
    if (!sound) return notFound();
    return { ok: true, sound: this.save({ ...sound, playing: { playId: randomId(8), startedAt: now } }) };
  }

  stop(soundId: string): SoundChange {
    const sound = this.pads.get(soundId);
    if (!sound) return notFound();
    return { ok: true, sound: sound.playing ? this.save({ ...sound, playing: null }) : sound };
  }

  /**
   * A level for everyone, or looping on or off. Off while it plays: the pass that plays now
   * is its last (its start moves to this pass's start, so pages that join now agree).
   */
  set(soundId: string, change: { level?: number; loop?: boolean }, now = Date.now()): SoundChange {
    const sound = this.pads.get(soundId);
    if (!sound) return notFound();
    let playing = over(sound, now) ? null : sound.playing;
    if (change.loop === false && sound.loop && playing && sound.duration) {
      const passMs = sound.duration * 1000;
      const passes = Math.floor((now - playing.startedAt) / passMs);
      playing = { ...playing, startedAt: playing.startedAt + passes * passMs };
    }
    return { ok: true, sound: this.save({ ...sound, level: change.level ?? sound.level, loop: change.loop ?? sound.loop, playing }) };
  }

  /** Forget every pad (the room is gone; its storage goes with it). */
  clear(): string[] {
    const ids = [...this.pads.keys()];
    this.pads.clear();
    return ids;
  }

  private save(sound: SoundInfo): SoundInfo {
    this.pads.set(sound.soundId, sound);
    this.storage.saveSound(sound);
    return sound;
  }
}
