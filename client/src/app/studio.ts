// The console: one role-aware page for host, producer and caller. It renders the show
// (show.ts: the people, their state, the actions, and what each voice may reach) and keeps
// the DOM: strips with their buttons updated in place, the program panel, the meters.
import { ROLE_TABLE, isStaff, moderatesRole } from '../../../protocol/roles';
import { DEFAULT_LOUDNESS_TARGET, HttpError, LOUDNESS_TARGETS, revokeInvites } from '../lib';
import type { Participant, RecordingInfo, Role } from '../lib';
import { byId, h, meterElement, showLevel } from './dom';
import { RecordingsPanel, clockText } from './recordings-panel';
import { SENTENCES } from './sentences';
import { SoundboardPanel } from './soundboard-panel';
import { Show } from './show';
import type { ShowOptions } from './show';

const LOUDNESS_USES: Partial<Record<number, string>> = {
  [-16]: ' (podcast)',
  [-18]: ' (speech streams, AES TD1008)',
  [-23]: ' (EBU R 128)',
};
/** The program's loudness targets, as the console offers them (their LUFS number first: automation picks by it). */
const LOUDNESS_CHOICES = [
  ...LOUDNESS_TARGETS.map((lufs) => ({ value: String(lufs), label: `${lufs} LUFS${LOUDNESS_USES[lufs] ?? ''}` })),
  { value: 'off', label: 'Off' },
];
const LOUDNESS_KEY = 'openstudio:loudness-target';

/** Meters refresh 20 times a second: a mute shows as silence within one refresh or two. */
const METER_INTERVAL_MS = 50;

export interface StudioOptions extends ShowOptions {
  /** Invite tokens, when this page created the show. */
  invites?: Partial<Record<Role, string>>;
}

interface Strip {
  element: HTMLElement;
  title: HTMLElement;
  detail: HTMLElement;
  meter: HTMLElement;
  fader?: HTMLInputElement;
  /** Staff, on a caller's strip: the screener's note, and a message to the caller. */
  note?: HTMLTextAreaElement;
  message?: HTMLInputElement;
  sendMessage?: HTMLButtonElement;
  actions: HTMLElement;
  /** The strip's buttons by what they do, kept while they apply: a press lands on the button it began on. */
  buttons: Map<StripAction, HTMLButtonElement>;
  state: RTCPeerConnectionState | 'new';
}

type StripAction = 'talk' | 'admit' | 'talkback' | 'hold' | 'mute' | 'kick';

export class Studio {
  readonly show: Show;
  private strips = new Map<string, Strip>();
  private meterTimer: ReturnType<typeof setInterval>;
  /** Staff only: the takes of this show. */
  private recordings: RecordingsPanel | null = null;
  private soundboard: SoundboardPanel;
  /** The last notice this console showed. */
  private shownNotice = '';

  constructor(private options: StudioOptions) {
    const show = (this.show = new Show(options));
    show.on('change', () => this.renderAll());
    show.on('connection', ({ peerId, state }) => {
      const strip = this.strips.get(peerId);
      if (strip) ((strip.state = state), this.renderStrip(peerId));
    });
    show.on('self', (participant) => this.renderSelf(participant));
    show.on('program', () => this.renderProgram());
    show.on('recording', () => this.renderRecording());
    show.on('notes', () => this.renderAll());
    show.on('chat', () => this.renderChat());
    this.soundboard = new SoundboardPanel(show);
    this.setUpLoudnessTarget();
    show.on('notice', (text) => (text === null ? this.clearNotice() : this.notice(text)));
    show.on('ended', (sentence) => {
      clearInterval(this.meterTimer);
      this.recordings?.stop();
      byId('console').hidden = true;
      this.notice(sentence);
    });
    this.meterTimer = setInterval(() => this.updateMeters(), METER_INTERVAL_MS);
    addEventListener('pagehide', () => show.leave(SENTENCES.left));
  }

  async start(): Promise<void> {
    void this.show.mix.context.resume(); // called inside the click: the browser lets the audio start
    byId('console').hidden = false;
    this.renderInvites();
    performance.mark('openstudio:connecting');
    await this.show.connect();
  }

  toggleSelfMute(): void {
    this.show.toggleSelfMute();
  }

  toggleBroadcast(): Promise<void> {
    return this.show.toggleBroadcast();
  }

  /** Start a take, or stop the running one. */
  toggleRecording(): void {
    if (this.show.recording.state === 'recording') this.show.stopRecording();
    else this.show.startRecording();
  }

  /** Host: close the room for everyone. */
  endShow(): void {
    this.show.endShow();
  }

  leaveShow(): void {
    this.show.leave(SENTENCES.left);
  }

  // ---- rendering ------------------------------------------------------------------

  private notice(text: string): void {
    byId('notice').textContent = this.shownNotice = text;
    byId('notice').hidden = text === '';
  }

  /** Clear what the console said (a refusal, a lost connection), not the page's own word on the microphone. */
  private clearNotice(): void {
    if (byId('notice').textContent === this.shownNotice) this.notice('');
  }

  private renderSelf(participant: Participant): void {
    const button = byId<HTMLButtonElement>('mute-me');
    button.textContent = participant.muted ? 'Unmute me' : 'Mute me';
    button.setAttribute('aria-pressed', String(participant.muted));
    button.disabled = participant.mutedBy === 'moderator';
    byId('my-state').textContent =
      participant.mutedBy === 'moderator' ? 'A moderator muted you.' : participant.muted ? 'You are muted.' : '';
  }

  private nameOf(p: Participant): string {
    return p.name ?? `${p.role[0]!.toUpperCase()}${p.role.slice(1)} ${p.peerId.slice(0, 4)}`;
  }

  private renderAll(): void {
    const { me, people, privateTalk } = this.show;
    // Whoever left (also while this page's signaling was down) loses their strip.
    for (const [peerId, strip] of this.strips) {
      if (people.has(peerId)) continue;
      strip.element.remove();
      this.strips.delete(peerId);
    }
    if (!me) return;
    const staff = isStaff(me.role);
    byId('program').hidden = !staff;
    byId('desk').hidden = !staff;
    byId('soundboard').hidden = !ROLE_TABLE[me.role].sounds;
    byId('inbox').hidden = staff;
    const everyone = byId('talkback-all');
    everyone.setAttribute('aria-pressed', String(this.show.talkback === null));
    // Who talks into this page's ears now.
    const speakers = [...people.values()].filter((p) => p.talkback === 'to-you').map((p) => this.nameOf(p));
    byId('talkback-status').textContent = speakers.length ? `${speakers.join(' and ')} talking to you` : '';
    if (staff && !this.recordings) {
      this.recordings = new RecordingsPanel(this.options.roomId, this.options.token, (text) => this.notice(text));
      this.recordings.start();
    }
    byId('invites').hidden = me.role !== 'host';
    byId('end-show').hidden = me.role !== 'host';
    byId('show-title').textContent = me.room.name ?? '';
    byId('my-role').textContent = me.waiting
      ? 'You are waiting to be let into the show. Someone from the studio will talk with you first.'
      : `You are in the show as ${me.role}.`;
    // A waiting caller sees only the studio's staff (the room shows it nobody else).
    byId('people-heading').textContent = me.waiting ? 'The studio' : 'In the show';
    const waiting = [...people.values()].filter((p) => p.waiting);
    byId('waiting').hidden = !staff || waiting.length === 0;
    const talk = privateTalk ? people.get(privateTalk) : undefined;
    byId('talk-banner').hidden = !talk;
    byId('talk-banner').textContent = talk
      ? `Talking privately with ${this.nameOf(talk)}: the program and the callers on air do not hear you.`
      : '';
    // The most powerful first: host, producers, callers.
    // Waiting callers in order of arrival (the screening queue).
    const sorted = [...people.values()].sort(
      (a, b) => ROLE_TABLE[b.role].power - ROLE_TABLE[a.role].power || (a.waitingSince ?? 0) - (b.waitingSince ?? 0),
    );
    const waitingList: HTMLElement[] = [];
    const onAirList: HTMLElement[] = [];
    for (const p of sorted) {
      this.renderStrip(p.peerId);
      (p.waiting ? waitingList : onAirList).push(this.strips.get(p.peerId)!.element);
    }
    // The soundboard's strip, last: everyone on the show hears the sounds; staff ride their program level.
    byId('sounds-strip').hidden = me.waiting;
    byId('sounds-fader-label').hidden = !staff;
    onAirList.push(byId('sounds-strip'));
    // Strips move only when their place changes (a strip under the pointer stays put).
    for (const [list, elements] of [
      [byId('waiting-list'), waitingList],
      [byId('strips'), onAirList],
    ] as const) {
      if (elements.some((element, i) => list.children[i] !== element)) list.append(...elements);
    }
    byId('empty').hidden = sorted.some((p) => !p.waiting);
    this.renderProgram();
  }

  private renderStrip(peerId: string): void {
    const p = this.show.people.get(peerId);
    const me = this.show.me;
    if (!p || !me) return;
    let strip = this.strips.get(peerId);
    if (!strip) {
      const element = h('section', { className: 'strip', role: 'group' });
      const title = h('h3');
      const detail = h('p', { className: 'detail' });
      const meter = meterElement('');
      const actions = h('div', { className: 'actions' });
      element.append(title, detail, meter, actions);
      strip = { element, title, detail, meter, actions, buttons: new Map(), state: 'new' };
      this.strips.set(peerId, strip);
    }
    const name = this.nameOf(p);
    strip.element.setAttribute('aria-label', name);
    strip.element.classList.toggle('waiting', p.waiting);
    strip.element.classList.toggle('muted', p.muted);
    strip.title.textContent = name;
    const connection = !p.connected ? 'reconnecting' : strip.state;
    const mute = p.mutedBy === 'moderator' ? 'muted by the studio' : p.muted ? 'muted' : '';
    const waited =
      p.waiting && p.waitingSince !== undefined ? `waiting ${clockText(Date.now() - p.waitingSince)}` : p.waiting ? 'waiting' : '';
    const talking = p.talkback === 'to-you' ? 'talking to you' : p.talkback === 'away' ? 'talking back' : '';
    const detail = [p.role, waited, connection, mute, talking].filter(Boolean).join(' · ');
    if (strip.detail.textContent !== detail) strip.detail.textContent = detail;
    strip.meter.setAttribute('aria-label', `${name} level`);

    const staff = isStaff(me.role);
    const moderates = moderatesRole(me.role, p.role);
    if (staff && !p.waiting && !strip.fader) {
      strip.fader = h('input', {
        type: 'range',
        min: 0,
        max: 200,
        step: 1,
        value: 100,
        className: 'fader',
        oninput: (event) => {
          const value = Number((event.target as HTMLInputElement).value);
          this.show.mix.channel(peerId)?.setFader(value / 100);
          (event.target as HTMLInputElement).setAttribute('aria-valuetext', `${value} %`);
        },
      });
      strip.element.insertBefore(h('label', { className: 'fader-label' }, 'Program ', strip.fader), strip.actions);
    }
    strip.fader?.setAttribute('aria-label', `${name} program level`);
    if (strip.fader) strip.fader.parentElement!.hidden = p.waiting;

    // Which buttons apply, with their labels now. Existing buttons are updated in place,
    // never replaced: a caller renaming itself many times a second must not pull a button
    // away between a press and its release.
    // Each button shows what it does and is named with whom (the strip's title shows the
    // name): a caller renaming itself changes no button's width, so none moves under a press.
    const wanted: [StripAction, string, string, string?][] = [];
    if (staff && p.waiting) {
      const talking = this.show.privateTalk === peerId;
      wanted.push(['talk', talking ? 'End talk' : 'Talk', talking ? `End talk with ${name}` : `Talk to ${name}`, String(talking)]);
      wanted.push(['admit', 'Admit', `Admit ${name}`]);
    }
    if (staff && !p.waiting) wanted.push(['talkback', 'Talk back', `Talk back to ${name}`, String(this.show.talkback === peerId)]);
    if (ROLE_TABLE[me.role].admit && p.role === 'caller' && !p.waiting) wanted.push(['hold', 'Hold', `Hold ${name}`]);
    if (moderates && !p.waiting) wanted.push(p.muted ? ['mute', 'Unmute', `Unmute ${name}`] : ['mute', 'Mute', `Mute ${name}`]);
    if (moderates) wanted.push(['kick', 'Kick', `Kick ${name}`]);
    for (const [action, button] of strip.buttons) {
      if (wanted.some(([a]) => a === action)) continue;
      button.remove();
      strip.buttons.delete(action);
    }
    for (const [action, text, label, pressed] of wanted) {
      let button = strip.buttons.get(action);
      if (!button) {
        const className = action === 'kick' ? 'danger' : action === 'talkback' ? 'talkback' : undefined;
        button = h('button', { className, onclick: () => this.act(action, peerId) });
        strip.buttons.set(action, button);
      }
      if (button.textContent !== text) button.textContent = text;
      if (button.getAttribute('aria-label') !== label) button.setAttribute('aria-label', label);
      if (pressed !== undefined && button.getAttribute('aria-pressed') !== pressed) button.setAttribute('aria-pressed', pressed);
    }
    // Order only when the set changed (appending moves an element; it is not replaced).
    const order = wanted.map(([action]) => strip.buttons.get(action)!);
    if (order.some((button, i) => strip.actions.children[i] !== button)) strip.actions.append(...order);
    if (staff && p.role === 'caller') this.renderCallerDesk(strip, peerId, name);
  }

  /** Staff, on a caller's strip: the screener's note (saved on change) and a message to the caller. */
  private renderCallerDesk(strip: Strip, peerId: string, name: string): void {
    if (!strip.note) {
      const note = h('textarea', { rows: 2, maxLength: 1000, onchange: () => this.show.setNote(peerId, note.value.trim()) });
      const message = h('input', { maxLength: 500, autocomplete: 'off' });
      const send = h('button', {
        onclick: () => {
          this.show.sendMessage(peerId, message.value);
          message.value = '';
        },
      });
      message.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') send.click();
      });
      strip.note = note;
      strip.message = message;
      strip.sendMessage = send;
      strip.element.append(h('div', { className: 'note' }, note), h('div', { className: 'message' }, message, send));
    }
    strip.note.setAttribute('aria-label', `Note on ${name}`);
    // Another staff member's edit shows, unless this one is typing in it.
    const kept = this.show.notes.get(peerId) ?? '';
    if (document.activeElement !== strip.note && strip.note.value !== kept) strip.note.value = kept;
    strip.message!.setAttribute('aria-label', `Message to ${name}`);
    strip.sendMessage!.textContent = 'Send';
    strip.sendMessage!.setAttribute('aria-label', `Send to ${name}`);
  }

  /** The desk's messages: the staff chat (staff), or what the studio sent this caller. Text only, never markup. */
  private renderChat(): void {
    const me = this.show.me;
    if (!me) return;
    const staff = isStaff(me.role);
    const log = byId(staff ? 'staff-chat' : 'studio-messages');
    const shown = new Set([...log.children].map((child) => (child as HTMLElement).dataset.id));
    for (const message of this.show.chat) {
      if (shown.has(message.id)) continue;
      const from = message.fromName ?? message.fromRole;
      const to =
        message.to === 'staff'
          ? ''
          : ` to ${this.nameOf(this.show.people.get(message.to) ?? ({ peerId: message.to, role: 'caller' } as Participant))}`;
      const line = h('p', {}, h('strong', {}, staff ? `${from}${to}: ` : `${from}: `), message.text);
      line.dataset.id = message.id;
      log.append(line);
      log.scrollTop = log.scrollHeight;
    }
  }

  /** A strip's button pressed: acts on the participant's state at the moment of the click. */
  private act(action: StripAction, peerId: string): void {
    if (action === 'talk') return this.show.togglePrivateTalk(peerId);
    if (action === 'talkback') return this.show.toggleTalkback(peerId);
    if (action === 'hold') return this.show.hold(peerId);
    if (action === 'admit') return this.show.admit(peerId);
    if (action === 'kick') return this.show.kick(peerId);
    this.show.toggleMute(peerId);
  }

  private renderInvites(): void {
    const invites = this.options.invites ?? {};
    for (const role of ['producer', 'caller'] as const) {
      const field = byId<HTMLInputElement>(`${role}-link`);
      const token = invites[role];
      field.value = token ? inviteLink(this.options.roomId, token) : '';
      byId(`${role}-invite`).hidden = !token;
    }
  }

  /** Host: revoke a role's invites; the link shown becomes the one that replaces them. */
  async newInvite(role: 'producer' | 'caller'): Promise<void> {
    let token: string;
    try {
      ({ token } = await revokeInvites(this.options.roomId, this.options.token, role));
    } catch (error) {
      if (error instanceof HttpError) return this.notice(`No new link: ${error.message}.`);
      throw error;
    }
    this.options.invites = { ...this.options.invites, [role]: token };
    this.renderInvites();
    byId(`${role}-link-note`).textContent = 'New link made; the old one no longer works.';
  }

  private renderProgram(): void {
    const { broadcast: b, me } = this.show;
    const running = this.show.broadcastRunning;
    const live = byId<HTMLButtonElement>('go-live');
    live.textContent = running ? 'Stop broadcast' : 'Go live';
    const reason = b.reason;
    const states: Record<string, string> = {
      idle: 'Off air',
      connecting: 'Connecting to the radio server…',
      live: 'ON AIR',
      reconnecting: 'Reconnecting to the radio server…',
      error: 'Off air: the broadcast failed',
    };
    let text = states[b.state] ?? b.state;
    if (reason) text += ` (${reason})`;
    if (me?.role === 'caller') text = me.waiting ? 'Waiting to be let in' : b.state === 'live' ? 'You are on air' : 'Off air';
    const status = byId('on-air-status');
    status.textContent = text;
    document.body.classList.toggle('on-air', b.state === 'live');
    const listen = byId<HTMLAnchorElement>('listen-link');
    listen.hidden = !b.listenUrl;
    if (b.listenUrl) listen.href = b.listenUrl;
    const listeners = b.listeners;
    byId('listeners').textContent = listeners && b.state === 'live' ? `${listeners.current} listening (peak ${listeners.peak})` : '';
    this.renderClock();
  }

  private renderRecording(): void {
    const { recording, me } = this.show;
    byId('recording-status').textContent = recordingSentence(recording, me?.role === 'caller');
    document.body.classList.toggle('recording', recording.state === 'recording');
    byId('record').textContent = recording.state === 'recording' ? 'Stop recording' : 'Start recording';
    void this.recordings?.refresh();
  }

  private renderClock(): void {
    const clock = byId('on-air-clock');
    const { liveSince } = this.show;
    if (liveSince === null || this.show.broadcast.state !== 'live') {
      clock.textContent = '';
      return;
    }
    const seconds = Math.max(0, Math.floor((Date.now() - liveSince) / 1000));
    const hh = Math.floor(seconds / 3600);
    const mm = String(Math.floor(seconds / 60) % 60).padStart(2, '0');
    const ss = String(seconds % 60).padStart(2, '0');
    clock.textContent = `${hh}:${mm}:${ss}`;
  }

  private slowTick = 0;

  private updateMeters(): void {
    const { mix, mesh } = this.show;
    const now = performance.now();
    for (const [peerId, strip] of this.strips) {
      const channel = mix.channel(peerId);
      const reading = channel ? channel.meter.read(now) : { level: -60, peak: -60 };
      showLevel(strip.meter, reading.level, reading.peak);
      const peer = mesh.peers.get(peerId);
      strip.element.dataset.connection = peer?.pc.connectionState ?? 'none';
      strip.element.dataset.iceRestarts = String(peer?.iceRestarts ?? 0);
    }
    // What this page holds open, for anyone checking that nothing leaks.
    const held = byId('console').dataset;
    held.peerConnections = String(mesh.peers.size);
    held.mixVoices = String(mix.size);
    held.broadcaster = this.show.broadcaster?.status.state ?? 'none';
    held.soundsSounding = String(this.show.soundPlayer.sounding);
    const own = this.show.ownVoice;
    if (own) {
      const reading = own.meter.read(now);
      showLevel(byId('my-level'), reading.level, reading.peak);
    }
    this.soundboard.updateMeter(now);
    const program = mix.meter.read(now);
    showLevel(byId('program-level'), program.level, program.peak);
    // Twice a second: the loudness (the processor measures every 100 ms), the screening queue's waiting times (m:ss), the clock.
    if (++this.slowTick % 10 !== 1) return;
    for (const [peerId, person] of this.show.people) if (person.waiting) this.renderStrip(peerId);
    this.renderLoudness();
    this.renderClock();
  }

  /** Momentary, short-term and integrated loudness of what goes to air; the integrated one is the meter's value. */
  private renderLoudness(): void {
    const { loudness, processorError } = this.show.mix;
    const meter = byId('loudness');
    const lufs = (value: number | null | undefined) => (value === null || value === undefined ? '—' : value.toFixed(1));
    const text = processorError
      ? 'loudness processor unavailable'
      : `M ${lufs(loudness?.momentary)} · S ${lufs(loudness?.shortTerm)} · I ${lufs(loudness?.integrated)} LUFS`;
    if (meter.textContent === text) return;
    meter.textContent = text;
    const integrated = loudness?.integrated ?? null;
    meter.setAttribute('aria-valuenow', integrated === null ? '-60' : integrated.toFixed(1));
    meter.setAttribute(
      'aria-valuetext',
      integrated === null
        ? 'nothing measured yet'
        : `integrated ${lufs(integrated)} LUFS, short-term ${lufs(loudness?.shortTerm)} LUFS, momentary ${lufs(loudness?.momentary)} LUFS`,
    );
  }

  /** The loudness target's choices; this page's choice is kept for its next show. */
  private setUpLoudnessTarget(): void {
    const select = byId<HTMLSelectElement>('loudness-target');
    for (const choice of LOUDNESS_CHOICES) select.append(h('option', { value: choice.value }, choice.label));
    const kept = localStorage.getItem(LOUDNESS_KEY);
    select.value = LOUDNESS_CHOICES.some((c) => c.value === kept) ? kept! : String(DEFAULT_LOUDNESS_TARGET);
    const apply = () => this.show.mix.setLoudnessTarget(select.value === 'off' ? null : Number(select.value));
    select.addEventListener('change', () => {
      localStorage.setItem(LOUDNESS_KEY, select.value);
      apply();
    });
    apply();
  }
}

export function inviteLink(roomId: string, token: string): string {
  return `${location.origin}/#room=${encodeURIComponent(roomId)}&token=${encodeURIComponent(token)}`;
}

/** What the page says about recording: "Recording …" while a take runs, nothing otherwise. */
export function recordingSentence(recording: RecordingInfo, caller: boolean): string {
  if (recording.state !== 'recording') return '';
  return caller ? 'Recording: this show is being recorded.' : `Recording ${recording.title}`;
}
