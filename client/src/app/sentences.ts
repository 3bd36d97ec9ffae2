// Plain sentences for everything that can keep someone out of the show.
import type { ErrorMessage } from '../lib';

const BY_ERROR: Partial<Record<ErrorMessage['code'], string>> = {
  'room-full': 'This show is full right now. Try again in a little while.',
  unauthorized: 'This invite link has expired or is not valid. Ask the host for a new one.',
  'token-revoked': 'This invite link has been replaced by a new one. Ask the host for the new link.',
  'room-not-found': 'This show has ended or does not exist.',
  'origin-not-allowed': 'This page is not allowed to connect to the studio.',
  'rate-limited': 'Too many attempts to join from your network. Trying again in a moment…',
};

const BY_CLOSE_CODE: Record<number, string> = {
  4001: 'This invite link has expired or is not valid. Ask the host for a new one.',
  4004: 'This show has ended or does not exist.',
  4008: 'The studio closed the connection because this page sent too much too fast.',
  4009: 'This show is full right now. Try again in a little while.',
  4010: 'This show is open in another tab or window; this one is disconnected.',
};

export const SENTENCES = {
  kicked: 'You were removed from the show.',
  roomClosed: 'The host has ended the show.',
  left: 'You left the show.',
  connectionLost: 'Connection lost. Restoring it…',
  disconnected: 'You are disconnected from the show. Reload the page to join again.',
  microphone: 'Your microphone could not be opened. Check that the browser may use it, then reload.',
};

/** The sentence for an error frame that ends or delays a join (others are not shown). */
export function sentenceForError(error: ErrorMessage): string | undefined {
  return BY_ERROR[error.code];
}

export function sentenceForClose(code: number): string | undefined {
  return BY_CLOSE_CODE[code];
}
