/**
 * What the room and the feed agree on about a broadcast: which states hold the room, and
 * the sentences a console may show. Reasons come from this fixed set only, so no upstream
 * text or internal address can reach a browser; details go to the server log.
 */
import type { BroadcastInfo } from '../protocol/messages';

export const REASONS = {
  unreachable: 'The streaming server cannot be reached; retrying.',
  mountBusy: 'The streaming server says the show’s mount is still in use; retrying.',
  refused: 'The streaming server refused the program; retrying.',
  closed: 'The streaming server dropped the program; reconnecting.',
  stalled: 'The streaming server stopped responding; reconnecting.',
  password: 'The streaming server refused the station’s source password; ask the station operator.',
  broadcasterDropped: 'The broadcaster’s connection dropped; waiting for it to reconnect.',
  broadcasterGone: 'The broadcaster did not come back; the broadcast ended.',
  feedSilent: 'The program feed stopped reporting; waiting for it.',
  feedLost: 'The program feed was lost; start the broadcast again.',
  gaveUp: 'The streaming server could not be reached for too long; the broadcast ended.',
} as const;

/** States in which a feed holds the room (a second one is refused). */
export function isRunning(info: BroadcastInfo | undefined): boolean {
  return info !== undefined && (info.state === 'connecting' || info.state === 'live' || info.state === 'reconnecting');
}
