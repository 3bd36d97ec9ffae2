// The recorder's capture, in the audio thread: every sample of its input, as 32-bit floats
// in blocks of 100 ms, each with the frame number of its first sample (the position on the
// context's clock that places it in time). Closed gate: silence, sample-exact, from the next
// 128-frame quantum. Built to client/dist/pcm-capture.js (scripts/build-client.mjs).

// The AudioWorkletGlobalScope's own names (not in TypeScript's DOM library).
declare const currentFrame: number;
declare const sampleRate: number;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}
declare function registerProcessor(name: string, processor: new () => AudioWorkletProcessor): void;

const BLOCK_SECONDS = 0.1;

class PcmCapture extends AudioWorkletProcessor {
  private open = true;
  private stopped = false;
  private block = new Float32Array(Math.round(sampleRate * BLOCK_SECONDS));
  private filled = 0;
  private blockFrame = 0;

  constructor() {
    super();
    this.port.onmessage = ({ data }: MessageEvent<{ type: 'gate'; open: boolean } | { type: 'stop' }>) => {
      if (data.type === 'gate') this.open = data.open;
      if (data.type === 'stop') {
        this.flush();
        this.stopped = true;
        this.port.postMessage({ type: 'stopped' });
      }
    };
  }

  private flush(): void {
    if (this.filled === 0) return;
    const samples = this.block.slice(0, this.filled);
    this.port.postMessage({ type: 'samples', frame: this.blockFrame, samples }, [samples.buffer]);
    this.filled = 0;
  }

  process(inputs: Float32Array[][]): boolean {
    if (this.stopped) return false;
    const channels = inputs[0] ?? [];
    const frames = channels[0]?.length ?? 128;
    for (let i = 0; i < frames; i++) {
      if (this.filled === 0) this.blockFrame = currentFrame + i;
      let sum = 0;
      for (const channel of channels) sum += channel[i] ?? 0;
      this.block[this.filled++] = this.open && channels.length > 0 ? sum / channels.length : 0;
      if (this.filled === this.block.length) this.flush();
    }
    return true;
  }
}

registerProcessor('pcm-capture', PcmCapture);
