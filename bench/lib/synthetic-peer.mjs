// A lightweight participant (a caller, or a producer with a producer link) for measuring the
// host page at full size: it speaks the room protocol over its own WebSocket and sends
// pre-encoded Opus over WebRTC (werift, in Node), with no encoder, decoder or browser of its
// own. One machine can then run the host page with 15 of them, where 15 Chromium callers in a
// full mesh would measure only the machine's overload. It connects only to the pages being
// measured (by default the host's), not to the other synthetic participants.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket } from 'werift';
import WebSocket from 'ws';

const SUBPROTOCOL = 'openstudio.v1';
const FRAME_MS = 20;
const SAMPLES_PER_FRAME = 960; // 20 ms at Opus's 48 kHz RTP clock

/** A tone, encoded once with libopus in 20 ms frames; returns the Opus packets in order. */
export function encodeTone(dir, hz, seconds = 10) {
  const file = join(dir, `tone-${hz}.ogg`);
  execFileSync('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=${hz}:sample_rate=48000:duration=${seconds}`,
    '-ac',
    '1',
    '-c:a',
    'libopus',
    '-b:a',
    '32k',
    '-frame_duration',
    String(FRAME_MS),
    file,
  ]);
  return oggPackets(readFileSync(file)).slice(2); // without OpusHead and OpusTags
}

/** The packets of an Ogg stream (RFC 3533): segments joined until one shorter than 255 bytes. */
function oggPackets(bytes) {
  const packets = [];
  let pending = [];
  for (let at = 0; at + 27 <= bytes.length;) {
    if (bytes.toString('latin1', at, at + 4) !== 'OggS') throw new Error(`not an Ogg page at byte ${at}`);
    const segments = bytes[at + 26];
    let data = at + 27 + segments;
    for (let i = 0; i < segments; i++) {
      const size = bytes[at + 27 + i];
      pending.push(bytes.subarray(data, data + size));
      data += size;
      if (size < 255) (packets.push(Buffer.concat(pending)), (pending = []));
    }
    at = data;
  }
  return packets;
}

const isHost = (participant) => participant.role === 'host';

export class SyntheticPeer {
  /**
   * @param {{ base: string, roomId: string, token: string, name: string, packets: Buffer[],
   *   connectTo?: (participant: { role: string }) => boolean }} options
   */
  constructor(options) {
    this.options = options;
    this.peers = new Map(); // peerId → { pc, track, timer }
    this.socket = null;
    this.peerId = null;
    /** RTP packets received from the pages it is connected to (their voice reaches it). */
    this.received = 0;
  }

  /** Join the room; resolves with the welcome. */
  join() {
    const { base, roomId, token } = this.options;
    const url = `${base.replace(/^http/, 'ws')}/rooms/${encodeURIComponent(roomId)}/ws`;
    this.socket = new WebSocket(url, [SUBPROTOCOL, token]);
    return new Promise((resolve, reject) => {
      this.socket.on('error', reject);
      this.socket.on('close', (code) => reject(new Error(`${this.options.name}: closed (${code}) before a welcome`)));
      this.socket.on('message', (data) => {
        const message = JSON.parse(String(data));
        if (message.type === 'welcome') {
          this.peerId = message.peerId;
          this.iceServers = message.iceServers;
          this.send({ type: 'set-name', name: this.options.name });
          this.pingTimer = setInterval(() => this.send({ type: 'ping' }), 20_000);
          for (const participant of message.participants)
            if ((this.options.connectTo ?? isHost)(participant)) void this.call(participant.peerId);
          resolve(message);
        }
        void this.onMessage(message).catch((error) => console.error(`${this.options.name}: ${error.message}`));
      });
    });
  }

  /** Resolves once a connection (to the host) is up; rejects after `timeoutMs`. */
  async connected(timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    while (![...this.peers.values()].some(({ pc }) => pc.connectionState === 'connected')) {
      if (Date.now() > deadline) throw new Error(`${this.options.name}: no connection within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  connection(peerId) {
    const existing = this.peers.get(peerId);
    if (existing) return existing;
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers,
      codecs: { audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48_000, channels: 2 })] },
    });
    const track = new MediaStreamTrack({ kind: 'audio' });
    const peer = { pc, track, timer: null, made: false };
    this.peers.set(peerId, peer);
    pc.onIceCandidate.subscribe((candidate) => {
      const init = candidate?.toJSON();
      this.send({
        type: 'ice-candidate',
        to: peerId,
        candidate: init ? { candidate: init.candidate, sdpMid: init.sdpMid, sdpMLineIndex: init.sdpMLineIndex } : null,
      });
    });
    pc.onTrack.subscribe((remote) => remote.onReceiveRtp.subscribe(() => (this.received += 1)));
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected' && !peer.timer && this.options.packets) peer.timer = this.sendTone(track);
    });
    return peer;
  }

  async call(peerId) {
    const peer = this.connection(peerId);
    peer.pc.addTransceiver(peer.track, { direction: 'sendrecv' });
    peer.made = true;
    await peer.pc.setLocalDescription(await peer.pc.createOffer());
    this.send({ type: 'offer', to: peerId, sdp: peer.pc.localDescription.sdp });
  }

  async onMessage(message) {
    if (message.type === 'offer') {
      const peer = this.connection(message.from);
      await peer.pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
      if (!peer.made) {
        const transceiver = peer.pc.getTransceivers().find((t) => t.kind === 'audio');
        transceiver.setDirection?.('sendrecv');
        await transceiver.sender.replaceTrack(peer.track);
        peer.made = true;
      }
      await peer.pc.setLocalDescription(await peer.pc.createAnswer());
      this.send({ type: 'answer', to: message.from, sdp: peer.pc.localDescription.sdp });
    } else if (message.type === 'answer') {
      await this.peers.get(message.from)?.pc.setRemoteDescription({ type: 'answer', sdp: message.sdp });
    } else if (message.type === 'ice-candidate' && message.candidate) {
      await this.peers.get(message.from)?.pc.addIceCandidate(message.candidate);
    } else if (message.type === 'peer-left') {
      this.hangUp(message.peerId);
    }
  }

  /** The tone's packets, one every 20 ms on a steady clock (a late timer catches up), looping. */
  sendTone(track) {
    const { packets } = this.options;
    const ssrc = 0; // the sender sets its own
    const start = performance.now();
    let sent = 0;
    const tick = () => {
      const due = Math.floor((performance.now() - start) / FRAME_MS);
      for (; sent <= due; sent++) {
        const header = new RtpHeader({
          sequenceNumber: sent & 0xffff,
          timestamp: (sent * SAMPLES_PER_FRAME) >>> 0,
          ssrc,
          marker: sent === 0,
        });
        track.writeRtp(new RtpPacket(header, packets[sent % packets.length]));
      }
    };
    return setInterval(tick, FRAME_MS / 2);
  }

  hangUp(peerId) {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    clearInterval(peer.timer);
    void peer.pc.close();
    this.peers.delete(peerId);
  }

  leave() {
    clearInterval(this.pingTimer);
    for (const peerId of [...this.peers.keys()]) this.hangUp(peerId);
    this.send({ type: 'leave' });
    this.socket?.close();
  }
}
