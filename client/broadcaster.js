// The program feed from a browser: mix the studio's audio (own microphone and every remote
// peer) into one stream, encode it with MediaRecorder (Opus), and send it over the room's
// broadcast WebSocket; the Worker pushes it to Icecast. Plain ES module, no build step.

import { SUBPROTOCOL } from './studio-client.js';

/** Opus in Ogg where the browser can record it, else in WebM; both go to Icecast as they are. */
const FORMATS = [
  { format: 'ogg', mimeType: 'audio/ogg;codecs=opus' },
  { format: 'webm', mimeType: 'audio/webm;codecs=opus' },
];

/** Mixes any number of MediaStreams into one program stream (Web Audio). */
export class ProgramMix {
  constructor() {
    this.context = new AudioContext();
    this.output = this.context.createMediaStreamDestination();
    /** @type {Map<MediaStream, MediaStreamAudioSourceNode>} */
    this.sources = new Map();
  }

  /** @param {MediaStream} stream */
  add(stream) {
    if (this.sources.has(stream) || stream.getAudioTracks().length === 0) return;
    const source = this.context.createMediaStreamSource(stream);
    source.connect(this.output);
    this.sources.set(stream, source);
  }

  /** @param {MediaStream} stream */
  remove(stream) {
    this.sources.get(stream)?.disconnect();
    this.sources.delete(stream);
  }

  get stream() {
    return this.output.stream;
  }
}

export class Broadcaster {
  /**
   * @param {{ url: string, token: string, timesliceMs?: number, audioBitsPerSecond?: number }} options
   *   `url` is the room's broadcast endpoint, e.g. `wss://host/rooms/<roomId>/broadcast`.
   */
  constructor(options) {
    this.options = { timesliceMs: 250, audioBitsPerSecond: 96_000, ...options };
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {MediaRecorder | null} */
    this.recorder = null;
  }

  /** Start sending `stream`; resolves once the feed socket is open. @param {MediaStream} stream */
  async start(stream) {
    const choice = FORMATS.find((f) => MediaRecorder.isTypeSupported(f.mimeType));
    if (!choice) throw new Error('this browser cannot record Opus audio');
    const url = new URL(this.options.url);
    url.searchParams.set('format', choice.format);
    const socket = new WebSocket(url, [SUBPROTOCOL, this.options.token]);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error('broadcast connection failed'));
    });
    // A refusal arrives as an error frame before the close.
    socket.onmessage = (event) => console.warn('broadcast:', event.data);
    socket.onclose = () => this.stop();
    const recorder = new MediaRecorder(stream, { mimeType: choice.mimeType, audioBitsPerSecond: this.options.audioBitsPerSecond });
    // Slices must reach Icecast in order; reading a Blob is asynchronous, so chain them.
    let queue = Promise.resolve();
    recorder.ondataavailable = (event) => {
      if (event.data.size === 0) return;
      queue = queue
        .then(() => event.data.arrayBuffer())
        .then((bytes) => {
          if (socket.readyState === WebSocket.OPEN) socket.send(bytes);
        });
    };
    recorder.start(this.options.timesliceMs);
    this.recorder = recorder;
  }

  stop() {
    if (this.recorder?.state === 'recording') this.recorder.stop();
    this.recorder = null;
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000);
    this.socket = null;
  }
}
