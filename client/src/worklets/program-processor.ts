// The program's loudness processor in the audio thread (program-dsp.ts: leveler, true-peak
// limiter at -1 dBTP, BS.1770 meter). The node is made with
//   { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [2], channelCount: 2,
//     channelCountMode: 'explicit', channelInterpretation: 'speakers' }
// so the input is always 2 channels (a mono source is up-mixed to both) and the output too.
// In on `port`: { type: 'target', lufs: number | null } (null: off, the input passes
// untouched) and { type: 'reset' } (the integrated loudness starts again). Out, every 100 ms:
// { type: 'loudness', momentary, shortTerm, integrated, gain, reduction }: LUFS, null where
// there is nothing to measure (-Infinity would not survive the trip as a number everywhere);
// gain: the leveler's (dB); reduction: the limiter's (dB, 0 or more). No input connected:
// silence out. Built to client/dist/program-processor.js (scripts/build-client.mjs).
import { ProgramProcessor } from './program-dsp';

// The AudioWorkletGlobalScope's own names (not in TypeScript's DOM library).
declare const sampleRate: number;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}
declare function registerProcessor(name: string, processor: new () => AudioWorkletProcessor): void;

type Message = { type: 'target'; lufs: number | null } | { type: 'reset' };

const REPORT_SECONDS = 0.1;

function finite(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

class ProgramProcessorNode extends AudioWorkletProcessor {
  private processor = new ProgramProcessor(sampleRate);
  private reportEvery = Math.round(sampleRate * REPORT_SECONDS);
  private sinceReport = 0;
  private silence: Float32Array[] = [];

  constructor() {
    super();
    this.port.onmessage = ({ data }: MessageEvent<Message>) => {
      if (data.type === 'target') this.processor.setTarget(typeof data.lufs === 'number' && Number.isFinite(data.lufs) ? data.lufs : null);
      if (data.type === 'reset') this.processor.meter.resetIntegrated();
    };
  }

  process(inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const output = outputs[0] ?? [];
    const frames = output[0]?.length ?? 128;
    const input = inputs[0] ?? [];
    if (input.length > 0) {
      this.processor.process(input, output);
    } else {
      // Nothing connected: silence out, and the chain hears silence too (the meter falls).
      if (this.silence[0]?.length !== frames) this.silence = [new Float32Array(frames)];
      this.processor.process(this.silence, output);
      for (const channel of output) channel.fill(0);
    }
    this.sinceReport += frames;
    if (this.sinceReport >= this.reportEvery) {
      this.sinceReport -= this.reportEvery;
      const { meter } = this.processor;
      this.port.postMessage({
        type: 'loudness',
        momentary: finite(meter.momentary),
        shortTerm: finite(meter.shortTerm),
        integrated: finite(meter.integrated),
        gain: this.processor.gainDb,
        reduction: this.processor.reductionDb,
      });
    }
    return true;
  }
}

registerProcessor('program-processor', ProgramProcessorNode);
