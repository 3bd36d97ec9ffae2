// Audio mesh over a StudioClient: one RTCPeerConnection per remote peer. The newcomer
// offers to everyone already in the room (from its welcome); everyone else answers. Offers
// that cross (ICE restarts, reconciling after a resume) are settled by "perfect
// negotiation": the peer with the greater id is polite and yields.
import type { StudioClient, Welcome } from './studio-client';

export interface MeshOptions {
  /** The audio track to send (e.g. the microphone); `setLocalTrack` changes it. */
  localTrack?: MediaStreamTrack | null;
  /** `relay` forces TURN. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Sender bitrate cap in bit/s (Opus); `setMaxBitrate` changes it. */
  maxBitrate?: number;
  /** Whether to send our audio to this peer now (default: always). Re-read by `refreshSending`. */
  sendTo?: (peerId: string) => boolean;
  onTrack?: (peerId: string, stream: MediaStream) => void;
  onState?: (peerId: string, state: RTCPeerConnectionState) => void;
  /** The connection to this peer was closed and released. */
  onHangUp?: (peerId: string) => void;
  /** Fetches fresh ICE servers before the current TURN credentials expire. */
  refreshIce?: () => Promise<{ iceServers: RTCIceServer[]; expiresAt: number }>;
}

interface Peer {
  pc: RTCPeerConnection;
  /** Our audio sender, once the audio transceiver exists (made by our offer, or by theirs). */
  sender: RTCRtpSender | null;
  makingOffer: boolean;
  /** Incoming signaling, applied strictly in order (a candidate never overtakes its offer). */
  incoming: Promise<void>;
  restartTimer?: ReturnType<typeof setTimeout>;
}

/**
 * A `disconnected` connection gets this long to recover by itself before an ICE restart
 * (a busy machine or TURN server misses consent checks while audio still flows).
 */
const DISCONNECTED_GRACE_MS = 10_000;
/** Refresh TURN credentials this long before they expire. */
const ICE_REFRESH_MARGIN_MS = 5 * 60_000;
/** After a resume, queued offers arrive first; peers still unconnected after this get a call. */
const RECONCILE_DELAY_MS = 1_500;

export class AudioMesh {
  readonly peers = new Map<string, Peer>();
  private iceServers: RTCIceServer[] = [];
  private localTrack: MediaStreamTrack | null;
  private maxBitrate: number | undefined;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private unsubscribe: (() => void)[] = [];
  /** Everyone the room lets us see right now. */
  private present = new Set<string>();
  private readonly onOnline = () => this.restartAll();

  constructor(
    readonly client: StudioClient,
    readonly options: MeshOptions = {},
  ) {
    this.localTrack = options.localTrack ?? null;
    this.maxBitrate = options.maxBitrate;
    const on: StudioClient['on'] = (type, handler) => {
      const off = client.on(type, handler);
      this.unsubscribe.push(off);
      return off;
    };
    on('welcome', (welcome) => this.onWelcome(welcome));
    on('admitted', (message) => {
      for (const { peerId } of message.participants) {
        this.present.add(peerId);
        if (!this.peers.has(peerId)) void this.call(peerId);
      }
    });
    on('peer-joined', (message) => this.present.add(message.participant.peerId));
    on('offer', (message) => {
      const peer = this.connection(message.from);
      this.inOrder(peer, () => this.onOffer(message.from, peer, message.sdp));
    });
    on('answer', (message) => {
      const peer = this.peers.get(message.from);
      if (!peer) return;
      this.inOrder(peer, async () => {
        if (peer.pc.signalingState === 'have-local-offer') await peer.pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
      });
    });
    on('ice-candidate', (message) => {
      const peer = this.peers.get(message.from);
      // `null` marks the end of the remote candidates.
      if (peer) this.inOrder(peer, () => peer.pc.addIceCandidate(message.candidate ?? undefined));
    });
    on('peer-left', (message) => {
      this.present.delete(message.peerId);
      this.hangUp(message.peerId);
    });
    on('kicked', () => this.close());
    on('room-closed', () => this.close());
    globalThis.addEventListener?.('online', this.onOnline);
  }

  private get myId(): string {
    return this.client.peerId ?? '';
  }

  private onWelcome(welcome: Welcome): void {
    this.iceServers = welcome.iceServers;
    this.scheduleIceRefresh(welcome.iceExpiresAt);
    this.present = new Set(welcome.participants.map((p) => p.peerId));
    if (!welcome.resumed) {
      // A fresh join (first, or after a refused resume): we are a new peer, start over.
      for (const peerId of [...this.peers.keys()]) this.hangUp(peerId);
      for (const participant of welcome.participants) void this.call(participant.peerId);
      return;
    }
    this.reconcile();
  }

  /**
   * After a resume: keep connections (they outlive the signaling socket) with fresh ICE
   * servers, drop peers who left meanwhile, restart ICE where a connection failed, and call
   * peers we have no connection with once queued offers had their chance.
   */
  private reconcile(): void {
    for (const peerId of [...this.peers.keys()]) if (!this.present.has(peerId)) this.hangUp(peerId);
    for (const [peerId, peer] of this.peers) {
      peer.pc.setConfiguration({ ...peer.pc.getConfiguration(), iceServers: this.iceServers });
      if (peer.pc.connectionState === 'failed' || peer.pc.connectionState === 'disconnected') void this.restartIce(peerId);
    }
    this.later(RECONCILE_DELAY_MS, () => {
      for (const peerId of this.present) if (!this.peers.has(peerId)) void this.call(peerId);
    });
  }

  private later(ms: number, fn: () => void): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  private iceTimer: ReturnType<typeof setTimeout> | undefined;

  /** TURN credentials expire (`iceExpiresAt`, seconds): fetch new ones first and apply them to every connection. */
  private scheduleIceRefresh(expiresAtSeconds: number): void {
    const refresh = this.options.refreshIce;
    if (!refresh) return;
    if (this.iceTimer) this.timers.delete(this.iceTimer), clearTimeout(this.iceTimer);
    const wait = Math.max(10_000, expiresAtSeconds * 1000 - Date.now() - ICE_REFRESH_MARGIN_MS);
    this.iceTimer = this.later(wait, async () => {
      try {
        const fresh = await refresh();
        this.setIceServers(fresh.iceServers);
        this.scheduleIceRefresh(fresh.expiresAt);
      } catch {
        this.scheduleIceRefresh(Date.now() / 1000 + ICE_REFRESH_MARGIN_MS / 1000 + 30); // try again in 30 s
      }
    });
  }

  /** New ICE servers for new connections and for every existing one (used by its next ICE restart). */
  setIceServers(iceServers: RTCIceServer[]): void {
    this.iceServers = iceServers;
    for (const { pc } of this.peers.values()) pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
  }

  /** The configuration new connections get (for inspection). */
  get configuration(): RTCConfiguration {
    return { iceServers: this.iceServers, iceTransportPolicy: this.options.iceTransportPolicy ?? 'all' };
  }

  private connection(peerId: string): Peer {
    const existing = this.peers.get(peerId);
    if (existing) return existing;
    const pc = new RTCPeerConnection(this.configuration);
    const peer: Peer = { pc, sender: null, makingOffer: false, incoming: Promise.resolve() };
    this.peers.set(peerId, peer);
    pc.onicecandidate = (event) => {
      const init = event.candidate?.toJSON();
      this.trySend(() => this.client.candidate(peerId, init ? { ...init, candidate: init.candidate ?? '' } : null));
    };
    pc.ontrack = (event) => this.options.onTrack?.(peerId, event.streams[0] ?? new MediaStream([event.track]));
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      this.options.onState?.(peerId, state);
      clearTimeout(peer.restartTimer);
      if (state === 'failed') void this.restartIce(peerId);
      if (state === 'disconnected') peer.restartTimer = this.later(DISCONNECTED_GRACE_MS, () => void this.restartIce(peerId));
    };
    return peer;
  }

  private inOrder(peer: Peer, step: () => Promise<unknown>): void {
    peer.incoming = peer.incoming.then(step).then(
      () => {},
      () => {}, // a stale candidate or a closed connection: nothing to undo
    );
  }

  /** Signaling may be down (it resumes by itself); what is lost is redone by the reconcile. */
  private trySend(send: () => void): void {
    try {
      send();
    } catch {
      // not connected right now
    }
  }

  private async applySending(peerId: string, peer: Peer): Promise<void> {
    const sender = peer.sender;
    if (!sender) return;
    const send = this.options.sendTo?.(peerId) ?? true;
    const track = send ? this.localTrack : null;
    if (sender.track !== track) await sender.replaceTrack(track).catch(() => {});
    if (this.maxBitrate !== undefined) {
      const parameters = sender.getParameters();
      if (parameters.encodings?.[0] && parameters.encodings[0].maxBitrate !== this.maxBitrate) {
        parameters.encodings[0].maxBitrate = this.maxBitrate;
        await sender.setParameters(parameters).catch(() => {});
      }
    }
  }

  /** Re-evaluate `sendTo` for every peer (after a lobby or private-talk change). */
  refreshSending(): void {
    for (const [peerId, peer] of this.peers) void this.applySending(peerId, peer);
  }

  /** Send another track (new microphone, studio mode toggled) to every peer, without renegotiating. */
  setLocalTrack(track: MediaStreamTrack | null): void {
    this.localTrack = track;
    this.refreshSending();
  }

  setMaxBitrate(bitsPerSecond: number): void {
    this.maxBitrate = bitsPerSecond;
    this.refreshSending();
  }

  async call(peerId: string, options: RTCOfferOptions = {}): Promise<void> {
    const peer = this.connection(peerId);
    // The offerer makes the audio transceiver; an answerer uses the one the offer made.
    peer.sender ??= peer.pc.addTransceiver('audio', { direction: 'sendrecv' }).sender;
    void this.applySending(peerId, peer);
    try {
      peer.makingOffer = true;
      await peer.pc.setLocalDescription(await peer.pc.createOffer(options));
      this.trySend(() => this.client.offer(peerId, peer.pc.localDescription?.sdp ?? ''));
    } catch {
      // the connection was closed meanwhile
    } finally {
      peer.makingOffer = false;
      void this.applySending(peerId, peer); // encodings exist once negotiated
    }
  }

  private async onOffer(peerId: string, peer: Peer, sdp: string): Promise<void> {
    const collision = peer.makingOffer || peer.pc.signalingState !== 'stable';
    const polite = this.myId > peerId;
    if (collision && !polite) return; // ours wins; theirs is ignored, they roll back
    try {
      await peer.pc.setRemoteDescription({ type: 'offer', sdp }); // rolls ours back if we were offering
      const transceiver = peer.pc.getTransceivers().find((t) => t.receiver.track.kind === 'audio');
      if (transceiver && !peer.sender) {
        transceiver.direction = 'sendrecv';
        peer.sender = transceiver.sender;
        await this.applySending(peerId, peer);
      }
      await peer.pc.setLocalDescription(await peer.pc.createAnswer());
      this.trySend(() => this.client.answer(peerId, peer.pc.localDescription?.sdp ?? ''));
      void this.applySending(peerId, peer);
    } catch {
      // closed meanwhile
    }
  }

  /** ICE restart towards one peer (a failed connection, a network change). */
  async restartIce(peerId: string): Promise<void> {
    if (!this.peers.has(peerId) || this.client.socket?.readyState !== WebSocket.OPEN) return;
    await this.call(peerId, { iceRestart: true });
  }

  private restartAll(): void {
    for (const peerId of this.peers.keys()) void this.restartIce(peerId);
  }

  /** Close and release the connection to one peer. */
  hangUp(peerId: string): void {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    clearTimeout(peer.restartTimer);
    peer.pc.close();
    this.peers.delete(peerId);
    this.options.onHangUp?.(peerId);
  }

  /** Close every connection and stop listening to the client. */
  close(): void {
    for (const peerId of [...this.peers.keys()]) this.hangUp(peerId);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const off of this.unsubscribe.splice(0)) off();
    globalThis.removeEventListener?.('online', this.onOnline);
  }
}
