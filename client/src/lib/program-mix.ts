// The audio of one studio page, in Web Audio: every voice (this page's microphone and each
// remote peer) is a channel with a gate (may this page hear it at all), a level meter
// after the gate (what this page really hears), a program fader onto the program bus, and
// for remote voices a path to the speakers. The program bus is what gets broadcast.
//
//   stream → gate → meter ┬→ fader (× on-air) → program bus → loudness processor → program stream (+ meter)
//                         └→ speakers (remote voices only)
//
// The soundboard's sounds are one more channel (`sounds`), fed by a node instead of a stream.

import { SAMPLE_RATE } from '../../../protocol/recording';
import { DEFAULT_TARGET } from '../worklets/program-dsp';

/** Silence as the meters report it (dBFS); meters range from here to 0. */
export const METER_FLOOR_DB = -60;
/** Time constant of fader changes: no clicks, and silent within about 50 ms. */
const RAMP_SECONDS = 0.01;
/** A mute (the gate) is faster, still without a click: silent within about 25 ms. */
const GATE_RAMP_SECONDS = 0.005;
const PEAK_HOLD_MS = 1_500;

function toDb(amplitude: number): number {
  return amplitude > 0 ? Math.max(METER_FLOOR_DB, 20 * Math.log10(amplitude)) : METER_FLOOR_DB;
}

/** Level of an AnalyserNode's latest samples in dBFS, with peak hold. */
export class LevelMeter {
  private samples: Float32Array<ArrayBuffer>;
  private held = METER_FLOOR_DB;
  private heldAt = 0;

  constructor(readonly analyser: AnalyserNode) {
    this.samples = new Float32Array(analyser.fftSize);
  }

  /** `level`: sample peak of the latest window; `peak`: highest level of the last 1.5 s. */
  read(now = performance.now()): { level: number; peak: number } {
    this.analyser.getFloatTimeDomainData(this.samples);
    let max = 0;
    for (const sample of this.samples) max = Math.max(max, Math.abs(sample));
    const level = toDb(max);
    if (level >= this.held || now - this.heldAt > PEAK_HOLD_MS) {
      this.held = level;
      this.heldAt = now;
    }
    return { level, peak: this.held };
  }
}

export interface ChannelOptions {
  /** Play this voice on this page's speakers (remote voices; never your own microphone). */
  monitor?: boolean;
}

/** One voice in the page's audio (or the soundboard's sounds, a node of this context). */
export class Channel {
  readonly meter: LevelMeter;
  /** The voice as it enters this page's audio: a recorder taps it here, in step with the program. */
  readonly source: AudioNode;
  /** A voice (a stream), not a node of the page's own (the soundboard's sounds). */
  readonly isVoice: boolean;
  private gate: GainNode;
  private fader: GainNode;
  private speakers: GainNode | null = null;
  /** Chromium feeds a remote WebRTC stream into Web Audio only while a media element plays it. */
  private element: HTMLAudioElement | null = null;
  private faderValue = 1;
  private onAir = true;

  constructor(
    private mix: ProgramMix,
    input: MediaStream | AudioNode,
    options: ChannelOptions,
  ) {
    const { context } = mix;
    const stream = input instanceof MediaStream ? input : null;
    this.isVoice = stream !== null;
    this.source = stream ? context.createMediaStreamSource(stream) : (input as AudioNode);
    this.gate = new GainNode(context, { gain: 1 });
    // 1024 samples: a ~21 ms window, for meters read every 50 ms.
    const analyser = new AnalyserNode(context, { fftSize: 1024 });
    this.fader = new GainNode(context, { gain: 1 });
    this.source.connect(this.gate).connect(analyser);
    this.gate.connect(this.fader).connect(mix.bus);
    this.meter = new LevelMeter(analyser);
    if (options.monitor) {
      this.speakers = new GainNode(context, { gain: 1 });
      this.gate.connect(this.speakers).connect(context.destination);
      if (stream && typeof Audio !== 'undefined') {
        this.element = new Audio();
        this.element.muted = true; // sound goes through the gate only
        this.element.srcObject = stream;
        void this.element.play().catch(() => {});
      }
    }
  }

  private ramp(node: GainNode, value: number, seconds = RAMP_SECONDS): void {
    node.gain.setTargetAtTime(value, this.mix.context.currentTime, seconds);
  }

  /** Whether this page may hear the voice at all (speakers, meter and program). */
  setAudible(audible: boolean): void {
    this.ramp(this.gate, audible ? 1 : 0, GATE_RAMP_SECONDS);
  }

  /** Program fader, 0 … 2 (0-200 %). */
  setFader(value: number): void {
    this.faderValue = Math.min(2, Math.max(0, value));
    this.ramp(this.fader, this.onAir ? this.faderValue : 0);
  }

  get faderLevel(): number {
    return this.faderValue;
  }

  /** Whether the voice belongs in the program at all (the fader applies on top). */
  setOnAir(onAir: boolean): void {
    this.onAir = onAir;
    this.ramp(this.fader, onAir ? this.faderValue : 0);
  }

  release(): void {
    this.source.disconnect();
    this.gate.disconnect();
    this.fader.disconnect();
    this.speakers?.disconnect();
    if (this.element) {
      this.element.srcObject = null;
      this.element = null;
    }
  }
}

/** The program's loudness as the processor measures what goes to air (LUFS; null: nothing to measure yet). */
export interface ProgramLoudness {
  momentary: number | null;
  shortTerm: number | null;
  /** Since the last `resetLoudness()` (the console resets it when the show goes on air). */
  integrated: number | null;
  /** The leveler's gain now (dB) and the limiter's reduction (dB, 0 or more). */
  gain: number;
  reduction: number;
}

/** The loudness processor's AudioWorklet, served from the page's own origin (the CSP allows no other). */
const PROCESSOR_URL = '/program-processor.js';
export { DEFAULT_TARGET as DEFAULT_LOUDNESS_TARGET, LOUDNESS_TARGETS } from '../worklets/program-dsp';

export class ProgramMix {
  readonly context: AudioContext;
  /** Every voice's fader (and the sounds') sums here: the mix. */
  readonly bus: GainNode;
  readonly output: MediaStreamAudioDestinationNode;
  /** The program as it goes to air (after the processor). */
  readonly meter: LevelMeter;
  /**
   * The program as it goes to air: the loudness processor's output once it is in place (the
   * mix until then, and for good where it cannot load). A program recording taps it here.
   */
  program: AudioNode;
  processorError: string | null = null;
  private processing: Promise<void> | null = null;
  /** The latest reading of the program's loudness (null before the processor's first). */
  loudness: ProgramLoudness | null = null;
  private analyser: AnalyserNode;
  private processor: AudioWorkletNode | null = null;
  private target: number | null = DEFAULT_TARGET;
  private channels = new Map<string, Channel>();

  // At the recordings' rate: a page's tracks are captured in this context, sample-exact.
  constructor(context = new AudioContext({ sampleRate: SAMPLE_RATE })) {
    this.context = context;
    this.bus = new GainNode(context, { gain: 1 });
    this.output = context.createMediaStreamDestination();
    this.analyser = new AnalyserNode(context, { fftSize: 1024 });
    this.bus.connect(this.output);
    this.bus.connect(this.analyser);
    this.program = this.bus;
    this.meter = new LevelMeter(this.analyser);
  }

  /**
   * bus → processor (leveler, true-peak limiter, meter) → program stream and meter, for a
   * page that may send or record the program (a caller's page never needs it). Settles once
   * it is in place, or could not be (`processorError` says why); call it again at will. The
   * processor is for the program only: what each page hears of the voices never passes it.
   */
  startProcessor(): Promise<void> {
    this.processing ??= this.loadProcessor();
    return this.processing;
  }

  private async loadProcessor(): Promise<void> {
    try {
      await this.context.audioWorklet.addModule(PROCESSOR_URL);
      const node = new AudioWorkletNode(this.context, 'program-processor', {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        outputChannelCount: [2],
        channelCount: 2,
        channelCountMode: 'explicit',
        channelInterpretation: 'speakers',
      });
      node.port.onmessage = ({ data }: MessageEvent<{ type: string } & ProgramLoudness>) => {
        if (data.type === 'loudness') this.loudness = data;
      };
      node.port.postMessage({ type: 'target', lufs: this.target });
      this.bus.disconnect();
      this.bus.connect(node);
      node.connect(this.output);
      node.connect(this.analyser);
      this.processor = node;
      this.program = node;
    } catch (error) {
      this.processorError = error instanceof Error ? error.message : String(error);
    }
  }

  /** The loudness the program is levelled to (LUFS), or null: off, the program is the mix untouched. */
  setLoudnessTarget(lufs: number | null): void {
    this.target = lufs;
    this.processor?.port.postMessage({ type: 'target', lufs });
  }

  get loudnessTarget(): number | null {
    return this.target;
  }

  /** Start the integrated loudness again (momentary and short-term go on). */
  resetLoudness(): void {
    this.processor?.port.postMessage({ type: 'reset' });
  }

  /** Add (or replace) the voice `id` (a stream, or a node of this context). */
  addChannel(id: string, stream: MediaStream | AudioNode, options: ChannelOptions = {}): Channel {
    const previous = this.channels.get(id);
    const channel = new Channel(this, stream, options);
    if (previous) {
      channel.setFader(previous.faderLevel);
      previous.release();
    }
    this.channels.set(id, channel);
    return channel;
  }

  channel(id: string): Channel | undefined {
    return this.channels.get(id);
  }

  /** How many voices the mix holds (this page's own included; the sounds' channel is no voice). */
  get size(): number {
    return [...this.channels.values()].filter((channel) => channel.isVoice).length;
  }

  removeChannel(id: string): void {
    this.channels.get(id)?.release();
    this.channels.delete(id);
  }

  /** A stream straight into the program (its track id names the channel). */
  add(stream: MediaStream): void {
    if (stream.getAudioTracks().length > 0 && !this.channels.has(stream.id)) this.addChannel(stream.id, stream);
  }

  remove(stream: MediaStream): void {
    this.removeChannel(stream.id);
  }

  /** The program: what a broadcaster sends to listeners. */
  get stream(): MediaStream {
    return this.output.stream;
  }

  close(): void {
    for (const id of [...this.channels.keys()]) this.removeChannel(id);
    this.processor?.port.close();
    void this.context.close();
  }
}
