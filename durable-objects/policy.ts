/**
 * Who may do what in a room: decisions over the role table (protocol/roles.ts), which is
 * data; the functions below only read it. Nothing here touches sockets or storage.
 */
import type { Participant, Role } from '../protocol/messages';
import { isStaff as isStaffRole, moderatesRole, ROLE_TABLE } from '../protocol/roles';

export type Decision = { ok: true } | { ok: false; reason: string };
const allow: Decision = { ok: true };
const deny = (reason: string): Decision => ({ ok: false, reason });

const isStaff = (p: Pick<Participant, 'role'>) => isStaffRole(p.role);

/**
 * Lobby rule: a waiting caller is seen only by hosts and producers, and itself sees only
 * them. Everyone else sees everyone.
 */
export function canSee(viewer: Participant, subject: Participant): boolean {
  if (viewer.peerId === subject.peerId) return true;
  if (subject.waiting && !isStaff(viewer)) return false;
  if (viewer.waiting && !isStaff(subject)) return false;
  return true;
}

/** Signaling flows only between peers that can see each other. */
export function canSignal(from: Participant, to: Participant): boolean {
  return canSee(from, to) && canSee(to, from);
}

export function moderates(actor: Participant, target: Participant): boolean {
  return moderatesRole(actor.role, target.role);
}

/**
 * Mute rules: anyone may mute or unmute itself, except that a caller cannot lift a mute
 * set by a moderator; moderators mute and unmute the roles they moderate.
 */
export function decideMute(actor: Participant, target: Participant, muted: boolean): Decision {
  if (actor.peerId === target.peerId) {
    if (!muted && target.mutedBy === 'moderator' && !isStaff(actor)) {
      return deny('a host or producer muted you; only they can unmute you');
    }
    return allow;
  }
  return moderates(actor, target) ? allow : deny(`a ${actor.role} cannot mute a ${target.role}`);
}

/**
 * A kick bars the target's token and every token minted from it, so a staff member cannot
 * kick someone whose invite (or one it was minted from) it holds itself: it would be barred too.
 */
export function decideKick(actor: Participant & { lineage: readonly string[] }, target: Participant & { tokenId: string }): Decision {
  if (actor.peerId === target.peerId) return deny('use "leave" to leave the room');
  if (!moderates(actor, target)) return deny(`a ${actor.role} cannot kick a ${target.role}`);
  if (actor.lineage.includes(target.tokenId)) {
    return deny('you joined with their invite or one made from it, so a kick would bar you too; revoke host invites and rejoin first');
  }
  return allow;
}

/** Hold: who admits callers may put an on-air caller back into the waiting list. */
export function decideHold(actor: Participant, target: Participant): Decision {
  if (!ROLE_TABLE[actor.role].admit) return deny(`a ${actor.role} cannot hold callers`);
  if (target.role !== 'caller') return deny('only callers are put on hold');
  if (target.waiting) return deny('that caller is waiting already');
  return allow;
}

export function decideAdmit(actor: Participant, target: Participant): Decision {
  if (!ROLE_TABLE[actor.role].admit) return deny(`a ${actor.role} cannot admit callers`);
  if (!target.waiting) return deny('that peer is not waiting in the lobby');
  return allow;
}

/**
 * Seats: a room holds at most `maxParticipants` peers (waiting, on air or reconnecting).
 * Callers may fill all but `staffSeats` of them (at least one seat stays a caller's), so
 * staff can join however many callers share the link; and a host can always join its own
 * show, even when producers took the staff seats: hosts may go `staffSeats` past the room's
 * size (a bound, though only staff hold host tokens; a reloaded page takes over its own old
 * seat first).
 */
export function decideSeat(
  role: Role,
  seated: readonly Pick<Participant, 'role'>[],
  maxParticipants: number,
  staffSeats: number,
): Decision {
  if (role === 'host') return seated.length < maxParticipants + staffSeats ? allow : deny('room is full');
  if (seated.length >= maxParticipants) return deny('room is full');
  if (role !== 'caller') return allow;
  const callerSeats = maxParticipants - Math.min(staffSeats, maxParticipants - 1);
  if (seated.filter((p) => !isStaff(p)).length >= callerSeats) {
    return deny('every caller seat is taken (the rest are kept for the hosts and producers)');
  }
  return allow;
}

export function decideCloseRoom(actor: Participant): Decision {
  return ROLE_TABLE[actor.role].closeRoom ? allow : deny('only a host can close the room');
}
