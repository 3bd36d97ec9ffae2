// The program: any number of MediaStreams mixed into one stream with Web Audio.

export class ProgramMix {
  readonly context = new AudioContext();
  readonly output = this.context.createMediaStreamDestination();
  private sources = new Map<MediaStream, MediaStreamAudioSourceNode>();

  add(stream: MediaStream): void {
    if (this.sources.has(stream) || stream.getAudioTracks().length === 0) return;
    const source = this.context.createMediaStreamSource(stream);
    source.connect(this.output);
    this.sources.set(stream, source);
  }

  remove(stream: MediaStream): void {
    this.sources.get(stream)?.disconnect();
    this.sources.delete(stream);
  }

  get stream(): MediaStream {
    return this.output.stream;
  }
}
