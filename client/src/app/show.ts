// The show as this page takes part in it, without any rendering: the room connection, the
// audio mesh and mix, the people and their state, this page's own state, the private talk,
// the program feed, and the actions (mute, kick, admit, talk, go live). What each voice may
// reach comes from the library's reach rules, applied to the mix and the mesh on every
// change. The console (studio.ts) renders it and listens to its events.
import {
  AudioMesh,
  Broadcaster,
  RoomClock,
  SoundPlayer,
  StudioClient,
  TrackRecorder,
  deleteSound,
  fetchSound,
  loadCapture,
  ownVoiceInProgram,
  uploadSound,
  voiceReach,
} from '../lib';
import type {
  BroadcastInfo,
  Channel,
  ChatMessage,
  Participant,
  ProgramMix,
  ReachInput,
  RecordingInfo,
  SoundInfo,
  TrackGrant,
  UploadQueue,
  Welcome,
} from '../lib';
import { isStaff } from '../../../protocol/roles';
import { soundNameFromFile } from '../../../protocol/sounds';
import type { Microphone } from './microphone';
import { SENTENCES, sentenceForClose, sentenceForError } from './sentences';

/** Opus bitrates: speech between peers, more for studio mode (music); the program is music. */
const SPEECH_BITRATE = 32_000;
const MUSIC_BITRATE = 96_000;
const PROGRAM_BITRATE = 96_000;

export interface ShowOptions {
  roomId: string;
  token: string;
  name: string;
  microphone: Microphone;
  /** The page's audio graph (the microphone check made before joining already uses it). */
  mix: ProgramMix;
  /** Force TURN relay (hides this page's address from peers). */
  relay?: boolean;
  /** Where this page's recorded chunks wait for the server (one per page). */
  uploads: UploadQueue;
}

/** The soundboard's channel in the page's mix (peer ids never take this name: they are random). */
const SOUNDS_CHANNEL = 'sounds';

/** Clock round trips asked for at each welcome (the shortest one counts). */
const CLOCK_SAMPLES = 5;
const CLOCK_SPACING_MS = 150;
const CLOCK_REFRESH_MS = 10_000;

export interface ShowEvents {
  /** The people, their state, this page's own state or the private talk changed. */
  change: void;
  /** The connection to someone changed state. */
  connection: { peerId: string; state: RTCPeerConnectionState };
  /** This page's own record as the room sent it (its mute). */
  self: Participant;
  /** The program feed's state changed (the room's word or this page's broadcaster). */
  program: void;
  /** A take started or stopped, or this page started recording a track. */
  recording: void;
  /** A screener's note changed (staff). */
  notes: void;
  /** A desk message arrived (or the welcome brought them). */
  chat: ChatMessage | null;
  /** The soundboard's pads changed, or one started or stopped sounding here. */
  sounds: void;
  /** A sentence for the page; null: what it said about the connection no longer holds. */
  notice: string | null;
  /** This page is out of the show (left, removed, ended, refused), with the sentence why. */
  ended: string;
}

export class Show {
  readonly client: StudioClient;
  readonly mesh: AudioMesh;
  readonly mix: ProgramMix;
  /** This page's welcome, its `waiting` kept up to date. */
  me: Welcome | null = null;
  /** Everyone else in the room, as the room reports them. */
  people = new Map<string, Participant>();
  /** The waiting caller this (staff) page talks with privately. */
  privateTalk: string | null = null;
  /** Whom this (staff) page talks back to: a participant, everyone on air (`null`), or nobody. */
  talkback: string | null | undefined = undefined;
  /** Staff: the screener's notes by caller. */
  notes = new Map<string, string>();
  /** The desk's messages this page may read, oldest first. */
  chat: ChatMessage[] = [];
  broadcast: BroadcastInfo = { state: 'idle' };
  /** When the show went on air, while it is. */
  liveSince: number | null = null;
  broadcaster: Broadcaster | null = null;
  /** This page's own voice in its mix, once the microphone is open. */
  ownVoice: Channel | null = null;
  /** Whether a take runs (the room's word). */
  recording: RecordingInfo = { state: 'idle' };
  /** The tracks this page records for the running take, by track id. */
  readonly recorders = new Map<string, TrackRecorder>();
  readonly clock = new RoomClock();
  /** The soundboard's pads, as the room says (empty while this page waits in the lobby). */
  sounds: SoundInfo[] = [];
  /** Plays the pads on this page: its speakers and its program (the `Sounds` channel). */
  readonly soundPlayer: SoundPlayer;
  readonly soundsChannel: Channel;
  private clockTimer: ReturnType<typeof setInterval> | undefined;
  /** The microphone as the recorder hears it (in the mix's context). */
  private voiceSource: AudioNode | null = null;
  private pendingVoice: TrackGrant | null = null;
  private selfMuted = false;
  private ended = false;
  /** Why the room refused us last (an error frame comes before its close). */
  private refusal: string | null = null;
  private handlers = new Map<keyof ShowEvents, ((value: never) => void)[]>();

  constructor(private options: ShowOptions) {
    const { roomId, token } = options;
    this.mix = options.mix;
    this.soundPlayer = new SoundPlayer({
      context: this.mix.context,
      fetchFile: (soundId) => fetchSound(roomId, token, soundId),
      now: () => RoomClock.local() + this.clock.offset,
      onChange: () => this.emit('sounds', undefined),
    });
    this.soundsChannel = this.mix.addChannel(SOUNDS_CHANNEL, this.soundPlayer.output, { monitor: true });
    // A reloaded page takes up the tracks it recorded (docs/recording.md).
    const url = new URL(`${location.origin.replace(/^http/, 'ws')}/rooms/${encodeURIComponent(roomId)}/ws`);
    for (const grant of keptGrants(roomId)) url.searchParams.append('track', grant.credential);
    this.client = new StudioClient({ url: url.toString(), token });
    // Before the mesh's handlers: a welcome or an admission has updated who is waiting or
    // muted before the mesh calls or answers anyone (what it sends, and over which path).
    this.listen();
    const mic = options.microphone;
    this.mesh = new AudioMesh(this.client, {
      localTrack: mic.track,
      iceTransportPolicy: options.relay ? 'relay' : 'all',
      maxBitrate: mic.studioMode ? MUSIC_BITRATE : SPEECH_BITRATE,
      sendTo: (peerId) => voiceReach(this.reachInput, peerId).sendsTo,
      relayOnly: (peerId) => voiceReach(this.reachInput, peerId).relayOnly,
      onTrack: (peerId, stream) => {
        this.mix.addChannel(peerId, stream, { monitor: true });
        this.applyReach(peerId);
      },
      onState: (peerId, state) => this.emit('connection', { peerId, state }),
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
    // A reload or a closed tab keeps what was cut; the next page of this origin uploads it.
    addEventListener('pagehide', () => {
      for (const recorder of this.recorders.values()) recorder.abandon();
    });
  }

  on<K extends keyof ShowEvents>(type: K, handler: (value: ShowEvents[K]) => void): void {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), handler]);
  }

  private emit<K extends keyof ShowEvents>(type: K, value: ShowEvents[K]): void {
    for (const handler of this.handlers.get(type) ?? []) (handler as (value: ShowEvents[K]) => void)(value);
  }

  /** Open the room connection; a refusal comes as a notice or the end of the show. */
  async connect(): Promise<void> {
    const connected = this.client.connect();
    this.mesh.prepareCall(); // while the socket opens
    try {
      await connected;
    } catch {
      // the refusal is reported by the error and close handlers
    }
  }

  // ---- what reaches whom ----------------------------------------------------------

  private get reachInput(): ReachInput {
    return { people: this.people, role: this.me?.role, privateTalk: this.privateTalk, talkback: this.talkback };
  }

  /** Open or close what this page hears of `peerId`, and whether it is in the program. */
  private applyReach(peerId: string): void {
    const channel = this.mix.channel(peerId);
    if (!this.people.has(peerId) || !channel) return;
    const reach = voiceReach(this.reachInput, peerId);
    channel.setAudible(reach.hears);
    channel.setOnAir(reach.onAir);
  }

  private applyAll(): void {
    for (const peerId of this.people.keys()) this.applyReach(peerId);
    this.ownVoice?.setOnAir(ownVoiceInProgram(this.reachInput));
    this.mesh.refreshSending();
    this.applyVoiceGate();
  }

  private attachOwnVoice(): void {
    const stream = this.options.microphone.stream;
    if (!stream) return;
    this.ownVoice = this.mix.addChannel('me', stream);
    this.ownVoice.setOnAir(ownVoiceInProgram(this.reachInput));
    // The very node the program hears this voice from: one source, so the track and the
    // program line up to the sample (two sources of one stream are each buffered their own way).
    const voiceSource = (this.voiceSource = this.ownVoice.source);
    for (const recorder of this.recorders.values()) if (recorder.grant.kind === 'voice') recorder.setSource(voiceSource);
    if (this.pendingVoice) void this.recordTrack(this.pendingVoice);
    this.pendingVoice = null;
  }

  /** This page's voice is on the show: admitted, not muted by anyone, not in a private talk. */
  private get voiceOnShow(): boolean {
    return this.me !== null && !this.me.waiting && !this.selfMuted && ownVoiceInProgram(this.reachInput);
  }

  private applyVoiceGate(): void {
    for (const recorder of this.recorders.values()) if (recorder.grant.kind === 'voice') recorder.setGate(this.voiceOnShow);
  }

  // ---- the room's word ------------------------------------------------------------

  private listen(): void {
    const client = this.client;
    client.on('welcome', (welcome) => {
      this.me = welcome;
      // Staff mix the program (to air, to the tape): through the loudness processor, ready before either starts.
      if (isStaff(welcome.role)) void this.mix.startProcessor();
      // A resumed welcome: whoever left while we were away is gone here too.
      this.people = new Map(welcome.participants.map((p) => [p.peerId, p]));
      // Private talk ends if that caller left or was let in meanwhile.
      if (this.privateTalk && !this.people.get(this.privateTalk)?.waiting) this.privateTalk = null;
      if (welcome.role !== 'caller' || welcome.waiting === false) this.emit('notice', null);
      if (!welcome.resumed && this.options.name) client.setName(this.options.name);
      this.setBroadcast(welcome.broadcast ?? { state: 'idle' }); // a waiting caller is told nothing
      this.setRecording(welcome.recording);
      this.notes = new Map(Object.entries(welcome.notes ?? {}));
      this.chat = welcome.chat;
      this.setSounds(welcome.waiting ? [] : (welcome.sounds ?? []));
      // A talkback does not outlive the connection it was pressed on (the room ended it or keeps it: say it again).
      if (this.talkback !== undefined) client.send({ type: 'talkback', to: this.talkback, on: true });
      this.emit('notes', undefined);
      this.emit('chat', null);
      // A few answers now; more over time, while the page is quieter than at its join.
      for (let i = 0; i < CLOCK_SAMPLES; i++) setTimeout(() => client.askClock(), i * CLOCK_SPACING_MS);
      this.clockTimer ??= setInterval(() => client.askClock(), CLOCK_REFRESH_MS);
      // Every gate to the room's state now: mutes, admissions and leaves we missed while away.
      this.applyAll();
      this.emit('change', undefined);
    });
    client.on('admitted', (message) => {
      if (this.me) this.me = { ...this.me, waiting: false };
      for (const p of message.participants) this.people.set(p.peerId, p);
      this.setBroadcast(message.broadcast);
      this.setSounds(message.sounds);
      this.applyAll();
      this.emit('change', undefined);
    });
    client.on('peer-joined', ({ participant }) => this.upsert(participant));
    client.on('participant-updated', ({ participant }) => {
      if (participant.peerId === client.peerId) return this.updateMe(participant);
      this.upsert(participant);
    });
    client.on('peer-left', ({ peerId }) => {
      this.people.delete(peerId);
      if (this.privateTalk === peerId) this.privateTalk = null;
      if (this.talkback === peerId) this.endTalkback();
      this.applyAll();
      this.emit('change', undefined);
    });
    client.on('broadcast-updated', ({ broadcast }) => this.setBroadcast(broadcast));
    client.on('clock', ({ sent, now }) => this.clock.sample(sent, now));
    client.on('held', ({ participants }) => {
      // Back on hold: waiting again, seeing only the staff (as at a waiting welcome).
      if (this.me) this.me = { ...this.me, waiting: true };
      this.people = new Map(participants.map((p) => [p.peerId, p]));
      this.setBroadcast({ state: 'idle' });
      this.setSounds([]); // a waiting caller hears no sound
      this.applyAll();
      this.emit('change', undefined);
    });
    client.on('note-updated', ({ peerId, note }) => {
      if (note) this.notes.set(peerId, note);
      else this.notes.delete(peerId);
      this.emit('notes', undefined);
    });
    client.on('chat', ({ type: _, ...message }) => {
      this.chat.push(message);
      this.emit('chat', message);
    });
    client.on('recording-updated', ({ recording }) => this.setRecording(recording));
    client.on('sounds', ({ sounds }) => this.setSounds(sounds));
    client.on('recording-track', ({ type: _, ...grant }) => void this.recordTrack(grant));
    client.on('error', (error) => {
      const sentence = sentenceForError(error);
      if (sentence) this.emit('notice', (this.refusal = sentence));
      else if (error.code === 'broadcast-busy' || error.code === 'broadcast-unavailable' || error.code === 'forbidden')
        this.emit('notice', error.message);
    });
    client.on('kicked', () => this.leave(SENTENCES.kicked));
    client.on('room-closed', () => this.leave(SENTENCES.roomClosed));
    client.on('close', ({ code, final }) => {
      if (this.ended) return;
      const refusal = this.refusal;
      this.refusal = null;
      if (!final) return this.emit('notice', refusal ?? SENTENCES.connectionLost);
      this.leave(refusal ?? sentenceForClose(code) ?? SENTENCES.disconnected);
    });
  }

  private upsert(participant: Participant): void {
    const before = this.people.get(participant.peerId);
    this.people.set(participant.peerId, participant);
    if (before && before.waiting && !participant.waiting && this.privateTalk === participant.peerId) this.privateTalk = null;
    // Put on hold: a talkback to it ends (the room ended it too).
    if (participant.waiting && this.talkback === participant.peerId) this.endTalkback();
    this.applyAll();
    this.emit('change', undefined);
  }

  private updateMe(participant: Participant): void {
    if (!this.me) return;
    const wasWaiting = this.me.waiting;
    this.me = { ...this.me, waiting: participant.waiting };
    this.selfMuted = participant.muted;
    // Honour every mute at the source too (receivers enforce it regardless); a talkback
    // speaks while muted on air (its listeners hear it, nobody else does).
    this.applyMicrophone();
    this.applyVoiceGate();
    this.emit('self', participant);
    if (wasWaiting !== participant.waiting) this.emit('change', undefined);
  }

  private applyMicrophone(): void {
    this.options.microphone.setEnabled(!this.selfMuted || this.talkback !== undefined);
  }

  // ---- actions --------------------------------------------------------------------

  toggleSelfMute(): void {
    if (this.client.peerId) this.client.mute(this.client.peerId, !this.selfMuted);
  }

  /** Moderator mute or unmute, by the participant's state at the moment of the click. */
  toggleMute(peerId: string): void {
    const person = this.people.get(peerId);
    if (person) this.client.mute(peerId, !person.muted);
  }

  kick(peerId: string): void {
    this.client.kick(peerId);
  }

  admit(peerId: string): void {
    this.client.admit(peerId);
  }

  /** Start or end a private talk with a waiting caller. */
  togglePrivateTalk(peerId: string): void {
    this.privateTalk = this.privateTalk === peerId ? null : peerId;
    this.applyAll();
    this.emit('change', undefined);
  }

  /**
   * Talk back to `to` (a participant on the show, or everyone on air: `null`), or let go.
   * Meanwhile this page's voice goes to its listeners only, and leaves the program.
   */
  toggleTalkback(to: string | null): void {
    const on = this.talkback !== to;
    this.talkback = on ? to : undefined;
    this.client.send({ type: 'talkback', to, on });
    this.applyMicrophone();
    this.applyAll();
    this.emit('change', undefined);
  }

  hold(peerId: string): void {
    this.client.send({ type: 'hold', peerId });
  }

  setNote(peerId: string, note: string): void {
    if ((this.notes.get(peerId) ?? '') !== note) this.client.send({ type: 'set-note', peerId, note });
  }

  /** A desk message: to the staff, or to one caller. */
  sendMessage(to: 'staff' | string, text: string): void {
    if (text.trim()) this.client.send({ type: 'chat', to, text });
  }

  muteAllCallers(): void {
    this.client.send({ type: 'mute-all' });
  }

  private endTalkback(): void {
    this.talkback = undefined;
    this.applyMicrophone();
  }

  // ---- the soundboard -------------------------------------------------------------

  private setSounds(sounds: SoundInfo[]): void {
    // A waiting caller hears no sound, whatever reaches it (the room sends it none).
    this.sounds = this.me?.waiting ? [] : sounds;
    this.soundPlayer.update(this.sounds); // its onChange tells the console
  }

  /** Staff: a new pad from a file (refused with an HttpError saying why). */
  async addSound(file: File, name = soundNameFromFile(file.name)): Promise<SoundInfo> {
    return (await uploadSound(this.options.roomId, this.options.token, file, name)).sound;
  }

  deleteSound(soundId: string): Promise<void> {
    return deleteSound(this.options.roomId, this.options.token, soundId);
  }

  playSound(soundId: string): void {
    void this.mix.context.resume();
    this.client.send({ type: 'play-sound', soundId });
  }

  stopSound(soundId: string): void {
    this.client.send({ type: 'stop-sound', soundId });
  }

  /** A pad's level (0–2) or loop, for everyone who hears it. */
  setSound(soundId: string, change: { level?: number; loop?: boolean }): void {
    this.client.send({ type: 'set-sound', soundId, ...change });
  }

  /** Host: close the room for everyone. */
  endShow(): void {
    this.client.closeRoom();
  }

  leave(sentence: string = SENTENCES.left): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.clockTimer);
    this.stopFeed();
    void this.stopRecorders(); // what was recorded still uploads
    this.client.leave();
    this.mesh.close();
    this.soundPlayer.close();
    this.mix.close();
    this.options.microphone.close();
    this.emit('ended', sentence);
  }

  // ---- recording ------------------------------------------------------------------

  startRecording(): void {
    this.client.send({ type: 'start-recording' });
  }

  stopRecording(): void {
    this.client.send({ type: 'stop-recording' });
  }

  private setRecording(recording: RecordingInfo): void {
    this.recording = recording;
    if (recording.state === 'idle' || [...this.recorders.values()].some((r) => r.grant.takeId !== recording.takeId)) {
      void this.stopRecorders();
    }
    if (recording.state === 'idle') forgetGrants(this.options.roomId);
    this.emit('recording', undefined);
  }

  /** The room asks this page to record a track (its voice, or the program) of the running take. */
  private async recordTrack(grant: TrackGrant): Promise<void> {
    if (this.recorders.has(grant.trackId) || this.ended) return;
    keepGrant(this.options.roomId, grant);
    // The clock again as the take begins: a quieter moment than the join, when the mesh was being made.
    for (let i = 0; i < CLOCK_SAMPLES; i++) setTimeout(() => this.client.askClock(), i * CLOCK_SPACING_MS);
    await Promise.all([loadCapture(this.mix.context), this.mix.startProcessor()]);
    // The program as it goes to air: after the loudness processor, sounds and all.
    const source = grant.kind === 'program' ? this.mix.program : this.voiceSource;
    // No microphone yet: its track starts when it opens.
    if (!source && grant.kind === 'voice') this.pendingVoice = grant;
    if (!source || this.recorders.has(grant.trackId) || this.recording.state !== 'recording' || this.recording.takeId !== grant.takeId)
      return;
    const recorder = new TrackRecorder({
      roomId: this.options.roomId,
      grant,
      context: this.mix.context,
      source,
      clockOffset: () => this.clock.offset,
      queue: this.options.uploads,
    });
    this.recorders.set(grant.trackId, recorder);
    if (grant.kind === 'voice') recorder.setGate(this.voiceOnShow);
    this.emit('recording', undefined);
  }

  private async stopRecorders(): Promise<void> {
    const recorders = [...this.recorders.values()];
    this.recorders.clear();
    await Promise.all(recorders.map((recorder) => recorder.stop()));
  }

  // ---- the program feed -----------------------------------------------------------

  private setBroadcast(broadcast: BroadcastInfo): void {
    const wasLive = this.broadcast.state === 'live';
    this.broadcast = broadcast;
    if (broadcast.state === 'live' && !wasLive) this.liveSince = broadcast.since ?? Date.now();
    if (broadcast.state === 'idle' || broadcast.state === 'error') this.liveSince = null;
    this.emit('program', undefined);
  }

  /** A broadcast is under way (this page's feed, or the room's word on one). */
  get broadcastRunning(): boolean {
    return this.broadcaster !== null || (this.broadcast.state !== 'idle' && this.broadcast.state !== 'error');
  }

  /** Go live, or stop the broadcast. */
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
          if (status.reason) this.emit('notice', status.reason);
          // A feed refused before the room heard of it leaves no state behind to show.
          if (this.broadcast.state === 'connecting' && !status.broadcast) this.broadcast = { state: 'idle' };
          this.emit('program', undefined);
        }
      },
    });
    this.broadcaster = mine;
    this.broadcast = { ...this.broadcast, state: 'connecting' };
    this.emit('program', undefined);
    await this.mix.context.resume();
    await this.mix.startProcessor();
    this.mix.resetLoudness(); // the integrated loudness of this show's air
    await mine.start(this.mix.stream).catch(() => {}); // the status says why
  }

  private stopFeed(): void {
    this.broadcaster?.stop();
    this.broadcaster = null;
  }
}

// The grants of the running take, per room, for this tab only: a reload presents them again.
const grantsKey = (roomId: string) => `openstudio:tracks:${roomId}`;

function keptGrants(roomId: string): TrackGrant[] {
  try {
    return JSON.parse(sessionStorage.getItem(grantsKey(roomId)) ?? '[]') as TrackGrant[];
  } catch {
    return [];
  }
}

function keepGrant(roomId: string, grant: TrackGrant): void {
  const grants = keptGrants(roomId).filter((g) => g.takeId === grant.takeId && g.trackId !== grant.trackId);
  sessionStorage.setItem(grantsKey(roomId), JSON.stringify([...grants, grant].slice(-2)));
}

function forgetGrants(roomId: string): void {
  sessionStorage.removeItem(grantsKey(roomId));
}
