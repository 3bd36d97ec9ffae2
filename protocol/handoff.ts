/**
 * What the Worker hands a Durable Object, and what comes back: the verified upgrade's
 * headers, the token's holder, the feed session, and the results of the rooms' calls. The
 * Durable Objects answer with error codes and messages only; the Worker (the edge) maps
 * codes to HTTP statuses, and both use REFUSAL_CLOSE_CODES for a refused upgrade.
 */
import type { ErrorCode, Role } from './messages';

/** Headers the Worker sets on the room upgrade it forwards, after verifying the token. */
export const UPGRADE_HEADERS = {
  role: 'X-OpenStudio-Role',
  generation: 'X-OpenStudio-Generation',
  tokenId: 'X-OpenStudio-Token-Id',
  /** The token's lineage (its id and its minters' ids), comma-separated. */
  lineage: 'X-OpenStudio-Lineage',
  protocol: 'X-OpenStudio-Protocol',
  /** A reloaded page's track of the running take (`<takeId>:<trackId>`, from its verified upload credential). */
  track: 'X-OpenStudio-Track',
} as const;

/** Who presents a token (already signature-checked by the Worker). */
export interface TokenActor {
  role: Role;
  generation: number;
  /** The token's id and the ids of the tokens that minted it: a kick of any of them bars it. */
  lineage: string[];
  /** Past its expiry: good only to resume what is still running. */
  expired?: boolean;
}

export interface CreateRoomSettings {
  roomId: string;
  name?: string;
  maxParticipants: number;
  lobby: boolean;
}

export type Refusal = { ok: false; code: ErrorCode; message: string };

export type AuthorizeResult = { ok: true } | Refusal;

export type BeginBroadcastResult = { ok: true; id: string; name?: string; since?: number; peak?: number } | Refusal;

/** What a broadcaster may send (`?format=`): Opus in the container its browser records. */
export const FEED_FORMATS = ['ogg', 'webm'] as const;
export type FeedFormat = (typeof FEED_FORMATS)[number];

/** The Worker hands a verified feed connection over with this header (URI-encoded JSON `FeedSession`). */
export const FEED_HEADER = 'X-OpenStudio-Feed';

export interface FeedSession {
  broadcastId: string;
  roomId: string;
  by: Role;
  /** What the broadcaster records; Icecast always gets Ogg/Opus. */
  format: FeedFormat;
  mount: string;
  listenUrl: string;
  name?: string;
  /** Kept by the room through restarts of the feed's object. */
  since?: number;
  peak?: number;
  /** `Sec-WebSocket-Protocol` to echo. */
  protocol: string | null;
}
