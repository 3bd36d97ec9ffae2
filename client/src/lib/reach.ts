// Who hears whom and what reaches the program, decided at every receiving page: a moderator's
// mute and the lobby hold here even if the muted or waiting page sends its voice anyway.
// Pure: the people as the room reports them, who this page is and its private talk in; what
// each voice may reach out. The console applies the answers to its mix (`Channel.setAudible`,
// `setOnAir`) and mesh (`sendTo`, `relayOnly`). See docs/client.md, "What reaches whom".
import type { Participant, Role } from '../../../protocol/messages';
import { isStaff } from '../../../protocol/roles';

export interface ReachInput {
  /** Everyone else in the room, as the room's `Participant` records (this page not among them). */
  people: ReadonlyMap<string, Participant>;
  /** This page's role; undefined before its welcome. */
  role: Role | undefined;
  /** The waiting caller this page talks with privately, if any. */
  privateTalk: string | null;
  /** Whom this (staff) page talks back to: one on-air participant, everyone on air (`null`), or nobody (`undefined`). */
  talkback?: string | null;
}

/** What one remote voice may reach at this page. */
export interface VoiceReach {
  /** This page hears it at all (speakers, its meter, the program): the channel's gate. */
  hears: boolean;
  /**
   * It belongs in the program (it is not waiting): the channel's on-air switch, under the gate.
   * Kept apart from `hears` so an unmute opens the gate only, at the gate's own pace.
   */
  onAir: boolean;
  /** It is in this page's program now: heard and on air (× its fader). */
  inProgram: boolean;
  /** This page sends it its own voice. */
  sendsTo: boolean;
  /** The connection to it gathers relay (TURN) candidates only (read when it is made). */
  relayOnly: boolean;
}

/**
 * The private talk that counts: only a staff page talks privately, and only with someone
 * still waiting. A partner who was admitted or left ends it.
 */
export function privateTalkPartner({ people, role, privateTalk }: ReachInput): string | null {
  if (privateTalk === null || !isStaff(role)) return null;
  return people.get(privateTalk)?.waiting === true ? privateTalk : null;
}

/** What the voice of `peerId` may reach at this page; also for a peer not (yet) among the people. */
export function voiceReach(input: ReachInput, peerId: string): VoiceReach {
  const person = input.people.get(peerId);
  const partner = privateTalkPartner(input);
  const waiting = person?.waiting === true;
  const talkingWith = partner === peerId;
  // A staff member talking back: in its listener's ears (even while muted on air), never in
  // the program; everyone else does not hear it at all meanwhile.
  const talkback = person?.talkback;
  // A waiting caller is heard only by the staff member talking with it; a muted voice by nobody.
  const hears = person !== undefined && (talkback === 'to-you' || (talkback === undefined && !person.muted && (!waiting || talkingWith)));
  const onAir = !waiting && talkback === undefined;
  const myTalkback = ownTalkback(input);
  return {
    hears,
    onAir,
    inProgram: hears && onAir,
    // While talking privately, this page's voice goes to that caller only; while talking
    // back, to its listeners only; otherwise to everyone but waiting callers.
    sendsTo: waiting ? talkingWith : myTalkback !== undefined ? myTalkback === null || myTalkback === peerId : partner === null,
    // A waiting caller holds only a public link: staff show it relay addresses, never their own.
    relayOnly: isStaff(input.role) && waiting,
  };
}

/** Whom this page talks back to (only a staff page does): a peer, everyone (`null`), or nobody (`undefined`). */
export function ownTalkback({ role, talkback }: ReachInput): string | null | undefined {
  return isStaff(role) ? talkback : undefined;
}

/** Whether this page's own voice is in its program: not while it talks privately or talks back. */
export function ownVoiceInProgram(input: ReachInput): boolean {
  return privateTalkPartner(input) === null && ownTalkback(input) === undefined;
}

/** Every remote voice's reach, and whether this page's own voice is in its program. */
export function reach(input: ReachInput): { voices: Map<string, VoiceReach>; ownVoiceInProgram: boolean } {
  const voices = new Map([...input.people.keys()].map((peerId) => [peerId, voiceReach(input, peerId)]));
  return { voices, ownVoiceInProgram: ownVoiceInProgram(input) };
}
