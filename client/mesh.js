// Audio mesh over a StudioClient: one RTCPeerConnection per remote peer. The newcomer
// offers to everyone already in the room (from its welcome); everyone else answers, so two
// peers never offer to each other at once.

/** @typedef {import('./studio-client.js').StudioClient} StudioClient */

/**
 * @typedef {object} MeshOptions
 * @property {MediaStream} [localStream] audio to send (e.g. the microphone)
 * @property {RTCIceTransportPolicy} [iceTransportPolicy] `relay` forces TURN
 * @property {(peerId: string, stream: MediaStream) => void} [onTrack]
 * @property {(peerId: string, state: RTCPeerConnectionState) => void} [onState]
 */

export class AudioMesh {
  /** @param {StudioClient} client @param {MeshOptions} [options] */
  constructor(client, options = {}) {
    this.client = client;
    this.options = options;
    /** @type {Map<string, RTCPeerConnection>} */
    this.peers = new Map();
    /** @type {RTCIceServer[]} */
    this.iceServers = [];

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

  /** @param {string} peerId */
  connection(peerId) {
    let pc = this.peers.get(peerId);
    if (pc) return pc;
    pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.options.iceTransportPolicy ?? 'all' });
    this.peers.set(peerId, pc);
    const stream = this.options.localStream;
    if (stream) for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    else pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.onicecandidate = (event) => {
      const init = event.candidate?.toJSON();
      this.client.candidate(peerId, init ? { ...init, candidate: init.candidate ?? '' } : null);
    };
    pc.ontrack = (event) => this.options.onTrack?.(peerId, event.streams[0] ?? new MediaStream([event.track]));
    const current = pc;
    pc.onconnectionstatechange = () => this.options.onState?.(peerId, current.connectionState);
    return pc;
  }

  /** @param {string} peerId */
  async call(peerId) {
    const pc = this.connection(peerId);
    await pc.setLocalDescription(await pc.createOffer());
    this.client.offer(peerId, pc.localDescription?.sdp ?? '');
  }

  /** @param {string} peerId @param {string} sdp */
  async answerOffer(peerId, sdp) {
    const pc = this.connection(peerId);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    this.client.answer(peerId, pc.localDescription?.sdp ?? '');
  }

  /** @param {string} peerId */
  hangUp(peerId) {
    this.peers.get(peerId)?.close();
    this.peers.delete(peerId);
  }

  close() {
    for (const peerId of [...this.peers.keys()]) this.hangUp(peerId);
  }
}
