/**
 * The role table, defined once: who may do what in a room, as data. The room enforces it
 * (durable-objects/policy.ts), the Worker reads the power order for minting, the console
 * shows the controls a role has, and the tests derive their matrices from it.
 */
import type { Role } from './messages';

export interface RolePermissions {
  /** Staff run the show: they see and screen waiting callers, and keep seats callers cannot take. */
  staff: boolean;
  /** Order of power: a minted token of equal or more power never outlives its minter. */
  power: number;
  /** Roles whose mute state, lobby admission and presence this role controls. */
  moderates: readonly Role[];
  admit: boolean;
  closeRoom: boolean;
  manageInvites: boolean;
  broadcast: boolean;
  /** Start and stop takes, list, download and delete recordings. */
  record: boolean;
  /** Add, play, stop, set and delete the soundboard's sounds. */
  sounds: boolean;
}

export const ROLE_TABLE: Readonly<Record<Role, RolePermissions>> = {
  host: {
    staff: true,
    power: 2,
    moderates: ['host', 'producer', 'caller'],
    admit: true,
    closeRoom: true,
    manageInvites: true,
    broadcast: true,
    record: true,
    sounds: true,
  },
  producer: {
    staff: true,
    power: 1,
    moderates: ['caller'],
    admit: true,
    closeRoom: false,
    manageInvites: false,
    broadcast: true,
    record: true,
    sounds: true,
  },
  caller: {
    staff: false,
    power: 0,
    moderates: [],
    admit: false,
    closeRoom: false,
    manageInvites: false,
    broadcast: false,
    record: false,
    sounds: false,
  },
};

export const isRole = (role: unknown): role is Role => typeof role === 'string' && Object.hasOwn(ROLE_TABLE, role);

export const isStaff = (role: Role | undefined): boolean => role !== undefined && ROLE_TABLE[role].staff;

/** Does `actor` moderate (mute, kick) someone of role `target`? */
export const moderatesRole = (actor: Role, target: Role): boolean => ROLE_TABLE[actor].moderates.includes(target);
