// The console: one role-aware page for host, producer and caller. It owns the page's
// signaling client, audio mesh and audio graph, and decides what each voice may reach:
//
// - a waiting (screened) caller is never in the program; this page hears it only while
//   talking with it privately, and sends it nothing else;
// - while this page talks privately with a waiting caller, its own voice leaves the program
//   and the on-air peers and goes to that caller only (the show goes on without it);
// - a muted participant (by a moderator or itself) is silent here, whatever its own page
//   sends: every receiving page closes that voice's gate.
import { AudioMesh, Broadcaster, ProgramMix, StudioClient } from '../lib';
import type { BroadcastInfo, Channel, Participant, Role, Welcome } from '../lib';
import { byId, h, meterElement, showLevel } from './dom';
import { Microphone } from './microphone';
import { SENTENCES, sentenceForClose, sentenceForError } from './sentences';

/** Opus bitrates: speech between peers, more for studio mode (music); the program is music. */
const SPEECH_BITRATE = 32_000;
const MUSIC_BITRATE = 96_000;
const PROGRAM_BITRATE = 96_000;
/** Meters refresh 20 times a second: a mute shows as silence within one refresh or two. */
const METER_INTERVAL_MS = 50;

type Broadcast = BroadcastInfo;

export interface StudioOptions {
  roomId: string;
  token: string;
  name: string;
  microphone: Microphone;
  /** The page's audio graph (the microphone check made before joining already uses it). */
  mix: ProgramMix;
  /** Invite tokens, when this page created the show. */
  invites?: Partial<Record<Role, string>>;
  /** Force TURN relay (hides this page's address from peers). */
  relay?: boolean;
}

interface Strip {
  element: HTMLElement;
  title: HTMLElement;
  detail: HTMLElement;
  meter: HTMLElement;
  fader?: HTMLInputElement;
  actions: HTMLElement;
  /** The strip's buttons by what they do, kept while they apply: a press lands on the button it began on. */
  buttons: Map<StripAction, HTMLButtonElement>;
  state: RTCPeerConnectionState | 'new';
}

type StripAction = 'talk' | 'admit' | 'mute' | 'kick';

const isStaff = (role: Role | undefined) => role === 'host' || role === 'producer';

export class Studio {
  readonly client: StudioClient;
  readonly mesh: AudioMesh;
  readonly mix: ProgramMix;
  private people = new Map<string, Participant>();
  private strips = new Map<string, Strip>();
  private me: Welcome | null = null;
  private ownChannel: Channel | null = null;
  private privateTalk: string | null = null;
  private broadcaster: Broadcaster | null = null;
  private broadcast: Broadcast = { state: 'idle' };
  private liveSince: number | null = null;
  private meterTimer: ReturnType<typeof setInterval>;
  private ended = false;
  /** Why the room refused us last (an error frame comes before its close). */
  private refusal: string | null = null;
  /** The last notice this console showed. */
  private shownNotice = '';

  constructor(private options: StudioOptions) {
    const { roomId, token } = options;
    this.mix = options.mix;
    const base = location.origin;
    this.client = new StudioClient({ url: `${base.replace(/^http/, 'ws')}/rooms/${encodeURIComponent(roomId)}/ws`, token });
    // Before the mesh's handlers: a welcome or an admission has updated who is waiting or
    // muted before the mesh calls or answers anyone (what it sends, and over which path).
    this.listen();
    const mic = options.microphone;
    this.mesh = new AudioMesh(this.client, {
      localTrack: mic.track,
      iceTransportPolicy: options.relay ? 'relay' : 'all',
      maxBitrate: mic.studioMode ? MUSIC_BITRATE : SPEECH_BITRATE,
      sendTo: (peerId) => this.sendsTo(peerId),
      // A waiting caller holds only a public link: staff show it relay addresses, never their own.
      relayOnly: (peerId) => isStaff(this.me?.role) && this.people.get(peerId)?.waiting === true,
      onTrack: (peerId, stream) => {
        this.mix.addChannel(peerId, stream, { monitor: true });
        this.applyPolicy(peerId);
      },
      onState: (peerId, state) => {
        const strip = this.strips.get(peerId);
        if (strip) (strip.state = state), this.renderStrip(peerId);
      },
      onHangUp: (peerId) => this.mix.removeChannel(peerId),
      // Over the room socket: the session is the proof, so a show outlives its token.
      refreshIce: () => this.client.refreshIce(),
    });
    mic.onChange((track) => {
      this.mesh.setLocalTrack(track);
      this.mesh.setMaxBitrate(mic.studioMode ? MUSIC_BITRATE : SPEECH_BITRATE);
      this.attachOwnVoice();
    });
    this.attachOwnVoice();
    this.meterTimer = setInterval(() => this.updateMeters(), METER_INTERVAL_MS);
    addEventListener('pagehide', () => this.leave(SENTENCES.left));
  }

  async start(): Promise<void> {
    void this.mix.context.resume(); // called inside the click: the browser lets the audio start
    byId('console').hidden = false;
    this.renderInvites();
    performance.mark('openstudio:connecting');
    const connected = this.client.connect();
    this.mesh.prepareCall(); // while the socket opens
    try {
      await connected;
    } catch {
      // the refusal is shown by the error and close handlers
    }
  }

  // ---- policy ---------------------------------------------------------------------

  /** Whether this page sends its voice to `peerId` right now. */
  private sendsTo(peerId: string): boolean {
    const person = this.people.get(peerId);
    if (person?.waiting) return this.privateTalk === peerId;
    return this.privateTalk === null;
  }

  /** Apply what this page may hear of `peerId`, and whether it is in the program. */
  private applyPolicy(peerId: string): void {
    const person = this.people.get(peerId);
    const channel = this.mix.channel(peerId);
    if (!person || !channel) return;
    channel.setAudible(!person.muted && (!person.waiting || this.privateTalk === peerId));
    channel.setOnAir(!person.waiting);
  }

  private applyAll(): void {
    for (const peerId of this.people.keys()) this.applyPolicy(peerId);
    this.ownChannel?.setOnAir(this.privateTalk === null);
    this.mesh.refreshSending();
  }

  private attachOwnVoice(): void {
    const stream = this.options.microphone.stream;
    if (!stream) return;
    this.ownChannel = this.mix.addChannel('me', stream);
    this.ownChannel.setOnAir(this.privateTalk === null);
  }

  // ---- signaling ------------------------------------------------------------------

  private listen(): void {
    const client = this.client;
    client.on('welcome', (welcome) => {
      this.me = welcome;
      this.people = new Map(welcome.participants.map((p) => [p.peerId, p]));
      // A resumed welcome: whoever left while we were away loses their strip too.
      for (const peerId of this.strips.keys()) if (!this.people.has(peerId)) this.removeStrip(peerId);
      // Private talk ends if that caller left or was let in meanwhile.
      if (this.privateTalk && !this.people.get(this.privateTalk)?.waiting) this.privateTalk = null;
      if (welcome.role !== 'caller' || welcome.waiting === false) this.clearNotice();
      if (!welcome.resumed && this.options.name) client.setName(this.options.name);
      this.setBroadcast(welcome.broadcast ?? { state: 'idle' }); // a waiting caller is told nothing
      // Every gate to the room's state now: mutes, admissions and leaves we missed while away.
      this.applyAll();
      this.renderAll();
    });
    client.on('admitted', (message) => {
      if (this.me) this.me = { ...this.me, waiting: false };
      for (const p of message.participants) this.people.set(p.peerId, p);
      this.setBroadcast(message.broadcast);
      this.applyAll();
      this.renderAll();
    });
    client.on('peer-joined', ({ participant }) => this.upsert(participant));
    client.on('participant-updated', ({ participant }) => {
      if (participant.peerId === client.peerId) return this.updateMe(participant);
      this.upsert(participant);
    });
    client.on('peer-left', ({ peerId }) => {
      this.people.delete(peerId);
      if (this.privateTalk === peerId) this.privateTalk = null;
      this.removeStrip(peerId);
      this.applyAll();
      this.renderAll();
    });
    client.on('broadcast-updated', ({ broadcast }) => this.setBroadcast(broadcast));
    client.on('error', (error) => {
      const sentence = sentenceForError(error);
      if (sentence) this.notice((this.refusal = sentence));
      else if (error.code === 'broadcast-busy' || error.code === 'broadcast-unavailable' || error.code === 'forbidden') this.notice(error.message);
    });
    client.on('kicked', () => this.leave(SENTENCES.kicked));
    client.on('room-closed', () => this.leave(SENTENCES.roomClosed));
    client.on('close', ({ code, final }) => {
      if (this.ended) return;
      const refusal = this.refusal;
      this.refusal = null;
      if (!final) return this.notice(refusal ?? SENTENCES.connectionLost);
      this.leave(refusal ?? sentenceForClose(code) ?? SENTENCES.disconnected);
    });
  }

  private removeStrip(peerId: string): void {
    this.strips.get(peerId)?.element.remove();
    this.strips.delete(peerId);
  }

  private upsert(participant: Participant): void {
    const before = this.people.get(participant.peerId);
    this.people.set(participant.peerId, participant);
    if (before && before.waiting && !participant.waiting && this.privateTalk === participant.peerId) this.privateTalk = null;
    this.applyAll();
    this.renderAll();
  }

  private updateMe(participant: Participant): void {
    if (!this.me) return;
    const wasWaiting = this.me.waiting;
    this.me = { ...this.me, waiting: participant.waiting };
    // Honour every mute at the source too (receivers enforce it regardless).
    this.options.microphone.setEnabled(!participant.muted);
    const button = byId('mute-me');
    button.textContent = participant.muted ? 'Unmute me' : 'Mute me';
    button.setAttribute('aria-pressed', String(participant.muted));
    (button as HTMLButtonElement).disabled = participant.mutedBy === 'moderator';
    byId('my-state').textContent = participant.mutedBy === 'moderator' ? 'A moderator muted you.' : participant.muted ? 'You are muted.' : '';
    if (wasWaiting !== participant.waiting) this.renderAll();
  }

  toggleSelfMute(): void {
    const muted = byId('mute-me').getAttribute('aria-pressed') !== 'true';
    if (this.client.peerId) this.client.mute(this.client.peerId, muted);
  }

  // ---- broadcast ------------------------------------------------------------------

  private setBroadcast(broadcast: Broadcast): void {
    const wasLive = this.broadcast.state === 'live';
    this.broadcast = broadcast;
    if (broadcast.state === 'live' && !wasLive) this.liveSince = broadcast.since ?? Date.now();
    if (broadcast.state === 'idle' || broadcast.state === 'error') this.liveSince = null;
    this.renderProgram();
  }

  private get broadcastRunning(): boolean {
    return this.broadcaster !== null || (this.broadcast.state !== 'idle' && this.broadcast.state !== 'error');
  }

  async toggleBroadcast(): Promise<void> {
    if (this.broadcastRunning) {
      this.stopFeed();
      try {
        this.client.send({ type: 'stop-broadcast' });
      } catch {
        // not connected: the feed socket closing ends the broadcast too
      }
      return;
    }
    const url = `${location.origin.replace(/^http/, 'ws')}/rooms/${encodeURIComponent(this.options.roomId)}/broadcast`;
    const mine: Broadcaster = new Broadcaster({
      url,
      token: this.options.token,
      audioBitsPerSecond: PROGRAM_BITRATE,
      // It reconnects by itself; once it has stopped for good (by a host, refused, given
      // up) the console offers to go live again and says why.
      onStatus: (status) => {
        if ((status.state === 'stopped' || status.state === 'failed') && this.broadcaster === mine) {
          this.broadcaster = null;
          if (status.reason) this.notice(status.reason);
          // A feed refused before the room heard of it leaves no state behind to show.
          if (this.broadcast.state === 'connecting' && !status.broadcast) this.broadcast = { state: 'idle' };
          this.renderProgram();
        }
      },
    });
    this.broadcaster = mine;
    this.broadcast = { ...this.broadcast, state: 'connecting' };
    this.renderProgram();
    await this.mix.context.resume();
    await mine.start(this.mix.stream).catch(() => {}); // the status says why
  }

  private stopFeed(): void {
    this.broadcaster?.stop();
    this.broadcaster = null;
  }

  // ---- rendering ------------------------------------------------------------------

  private notice(text: string): void {
    byId('notice').textContent = (this.shownNotice = text);
    byId('notice').hidden = text === '';
  }

  /** Clear what the console said (a refusal, a lost connection), not the page's own word on the microphone. */
  private clearNotice(): void {
    if (byId('notice').textContent === this.shownNotice) this.notice('');
  }

  private leave(sentence: string): void {
    if (this.ended) return;
    this.ended = true;
    this.stopFeed();
    this.client.leave();
    this.mesh.close();
    clearInterval(this.meterTimer);
    this.mix.close();
    this.options.microphone.close();
    byId('console').hidden = true;
    this.notice(sentence);
  }

  /** Host: close the room for everyone. */
  endShow(): void {
    this.client.closeRoom();
  }

  leaveShow(): void {
    this.leave(SENTENCES.left);
  }

  private nameOf(p: Participant): string {
    return p.name ?? `${p.role[0]!.toUpperCase()}${p.role.slice(1)} ${p.peerId.slice(0, 4)}`;
  }

  private renderAll(): void {
    const me = this.me;
    if (!me) return;
    const staff = isStaff(me.role);
    byId('program').hidden = !staff;
    byId('invites').hidden = me.role !== 'host';
    byId('end-show').hidden = me.role !== 'host';
    byId('show-title').textContent = me.room.name ?? '';
    byId('my-role').textContent = me.waiting
      ? 'You are waiting to be let into the show. Someone from the studio will talk with you first.'
      : `You are in the show as ${me.role}.`;
    // A waiting caller sees only the studio's staff (the room shows it nobody else).
    byId('people-heading').textContent = me.waiting ? 'The studio' : 'In the show';
    const waiting = [...this.people.values()].filter((p) => p.waiting);
    byId('waiting').hidden = !staff || waiting.length === 0;
    const talk = this.privateTalk ? this.people.get(this.privateTalk) : undefined;
    byId('talk-banner').hidden = !talk;
    byId('talk-banner').textContent = talk
      ? `Talking privately with ${this.nameOf(talk)}: the program and the callers on air do not hear you.`
      : '';
    const order: Record<Role, number> = { host: 0, producer: 1, caller: 2 };
    const sorted = [...this.people.values()].sort((a, b) => order[a.role] - order[b.role]);
    const waitingList: HTMLElement[] = [];
    const onAirList: HTMLElement[] = [];
    for (const p of sorted) {
      this.renderStrip(p.peerId);
      (p.waiting ? waitingList : onAirList).push(this.strips.get(p.peerId)!.element);
    }
    // Strips move only when their place changes (a strip under the pointer stays put).
    for (const [list, elements] of [[byId('waiting-list'), waitingList], [byId('strips'), onAirList]] as const) {
      if (elements.some((element, i) => list.children[i] !== element)) list.append(...elements);
    }
    byId('empty').hidden = sorted.some((p) => !p.waiting);
    this.renderProgram();
  }

  private renderStrip(peerId: string): void {
    const p = this.people.get(peerId);
    const me = this.me;
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
    strip.detail.textContent = [p.role, p.waiting ? 'waiting' : '', connection, mute].filter(Boolean).join(' · ');
    strip.meter.setAttribute('aria-label', `${name} level`);

    const staff = isStaff(me.role);
    const mayModerate = me.role === 'host' || (me.role === 'producer' && p.role === 'caller');
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
          this.mix.channel(peerId)?.setFader(value / 100);
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
    const wanted: [StripAction, string, string?][] = [];
    if (staff && p.waiting) {
      const talking = this.privateTalk === peerId;
      wanted.push(['talk', talking ? `End talk with ${name}` : `Talk to ${name}`, String(talking)]);
      wanted.push(['admit', `Admit ${name}`]);
    }
    if (mayModerate && !p.waiting) wanted.push(['mute', p.muted ? `Unmute ${name}` : `Mute ${name}`]);
    if (mayModerate) wanted.push(['kick', `Kick ${name}`]);
    for (const [action, button] of strip.buttons) {
      if (wanted.some(([a]) => a === action)) continue;
      button.remove();
      strip.buttons.delete(action);
    }
    for (const [action, label, pressed] of wanted) {
      let button = strip.buttons.get(action);
      if (!button) {
        button = h('button', { className: action === 'kick' ? 'danger' : undefined, onclick: () => this.act(action, peerId) });
        strip.buttons.set(action, button);
      }
      if (button.textContent !== label) button.textContent = label;
      if (pressed !== undefined && button.getAttribute('aria-pressed') !== pressed) button.setAttribute('aria-pressed', pressed);
    }
    // Order only when the set changed (appending moves an element; it is not replaced).
    const order = wanted.map(([action]) => strip.buttons.get(action)!);
    if (order.some((button, i) => strip.actions.children[i] !== button)) strip.actions.append(...order);
  }

  /** A strip's button pressed: acts on the participant's state at the moment of the click. */
  private act(action: StripAction, peerId: string): void {
    if (action === 'talk') return this.togglePrivateTalk(peerId);
    if (action === 'admit') return this.client.admit(peerId);
    if (action === 'kick') return this.client.kick(peerId);
    const person = this.people.get(peerId);
    if (person) this.client.mute(peerId, !person.muted);
  }

  private togglePrivateTalk(peerId: string): void {
    this.privateTalk = this.privateTalk === peerId ? null : peerId;
    this.applyAll();
    this.renderAll();
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

  async newInvite(role: 'producer' | 'caller'): Promise<void> {
    const response = await fetch(`/rooms/${encodeURIComponent(this.options.roomId)}/revoke`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.options.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ role }),
    });
    const body = await response.json();
    if (!response.ok) return this.notice(`No new link: ${body.error?.message ?? response.status}.`);
    this.options.invites = { ...this.options.invites, [role]: body.token };
    this.renderInvites();
    byId(`${role}-link-note`).textContent = 'New link made; the old one no longer works.';
  }

  private renderProgram(): void {
    const b = this.broadcast;
    const me = this.me;
    const running = this.broadcastRunning;
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

  private renderClock(): void {
    const clock = byId('on-air-clock');
    if (this.liveSince === null || this.broadcast.state !== 'live') {
      clock.textContent = '';
      return;
    }
    const seconds = Math.max(0, Math.floor((Date.now() - this.liveSince) / 1000));
    const hh = Math.floor(seconds / 3600);
    const mm = String(Math.floor(seconds / 60) % 60).padStart(2, '0');
    const ss = String(seconds % 60).padStart(2, '0');
    clock.textContent = `${hh}:${mm}:${ss}`;
  }

  private loudnessTick = 0;

  private updateMeters(): void {
    const now = performance.now();
    for (const [peerId, strip] of this.strips) {
      const channel = this.mix.channel(peerId);
      const reading = channel ? channel.meter.read(now) : { level: -60, peak: -60 };
      showLevel(strip.meter, reading.level, reading.peak);
      const peer = this.mesh.peers.get(peerId);
      strip.element.dataset.connection = peer?.pc.connectionState ?? 'none';
      strip.element.dataset.iceRestarts = String(peer?.iceRestarts ?? 0);
    }
    // What this page holds open, for anyone checking that nothing leaks.
    const held = byId('console').dataset;
    held.peerConnections = String(this.mesh.peers.size);
    held.mixVoices = String(this.mix.size);
    held.broadcaster = this.broadcaster?.status.state ?? 'none';
    if (this.ownChannel) {
      const own = this.ownChannel.meter.read(now);
      showLevel(byId('my-level'), own.level, own.peak);
    }
    const program = this.mix.meter.read(now);
    showLevel(byId('program-level'), program.level, program.peak);
    // Loudness takes a block every 100 ms (its 3 s window is 30 blocks); text updates twice a second.
    if (++this.loudnessTick % 2 === 0) return;
    const lufs = this.mix.loudness.read();
    if (this.loudnessTick % 10 === 1) {
      byId('loudness').textContent = Number.isFinite(lufs) && lufs > -70 ? `${lufs.toFixed(1)} LUFS short-term` : '— LUFS';
      this.renderClock();
    }
  }
}

export function inviteLink(roomId: string, token: string): string {
  return `${location.origin}/#room=${encodeURIComponent(roomId)}&token=${encodeURIComponent(token)}`;
}
