// Audio mesh over a StudioClient: one RTCPeerConnection per remote peer. The newcomer
// offers to everyone already in the room (from its welcome); everyone else answers. Offers
// that cross (ICE restarts, reconciling after a resume) are settled by "perfect
// negotiation": the peer with the greater id is polite and yields.
//
// A connection that fails (or stays disconnected) is repaired by an ICE restart, offered by
// the impolite side; the polite side offers one only if the connection is still down well
// after that. A restart that does not bring the connection back is tried again with
// backoff, a bounded number of times.
import type { StudioClient, Welcome } from './studio-client';

export interface MeshOptions {
  /** The audio track to send (e.g. the microphone); `setLocalTrack` changes it. */
  localTrack?: MediaStreamTrack | null;
  /** `relay` forces TURN. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /**
   * Whether the connection to this peer gathers relay (TURN) candidates only, whatever
   * `iceTransportPolicy` says: our addresses stay hidden from it. Read once, when the
   * connection is made; the connection keeps it.
   */
  relayOnly?: (peerId: string) => boolean;
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
  /** The next ICE restart (after the grace period, or the next try after one that did not help). */
  restartTimer?: ReturnType<typeof setTimeout>;
  /** ICE restarts tried since the connection was last connected. */
  restartAttempts: number;
  /** ICE restarts this page has offered to this peer, in all. */
  iceRestarts: number;
}

/**
 * A `disconnected` connection gets this long to recover by itself before an ICE restart
 * (a busy machine or TURN server misses consent checks while audio still flows).
 */
const DISCONNECTED_GRACE_MS = 10_000;
/** The polite side restarts ICE only if the connection is still down this much later than the impolite side would have. */
const POLITE_RESTART_DELAY_MS = 15_000;
/** After an ICE restart, the wait before the next try if the connection is still not connected: doubling, at most 30 s. */
const RESTART_RETRY_FIRST_MS = 5_000;
const RESTART_RETRY_MAX_MS = 30_000;
/** ICE restarts in a row (about three minutes); then only a network change, `online` or a resumed signaling tries again. */
const MAX_RESTART_ATTEMPTS = 8;
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
  /** A connection made ready before the welcome (`prepareCall`), for the first peer we call. */
  private spare: { pc: RTCPeerConnection; sender: RTCRtpSender } | null = null;
  /** When the current TURN credentials expire (epoch seconds). */
  private iceExpiresAt = 0;
  private iceRefresh: Promise<void> | null = null;
  /** Back online (the address may have changed): restart every connection. */
  private readonly onOnline = () => {
    for (const [peerId, peer] of this.peers) this.restartNow(peerId, peer);
  };
  /**
   * The network changed: connections that are down restart at once, unless in the middle of
   * a round of tries (a flood of change events must not make the tries unbounded).
   */
  private readonly onNetworkChange = () => {
    for (const [peerId, peer] of this.peers) {
      const idle = peer.restartAttempts === 0 || peer.restartAttempts >= MAX_RESTART_ATTEMPTS;
      if (isDown(peer.pc) && idle) this.restartNow(peerId, peer);
    }
  };

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
    // Put back on hold: only the staff are still there for us.
    on('held', (message) => {
      this.present = new Set(message.participants.map((p) => p.peerId));
      for (const peerId of [...this.peers.keys()]) if (!this.present.has(peerId)) this.hangUp(peerId);
    });
    on('kicked', () => this.close());
    on('room-closed', () => this.close());
    globalThis.addEventListener?.('online', this.onOnline);
    networkInformation()?.addEventListener('change', this.onNetworkChange);
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
    } else {
      this.reconcile();
    }
    this.dropSpare(); // unused: nobody to call
  }

  /**
   * Make the connection for our first call now, before the room's welcome, which brings the
   * peers to call and the ICE servers: a page's first connection is slow to set up (media
   * engine, codecs), and this way that overlaps the signaling connect. Nothing leaves the
   * page: without ICE servers and a local description there is no candidate gathering.
   */
  prepareCall(): void {
    if (this.spare) return;
    const pc = new RTCPeerConnection(this.configuration);
    const { sender } = pc.addTransceiver('audio', { direction: 'sendrecv' });
    // The first offer is the slow one; its result is not used (the call makes its own).
    pc.createOffer().catch(() => {});
    this.spare = { pc, sender };
  }

  private dropSpare(): void {
    this.spare?.pc.close();
    this.spare = null;
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
      if (isDown(peer.pc)) this.restartNow(peerId, peer);
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

  private cancel(timer: ReturnType<typeof setTimeout> | undefined): void {
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  private iceTimer: ReturnType<typeof setTimeout> | undefined;

  /** TURN credentials expire (`iceExpiresAt`, seconds): fetch new ones first and apply them to every connection. */
  private scheduleIceRefresh(expiresAtSeconds: number): void {
    this.iceExpiresAt = expiresAtSeconds;
    this.refreshIceIn(Math.max(10_000, expiresAtSeconds * 1000 - Date.now() - ICE_REFRESH_MARGIN_MS));
  }

  private refreshIceIn(ms: number): void {
    if (!this.options.refreshIce) return;
    this.cancel(this.iceTimer);
    this.iceTimer = this.later(ms, () => void this.refreshIceServers());
  }

  /** Fetch fresh ICE servers now (one request at a time) and apply them everywhere; on failure try again in 30 s. */
  private refreshIceServers(): Promise<void> {
    const refresh = this.options.refreshIce;
    if (!refresh) return Promise.resolve();
    this.iceRefresh ??= refresh()
      .then(
        (fresh) => {
          this.setIceServers(fresh.iceServers);
          this.scheduleIceRefresh(fresh.expiresAt);
        },
        () => this.refreshIceIn(30_000),
      )
      .finally(() => (this.iceRefresh = null));
    return this.iceRefresh;
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

  /** The configuration of a new connection to `peerId`. */
  private configurationFor(peerId: string): RTCConfiguration {
    const relay = this.options.relayOnly?.(peerId) ?? false;
    return relay ? { ...this.configuration, iceTransportPolicy: 'relay' } : this.configuration;
  }

  /** The connection to `peerId`, made if needed; `offering`: for our own call (it may take the spare). */
  private connection(peerId: string, offering = false): Peer {
    const existing = this.peers.get(peerId);
    if (existing) return existing;
    const spare = offering ? this.spare : null;
    if (spare) {
      this.spare = null;
      // Made before the ICE servers were known; it has not gathered yet, so they apply now.
      spare.pc.setConfiguration(this.configurationFor(peerId));
    }
    const pc = spare?.pc ?? new RTCPeerConnection(this.configurationFor(peerId));
    const peer: Peer = {
      pc,
      sender: spare?.sender ?? null,
      makingOffer: false,
      incoming: Promise.resolve(),
      restartAttempts: 0,
      iceRestarts: 0,
    };
    this.peers.set(peerId, peer);
    pc.onicecandidate = (event) => {
      const init = event.candidate?.toJSON();
      this.trySend(() => this.client.candidate(peerId, init ? { ...init, candidate: init.candidate ?? '' } : null));
    };
    pc.ontrack = (event) => this.options.onTrack?.(peerId, event.streams[0] ?? new MediaStream([event.track]));
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      this.options.onState?.(peerId, state);
      if (state === 'connected' || state === 'closed') {
        this.cancel(peer.restartTimer);
        peer.restartAttempts = 0;
        return;
      }
      // A first failure: wait out the grace period (disconnected only), and let the impolite
      // side go first. Once restarting, the retries keep their own pace.
      if (!isDown(pc) || peer.restartAttempts > 0) return;
      const grace = state === 'disconnected' ? DISCONNECTED_GRACE_MS : 0;
      this.scheduleRestart(peerId, peer, grace + (this.isPolite(peerId) ? POLITE_RESTART_DELAY_MS : 0));
    };
    return peer;
  }

  private isPolite(peerId: string): boolean {
    return this.myId > peerId;
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
    const peer = this.connection(peerId, true);
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
    if (collision && !this.isPolite(peerId)) return; // ours wins; theirs is ignored, they roll back
    try {
      await peer.pc.setRemoteDescription({ type: 'offer', sdp }); // rolls ours back if we were offering
      const transceiver = peer.pc.getTransceivers().find((t) => t.receiver.track.kind === 'audio');
      if (transceiver && !peer.sender) {
        transceiver.direction = 'sendrecv';
        peer.sender = transceiver.sender;
      }
      await peer.pc.setLocalDescription(await peer.pc.createAnswer());
      this.trySend(() => this.client.answer(peerId, peer.pc.localDescription?.sdp ?? ''));
      // Our track and bitrate after the answer is out: neither needs renegotiating, and the
      // newcomer's wait for the answer stays short.
      void this.applySending(peerId, peer);
    } catch {
      // closed meanwhile
    }
  }

  /**
   * One ICE restart towards a peer, with TURN credentials that are still valid (a page that
   * slept may have missed its refresh). Nothing while the signaling is down (the resumed
   * welcome restarts what is down) or the browser is offline (`online` does).
   */
  async restartIce(peerId: string): Promise<void> {
    if (this.client.socket?.readyState !== WebSocket.OPEN || globalThis.navigator?.onLine === false) return;
    if (Date.now() > this.iceExpiresAt * 1000 - ICE_REFRESH_MARGIN_MS) await this.refreshIceServers();
    const peer = this.peers.get(peerId);
    if (!peer) return;
    // restartIce() rather than a one-off offer option: if this offer loses a collision, the
    // restart still happens with the next offer or answer.
    peer.pc.restartIce();
    peer.iceRestarts += 1;
    await this.call(peerId);
  }

  /** Restart now, with a fresh budget of tries (back online, network change, signaling resumed). */
  private restartNow(peerId: string, peer: Peer): void {
    peer.restartAttempts = 0;
    this.tryRestart(peerId, peer);
  }

  /** An ICE restart in `ms`, unless the connection is back by then or the tries are used up. */
  private scheduleRestart(peerId: string, peer: Peer, ms: number): void {
    this.cancel(peer.restartTimer);
    peer.restartTimer = this.later(ms, () => {
      peer.restartTimer = undefined;
      if (this.peers.get(peerId) !== peer || peer.pc.connectionState === 'connected') return;
      if (peer.restartAttempts >= MAX_RESTART_ATTEMPTS) return; // given up until something changes
      this.tryRestart(peerId, peer);
    });
  }

  /** An ICE restart now, and the next try (backoff) in case the connection is still down by then. */
  private tryRestart(peerId: string, peer: Peer): void {
    peer.restartAttempts += 1;
    this.scheduleRestart(peerId, peer, Math.min(RESTART_RETRY_MAX_MS, RESTART_RETRY_FIRST_MS * 2 ** (peer.restartAttempts - 1)));
    void this.restartIce(peerId);
  }

  /** Close and release the connection to one peer. */
  hangUp(peerId: string): void {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    this.cancel(peer.restartTimer);
    peer.pc.close();
    this.peers.delete(peerId);
    this.options.onHangUp?.(peerId);
  }

  /** Close every connection and stop listening to the client. */
  close(): void {
    this.dropSpare();
    for (const peerId of [...this.peers.keys()]) this.hangUp(peerId);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const off of this.unsubscribe.splice(0)) off();
    globalThis.removeEventListener?.('online', this.onOnline);
    networkInformation()?.removeEventListener('change', this.onNetworkChange);
  }
}

/** Failed, or disconnected (which may still recover by itself). */
function isDown(pc: RTCPeerConnection): boolean {
  return pc.connectionState === 'failed' || pc.connectionState === 'disconnected';
}

/** `navigator.connection` (Network Information API, Chromium): fires `change` when the network changes. */
function networkInformation(): EventTarget | undefined {
  return (globalThis.navigator as { connection?: EventTarget } | undefined)?.connection;
}
