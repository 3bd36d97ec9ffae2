/**
 * The room's rows in its Durable Object's SQLite storage: the room itself, its peers, the
 * invites a kick barred, the relayed frames held for peers that are reconnecting, the desk's
 * messages and the soundboard's pads. The
 * state machine (room.ts) decides; this keeps, and rebuilds everything after a restart.
 */
import type { BroadcastInfo, ChatMessage, Participant, Role, RoomInfo } from '../protocol/messages';
import type { RecordingInfo } from '../protocol/recording';
import type { SoundInfo } from '../protocol/sounds';
import { utf8Length } from '../server/websocket';

export interface RoomState extends RoomInfo {
  closed: boolean;
  /** Invite generation per role; tokens of an older generation are refused. */
  generations: Record<Role, number>;
  /**
   * The program feed: which one holds the room, its last state, a host's stop request, and
   * the lineage of the token that runs it (a kick of that person stops it).
   */
  broadcast?: { id: string; info: BroadcastInfo; stop?: boolean; lineage?: string[] };
  /** When the room was created or last became empty (for idle expiry). */
  activeAt: number;
  /** Takes started in this room so far (they are numbered). */
  takes?: number;
  /**
   * The running take: its word to the pages, the track of each peer recording its voice
   * (peer id → track id; a reloaded page keeps its track), and the program's track with the
   * peer that records it.
   */
  recording?: {
    info: Extract<RecordingInfo, { state: 'recording' }>;
    tracks: Record<string, string>;
    program: { trackId: string; peerId: string | null };
  };
}

export interface PeerRecord extends Participant {
  resumeToken: string;
  /** Id of the token it joined with; a kick bars that token (and what it minted) from the air. */
  tokenId: string;
  /** That token's id and its minters' ids (absent in records from before lineages: `[tokenId]`). */
  lineage?: string[];
  /** Set while the socket is gone and the grace period runs. */
  disconnectedAt: number | null;
  /** A staff member talking back: to one participant, or to everyone on air (`null`). */
  talkingBack?: { to: string | null } | null;
  /** The screener's note on this caller (staff only ever see it). */
  note?: string;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS room (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS peers (peer_id TEXT PRIMARY KEY, data TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, peer_id TEXT NOT NULL, frame TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS outbox_peer ON outbox (peer_id, seq);
  CREATE TABLE IF NOT EXISTS kicked (token_id TEXT PRIMARY KEY) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS chat (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS sounds (seq INTEGER PRIMARY KEY AUTOINCREMENT, sound_id TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
`;

export class RoomStorage {
  /** Frames held for each reconnecting peer: how many, and their size in UTF-8 bytes (kept in memory too, so relaying never reads storage). */
  private readonly held = new Map<string, { count: number; bytes: number }>();

  constructor(private readonly sql: SqlStorage) {}

  /** Everything stored, as it was before the object restarted (or nothing, for a new object). */
  load(): { room: RoomState | null; peers: PeerRecord[] } {
    this.sql.exec(SCHEMA);
    const row = this.sql.exec<{ data: string }>('SELECT data FROM room WHERE id = 1').toArray()[0];
    const peers = [...this.sql.exec<{ data: string }>('SELECT data FROM peers')].map(({ data }) => JSON.parse(data) as PeerRecord);
    this.held.clear();
    for (const { peer_id, count, bytes } of this.sql.exec<{ peer_id: string; count: number; bytes: number }>(
      'SELECT peer_id, COUNT(*) AS count, SUM(LENGTH(CAST(frame AS BLOB))) AS bytes FROM outbox GROUP BY peer_id',
    )) {
      this.held.set(peer_id, { count, bytes });
    }
    return { room: row ? (JSON.parse(row.data) as RoomState) : null, peers };
  }

  saveRoom(room: RoomState): void {
    this.sql.exec('INSERT OR REPLACE INTO room (id, data) VALUES (1, ?)', JSON.stringify(room));
  }

  savePeer(peer: PeerRecord): void {
    this.sql.exec('INSERT OR REPLACE INTO peers (peer_id, data) VALUES (?, ?)', peer.peerId, JSON.stringify(peer));
  }

  /** The peer and any frames held for it. */
  deletePeer(peerId: string): void {
    this.sql.exec('DELETE FROM peers WHERE peer_id = ?', peerId);
    if (this.held.delete(peerId)) this.sql.exec('DELETE FROM outbox WHERE peer_id = ?', peerId);
  }

  /** Bar an invite from the air (a kick). */
  bar(tokenId: string): void {
    this.sql.exec('INSERT OR IGNORE INTO kicked (token_id) VALUES (?)', tokenId);
  }

  /** Was any of these tokens (a token and the ones that minted it) barred? */
  barred(lineage: readonly string[]): boolean {
    if (lineage.length === 0) return false;
    const marks = lineage.map(() => '?').join(',');
    return this.sql.exec(`SELECT 1 FROM kicked WHERE token_id IN (${marks}) LIMIT 1`, ...lineage).toArray().length > 0;
  }

  /** Hold a frame for a reconnecting peer, in order, within both caps; false (nothing kept) when it would exceed one. */
  hold(peerId: string, frame: string, caps: { count: number; bytes: number }): boolean {
    const { count, bytes } = this.held.get(peerId) ?? { count: 0, bytes: 0 };
    const size = utf8Length(frame);
    if (count + 1 > caps.count || bytes + size > caps.bytes) return false;
    this.sql.exec('INSERT INTO outbox (peer_id, frame) VALUES (?, ?)', peerId, frame);
    this.held.set(peerId, { count: count + 1, bytes: bytes + size });
    return true;
  }

  /** The frames held for a peer, in order, and out of storage. */
  takeHeld(peerId: string): string[] {
    if (!this.held.get(peerId)) return [];
    const frames = [...this.sql.exec<{ frame: string }>('SELECT frame FROM outbox WHERE peer_id = ? ORDER BY seq', peerId)].map(
      (r) => r.frame,
    );
    this.sql.exec('DELETE FROM outbox WHERE peer_id = ?', peerId);
    this.held.delete(peerId);
    return frames;
  }

  /** Keep a desk message; the oldest go beyond `kept`. */
  addChat(message: ChatMessage, kept: number): void {
    this.sql.exec('INSERT INTO chat (data) VALUES (?)', JSON.stringify(message));
    this.sql.exec('DELETE FROM chat WHERE seq <= (SELECT MAX(seq) FROM chat) - ?', kept);
  }

  /** The soundboard's pads, in the order they were added. */
  sounds(): SoundInfo[] {
    return [...this.sql.exec<{ data: string }>('SELECT data FROM sounds ORDER BY seq')].map(({ data }) => JSON.parse(data) as SoundInfo);
  }

  /** Add a pad, or change one (it keeps its place). */
  saveSound(sound: SoundInfo): void {
    this.sql.exec(
      'INSERT INTO sounds (sound_id, data) VALUES (?, ?) ON CONFLICT (sound_id) DO UPDATE SET data = excluded.data',
      sound.soundId,
      JSON.stringify(sound),
    );
  }

  deleteSound(soundId: string): void {
    this.sql.exec('DELETE FROM sounds WHERE sound_id = ?', soundId);
  }

  /** The desk's messages, oldest first. */
  chat(): ChatMessage[] {
    return [...this.sql.exec<{ data: string }>('SELECT data FROM chat ORDER BY seq')].map(({ data }) => JSON.parse(data) as ChatMessage);
  }
}
