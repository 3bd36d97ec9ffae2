// Realistic signaling payloads, each carrying the sender's send time (integer
// microseconds on the harness clock) where a real one carries an opaque number: the ICE
// candidate's foundation and the SDP's `o=` session id. Sender and receiver live in the
// same process, so one-way latency is `receive time − send time` on one clock.

/** Microseconds since the harness started (monotonic). */
export const nowUs = () => Math.round(performance.now() * 1000);

const ICE_PWD = 'asd88fgpdd777uzjYhagZg8uFRrh+/kf';
const FINGERPRINT = 'sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08';

/** One audio m-section of a browser's audio-only offer (Opus first, RED, G.722, PCM, CN, DTMF). */
function audioSection(mid, ssrc, cname, streamId, trackId, candidates) {
  return [
    'm=audio 46154 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
    'c=IN IP4 203.0.113.7',
    'a=rtcp:9 IN IP4 0.0.0.0',
    ...candidates,
    'a=ice-ufrag:EEtu',
    `a=ice-pwd:${ICE_PWD}`,
    'a=ice-options:trickle',
    `a=fingerprint:${FINGERPRINT}`,
    'a=setup:actpass',
    `a=mid:${mid}`,
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=sendrecv',
    `a=msid:${streamId} ${trackId}`,
    'a=rtcp-mux',
    'a=rtcp-rsize',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1;maxaveragebitrate=128000',
    'a=rtpmap:63 red/48000/2',
    'a=fmtp:63 111/111',
    'a=rtpmap:9 G722/8000',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:13 CN/8000',
    'a=rtpmap:110 telephone-event/48000',
    'a=rtpmap:126 telephone-event/8000',
    `a=ssrc:${ssrc} cname:${cname}`,
    `a=ssrc:${ssrc} msid:${streamId} ${trackId}`,
  ];
}

const GATHERED = (component) => [
  `a=candidate:1467250027 ${component} udp 2122260223 192.168.1.23 46154 typ host generation 0 network-id 1 network-cost 10`,
  `a=candidate:2999745851 ${component} udp 2122194687 10.8.0.6 51234 typ host generation 0 network-id 2 network-cost 50`,
  `a=candidate:435653019 ${component} tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0 network-id 1 network-cost 10`,
  `a=candidate:842163049 ${component} udp 1686052607 203.0.113.7 46154 typ srflx raddr 192.168.1.23 rport 46154 generation 0 network-id 1 network-cost 10`,
  `a=candidate:3490114530 ${component} udp 41885439 198.51.100.20 61020 typ relay raddr 203.0.113.7 rport 46154 generation 0 network-id 1 network-cost 10`,
];

const SDP_BODY = [
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS program-4f1c2b talkback-9a7e3d',
  ...audioSection('0', 3735928559, 'Xk2b9QmLrT7vPq1s', 'program-4f1c2b', 'f3b1c0de-6a4b-4c1e-9d2f-2a1b3c4d5e6f', GATHERED(1)),
  ...audioSection('1', 2882400001, 'Xk2b9QmLrT7vPq1s', 'talkback-9a7e3d', '0b9e7f11-2d3c-4b5a-8e9f-a1b2c3d4e5f6', GATHERED(1)),
].join('\r\n');

/**
 * A browser's audio-only Opus offer with all candidates gathered: two audio m-lines
 * (program and talkback), ~4 KB. The send time is the `o=` session id.
 */
export function sdpOffer(tsUs) {
  return `v=0\r\no=- ${tsUs} 2 IN IP4 127.0.0.1\r\n${SDP_BODY}\r\n`;
}

/** A trickled ICE candidate (RTCIceCandidateInit); the send time is the foundation. */
export function iceCandidate(tsUs) {
  return {
    candidate: `candidate:${tsUs} 1 udp 2122260223 192.168.1.23 46154 typ host generation 0 ufrag EEtu network-id 1 network-cost 10`,
    sdpMid: '0',
    sdpMLineIndex: 0,
    usernameFragment: 'EEtu',
  };
}

export function candidateSentAt(candidate) {
  const m = /^candidate:(\d+) /.exec(candidate?.candidate ?? '');
  return m ? Number(m[1]) : NaN;
}

export function sdpSentAt(sdp) {
  const m = /^v=0\r\no=- (\d+) /.exec(sdp ?? '');
  return m ? Number(m[1]) : NaN;
}
