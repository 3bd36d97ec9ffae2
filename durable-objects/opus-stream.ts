/**
 * The show's program as one continuous Ogg/Opus stream, whatever the broadcaster sends.
 *
 * Browsers record Opus in WebM (Chromium) or Ogg (Firefox), and every new recorder (a new
 * socket after a drop) starts a new file with its own headers. Passed through as they are,
 * each restart would be a new stream for the listeners: WebM cannot be chained at all, and
 * players handle chained Ogg poorly. So the feed takes the Opus packets out of whatever
 * container arrives and writes them into one Ogg logical stream per Icecast source
 * connection, with a running granule position: to a listener a broadcaster's reconnect is
 * a short silence, not a new stream. Only a new source connection (Icecast came back) begins
 * a new stream, with its headers, which the feed has kept from the broadcaster's stream; and
 * a change of channel layout chains a new one after the current one ends (`OggOpusChain`).
 *
 * Small by design (no general WebM or Ogg library runs in a Worker without Node streams):
 * the demuxers read only what Opus in these containers needs and skip everything else.
 */

import type { FeedFormat } from '../protocol/handoff';

/** What the demuxers find: a new recorder's stream with its `OpusHead`, or one Opus packet. */
export type OpusEvent = { type: 'head'; head: Uint8Array } | { type: 'packet'; packet: Uint8Array };

/** Bytes buffered while waiting for the rest of one element or page; more is not a stream we read. */
const MAX_PENDING_BYTES = 512 * 1024;

export class OpusStreamError extends Error {}

const OGG_CAPTURE = [0x4f, 0x67, 0x67, 0x53]; // "OggS"
const OPUS_HEAD = [0x4f, 0x70, 0x75, 0x73, 0x48, 0x65, 0x61, 0x64]; // "OpusHead"
const OPUS_TAGS = [0x4f, 0x70, 0x75, 0x73, 0x54, 0x61, 0x67, 0x73]; // "OpusTags"

const startsWith = (bytes: Uint8Array, prefix: number[]) => prefix.every((b, i) => bytes[i] === b);

class ByteQueue {
  private bytes = new Uint8Array(0);
  get length(): number {
    return this.bytes.length;
  }
  push(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.bytes.length + chunk.length);
    joined.set(this.bytes);
    joined.set(chunk, this.bytes.length);
    this.bytes = joined;
    if (this.bytes.length > MAX_PENDING_BYTES) throw new OpusStreamError('an element larger than a live audio stream carries');
  }
  view(): Uint8Array {
    return this.bytes;
  }
  drop(count: number): void {
    this.bytes = this.bytes.subarray(count);
  }
}

// ---- WebM (Matroska) in --------------------------------------------------------------

/** Masters read through (their children matter); every other element is read or skipped whole. */
const WEBM_MASTERS = new Set([
  0x18538067 /* Segment */, 0x1654ae6b /* Tracks */, 0xae /* TrackEntry */, 0x1f43b675 /* Cluster */, 0xa0 /* BlockGroup */,
]);
const CODEC_PRIVATE = 0x63a2;
const SIMPLE_BLOCK = 0xa3;
const BLOCK = 0xa1;

/** An EBML variable-length integer at `at`: its length and value (`null` for "unknown size"), or undefined when incomplete. */
function readVint(bytes: Uint8Array, at: number, keepMarker: boolean): { length: number; value: number | null } | undefined {
  if (at >= bytes.length) return undefined;
  const first = bytes[at]!;
  const length = Math.clz32(first) - 23;
  if (length < 1 || length > 8) throw new OpusStreamError('not a WebM stream');
  if (at + length > bytes.length) return undefined;
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    value = value * 256 + bytes[at + i]!;
    allOnes &&= bytes[at + i] === 0xff;
  }
  return { length, value: !keepMarker && allOnes ? null : value };
}

/** Opus packets out of a live WebM stream, as the browser's MediaRecorder slices it. */
export class WebmOpusReader {
  private readonly pending = new ByteQueue();

  push(chunk: Uint8Array): OpusEvent[] {
    this.pending.push(chunk);
    const events: OpusEvent[] = [];
    for (;;) {
      const bytes = this.pending.view();
      const id = readVint(bytes, 0, true);
      const size = id && readVint(bytes, id.length, false);
      if (!id || !size) break;
      const headerLength = id.length + size.length;
      if (WEBM_MASTERS.has(id.value!)) {
        this.pending.drop(headerLength);
        continue;
      }
      if (size.value === null) throw new OpusStreamError(`WebM element ${id.value!.toString(16)} of unknown size`);
      if (bytes.length < headerLength + size.value) break;
      const body = bytes.subarray(headerLength, headerLength + size.value);
      if (id.value === CODEC_PRIVATE && startsWith(body, OPUS_HEAD)) events.push({ type: 'head', head: body.slice() });
      else if (id.value === SIMPLE_BLOCK || id.value === BLOCK) {
        const packet = blockPayload(body);
        if (packet) events.push({ type: 'packet', packet });
      }
      this.pending.drop(headerLength + size.value);
    }
    return events;
  }
}

/** The frame of a (Simple)Block: track number, 16-bit timecode, flags, then the data (unlaced). */
function blockPayload(body: Uint8Array): Uint8Array | undefined {
  const track = readVint(body, 0, false);
  if (!track) return undefined;
  const flags = body[track.length + 2];
  if (flags === undefined || (flags & 0x06) !== 0) return undefined; // laced: browsers do not lace Opus
  return body.slice(track.length + 3);
}

// ---- Ogg in --------------------------------------------------------------------------

/** Opus packets out of an Ogg/Opus stream (chained streams too: each begins with its OpusHead). */
export class OggOpusReader {
  private readonly pending = new ByteQueue();
  private packet: Uint8Array[] = [];

  push(chunk: Uint8Array): OpusEvent[] {
    this.pending.push(chunk);
    const events: OpusEvent[] = [];
    for (;;) {
      const bytes = this.pending.view();
      if (bytes.length < 27) break;
      if (!startsWith(bytes, OGG_CAPTURE)) throw new OpusStreamError('not an Ogg stream');
      const segments = bytes[26]!;
      if (bytes.length < 27 + segments) break;
      const lacing = bytes.subarray(27, 27 + segments);
      const bodyLength = lacing.reduce((sum, n) => sum + n, 0);
      if (bytes.length < 27 + segments + bodyLength) break;
      if (bytes[5]! & 0x02) this.packet = []; // beginning of a stream: nothing carries over
      let at = 27 + segments;
      for (const n of lacing) {
        this.packet.push(bytes.subarray(at, at + n));
        at += n;
        if (n < 255) {
          const packet = concat(this.packet);
          this.packet = [];
          if (startsWith(packet, OPUS_HEAD)) events.push({ type: 'head', head: packet });
          else if (!startsWith(packet, OPUS_TAGS)) events.push({ type: 'packet', packet });
        }
      }
      this.pending.drop(27 + segments + bodyLength);
    }
    return events;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const part of parts) (out.set(part, at), (at += part.length));
  return out;
}

// ---- Opus ----------------------------------------------------------------------------

/** Samples at 48 kHz in one Opus packet, from its TOC byte (RFC 6716, 3.1). */
export function opusPacketSamples(packet: Uint8Array): number {
  const toc = packet[0];
  if (toc === undefined) return 0;
  const config = toc >> 3;
  const frame =
    config < 12 ? [480, 960, 1920, 2880][config & 3]! : config < 16 ? [480, 960][config & 1]! : [120, 240, 480, 960][config & 3]!;
  const code = toc & 3;
  const frames = code === 0 ? 1 : code === 3 ? (packet[1] ?? 0) & 0x3f : 2;
  return frame * frames;
}

/** 20 ms of silence (CELT, full band); valid in a mono or stereo stream. */
export const OPUS_SILENCE = new Uint8Array([0xf8, 0xff, 0xfe]);
export const OPUS_SILENCE_MS = 20;

/** The channel count and mapping of an OpusHead: streams that agree on them can be joined. */
export function sameLayout(a: Uint8Array, b: Uint8Array): boolean {
  return a[9] === b[9] && a[18] === b[18] && a.length === b.length;
}

// ---- Ogg out -------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

function oggCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]!) >>> 0;
  return crc;
}

/** Vendor string in our OpusTags. */
const VENDOR = 'OpenStudio';

/**
 * One Ogg/Opus logical stream: `begin` writes the two header pages, `packets` one page of
 * audio with the running granule position. Bytes out are complete pages, so a listener's
 * player can join at any page.
 */
export class OggOpusWriter {
  private readonly serial = crypto.getRandomValues(new Uint32Array(1))[0]!;
  private sequence = 0;
  private granule = 0;

  constructor(readonly head: Uint8Array) {}

  begin(): Uint8Array {
    const vendor = new TextEncoder().encode(VENDOR);
    const tags = new Uint8Array(8 + 4 + vendor.length + 4);
    tags.set(OPUS_TAGS);
    new DataView(tags.buffer).setUint32(8, vendor.length, true);
    tags.set(vendor, 12);
    // Header pages carry granule 0.
    return concat([this.page([this.head], 0x02, 0), this.page([tags], 0, 0)]);
  }

  packets(packets: Uint8Array[]): Uint8Array {
    const pages: Uint8Array[] = [];
    let batch: Uint8Array[] = [];
    let lacing = 0;
    for (const packet of packets) {
      const needs = Math.floor(packet.length / 255) + 1;
      if (needs > 255) continue; // over 64 KiB: not an Opus packet
      if (lacing + needs > 255) (pages.push(this.page(batch, 0, this.granule)), (batch = []), (lacing = 0));
      batch.push(packet);
      lacing += needs;
      this.granule += opusPacketSamples(packet); // an audio page's granule: samples up to its last packet's end
    }
    if (batch.length > 0) pages.push(this.page(batch, 0, this.granule));
    return concat(pages);
  }

  /**
   * The stream's last page, flagged end-of-stream (RFC 3533 §4), before a chained stream
   * begins or the source ends. It carries one silence frame, so its granule position is
   * that of a packet that ends on it, as RFC 7845 §4 reads the last page for end trimming.
   */
  end(): Uint8Array {
    this.granule += opusPacketSamples(OPUS_SILENCE);
    return this.page([OPUS_SILENCE], 0x04, this.granule);
  }

  private page(packets: Uint8Array[], flags: number, granule: number): Uint8Array {
    const lacing: number[] = [];
    for (const packet of packets) {
      for (let left = packet.length; ; left -= 255) {
        lacing.push(Math.min(left, 255));
        if (left < 255) break;
      }
    }
    const body = concat(packets);
    const page = new Uint8Array(27 + lacing.length + body.length);
    const view = new DataView(page.buffer);
    page.set(OGG_CAPTURE);
    page[5] = flags;
    view.setUint32(6, granule % 2 ** 32, true);
    view.setUint32(10, Math.floor(granule / 2 ** 32), true);
    view.setUint32(14, this.serial, true);
    view.setUint32(18, this.sequence++, true);
    page[26] = lacing.length;
    page.set(lacing, 27);
    page.set(body, 27 + lacing.length);
    view.setUint32(22, oggCrc(page), true);
    return page;
  }
}

/**
 * The program to one Icecast source connection: Ogg/Opus logical streams one after the other
 * (chained), a new one only when the channel layout changes (e.g. mono → stereo), each one
 * ended with its end-of-stream page before the next begins (RFC 7845 §3).
 */
export class OggOpusChain {
  private stream: OggOpusWriter | null = null;

  /** Has a stream begun (so silence can be written into it)? */
  get started(): boolean {
    return this.stream !== null;
  }

  /** Pages for `packets` of a broadcaster stream whose OpusHead is `head`. */
  audio(head: Uint8Array, packets: Uint8Array[]): Uint8Array {
    const out: Uint8Array[] = [];
    if (this.stream && !sameLayout(this.stream.head, head)) out.push(this.end());
    if (!this.stream) {
      this.stream = new OggOpusWriter(head);
      out.push(this.stream.begin());
    }
    out.push(this.stream.packets(packets));
    return concat(out);
  }

  /** `frames` of 20 ms silence in the current stream (none before one began). */
  silence(frames: number): Uint8Array {
    return this.stream ? this.stream.packets(Array.from({ length: frames }, () => OPUS_SILENCE)) : new Uint8Array(0);
  }

  /** End the current stream (nothing when none began). */
  end(): Uint8Array {
    const stream = this.stream;
    this.stream = null;
    return stream ? stream.end() : new Uint8Array(0);
  }
}

/** A demuxer for what the broadcaster sends. */
export function opusReader(format: FeedFormat): { push(chunk: Uint8Array): OpusEvent[] } {
  return format === 'webm' ? new WebmOpusReader() : new OggOpusReader();
}
