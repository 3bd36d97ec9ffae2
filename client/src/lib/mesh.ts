// Audio mesh over a StudioClient: one RTCPeerConnection per remote peer. The newcomer
// offers to everyone already in the room (from its welcome); everyone else answers, so two
// peers never offer to each other at once.
import type { StudioClient } from './studio-client';

export interface MeshOptions {
  /** Audio to send (e.g. the microphone). */
  localStream?: MediaStream;
  /** `relay` forces TURN. */
  iceTransportPolicy?: RTCIceTransportPolicy;
  onTrack?: (peerId: string, stream: MediaStream) => void;
  onState?: (peerId: string, state: RTCPeerConnectionState) => void;
}

export class AudioMesh {
  readonly peers = new Map<string, RTCPeerConnection>();
  private iceServers: RTCIceServer[] = [];

  constructor(
    readonly client: StudioClient,
    readonly options: MeshOptions = {},
  ) {
    client.on('welcome', (welcome) => {
      this.iceServers = welcome.iceServers;
      if (welcome.resumed) return; // connections survive a signaling reconnect
      for (const participant of welcome.participants) void this.call(participant.peerId);
    });
    client.on('admitted', (message) => {
      for (const participant of message.participants) if (!this.peers.has(participant.peerId)) void this.call(participant.peerId);
    });
    client.on('offer', (message) => void this.answerOffer(message.from, message.sdp));
    client.on('answer', (message) => void this.peers.get(message.from)?.setRemoteDescription({ type: 'answer', sdp: message.sdp }));
    client.on('ice-candidate', (message) => {
      const pc = this.peers.get(message.from);
      if (!pc) return;
      // `null` marks the end of the remote candidates.
      void pc.addIceCandidate(message.candidate ?? undefined).catch(() => {});
    });
    client.on('peer-left', (message) => this.hangUp(message.peerId));
  }

  connection(peerId: string): RTCPeerConnection {
    const existing = this.peers.get(peerId);
    if (existing) return existing;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.options.iceTransportPolicy ?? 'all' });
    this.peers.set(peerId, pc);
    const stream = this.options.localStream;
    if (stream) for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    else pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.onicecandidate = (event) => {
      const init = event.candidate?.toJSON();
      this.client.candidate(peerId, init ? { ...init, candidate: init.candidate ?? '' } : null);
    };
    pc.ontrack = (event) => this.options.onTrack?.(peerId, event.streams[0] ?? new MediaStream([event.track]));
    pc.onconnectionstatechange = () => this.options.onState?.(peerId, pc.connectionState);
    return pc;
  }

  async call(peerId: string): Promise<void> {
    const pc = this.connection(peerId);
    await pc.setLocalDescription(await pc.createOffer());
    this.client.offer(peerId, pc.localDescription?.sdp ?? '');
  }

  async answerOffer(peerId: string, sdp: string): Promise<void> {
    const pc = this.connection(peerId);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    this.client.answer(peerId, pc.localDescription?.sdp ?? '');
  }

  hangUp(peerId: string): void {
    this.peers.get(peerId)?.close();
    this.peers.delete(peerId);
  }

  close(): void {
    for (const peerId of [...this.peers.keys()]) this.hangUp(peerId);
  }
}
