// The program feed from a browser: encode the program stream with MediaRecorder (Opus) and
// send it over the room's broadcast WebSocket; the Worker pushes it to Icecast.
import { SUBPROTOCOL } from './studio-client';

/** Opus in Ogg where the browser can record it, else in WebM; both go to Icecast as they are. */
const FORMATS = [
  { format: 'ogg', mimeType: 'audio/ogg;codecs=opus' },
  { format: 'webm', mimeType: 'audio/webm;codecs=opus' },
];

export interface BroadcasterOptions {
  /** The room's broadcast endpoint, e.g. `wss://host/rooms/<roomId>/broadcast`. */
  url: string;
  token: string;
  timesliceMs?: number;
  audioBitsPerSecond?: number;
}

export class Broadcaster {
  readonly options: Required<BroadcasterOptions>;
  socket: WebSocket | null = null;
  recorder: MediaRecorder | null = null;

  constructor(options: BroadcasterOptions) {
    this.options = { timesliceMs: 250, audioBitsPerSecond: 96_000, ...options };
  }

  /** Start sending `stream`; resolves once the feed socket is open. */
  async start(stream: MediaStream): Promise<void> {
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

  stop(): void {
    if (this.recorder?.state === 'recording') this.recorder.stop();
    this.recorder = null;
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000);
    this.socket = null;
  }
}
