// How each server is spoken to: where to connect, what acknowledges a join, how a relayed
// offer / ICE candidate is framed on the way in and recognised on the way out.
import { randomBytes } from 'node:crypto';
import { candidateSentAt, iceCandidate, sdpOffer, sdpSentAt } from './payloads.mjs';

const rand = (n) => randomBytes(n).toString('base64url');

/**
 * A distinct client address per simulated user, as the header Cloudflare's edge sets
 * (`CF-Connecting-IP`). Ours keys its per-client limiters (room creations, joins) on it;
 * without it every benchmark user would be one abusive client called "local". Only a
 * header: all traffic stays on loopback.
 */
let clientCounter = 0;
export function clientAddress() {
  const n = ++clientCounter;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'CF-Connecting-IP': clientAddress() },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`POST ${url} → ${response.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/** OpenStudio: rooms and tokens from `POST /rooms`, first frame `welcome`. */
const ours = {
  name: 'ours',
  label: 'OpenStudio (wrangler dev → workerd)',
  async makeRooms(base, count) {
    const rooms = [];
    for (let i = 0; i < count; i++) {
      const created = await postJson(`http://${base}/rooms`, {});
      rooms.push({ roomId: created.roomId, tokens: created.tokens, joined: 0 });
    }
    return rooms;
  },
  joinUrl(base, room) {
    // A full room as a show fills it: the host, a producer, then callers (who may take all
    // seats but the two kept for staff).
    const seat = room.joined++;
    const token = seat === 0 ? room.tokens.host : seat === 1 ? room.tokens.producer : room.tokens.caller;
    return {
      url: `ws://${base}/rooms/${room.roomId}/ws?token=${encodeURIComponent(token)}`,
      headers: { 'CF-Connecting-IP': clientAddress() },
    };
  },
  /** → peer id on acknowledgement, null for frames to ignore; throws on a refusal. */
  ack(message) {
    if (message.type === 'welcome') return message.peerId;
    if (message.type === 'error') throw new Error(`join refused: ${message.code} ${message.message}`);
    return null;
  },
  iceFrame: (to, tsUs) => JSON.stringify({ type: 'ice-candidate', to, candidate: iceCandidate(tsUs) }),
  sdpFrame: (to, tsUs) => JSON.stringify({ type: 'offer', to, sdp: sdpOffer(tsUs) }),
  /** A relayed frame → { kind, from, sentAt } (null for anything else). */
  relayed(message) {
    if (message.type === 'ice-candidate') return { kind: 'ice', from: message.from, sentAt: candidateSentAt(message.candidate) };
    if (message.type === 'offer') return { kind: 'sdp', from: message.from, sentAt: sdpSentAt(message.sdp) };
    if (message.type === 'error') throw new Error(`server error: ${message.code} ${message.message}`);
    return null;
  },
  leaveFrame: '{"type":"leave"}',
};

/** The floor relay: same shapes as ours, no tokens. */
const floor = {
  ...ours,
  name: 'floor',
  label: 'floor (Node + ws, bench/floor-server.mjs)',
  async makeRooms(_base, count) {
    return Array.from({ length: count }, () => ({ roomId: rand(12), joined: 0 }));
  },
  joinUrl(base, room) {
    room.joined++;
    return { url: `ws://${base}/rooms/${room.roomId}/ws`, headers: { 'CF-Connecting-IP': clientAddress() } };
  },
};

/**
 * PeerJS server (`peer` package): one flat namespace of client-chosen ids; `OPEN`
 * acknowledges; OFFER / CANDIDATE carry `dst` in, `src` out, and the browser client's
 * payload shapes (`{sdp:{type,sdp}, type:'media', connectionId, browser}`, `{candidate, type, connectionId}`).
 */
const peerjs = {
  name: 'peerjs',
  label: 'PeerJS server (peer 1.x, Node + ws)',
  async makeRooms(_base, count) {
    return Array.from({ length: count }, () => ({ roomId: rand(6), joined: 0 }));
  },
  joinUrl(base, room) {
    room.joined++;
    const id = `${room.roomId}-${rand(9)}`;
    return {
      url: `ws://${base}/peerjs?key=peerjs&id=${id}&token=${rand(8)}`,
      peerId: id,
      headers: { 'CF-Connecting-IP': clientAddress() },
    };
  },
  ack(message) {
    if (message.type === 'OPEN') return true;
    if (message.type === 'ERROR' || message.type === 'ID-TAKEN') throw new Error(`join refused: ${JSON.stringify(message.payload)}`);
    return null;
  },
  iceFrame: (dst, tsUs) =>
    JSON.stringify({
      type: 'CANDIDATE',
      dst,
      payload: { candidate: iceCandidate(tsUs), type: 'media', connectionId: 'mc_k3p9x2v8qz' },
    }),
  sdpFrame: (dst, tsUs) =>
    JSON.stringify({
      type: 'OFFER',
      dst,
      payload: { sdp: { type: 'offer', sdp: sdpOffer(tsUs) }, type: 'media', connectionId: 'mc_k3p9x2v8qz', browser: 'chrome' },
    }),
  relayed(message) {
    if (message.type === 'CANDIDATE') return { kind: 'ice', from: message.src, sentAt: candidateSentAt(message.payload?.candidate) };
    if (message.type === 'OFFER') return { kind: 'sdp', from: message.src, sentAt: sdpSentAt(message.payload?.sdp?.sdp) };
    return null;
  },
  leaveFrame: null,
};

export const ADAPTERS = { ours, peerjs, floor };
