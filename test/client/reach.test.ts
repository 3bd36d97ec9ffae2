// The client's reach rules (client/src/lib/reach.ts): every row of docs/client.md's "What
// reaches whom" table, its edge cases, and invariants over every combination of states.
import { describe, expect, it } from 'vitest';
import { ownVoiceInProgram, privateTalkPartner, reach, voiceReach } from '../../client/src/lib/reach';
import type { ReachInput } from '../../client/src/lib/reach';
import type { Participant, Role } from '../../protocol/messages';
import { ROLE_TABLE, isStaff } from '../../protocol/roles';

const ROLES = Object.keys(ROLE_TABLE) as Role[];
const STAFF = ROLES.filter(isStaff);

function person(peerId: string, state: Partial<Participant> = {}): Participant {
  return { peerId, role: 'caller', name: peerId, muted: false, mutedBy: null, connected: true, waiting: false, ...state };
}

const onAir = person('on-air');
const selfMuted = person('self-muted', { muted: true, mutedBy: 'self' });
const moderatorMuted = person('moderator-muted', { muted: true, mutedBy: 'moderator' });
const waiting = person('waiting', { waiting: true });
const otherWaiting = person('other-waiting', { waiting: true });
const mutedWaiting = person('muted-waiting', { waiting: true, muted: true, mutedBy: 'moderator' });
const producer = person('producer', { role: 'producer' });

function input(role: Role | undefined, people: Participant[], privateTalk: string | null = null): ReachInput {
  return { people: new Map(people.map((p) => [p.peerId, p])), role, privateTalk };
}

const everyone = [onAir, selfMuted, moderatorMuted, waiting, otherWaiting, mutedWaiting, producer];

describe.each(STAFF)('a %s page', (role) => {
  describe('not talking privately', () => {
    const show = input(role, everyone);

    it('hears an on-air voice, has it in the program and sends it its own voice', () => {
      expect(voiceReach(show, 'on-air')).toEqual({ hears: true, onAir: true, inProgram: true, sendsTo: true, relayOnly: false });
      expect(voiceReach(show, 'producer')).toEqual({ hears: true, onAir: true, inProgram: true, sendsTo: true, relayOnly: false });
    });

    it('hears nothing of a muted voice, self or moderator, and still sends it its own voice', () => {
      for (const peerId of ['self-muted', 'moderator-muted']) {
        expect(voiceReach(show, peerId)).toMatchObject({ hears: false, inProgram: false, sendsTo: true, relayOnly: false });
      }
    });

    it('neither hears a waiting caller nor sends it anything, and reaches it over relays only', () => {
      for (const peerId of ['waiting', 'other-waiting', 'muted-waiting']) {
        expect(voiceReach(show, peerId)).toEqual({ hears: false, onAir: false, inProgram: false, sendsTo: false, relayOnly: true });
      }
    });

    it('has its own voice in the program', () => {
      expect(ownVoiceInProgram(show)).toBe(true);
    });
  });

  describe('talking privately with a waiting caller', () => {
    const show = input(role, everyone, 'waiting');

    it('hears that caller (never in the program) and sends its voice to it alone', () => {
      expect(privateTalkPartner(show)).toBe('waiting');
      expect(voiceReach(show, 'waiting')).toEqual({ hears: true, onAir: false, inProgram: false, sendsTo: true, relayOnly: true });
      for (const peerId of ['on-air', 'self-muted', 'moderator-muted', 'producer', 'other-waiting', 'muted-waiting']) {
        expect(voiceReach(show, peerId).sendsTo, peerId).toBe(false);
      }
    });

    it('still hears the show, with the on-air voices in the program (it goes on without this page)', () => {
      expect(voiceReach(show, 'on-air')).toMatchObject({ hears: true, inProgram: true });
      expect(voiceReach(show, 'producer')).toMatchObject({ hears: true, inProgram: true });
      expect(voiceReach(show, 'moderator-muted')).toMatchObject({ hears: false, inProgram: false });
      expect(voiceReach(show, 'other-waiting')).toMatchObject({ hears: false, inProgram: false });
    });

    it('takes its own voice out of the program', () => {
      expect(ownVoiceInProgram(show)).toBe(false);
    });
  });

  it('does not hear a muted waiting caller even while talking with it, and still sends it its voice', () => {
    const show = input(role, everyone, 'muted-waiting');
    expect(voiceReach(show, 'muted-waiting')).toEqual({ hears: false, onAir: false, inProgram: false, sendsTo: true, relayOnly: true });
    expect(ownVoiceInProgram(show)).toBe(false);
  });

  it('ends a private talk with a caller who was admitted: an on-air voice again, and this page back in the program', () => {
    const admitted = { ...waiting, waiting: false };
    const show = input(role, [onAir, admitted], 'waiting');
    expect(privateTalkPartner(show)).toBeNull();
    expect(ownVoiceInProgram(show)).toBe(true);
    expect(voiceReach(show, 'waiting')).toMatchObject({ hears: true, inProgram: true, sendsTo: true });
    expect(voiceReach(show, 'on-air')).toMatchObject({ sendsTo: true });
  });

  it('ends a private talk with a caller who left', () => {
    const show = input(role, [onAir, otherWaiting], 'waiting');
    expect(privateTalkPartner(show)).toBeNull();
    expect(ownVoiceInProgram(show)).toBe(true);
    expect(voiceReach(show, 'on-air').sendsTo).toBe(true);
    expect(voiceReach(show, 'other-waiting')).toMatchObject({ hears: false, sendsTo: false });
  });

  it('keeps relay-only only for waiting callers', () => {
    const show = input(role, everyone);
    const relayOnly = [...reach(show).voices].filter(([, r]) => r.relayOnly).map(([peerId]) => peerId);
    expect(relayOnly.sort()).toEqual(['muted-waiting', 'other-waiting', 'waiting']);
  });
});

describe('a caller page', () => {
  // A caller on air sees everyone on air; a waiting caller sees only the studio's staff.
  const host = person('host', { role: 'host' });

  it('hears on-air voices, sends to them, and never asks for relay-only connections', () => {
    const show = input('caller', [host, producer, onAir, moderatorMuted]);
    expect(voiceReach(show, 'host')).toEqual({ hears: true, onAir: true, inProgram: true, sendsTo: true, relayOnly: false });
    expect(voiceReach(show, 'on-air')).toEqual({ hears: true, onAir: true, inProgram: true, sendsTo: true, relayOnly: false });
    expect(voiceReach(show, 'moderator-muted')).toMatchObject({ hears: false, inProgram: false, sendsTo: true, relayOnly: false });
    expect(ownVoiceInProgram(show)).toBe(true);
  });

  it('has no private talk, whatever it was given', () => {
    const show = input('caller', [host, waiting], 'waiting');
    expect(privateTalkPartner(show)).toBeNull();
    expect(ownVoiceInProgram(show)).toBe(true);
    expect(voiceReach(show, 'waiting')).toEqual({ hears: false, onAir: false, inProgram: false, sendsTo: false, relayOnly: false });
    expect(voiceReach(show, 'host').sendsTo).toBe(true);
  });
});

describe('before the welcome, and peers not (yet) among the people', () => {
  it('a page that does not know its role yet asks for no relay-only connection', () => {
    const show = input(undefined, [waiting]);
    expect(voiceReach(show, 'waiting').relayOnly).toBe(false);
  });

  it('an unknown peer is not heard, and gets this page voice unless it talks privately', () => {
    expect(voiceReach(input('host', [onAir]), 'stranger')).toEqual({
      hears: false,
      onAir: true,
      inProgram: false,
      sendsTo: true,
      relayOnly: false,
    });
    expect(voiceReach(input('host', [waiting], 'waiting'), 'stranger').sendsTo).toBe(false);
  });
});

describe('every combination of roles, states and private talks', () => {
  const states: Partial<Participant>[] = [
    {},
    { muted: true, mutedBy: 'self' },
    { muted: true, mutedBy: 'moderator' },
    { waiting: true },
    { waiting: true, muted: true, mutedBy: 'moderator' },
  ];
  const cases = ROLES.flatMap((pageRole) =>
    ROLES.flatMap((voiceRole) =>
      states.flatMap((state) =>
        [null, 'voice', 'partner', 'gone'].map((privateTalk) => {
          const voice = person('voice', { role: voiceRole, ...state });
          const partner = person('partner', { waiting: true });
          return { pageRole, voice, show: input(pageRole, [voice, partner], privateTalk) };
        }),
      ),
    ),
  );

  it('a voice is in the program only when heard and on air; a muted voice is never heard', () => {
    for (const { voice, show } of cases) {
      const r = voiceReach(show, 'voice');
      expect(r.inProgram).toBe(r.hears && r.onAir);
      if (voice.muted) expect(r.hears).toBe(false);
    }
  });

  it('a waiting voice is never in the program, and reaches only the staff page talking with it', () => {
    for (const { pageRole, voice, show } of cases) {
      if (!voice.waiting) continue;
      const r = voiceReach(show, 'voice');
      const talking = isStaff(pageRole) && show.privateTalk === 'voice';
      expect(r.inProgram).toBe(false);
      expect(r.sendsTo).toBe(talking);
      expect(r.hears).toBe(talking && !voice.muted);
      expect(r.relayOnly).toBe(isStaff(pageRole));
    }
  });

  it('while a private talk counts, this page sends to its partner alone and is out of its program', () => {
    for (const { show } of cases) {
      const partner = privateTalkPartner(show);
      if (partner === null) continue;
      const all = reach(show);
      expect(all.ownVoiceInProgram).toBe(false);
      for (const [peerId, r] of all.voices) expect(r.sendsTo, peerId).toBe(peerId === partner);
    }
  });

  it('reach() answers for every person, as voiceReach() does', () => {
    for (const { show } of cases) {
      const all = reach(show);
      expect([...all.voices.keys()]).toEqual([...show.people.keys()]);
      for (const [peerId, r] of all.voices) expect(r).toEqual(voiceReach(show, peerId));
      expect(all.ownVoiceInProgram).toBe(ownVoiceInProgram(show));
    }
  });
});

describe('talkback', () => {
  const talkingToMe = person('pat', { role: 'producer', talkback: 'to-you' });
  const talkingAway = person('pat', { role: 'producer', talkback: 'away' });
  const mutedTalkingToMe = person('pat', { role: 'producer', talkback: 'to-you', muted: true, mutedBy: 'self' });

  it('a talkback to this page is in its ears, never in its program, also while the speaker is muted on air', () => {
    for (const role of ROLES) {
      for (const speaker of [talkingToMe, mutedTalkingToMe]) {
        const r = voiceReach(input(role, [speaker, onAir]), 'pat');
        expect(r).toMatchObject({ hears: true, onAir: false, inProgram: false });
      }
    }
  });

  it("a talkback to someone else takes the speaker's voice off the show at this page", () => {
    for (const role of ROLES) expect(voiceReach(input(role, [talkingAway]), 'pat')).toMatchObject({ hears: false, inProgram: false });
  });

  it('while this staff page talks back, its voice goes to its listeners only and leaves its program', () => {
    for (const role of STAFF) {
      const toOne: ReachInput = { ...input(role, [onAir, producer, waiting]), talkback: 'on-air' };
      expect(voiceReach(toOne, 'on-air').sendsTo).toBe(true);
      expect(voiceReach(toOne, 'producer').sendsTo).toBe(false);
      expect(voiceReach(toOne, 'waiting').sendsTo).toBe(false);
      expect(ownVoiceInProgram(toOne)).toBe(false);
      const toEveryone: ReachInput = { ...input(role, [onAir, producer, waiting]), talkback: null };
      expect(voiceReach(toEveryone, 'on-air').sendsTo).toBe(true);
      expect(voiceReach(toEveryone, 'producer').sendsTo).toBe(true);
      expect(voiceReach(toEveryone, 'waiting').sendsTo).toBe(false);
      expect(ownVoiceInProgram(toEveryone)).toBe(false);
    }
    // A caller's page never talks back, whatever it claims.
    const caller: ReachInput = { ...input('caller', [onAir, producer]), talkback: 'on-air' };
    expect(ownVoiceInProgram(caller)).toBe(true);
    expect(voiceReach(caller, 'producer').sendsTo).toBe(true);
  });
});
