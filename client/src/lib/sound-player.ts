// The soundboard as one page hears it: every pad's file, decoded once, played from the
// moment the room says it started (room clock), at the pad's level, into one output node
// (the page's `Sounds` channel: its speakers and its program). Every page that may hear
// the show plays the sounds itself: the program gets them whole, every on-air caller hears
// them, and nobody's voice, mute, fader or recording track carries them.
import type { SoundInfo } from '../../../protocol/sounds';

/** A page later than this behind a Play starts the sound from its top (a jingle is heard whole)... */
const START_LATE_SECONDS = 1;
/** ...a page that comes in later (joined, reloaded) starts where everyone else is. */
const FADE_SECONDS = 0.01;

export interface SoundPlayerOptions {
  context: AudioContext;
  /** The sound's file (any token of the room may fetch it). */
  fetchFile: (soundId: string) => Promise<ArrayBuffer>;
  /** The room's clock now (epoch ms). */
  now: () => number;
  /** A pad started or stopped playing on this page. */
  onChange?: () => void;
}

interface Voice {
  playId: string;
  source: AudioBufferSourceNode;
  level: GainNode;
  ended: boolean;
}

export class SoundPlayer {
  /** Every sound this page plays, summed. */
  readonly output: GainNode;
  private buffers = new Map<string, Promise<AudioBuffer | null>>();
  private voices = new Map<string, Voice>();
  private sounds: SoundInfo[] = [];
  private problems = new Map<string, string>();

  constructor(private options: SoundPlayerOptions) {
    this.output = new GainNode(options.context, { gain: 1 });
  }

  /** The room's pads now (null: this page may hear none, e.g. it waits in the lobby). */
  update(sounds: SoundInfo[] | null): void {
    this.sounds = sounds ?? [];
    const byId = new Map(this.sounds.map((sound) => [sound.soundId, sound]));
    for (const [soundId, voice] of this.voices) {
      const sound = byId.get(soundId);
      if (!sound || sound.playing?.playId !== voice.playId) this.stopVoice(soundId);
    }
    for (const soundId of this.buffers.keys()) if (!byId.has(soundId)) this.buffers.delete(soundId);
    for (const sound of this.sounds) {
      void this.load(sound.soundId); // decoded before anyone presses Play
      const voice = this.voices.get(sound.soundId);
      if (voice) {
        voice.source.loop = sound.loop;
        voice.level.gain.setTargetAtTime(sound.level, this.options.context.currentTime, FADE_SECONDS);
      } else if (sound.playing) void this.start(sound, sound.playing.playId);
    }
    this.options.onChange?.();
  }

  /** Is the pad sounding on this page now? */
  playing(soundId: string): boolean {
    const voice = this.voices.get(soundId);
    return voice !== undefined && !voice.ended;
  }

  /** How many pads sound on this page now. */
  get sounding(): number {
    return [...this.voices.values()].filter((voice) => !voice.ended).length;
  }

  /** Why a pad's file cannot be played here (it could not be fetched or decoded). */
  problem(soundId: string): string | undefined {
    return this.problems.get(soundId);
  }

  /** The decoded length of a pad's file, once loaded. */
  async duration(soundId: string): Promise<number | null> {
    return (await this.buffers.get(soundId))?.duration ?? null;
  }

  close(): void {
    for (const soundId of [...this.voices.keys()]) this.stopVoice(soundId);
    this.output.disconnect();
  }

  private load(soundId: string): Promise<AudioBuffer | null> {
    let buffer = this.buffers.get(soundId);
    if (!buffer) {
      buffer = this.options
        .fetchFile(soundId)
        .then((bytes) => this.options.context.decodeAudioData(bytes))
        .catch((error: unknown) => {
          this.problems.set(soundId, error instanceof Error ? error.message : String(error));
          this.options.onChange?.();
          return null;
        });
      this.buffers.set(soundId, buffer);
    }
    return buffer;
  }

  private async start(sound: SoundInfo, playId: string): Promise<void> {
    const buffer = await this.load(sound.soundId);
    // Still the same play, once the file is here?
    const now = this.sounds.find((s) => s.soundId === sound.soundId);
    if (!buffer || !now || now.playing?.playId !== playId || this.voices.get(sound.soundId)?.playId === playId) return;
    const { context } = this.options;
    const late = Math.max(0, (this.options.now() - now.playing.startedAt) / 1000);
    let offset = 0;
    if (late > START_LATE_SECONDS) {
      if (!now.loop && late >= buffer.duration) return; // over before this page came in
      offset = now.loop ? late % buffer.duration : late;
    }
    const level = new GainNode(context, { gain: now.level });
    const source = new AudioBufferSourceNode(context, { buffer, loop: now.loop });
    source.connect(level).connect(this.output);
    const voice: Voice = { playId, source, level, ended: false };
    source.onended = () => {
      voice.ended = true;
      level.disconnect();
      if (this.voices.get(sound.soundId) === voice) this.voices.delete(sound.soundId);
      this.options.onChange?.();
    };
    this.voices.set(sound.soundId, voice);
    source.start(context.currentTime, offset);
    this.options.onChange?.();
  }

  /** Out within about 10 ms, without a click. */
  private stopVoice(soundId: string): void {
    const voice = this.voices.get(soundId);
    if (!voice) return;
    this.voices.delete(soundId);
    const { currentTime } = this.options.context;
    voice.level.gain.setTargetAtTime(0, currentTime, FADE_SECONDS / 3);
    voice.source.stop(currentTime + FADE_SECONDS * 2);
  }
}
