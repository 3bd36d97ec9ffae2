/**
 * A strict check of an uploaded soundboard file, before it is stored: which of the accepted
 * formats it is (MP3, WAV, Ogg Opus, Ogg Vorbis, FLAC), how long it plays when the container
 * says, or why it is refused. Pure byte parsing (Uint8Array only), linear in the file's size
 * at worst, and it never throws: any input gets an answer.
 *
 * The problems:
 * - `empty`: zero bytes, or a well-formed file that holds no sound (a WAV with an empty data
 *   chunk, a FLAC or Ogg stream whose length is 0 samples);
 * - `not-audio`: not a sound file at all (text, HTML, scripts, images, random bytes), and also
 *   a sound file damaged in the middle (an Ogg page failing its checksum or missing, junk
 *   between MPEG frames, an inconsistent WAV header): the message then says "damaged";
 * - `unsupported`: a sound format recognised but not accepted (MP4/M4A, AIFF, WebM/Matroska,
 *   raw AAC, MP2, Ogg FLAC/Speex, ADPCM or 64-bit float WAV, RF64, more than 8 channels...);
 * - `truncated`: cut short at the end (a download that stopped), found from the sizes and
 *   counts the file itself declares.
 *
 * Per format:
 * - WAV: RIFF/WAVE; RF64/BW64 are refused as unsupported. A `fmt ` chunk of PCM (1), IEEE
 *   float (3, 32-bit only) or WAVE_FORMAT_EXTENSIBLE with one of those, 1–8 channels,
 *   8000–192000 Hz, 8/16/24/32 bits, block align and byte rate consistent with them; a `data`
 *   chunk. Truncated when a chunk's declared size runs past the end of the file. A data size of
 *   0xFFFFFFFF (or 0 with the RIFF size left at 0/0xFFFFFFFF or never updated), as written by
 *   encoders on a pipe, means "to the end of the file": accepted, with the duration from the
 *   bytes present; truncated only when those bytes end inside a sample frame.
 * - Ogg: every page walked: capture pattern, version 0, complete header and body, CRC-32,
 *   sequence numbers without gaps, one logical stream (chained or multiplexed files are
 *   unsupported). The first page carries BOS and only the `OpusHead` or `\x01vorbis` header;
 *   the second begins `OpusTags` / `\x03vorbis`. Ogg FLAC, Speex and Theora are unsupported.
 *   The last page must carry EOS (so a cut at a page boundary is truncated), and nothing may
 *   follow it. Duration: Opus (granule − pre-skip) / 48000, Vorbis granule / rate.
 * - FLAC: `fLaC` (an ID3v2 tag before it is skipped), metadata blocks to the last-block flag,
 *   STREAMINFO first; a valid frame header (CRC-8) must follow the metadata; the file must end
 *   with a complete frame: the last frame header is found from the end and its CRC-16 checked
 *   up to the end of the file (one trailing ID3v1 tag is tolerated). When STREAMINFO gives the
 *   total samples, a file whose last frame ends before them (a cut at a frame boundary) is
 *   truncated. Duration = total samples / rate, else where the last frame ends.
 * - MP3: optional ID3v2 tags (syncsafe size, footer), zero padding after them tolerated; then
 *   MPEG-1/2/2.5 Layer III frames, walked one by one from the first byte after the tags to the
 *   trailing tags (ID3v1, APEv2, Lyrics3v2, an appended ID3v2.4): every byte between must be a
 *   frame of the same version, sample rate and channel count. At least 3 frames. Layer I/II
 *   (MP2), raw AAC (ADTS) and the free-format bitrate are unsupported. Junk between frames is
 *   `not-audio` (damaged); up to 4 KiB of zero bytes after the last frame are tolerated as
 *   padding, more (the unwritten rest of an incomplete download) and a last frame running past
 *   the end are `truncated`; so is a file with fewer frames than
 *   its Xing/Info or VBRI header announces (a cut at a frame boundary). Duration = audio frames
 *   × samples per frame / rate, less the encoder delay and padding of a LAME/Lavf tag.
 *
 * Messages are plain phrases for the user, lowercase, without a final full stop, e.g.
 * "this file is cut short: its last Ogg page is incomplete".
 */

export type SoundFormat = 'mp3' | 'wav' | 'ogg' | 'flac';
export type SoundProblem = 'empty' | 'not-audio' | 'unsupported' | 'truncated';
export type SoundCheck =
  | {
      ok: true;
      format: SoundFormat;
      contentType: string;
      /** Seconds, when the container says. */
      duration: number | null;
    }
  | { ok: false; problem: SoundProblem; message: string };

const CONTENT_TYPES: Record<SoundFormat, string> = {
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
  flac: 'audio/flac',
};

const ACCEPTED = 'accepted formats are MP3, WAV, Ogg (Opus or Vorbis) and FLAC';

/** The answer when parsing itself failed unexpectedly (never expected; a safety net). */
const UNREADABLE = 'this file could not be read as a sound';

export function checkSound(bytes: Uint8Array): SoundCheck {
  try {
    return check(bytes);
  } catch {
    return fail('not-audio', UNREADABLE);
  }
}

// ---------------------------------------------------------------------------------------------
// Results and byte helpers

function sound(format: SoundFormat, duration: number | null): SoundCheck {
  if (duration === 0) return fail('empty', `this ${FORMAT_NAMES[format]} file holds no sound (its length is 0 samples)`);
  return { ok: true, format, contentType: CONTENT_TYPES[format], duration };
}

const FORMAT_NAMES: Record<SoundFormat, string> = { mp3: 'MP3', wav: 'WAV', ogg: 'Ogg', flac: 'FLAC' };

function fail(problem: SoundProblem, message: string): SoundCheck {
  return { ok: false, problem, message };
}

const truncated = (why: string) => fail('truncated', `this file is cut short: ${why}`);
const damaged = (why: string) => fail('not-audio', `this file is damaged: ${why}`);
const unsupported = (what: string) => fail('unsupported', `${what} is not supported; ${ACCEPTED}`);
/** A supported format with a property outside what is accepted: the message says what is. */
const unsupportedHere = (what: string) => fail('unsupported', what);
const notAudio = (what: string) => fail('not-audio', `${what}; ${ACCEPTED}`);

function u8(b: Uint8Array, i: number): number {
  return b[i] ?? 0;
}
function u16le(b: Uint8Array, i: number): number {
  return u8(b, i) | (u8(b, i + 1) << 8);
}
function u16be(b: Uint8Array, i: number): number {
  return (u8(b, i) << 8) | u8(b, i + 1);
}
function u24be(b: Uint8Array, i: number): number {
  return (u8(b, i) << 16) | (u8(b, i + 1) << 8) | u8(b, i + 2);
}
function u32le(b: Uint8Array, i: number): number {
  return (u8(b, i) | (u8(b, i + 1) << 8) | (u8(b, i + 2) << 16) | (u8(b, i + 3) << 24)) >>> 0;
}
function u32be(b: Uint8Array, i: number): number {
  return ((u8(b, i) << 24) | (u8(b, i + 1) << 16) | (u8(b, i + 2) << 8) | u8(b, i + 3)) >>> 0;
}

/** Whether the bytes at `i` are the ASCII string `s` (false when they run past the end). */
function has(b: Uint8Array, i: number, s: string): boolean {
  if (i < 0 || i + s.length > b.length) return false;
  for (let k = 0; k < s.length; k++) if (b[i + k] !== s.charCodeAt(k)) return false;
  return true;
}

/** Four bytes as printable text for a message (`?` for the others). */
function fourcc(b: Uint8Array, i: number): string {
  let s = '';
  for (let k = 0; k < 4; k++) {
    const c = u8(b, i + k);
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?';
  }
  return s;
}

function allZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------------------------------------
// Which kind of file

function check(b: Uint8Array): SoundCheck {
  if (b.length === 0) return fail('empty', 'this file is empty (0 bytes)');
  if (has(b, 0, '#!AMR')) return unsupported('AMR audio');
  const text = textKind(b);
  if (text !== null) return notAudio(text);

  if (has(b, 0, 'ID3')) return checkAfterId3(b);
  if (has(b, 0, 'fLaC')) return checkFlac(b, 0);
  if (has(b, 0, 'OggS')) return checkOgg(b);
  if (has(b, 0, 'RIFF') || has(b, 0, 'RF64') || has(b, 0, 'BW64')) return checkWav(b);
  if (u8(b, 0) === 0xff && (u8(b, 1) & 0xe0) === 0xe0) {
    if ((u8(b, 1) & 0x06) === 0) return checkAdts(b, 0);
    return checkMpeg(b, 0, false);
  }

  const other = otherKind(b);
  if (other !== null) return other;
  if (b.length < 16) return notAudio('this file is too short to be a sound file');
  return notAudio('this is not a sound file');
}

/** Known signatures of other files: an unsupported audio container or a plainly non-audio file. */
function otherKind(b: Uint8Array): SoundCheck | null {
  if (has(b, 4, 'ftyp')) {
    return unsupported(has(b, 8, 'qt  ') ? 'a QuickTime (MOV) file' : 'an MP4/M4A file (AAC or ALAC audio)');
  }
  if (has(b, 0, 'FORM') && (has(b, 8, 'AIFF') || has(b, 8, 'AIFC'))) return unsupported('AIFF audio');
  if (u32be(b, 0) === 0x1a45dfa3) return unsupported('a WebM/Matroska file');
  if (u32be(b, 0) === 0x3026b275 && u32be(b, 4) === 0x8e66cf11) return unsupported('a WMA/ASF file');
  if (has(b, 0, 'caff')) return unsupported('Core Audio (CAF)');
  if (has(b, 0, 'MThd')) return unsupported('MIDI (notes, not recorded sound)');
  if (has(b, 0, 'wvpk')) return unsupported('WavPack audio');
  if (has(b, 0, 'MAC ')) return unsupported("Monkey's Audio (APE)");
  if (has(b, 0, '.snd')) return unsupported('Sun/NeXT audio (AU)');
  if (u32be(b, 0) === 0x89504e47) return notAudio('this is a PNG image, not a sound');
  if (u8(b, 0) === 0xff && u8(b, 1) === 0xd8 && u8(b, 2) === 0xff) return notAudio('this is a JPEG image, not a sound');
  if (has(b, 0, 'GIF8')) return notAudio('this is a GIF image, not a sound');
  if (has(b, 0, '%PDF')) return notAudio('this is a PDF document, not a sound');
  if (has(b, 0, 'PK\x03\x04')) return notAudio('this is a ZIP archive (or an office document), not a sound');
  if (u8(b, 0) === 0x1f && u8(b, 1) === 0x8b) return notAudio('this is a gzip archive, not a sound');
  if (has(b, 0, '\x7fELF') || has(b, 0, 'MZ')) return notAudio('this is a program, not a sound');
  if (has(b, 0, '<') || has(b, 0, '#!')) return notAudio('this looks like a web page or a script, not a sound');
  return null;
}

/**
 * Plainly text: the first KiB (or the whole file) is printable UTF-8 (or UTF-16 with its byte
 * order mark) with no control characters but tab, line feed, form feed and carriage return.
 * No accepted format starts that way: each has a binary byte in its first few.
 */
function textKind(b: Uint8Array): string | null {
  const end = Math.min(b.length, 1024);
  const describe = (first: number) =>
    first === 0x3c
      ? 'this is text (HTML or XML), not a sound'
      : first === 0x23
        ? 'this is text (a script?), not a sound'
        : 'this is a text file, not a sound';
  if (end >= 4 && ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff))) {
    const little = b[0] === 0xff;
    let first = -1;
    for (let i = 2; i + 1 < end; i += 2) {
      const unit = little ? u16le(b, i) : u16be(b, i);
      if (!printable(unit) || unit === 0xfffe || unit === 0xffff) return null;
      if (first < 0) first = unit;
    }
    return describe(first);
  }
  let i = has(b, 0, '\xef\xbb\xbf') ? 3 : 0;
  const first = u8(b, i);
  while (i < end) {
    const c = u8(b, i);
    if (c < 0x80) {
      if (!printable(c)) return null;
      i++;
      continue;
    }
    const extra = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (extra < 0) return null;
    for (let k = 1; k <= extra; k++) {
      if (i + k >= end) break; // a sequence cut by the end of the sample (or of the file)
      if ((u8(b, i + k) & 0xc0) !== 0x80) return null;
    }
    i += extra + 1;
  }
  return describe(first);
}

function printable(c: number): boolean {
  return c >= 0x20 ? c !== 0x7f && (c < 0x80 || c > 0x9f) : c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

// ---------------------------------------------------------------------------------------------
// CRCs: Ogg's CRC-32 (0x04C11DB7, MSB first, init 0), FLAC's CRC-8 (0x07) and CRC-16 (0x8005)

const OGG_CRC = (() => {
  // Eight tables: eight bytes a step ("slicing by 8").
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = ((prev << 8) ^ t[prev >>> 24]!) >>> 0;
    }
  }
  return t;
})();

function oggCrc(crc: number, b: Uint8Array, from: number, to: number): number {
  const t = OGG_CRC;
  let i = from;
  for (; i + 8 <= to; i += 8) {
    crc ^= (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
    crc =
      t[1792 + (crc >>> 24)]! ^
      t[1536 + ((crc >>> 16) & 0xff)]! ^
      t[1280 + ((crc >>> 8) & 0xff)]! ^
      t[1024 + (crc & 0xff)]! ^
      t[768 + b[i + 4]!]! ^
      t[512 + b[i + 5]!]! ^
      t[256 + b[i + 6]!]! ^
      t[b[i + 7]!]!;
  }
  for (; i < to; i++) crc = (crc << 8) ^ t[((crc >>> 24) ^ b[i]!) & 0xff]!;
  return crc >>> 0;
}

const CRC8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
    t[i] = c;
  }
  return t;
})();

const CRC16 = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x8005) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

function crc8(b: Uint8Array, from: number, to: number): number {
  let crc = 0;
  for (let i = from; i < to; i++) crc = CRC8[crc ^ b[i]!]!;
  return crc;
}

function crc16(b: Uint8Array, from: number, to: number): number {
  let crc = 0;
  for (let i = from; i < to; i++) crc = ((crc << 8) & 0xffff) ^ CRC16[(crc >>> 8) ^ b[i]!]!;
  return crc;
}

// ---------------------------------------------------------------------------------------------
// WAV

function checkWav(b: Uint8Array): SoundCheck {
  const len = b.length;
  if (len < 12) return truncated('it ends inside its RIFF header');
  if (!has(b, 8, 'WAVE')) {
    if (has(b, 8, 'WEBP')) return notAudio('this is a WebP image, not a sound');
    if (has(b, 8, 'AVI ')) return unsupported('an AVI video');
    return notAudio(`this is a RIFF file of type "${fourcc(b, 8)}", not a WAV sound`);
  }
  if (!has(b, 0, 'RIFF')) return unsupported(`${fourcc(b, 0)} WAV (the variant for files over 4 GB)`);

  const riffSize = u32le(b, 4);
  const riffPlaceholder = riffSize === 0 || riffSize === 0xffffffff;
  const riffEnd = riffSize + 8;
  let fmt: WavFormat | null = null;
  let data: { start: number; size: number; toEnd: boolean } | null = null;
  let pos = 12;
  while (pos < len) {
    // Bytes after the RIFF form (a size that is not a placeholder) are not the file's.
    if (!riffPlaceholder && pos === riffEnd && fmt && data) break;
    if (len - pos < 8) {
      if (allZero(b, pos, len)) break;
      return truncated('it ends inside a chunk header');
    }
    const id = fourcc(b, pos);
    const size = u32le(b, pos + 4);
    const body = pos + 8;
    if (id === 'data') {
      if (data) return damaged('it has two data chunks');
      const neverUpdated = riffPlaceholder || riffEnd <= body;
      if (size === 0xffffffff || (size === 0 && body < len && neverUpdated)) {
        data = { start: body, size: len - body, toEnd: true };
        break;
      }
      if (body + size > len) {
        return truncated(`its data chunk declares ${plural(size, 'byte')} of sound but only ${plural(len - body, 'byte')} follow`);
      }
      data = { start: body, size, toEnd: false };
    } else if (id === 'fmt ') {
      if (fmt) return damaged('it has two fmt chunks');
      if (body + size > len) return truncated('it ends inside its fmt chunk');
      const parsed = parseWavFormat(b, body, size);
      if ('ok' in parsed) return parsed;
      fmt = parsed;
    } else if (body + size > len) {
      if (fmt && data) return truncated(`it ends inside its "${id}" chunk, after the sound`);
      return truncated(`it ends inside its "${id}" chunk`);
    }
    const next = body + size + (size & 1);
    pos = next > len && body + size === len ? len : next; // a missing final pad byte is tolerated
  }
  if (!fmt) return data ? damaged('it has no fmt chunk describing its sound') : truncated('it ends before its fmt chunk');
  if (!data) return riffPlaceholder || riffEnd > len ? truncated('it ends before its data chunk') : damaged('it has no data chunk');
  if (data.toEnd && data.size % fmt.blockAlign !== 0) {
    return truncated('its sound (of unknown length) ends in the middle of a sample frame');
  }
  const frames = Math.floor(data.size / fmt.blockAlign);
  if (frames === 0) return fail('empty', 'this WAV file holds no sound (its data chunk is empty)');
  return sound('wav', (frames * fmt.blockAlign) / fmt.byteRate);
}

interface WavFormat {
  blockAlign: number;
  byteRate: number;
}

const WAV_GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

const WAV_CODECS: Record<number, string> = {
  2: 'Microsoft ADPCM',
  6: 'A-law',
  7: 'µ-law',
  0x11: 'IMA ADPCM',
  0x31: 'GSM 6.10',
  0x50: 'MPEG',
  0x55: 'MP3',
  0xff: 'AAC',
  0x2000: 'AC-3',
};

function parseWavFormat(b: Uint8Array, p: number, size: number): WavFormat | SoundCheck {
  if (size < 16) return damaged('its fmt chunk is too short');
  let tag = u16le(b, p);
  const channels = u16le(b, p + 2);
  const rate = u32le(b, p + 4);
  const byteRate = u32le(b, p + 8);
  const blockAlign = u16le(b, p + 12);
  const bits = u16le(b, p + 14);
  if (tag === 0xfffe) {
    if (size < 40 || u16le(b, p + 16) < 22) return damaged('its extensible fmt chunk is too short');
    const valid = u16le(b, p + 18);
    if (valid > bits) return damaged('its fmt chunk declares more valid bits than bits per sample');
    for (let k = 0; k < WAV_GUID_TAIL.length; k++) {
      if (b[p + 26 + k] !== WAV_GUID_TAIL[k]) return unsupported('this WAV sub-format');
    }
    tag = u16le(b, p + 24);
  }
  if (tag !== 1 && tag !== 3) {
    const name = WAV_CODECS[tag];
    return unsupported(name ? `${name} sound in a WAV file` : `WAV format code ${tag}`);
  }
  if (channels === 0) return damaged('its fmt chunk declares 0 channels');
  if (channels > 8) return unsupportedHere(`this WAV file has ${channels} channels; at most 8 are accepted`);
  if (rate < 8000 || rate > 192000)
    return unsupportedHere(`this WAV file's sample rate of ${rate} Hz is not supported; 8000 to 192000 Hz are accepted`);
  if (tag === 3 && bits !== 32) return unsupportedHere(`${bits}-bit floating-point WAV is not supported; 32-bit float is accepted`);
  if (bits !== 8 && bits !== 16 && bits !== 24 && bits !== 32)
    return unsupportedHere(`${bits}-bit WAV is not supported; 8, 16, 24 or 32 bits are accepted`);
  if (blockAlign !== (channels * bits) / 8) return damaged('its fmt chunk has a block size that does not match its channels and bits');
  if (byteRate !== rate * blockAlign) return damaged('its fmt chunk has a byte rate that does not match its sample rate');
  return { blockAlign, byteRate };
}

// ---------------------------------------------------------------------------------------------
// Ogg

function checkOgg(b: Uint8Array): SoundCheck {
  const len = b.length;
  let pos = 0;
  let page = 0;
  let serial = 0;
  let nextSeq = 0;
  let continued = false;
  let eos = false;
  let granule = -1;
  let codec: { kind: 'opus'; preSkip: number } | { kind: 'vorbis'; rate: number } | null = null;

  while (pos < len) {
    if (eos) {
      if (has(b, pos, 'OggS') && u8(b, pos + 5) & 0x02) return unsupported('an Ogg file of several chained streams');
      return damaged(`there are bytes after the end of its Ogg stream (at byte ${pos})`);
    }
    const rest = len - pos;
    if (!has(b, pos, 'OggS')) {
      if (rest < 4 && has(b, pos, 'OggS'.slice(0, rest))) return truncated('its last Ogg page is incomplete');
      return damaged(`there is no Ogg page where one should start (at byte ${pos})`);
    }
    if (rest < 27) return truncated('its last Ogg page is incomplete');
    if (u8(b, pos + 4) !== 0) return damaged(`an Ogg page has an unknown version (at byte ${pos})`);
    const flags = u8(b, pos + 5);
    if (flags & 0xf8) return damaged(`an Ogg page has unknown flags (at byte ${pos})`);
    const segments = u8(b, pos + 26);
    const header = 27 + segments;
    if (pos + header > len) return truncated('its last Ogg page is incomplete');
    let body = 0;
    for (let i = pos + 27; i < pos + header; i++) body += b[i]!;
    const end = pos + header + body;
    if (end > len) return truncated('its last Ogg page is incomplete');

    const pageSerial = u32le(b, pos + 14);
    const seq = u32le(b, pos + 18);
    const bodyStart = pos + header;
    if (page === 0) {
      if (!(flags & 0x02) || flags & 0x01) return damaged('its first Ogg page does not begin a stream');
      serial = pageSerial;
      const head = identifyOgg(b, bodyStart, body);
      if ('ok' in head) return head;
      // The identification header is alone on the first page, and whole.
      for (let i = 0; i < segments; i++) {
        const lacing = b[pos + 27 + i]!;
        if (i < segments - 1 ? lacing !== 255 : lacing === 255) return damaged('its first Ogg page holds more than the stream header');
      }
      if (segments === 0) return damaged('its first Ogg page is empty');
      codec = head;
    } else {
      if (pageSerial !== serial) return unsupported('an Ogg file with more than one stream');
      if (flags & 0x02) return damaged(`a stream begins twice (at byte ${pos})`);
      if (seq !== nextSeq) return damaged(`an Ogg page is missing (at byte ${pos})`);
      if (((flags & 0x01) !== 0) !== continued) return damaged(`an Ogg page does not continue the one before (at byte ${pos})`);
      if (page === 1) {
        const tags = codec?.kind === 'opus' ? 'OpusTags' : '\x03vorbis';
        if (!has(b, bodyStart, tags) || body < tags.length) return damaged('its second Ogg page does not start with the comment header');
      }
    }
    if (oggCrcOf(b, pos, end) !== u32le(b, pos + 22)) return damaged(`an Ogg page fails its checksum (at byte ${pos})`);

    if (segments > 0) continued = b[pos + header - 1] === 255;
    const lo = u32le(b, pos + 6);
    const hi = u32le(b, pos + 10);
    if (!(lo === 0xffffffff && hi === 0xffffffff) && hi < 0x80000000) granule = hi * 0x1_0000_0000 + lo;
    if (flags & 0x04) eos = true;
    nextSeq = (seq + 1) >>> 0;
    page++;
    pos = end;
  }
  if (!eos) return truncated('it ends without the Ogg end-of-stream page');
  if (!codec) return damaged('it has no Ogg stream header');
  if (page < 3) return fail('empty', 'this Ogg file holds no sound (only its headers)');
  if (granule < 0) return sound('ogg', null);
  if (codec.kind === 'opus') return sound('ogg', Math.max(0, granule - codec.preSkip) / 48000);
  return sound('ogg', granule / codec.rate);
}

function oggCrcOf(b: Uint8Array, pos: number, end: number): number {
  let crc = oggCrc(0, b, pos, pos + 22);
  crc = oggCrc(crc, ZERO4, 0, 4);
  return oggCrc(crc, b, pos + 26, end);
}
const ZERO4 = new Uint8Array(4);

function identifyOgg(
  b: Uint8Array,
  p: number,
  size: number,
): { kind: 'opus'; preSkip: number } | { kind: 'vorbis'; rate: number } | SoundCheck {
  if (size >= 8 && has(b, p, 'OpusHead')) {
    if (size < 19) return damaged('its Opus header is too short');
    if (u8(b, p + 8) >> 4 !== 0) return unsupportedHere(`Opus header version ${u8(b, p + 8)} is not supported`);
    const channels = u8(b, p + 9);
    const family = u8(b, p + 18);
    if (channels === 0) return damaged('its Opus header declares 0 channels');
    if (family === 0 && channels > 2) return damaged('its Opus header declares more than 2 channels without a channel mapping');
    if (family === 1 && (channels > 8 || size < 21 + channels)) {
      return channels > 8
        ? unsupportedHere(`this Opus file has ${channels} channels; at most 8 are accepted`)
        : damaged('its Opus channel mapping is too short');
    }
    if (family > 1)
      return unsupportedHere(
        `Opus channel mapping family ${family} is not supported; mono, stereo and surround up to 8 channels are accepted`,
      );
    return { kind: 'opus', preSkip: u16le(b, p + 10) };
  }
  if (size >= 7 && has(b, p, '\x01vorbis')) {
    if (size < 30) return damaged('its Vorbis header is too short');
    if (u32le(b, p + 7) !== 0) return unsupportedHere(`Vorbis version ${u32le(b, p + 7)} is not supported`);
    const channels = u8(b, p + 11);
    const rate = u32le(b, p + 12);
    const blocks = u8(b, p + 28);
    const small = blocks & 0x0f;
    const large = blocks >> 4;
    if (channels === 0 || rate === 0) return damaged('its Vorbis header declares 0 channels or a sample rate of 0');
    if (channels > 8) return unsupportedHere(`this Vorbis file has ${channels} channels; at most 8 are accepted`);
    if (small < 6 || large > 13 || small > large || !(u8(b, p + 29) & 1)) return damaged('its Vorbis header is invalid');
    return { kind: 'vorbis', rate };
  }
  if (has(b, p, '\x7fFLAC')) return unsupported('FLAC inside Ogg (upload the plain .flac file)');
  if (has(b, p, 'Speex   ')) return unsupported('Speex audio');
  if (has(b, p, '\x80theora')) return unsupported('an Ogg video (Theora)');
  return unsupported('this kind of Ogg stream (only Opus and Vorbis)');
}

// ---------------------------------------------------------------------------------------------
// ID3v2 at the start: MP3 (or, rarely, FLAC) after it

/** The end of the ID3v2 tag at `p`, or a refusal. */
function id3v2End(b: Uint8Array, p: number): number | SoundCheck {
  const major = u8(b, p + 3);
  if (p + 10 > b.length) return truncated('it ends inside its ID3 tag');
  if (major < 2 || major > 4 || u8(b, p + 4) === 0xff) return damaged('its ID3 tag has an unknown version');
  const s0 = u8(b, p + 6);
  const s1 = u8(b, p + 7);
  const s2 = u8(b, p + 8);
  const s3 = u8(b, p + 9);
  if ((s0 | s1 | s2 | s3) & 0x80) return damaged('its ID3 tag has an invalid size');
  const footer = major === 4 && u8(b, p + 5) & 0x10 ? 10 : 0;
  const end = p + 10 + ((s0 << 21) | (s1 << 14) | (s2 << 7) | s3) + footer;
  if (end > b.length) return truncated('it ends inside its ID3 tag');
  return end;
}

function checkAfterId3(b: Uint8Array): SoundCheck {
  let pos = 0;
  for (let tags = 0; has(b, pos, 'ID3'); tags++) {
    if (tags === 8) return damaged('it has too many ID3 tags in a row');
    const end = id3v2End(b, pos);
    if (typeof end !== 'number') return end;
    pos = end;
    while (pos < b.length && b[pos] === 0) pos++; // padding after the tag, beyond its size
  }
  if (pos >= b.length) return truncated('there is no sound after its ID3 tag');
  if (has(b, pos, 'fLaC')) return checkFlac(b, pos);
  if (u8(b, pos) === 0xff && (u8(b, pos + 1) & 0xe0) === 0xe0) {
    if ((u8(b, pos + 1) & 0x06) === 0) return checkAdts(b, pos);
    return checkMpeg(b, pos, true);
  }
  if (b.length - pos < 4) return truncated('it ends just after its ID3 tag');
  return notAudio('there is no MPEG audio after its ID3 tag');
}

// ---------------------------------------------------------------------------------------------
// MPEG audio (MP3)

interface MpegHeader {
  version: 1 | 2 | 25;
  layer: 1 | 2 | 3;
  crc: boolean;
  rate: number;
  channels: 1 | 2;
  length: number;
  samples: number;
}

// kbit/s by [version 1, version 2/2.5][layer - 1][index]
const BITRATES = [
  [
    [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  ],
  [
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  ],
];
const MPEG_RATES = { 1: [44100, 48000, 32000], 2: [22050, 24000, 16000], 25: [11025, 12000, 8000] } as const;

/** The MPEG audio frame header at `p`: null when it is not one, 'free' for the free-format bitrate. */
function mpegHeader(b: Uint8Array, p: number): MpegHeader | 'free' | null {
  if (p + 4 > b.length) return null;
  const b1 = b[p + 1]!;
  const b2 = b[p + 2]!;
  if (b[p] !== 0xff || (b1 & 0xe0) !== 0xe0) return null;
  const v = (b1 >> 3) & 3;
  const l = (b1 >> 1) & 3;
  if (v === 1 || l === 0) return null;
  const version = v === 3 ? 1 : v === 2 ? 2 : 25;
  const layer = (4 - l) as 1 | 2 | 3;
  const bitrateIndex = b2 >> 4;
  const rateIndex = (b2 >> 2) & 3;
  if (bitrateIndex === 15 || rateIndex === 3 || (b[p + 3]! & 3) === 2) return null;
  if (bitrateIndex === 0) return 'free';
  const bitrate = BITRATES[version === 1 ? 0 : 1]![layer - 1]![bitrateIndex]! * 1000;
  const rate = MPEG_RATES[version][rateIndex]!;
  const padding = (b2 >> 1) & 1;
  let length: number;
  let samples: number;
  if (layer === 1) {
    length = (Math.floor((12 * bitrate) / rate) + padding) * 4;
    samples = 384;
  } else if (layer === 2 || version === 1) {
    length = Math.floor((144 * bitrate) / rate) + padding;
    samples = 1152;
  } else {
    length = Math.floor((72 * bitrate) / rate) + padding;
    samples = 576;
  }
  return { version, layer, crc: (b1 & 1) === 0, rate, channels: b[p + 3]! >> 6 === 3 ? 1 : 2, length, samples };
}

/** Where the trailing tags (ID3v1, APEv2, Lyrics3v2, an appended ID3v2.4) begin. */
function trailingTagsStart(b: Uint8Array, start: number): number {
  let end = b.length;
  for (let guard = 0; guard < 8; guard++) {
    if (end - 128 >= start && has(b, end - 128, 'TAG')) {
      end -= 128;
      continue;
    }
    if (end - 32 >= start && has(b, end - 32, 'APETAGEX')) {
      const size = u32le(b, end - 32 + 12);
      const total = size + (u32le(b, end - 32 + 20) & 0x80000000 ? 32 : 0);
      if (size >= 32 && end - total >= start) {
        end -= total;
        continue;
      }
    }
    if (end - 15 >= start && has(b, end - 9, 'LYRICS200')) {
      let size = 0;
      let digits = true;
      for (let i = end - 15; i < end - 9; i++) {
        const c = u8(b, i) - 0x30;
        if (c < 0 || c > 9) digits = false;
        size = size * 10 + c;
      }
      const total = size + 15;
      if (digits && end - total >= start && has(b, end - total, 'LYRICSBEGIN')) {
        end -= total;
        continue;
      }
    }
    if (end - 20 >= start && has(b, end - 10, '3DI')) {
      const s = [u8(b, end - 4), u8(b, end - 3), u8(b, end - 2), u8(b, end - 1)];
      if (!s.some((x) => x & 0x80)) {
        const total = ((s[0]! << 21) | (s[1]! << 14) | (s[2]! << 7) | s[3]!) + 20;
        if (end - total >= start && has(b, end - total, 'ID3')) {
          end -= total;
          continue;
        }
      }
    }
    break;
  }
  return end;
}

/** What the first frame's Xing/Info or VBRI header says, and the LAME/Lavf tag's delay and padding. */
function vbrHeader(b: Uint8Array, p: number, h: MpegHeader): { frames: number | null; bytes: number | null; trim: number } | null {
  const end = p + h.length;
  const side = h.version === 1 ? (h.channels === 1 ? 17 : 32) : h.channels === 1 ? 9 : 17;
  let q = p + 4 + (h.crc ? 2 : 0) + side;
  if (q + 8 <= end && (has(b, q, 'Xing') || has(b, q, 'Info'))) {
    const flags = u32be(b, q + 4);
    q += 8;
    let frames: number | null = null;
    let bytes: number | null = null;
    if (flags & 1) {
      if (q + 4 > end) return null;
      frames = u32be(b, q);
      q += 4;
    }
    if (flags & 2) {
      if (q + 4 > end) return null;
      bytes = u32be(b, q);
      q += 4;
    }
    if (flags & 4) q += 100;
    if (flags & 8) q += 4;
    let trim = 0;
    if (q + 24 <= end && (has(b, q, 'LAME') || has(b, q, 'Lavf') || has(b, q, 'Lavc'))) {
      const v = u24be(b, q + 21);
      trim = (v >> 12) + (v & 0xfff);
    }
    return { frames, bytes, trim };
  }
  q = p + 4 + 32;
  if (q + 18 <= end && has(b, q, 'VBRI')) return { frames: u32be(b, q + 14), bytes: u32be(b, q + 10), trim: 0 };
  return null;
}

const MIN_MPEG_FRAMES = 3;
const MAX_ZERO_PADDING = 4096;

function checkMpeg(b: Uint8Array, start: number, afterTag: boolean): SoundCheck {
  const audioEnd = trailingTagsStart(b, start);
  let pos = start;
  let frames = 0;
  let first: MpegHeader | null = null;
  let stop: 'end' | 'junk' | 'cut' = 'end';
  while (pos < audioEnd) {
    if (audioEnd - pos < 4) {
      stop = 'cut';
      break;
    }
    const h = mpegHeader(b, pos);
    if (h === 'free' && !first) return unsupported('MPEG audio with a free-format bitrate');
    if (
      h === null ||
      h === 'free' ||
      (first && (h.version !== first.version || h.layer !== first.layer || h.rate !== first.rate || h.channels !== first.channels))
    ) {
      stop = 'junk';
      break;
    }
    first ??= h;
    if (pos + h.length > audioEnd) {
      stop = 'cut';
      break;
    }
    frames++;
    pos += h.length;
  }
  if (!first) return afterTag ? notAudio('there is no MPEG audio after its ID3 tag') : notAudio('this is not a sound file');
  if (first.layer !== 3 && (frames >= MIN_MPEG_FRAMES || (stop === 'end' && frames > 0))) {
    return unsupported(`MPEG Layer ${first.layer === 1 ? 'I' : 'II (MP2)'} audio`);
  }
  if (stop === 'cut') {
    return frames > 0 || afterTag ? truncated('its last MPEG frame is incomplete') : notAudio('this is not a sound file');
  }
  // A little zero padding after the last frame is tolerated (the frame count of an Info/Xing
  // header still applies); more zeros are the unwritten rest of an incomplete download.
  if (stop === 'junk' && frames >= MIN_MPEG_FRAMES && audioEnd - pos <= MAX_ZERO_PADDING && allZero(b, pos, audioEnd)) stop = 'end';
  if (stop === 'junk') {
    if (allZero(b, pos, audioEnd)) {
      return frames > 0 || afterTag
        ? truncated(`it ends in ${plural(audioEnd - pos, 'zero byte')} where its sound should be`)
        : notAudio('this is not a sound file');
    }
    if (frames < MIN_MPEG_FRAMES)
      return afterTag ? notAudio('there is no MPEG audio after its ID3 tag') : notAudio('this is not a sound file');
    // The start of a closing tag that the end of the file cut short.
    if (['TAG', 'APETAGEX', 'LYRICSBEGIN', 'ID3'].some((tag) => has(b, pos, tag))) return truncated('its closing tag is incomplete');
    return damaged(`there are stray bytes between its MPEG frames (at byte ${pos})`);
  }
  if (frames < MIN_MPEG_FRAMES) return notAudio(`this is not a sound file (only ${plural(frames, 'MPEG frame')})`);

  const vbr = vbrHeader(b, start, first);
  const audioFrames = vbr ? frames - 1 : frames;
  if (vbr?.frames && audioFrames < vbr.frames) {
    return truncated(`it has ${plural(audioFrames, 'frame')} of the ${vbr.frames} its header announces`);
  }
  if (vbr && vbr.frames === null && vbr.bytes && b.length - start < vbr.bytes) {
    return truncated(`it has ${plural(b.length - start, 'byte')} of sound of the ${vbr.bytes} its header announces`);
  }
  let samples = audioFrames * first.samples;
  if (vbr && vbr.trim > 0 && vbr.trim < samples) samples -= vbr.trim;
  return sound('mp3', samples / first.rate);
}

/** Raw AAC (ADTS): unsupported when a few frames follow one another, otherwise not audio. */
function checkAdts(b: Uint8Array, start: number): SoundCheck {
  let pos = start;
  for (let n = 0; n < MIN_MPEG_FRAMES; n++) {
    if (u8(b, pos) !== 0xff || (u8(b, pos + 1) & 0xf6) !== 0xf0 || ((u8(b, pos + 2) >> 2) & 0x0f) > 12) {
      return notAudio('this is not a sound file');
    }
    const length = ((u8(b, pos + 3) & 3) << 11) | (u8(b, pos + 4) << 3) | (u8(b, pos + 5) >> 5);
    if (length < 7) return notAudio('this is not a sound file');
    pos += length;
    if (pos >= b.length) break;
  }
  return unsupported('raw AAC audio (ADTS)');
}

// ---------------------------------------------------------------------------------------------
// FLAC

interface StreamInfo {
  maxBlock: number;
  maxFrame: number;
  rate: number;
  channels: number;
  bits: number;
  total: number;
}

interface FlacFrame {
  length: number;
  variable: boolean;
  firstSample: number;
  blockSize: number;
}

function checkFlac(b: Uint8Array, start: number): SoundCheck {
  const len = b.length;
  let pos = start + 4;
  let info: StreamInfo | null = null;
  for (let block = 0; ; block++) {
    if (pos + 4 > len) return truncated('it ends inside its FLAC metadata');
    const type = u8(b, pos) & 0x7f;
    const last = (u8(b, pos) & 0x80) !== 0;
    const size = u24be(b, pos + 1);
    const body = pos + 4;
    if (block === 0 && type !== 0) return damaged('its FLAC metadata does not begin with STREAMINFO');
    if (block > 0 && type === 0) return damaged('it has two STREAMINFO blocks');
    if (type === 127) return damaged('it has an invalid FLAC metadata block');
    if (body + size > len) return truncated('it ends inside its FLAC metadata');
    if (type === 0) {
      if (size !== 34) return damaged('its STREAMINFO block has the wrong size');
      const parsed = parseStreamInfo(b, body);
      if ('ok' in parsed) return parsed;
      info = parsed;
    }
    pos = body + size;
    if (last) break;
  }
  if (!info) return damaged('it has no STREAMINFO block');

  const audioStart = pos;
  if (audioStart >= len || (len - audioStart === 128 && has(b, audioStart, 'TAG'))) {
    return info.total > 0 ? truncated('it ends before its first FLAC frame') : fail('empty', 'this FLAC file holds no sound (no frames)');
  }
  const firstFrame = flacFrameHeader(b, audioStart, len, info);
  if (!firstFrame) return damaged('its sound does not start with a FLAC frame');

  let lastFrame = lastCompleteFrame(b, audioStart, len, info, firstFrame.variable);
  if (!lastFrame && len - 128 > audioStart && has(b, len - 128, 'TAG')) {
    lastFrame = lastCompleteFrame(b, audioStart, len - 128, info, firstFrame.variable);
  }
  if (!lastFrame) return truncated('its last FLAC frame is incomplete');
  const endSample = lastFrame.firstSample + lastFrame.blockSize;
  if (info.total > 0 && endSample < info.total) {
    return truncated(`its frames end at sample ${endSample} of the ${info.total} its header announces`);
  }
  return sound('flac', (info.total > 0 ? info.total : endSample) / info.rate);
}

function parseStreamInfo(b: Uint8Array, p: number): StreamInfo | SoundCheck {
  const minBlock = u16be(b, p);
  const maxBlock = u16be(b, p + 2);
  const maxFrame = u24be(b, p + 7);
  const rate = (u8(b, p + 10) << 12) | (u8(b, p + 11) << 4) | (u8(b, p + 12) >> 4);
  const channels = ((u8(b, p + 12) >> 1) & 7) + 1;
  const bits = (((u8(b, p + 12) & 1) << 4) | (u8(b, p + 13) >> 4)) + 1;
  const total = (u8(b, p + 13) & 0x0f) * 0x1_0000_0000 + u32be(b, p + 14);
  if (minBlock < 16 || maxBlock < minBlock) return damaged('its STREAMINFO block has invalid block sizes');
  if (rate === 0 || rate > 655350) return damaged('its STREAMINFO block has an invalid sample rate');
  if (bits < 4) return damaged('its STREAMINFO block has an invalid sample size');
  return { maxBlock, maxFrame, rate, channels, bits, total };
}

const FLAC_RATES = [0, 88200, 176400, 192000, 8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000];
const FLAC_BITS = [0, 8, 12, -1, 16, 20, 24, 32];

/** The FLAC frame header at `p` (CRC-8 checked, consistent with STREAMINFO), or null. */
function flacFrameHeader(b: Uint8Array, p: number, end: number, info: StreamInfo): FlacFrame | null {
  if (p + 6 > end || b[p] !== 0xff || (b[p + 1]! & 0xfe) !== 0xf8) return null;
  const variable = (b[p + 1]! & 1) === 1;
  const blockCode = b[p + 2]! >> 4;
  const rateCode = b[p + 2]! & 0x0f;
  const channelCode = b[p + 3]! >> 4;
  const bitsCode = (b[p + 3]! >> 1) & 7;
  if (blockCode === 0 || rateCode === 15 || channelCode > 10 || bitsCode === 3 || b[p + 3]! & 1) return null;
  if ((channelCode < 8 ? channelCode + 1 : 2) !== info.channels) return null;
  if (bitsCode !== 0 && FLAC_BITS[bitsCode] !== info.bits) return null;

  let q = p + 4;
  const c = b[q]!;
  let extra: number;
  let number: number;
  if (c < 0x80) [extra, number] = [0, c];
  else if ((c & 0xe0) === 0xc0) [extra, number] = [1, c & 0x1f];
  else if ((c & 0xf0) === 0xe0) [extra, number] = [2, c & 0x0f];
  else if ((c & 0xf8) === 0xf0) [extra, number] = [3, c & 0x07];
  else if ((c & 0xfc) === 0xf8) [extra, number] = [4, c & 0x03];
  else if ((c & 0xfe) === 0xfc) [extra, number] = [5, c & 0x01];
  else if (c === 0xfe) [extra, number] = [6, 0];
  else return null;
  if (extra > (variable ? 6 : 5) || q + 1 + extra > end) return null;
  for (let k = 1; k <= extra; k++) {
    const x = b[q + k]!;
    if ((x & 0xc0) !== 0x80) return null;
    number = number * 64 + (x & 0x3f);
  }
  q += 1 + extra;

  let blockSize: number;
  if (blockCode === 1) blockSize = 192;
  else if (blockCode <= 5) blockSize = 576 << (blockCode - 2);
  else if (blockCode === 6) blockSize = u8(b, q++) + 1;
  else if (blockCode === 7) {
    blockSize = u16be(b, q) + 1;
    q += 2;
  } else blockSize = 256 << (blockCode - 8);

  let rate: number;
  if (rateCode === 12) rate = u8(b, q++) * 1000;
  else if (rateCode === 13) {
    rate = u16be(b, q);
    q += 2;
  } else if (rateCode === 14) {
    rate = u16be(b, q) * 10;
    q += 2;
  } else rate = FLAC_RATES[rateCode]!;
  if (q + 1 > end) return null;
  if (rateCode !== 0 && rate !== info.rate) return null;
  if (blockSize > info.maxBlock) return null;
  if (crc8(b, p, q) !== b[q]) return null;
  return { length: q + 1 - p, variable, firstSample: variable ? number : number * info.maxBlock, blockSize };
}

/**
 * The frame that ends exactly at `end`: the last frame header found going back from the end
 * (within the largest frame the stream can have) whose CRC-16 over the frame up to `end` holds.
 */
function lastCompleteFrame(b: Uint8Array, audioStart: number, end: number, info: StreamInfo, variable: boolean): FlacFrame | null {
  const worst = info.maxFrame > 0 ? info.maxFrame : Math.ceil((info.maxBlock * info.channels * (info.bits + 1)) / 8) + 1024;
  const from = Math.max(audioStart, end - worst - 16);
  const stored = u16be(b, end - 2);
  let tries = 0;
  for (let i = end - 8; i >= from; i--) {
    if (b[i] !== 0xff || (b[i + 1]! & 0xfe) !== 0xf8) continue;
    const frame = flacFrameHeader(b, i, end, info);
    if (!frame || frame.variable !== variable || i + frame.length + 2 > end) continue;
    if (crc16(b, i, end - 2) === stored) return frame;
    if (++tries === 8) break;
  }
  return null;
}
