/**
 * One Durable Object per show (keyed by room id): the program feed. It holds the
 * broadcaster's WebSocket (binary frames of encoded audio from the browser's MediaRecorder)
 * and the Icecast source connection, and keeps the show on air through faults:
 *
 * - What reaches Icecast is the feed's own Ogg/Opus stream (opus-stream.ts): the Opus
 *   packets of whatever the browser records (WebM or Ogg), one logical stream per source
 *   connection, so a broadcaster's new recorder never starts a new stream for listeners.
 * - Icecast drops, refuses or stalls: the source reconnects with backoff and jitter; audio
 *   of a dead source is dropped, never queued; a new source begins with the stream headers
 *   kept from the broadcaster's stream, so listeners' players decode it at once.
 * - The broadcaster's socket drops (network, a deploy): the source is held and fed silence
 *   in real time, so listeners stay connected and hear the show again when the broadcaster,
 *   reconnecting by itself with `?resume=<broadcastId>`, is back (or the show ends).
 * - Every incoming frame is its own event, and periodic work (liveness probe and listener
 *   count from Icecast, the report to the room) runs from the alarm, each alarm a fresh
 *   invocation: no per-invocation CPU or subrequest budget grows with the show's length.
 *
 * The room is a separate object and keeps hibernating; it hears the state from here (RPC),
 * tells this object at once when a host stops the show (`stop`), and also answers each report
 * with whether a host asked to stop. Nothing here is persisted: after a restart the
 * broadcaster is closed with 1012 at its next frame, reconnects and resumes, and the room's
 * own staleness check covers the gap.
 */
import { DurableObject } from 'cloudflare:workers';
import { FEED_HEADER, type FeedSession } from '../protocol/handoff';
import { CLOSE_CODES, type BroadcastInfo, type FeedMessage } from '../protocol/messages';
import { readConfig } from '../server/config';
import { close, sendRaw } from '../server/websocket';
import { REASONS } from './broadcast-state';
import { IcecastSource, mountListeners, SourceFault, type FaultKind, type IcecastTarget } from './icecast';
import { OggOpusChain, OPUS_SILENCE_MS, opusPacketSamples, opusReader, OpusStreamError, type OpusEvent } from './opus-stream';
import type { Room } from './room';

/** Periodic work: liveness probe, listener count, report. */
export const FEED_ALARM_MS = 4_000;
/** A liveness probe Icecast has not answered within this is a stall. */
const PROBE_TIMEOUT_MS = 3_000;
/** The room hears from a running feed at least this often. */
export const FEED_HEARTBEAT_MS = 8_000;
/** While the broadcaster is away, silence is written in steps of this. */
const FILL_STEP_MS = 200;
/** After the broadcaster dropped, end the show if it has not come back within this. */
const BROADCASTER_WAIT_MS = 60_000;
/** Reconnecting to Icecast: give up after failing this long. */
const GIVE_UP_MS = 120_000;
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 3_000;
/**
 * Audio kept while no source is up (a show starting, Icecast reconnecting): only the latest
 * this much, since all of it is sent at once and listeners stay that far behind live.
 */
const MAX_EARLY_MS = 300;

const FAULT_REASONS: Record<FaultKind, string> = {
  unreachable: REASONS.unreachable,
  'refused-password': REASONS.password,
  'mount-busy': REASONS.mountBusy,
  refused: REASONS.refused,
  closed: REASONS.closed,
  stalled: REASONS.stalled,
};

export class Feed extends DurableObject<Env> {
  private session: FeedSession | null = null;
  /** The broadcaster's socket now (an older one may still be closing). */
  private current: WebSocket | null = null;
  private info: BroadcastInfo = { state: 'idle' };
  private source: IcecastSource | null = null;
  private connecting = false;
  /** Reads the current broadcaster socket's stream: Opus packets out of its container. */
  private reader: ReturnType<typeof opusReader> | null = null;
  /** The current broadcaster stream's OpusHead: until it is seen, its audio cannot be used. */
  private head: Uint8Array | null = null;
  /** The Ogg streams going to the current source (the first begun with its headers on first use). */
  private program: OggOpusChain | null = null;
  /** Packets waiting for a source connection, and their length in samples (48 kHz). */
  private early: Uint8Array[] = [];
  private earlySamples = 0;
  /** Silence written while the broadcaster is away: since when, and how much so far. */
  private fill: { from: number; frames: number; timer: ReturnType<typeof setInterval> } | null = null;
  private failingSince: number | null = null;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private broadcasterGoneAt: number | null = null;
  private lastReport = '';
  private lastReportAt = 0;
  private reports: Promise<void> = Promise.resolve();

  override async fetch(request: Request): Promise<Response> {
    const session = JSON.parse(decodeURIComponent(request.headers.get(FEED_HEADER) ?? 'null')) as FeedSession | null;
    if (!session || request.headers.get('Upgrade') !== 'websocket') {
      return new Response('expected a feed upgrade from the Worker', { status: 400 });
    }
    const resumed = this.session?.broadcastId === session.broadcastId;
    if (!resumed) {
      this.stopSource();
      this.session = session;
      this.failures = 0;
      this.failingSince = null;
      this.info = {
        state: session.since === undefined ? 'connecting' : 'reconnecting',
        by: session.by,
        listenUrl: session.listenUrl,
        ...(session.since === undefined ? {} : { since: session.since, reason: REASONS.broadcasterDropped }),
        ...(session.peak === undefined ? {} : { listeners: { current: 0, peak: session.peak } }),
      };
    }
    for (const old of this.ctx.getWebSockets()) close(old, CLOSE_CODES.replaced, 'replaced by a newer feed connection');
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ broadcastId: session.broadcastId }); // survives an eviction of this object
    this.current = server;
    this.sendTo(server, { type: 'feed-accepted', broadcastId: session.broadcastId });
    this.broadcasterGoneAt = null;
    this.reader = opusReader(session.format);
    this.head = null; // a new socket always brings a new recorder, with its own OpusHead
    this.early = [];
    this.earlySamples = 0;
    if (!this.source) this.connectSource();
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + FEED_ALARM_MS);
    this.report();
    const headers = session.protocol ? { 'Sec-WebSocket-Protocol': session.protocol } : undefined;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  private broadcaster(): WebSocket | undefined {
    return this.current ?? undefined;
  }

  private sendTo(ws: WebSocket | undefined, message: FeedMessage): void {
    if (ws) sendRaw(ws, JSON.stringify(message));
  }

  private target(): IcecastTarget {
    const session = this.session!;
    const config = readConfig(this.env);
    const password = (this.env as { ICECAST_SOURCE_PASSWORD?: string }).ICECAST_SOURCE_PASSWORD ?? '';
    return {
      url: config.icecastUrl,
      mount: session.mount,
      password,
      ...(session.name === undefined ? {} : { name: session.name }),
    };
  }

  // ---- audio ------------------------------------------------------------------------

  override async webSocketMessage(ws: WebSocket, data: string | ArrayBuffer): Promise<void> {
    // This object lost its state (evicted) while the socket stayed: audio would go nowhere.
    // Closing with a code the broadcaster reconnects on makes it resume the show.
    if (!this.session) return close(ws, CLOSE_CODES.serverRestart, 'the feed restarted; reconnect to resume');
    if (typeof data === 'string' || !this.reader || ws !== this.broadcaster()) return; // audio is binary only
    let events: OpusEvent[];
    try {
      events = this.reader.push(new Uint8Array(data));
    } catch (error) {
      // Not a stream we can read: start over from a fresh recorder, headers first.
      console.error(`feed ${this.session.roomId}: ${error instanceof OpusStreamError ? error.message : String(error)}`);
      this.reader = opusReader(this.session.format);
      this.head = null;
      this.sendTo(ws, { type: 'restart-stream', reason: 'unreadable audio stream' });
      return;
    }
    const packets: Uint8Array[] = [];
    for (const event of events) {
      if (event.type === 'head') {
        this.writeAudio(packets.splice(0));
        this.head = event.head;
      } else if (this.head) packets.push(event.packet);
    }
    this.writeAudio(packets);
  }

  /** Audio of the current broadcaster stream: to Icecast, or kept until the first source is up. */
  private writeAudio(packets: Uint8Array[]): void {
    if (packets.length === 0 || !this.head) return;
    this.stopFill();
    if (!this.source) {
      for (const packet of packets) {
        this.earlySamples += opusPacketSamples(packet);
        this.early.push(packet);
      }
      // Older audio would only put listeners behind live: drop it.
      while (this.earlySamples > MAX_EARLY_MS * 48) this.earlySamples -= opusPacketSamples(this.early.shift()!);
      return;
    }
    const source = this.source;
    this.program ??= new OggOpusChain();
    source.write(this.program.audio(this.head, packets)); // e.g. mono → stereo: a new (chained) stream
    if (this.source === source && this.info.state !== 'live') this.goLive();
  }

  /** The broadcaster is away: keep the source fed with silence in real time, so listeners stay. */
  private startFill(): void {
    if (this.fill || !this.program?.started) return;
    const fill = { from: Date.now(), frames: 0, timer: setInterval(() => this.writeFill(), FILL_STEP_MS) };
    this.fill = fill;
  }

  private writeFill(): void {
    const fill = this.fill;
    if (!fill) return;
    if (!this.source || !this.program) return this.stopFill();
    const due = Math.floor((Date.now() - fill.from) / OPUS_SILENCE_MS) - fill.frames;
    if (due <= 0) return;
    fill.frames += due;
    this.source.write(this.program.silence(due));
  }

  private stopFill(): void {
    if (this.fill) clearInterval(this.fill.timer);
    this.fill = null;
  }

  private goLive(): void {
    const session = this.session!;
    session.since ??= Date.now();
    const { listeners } = this.info;
    this.info = { state: 'live', by: session.by, listenUrl: session.listenUrl, since: session.since, ...(listeners ? { listeners } : {}) };
    this.report();
  }

  // ---- the Icecast source -----------------------------------------------------------

  private async connectSource(): Promise<void> {
    const session = this.session;
    if (this.connecting || !session) return;
    this.connecting = true;
    clearTimeout(this.retryTimer);
    let source: IcecastSource;
    try {
      source = await IcecastSource.open(this.target(), (fault) => this.onFault(source, fault));
    } catch (error) {
      const fault = error instanceof SourceFault ? error : new SourceFault('unreachable', String(error));
      return this.onFault(null, fault);
    } finally {
      this.connecting = false;
    }
    if (this.session !== session) return source.close();
    this.source = source;
    this.program = null; // a new source connection: a new stream, headers first
    this.failures = 0;
    this.failingSince = null;
    const early = this.early;
    this.early = [];
    this.earlySamples = 0;
    this.writeAudio(early);
  }

  private onFault(source: IcecastSource | null, fault: SourceFault): void {
    if (source !== this.source || !this.session) return;
    this.source = null;
    this.program = null;
    this.stopFill();
    console.error(`feed ${this.session.roomId}: Icecast source ${fault.kind}: ${fault.message}`);
    if (fault.kind === 'refused-password') return this.end('error', REASONS.password, 1011);
    const now = Date.now();
    this.failingSince ??= now;
    if (now - this.failingSince > GIVE_UP_MS) return this.end('error', REASONS.gaveUp, 1011);
    this.setReconnecting(FAULT_REASONS[fault.kind]);
    this.failures += 1;
    const backoff = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (this.failures - 1));
    const delay = backoff / 2 + Math.random() * (backoff / 2); // jitter: shows sharing an Icecast do not retry in step
    clearTimeout(this.retryTimer);
    if (this.broadcaster()) this.retryTimer = setTimeout(() => void this.connectSource(), delay);
  }

  private setReconnecting(reason: string): void {
    const session = this.session!;
    const { since, listeners } = this.info;
    this.info = {
      state: since === undefined && this.info.state === 'connecting' ? 'connecting' : 'reconnecting',
      reason,
      by: session.by,
      listenUrl: session.listenUrl,
      ...(since === undefined ? {} : { since }),
      ...(listeners ? { listeners } : {}),
    };
    this.report();
  }

  /** End the source cleanly: its stream's end-of-stream page first. */
  private stopSource(): void {
    clearTimeout(this.retryTimer);
    this.stopFill();
    if (this.source && this.program) this.source.write(this.program.end());
    this.source?.close();
    this.source = null;
    this.program = null;
  }

  // ---- the broadcaster's socket -----------------------------------------------------

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    close(ws, code === 1005 || code === 1006 ? 1000 : code, 'closed');
    this.broadcasterLeft(ws, code === 1000);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.broadcasterLeft(ws, false);
  }

  private broadcasterLeft(ws: WebSocket, stopped: boolean): void {
    if (!this.session || ws !== this.current) return; // replaced by a newer connection
    this.current = null;
    this.reader = null;
    if (stopped) return this.end('idle');
    this.broadcasterGoneAt = Date.now();
    clearTimeout(this.retryTimer);
    this.startFill();
    this.setReconnecting(REASONS.broadcasterDropped);
  }

  // ---- periodic work ----------------------------------------------------------------

  override async alarm(): Promise<void> {
    if (!this.session) return;
    const now = Date.now();
    if (this.broadcasterGoneAt !== null) {
      if (now - this.broadcasterGoneAt > BROADCASTER_WAIT_MS) return this.end('error', REASONS.broadcasterGone);
    }
    const source = this.source;
    source?.checkFlow();
    if (source && this.source === source) {
      try {
        const current = await mountListeners(this.target(), PROBE_TIMEOUT_MS);
        if (current !== undefined && this.session && this.source === source) {
          this.info = { ...this.info, listeners: { current, peak: Math.max(current, this.info.listeners?.peak ?? 0) } };
        }
      } catch (error) {
        // No answer in time, or no connection: a frozen Icecast still takes bytes into socket
        // buffers for a while, and this probe is what notices it within seconds.
        if (this.source === source) source.fail(new SourceFault('stalled', `liveness probe: ${String(error)}`));
      }
    } else if (!this.source && !this.connecting && this.broadcaster() && this.session) {
      void this.connectSource(); // e.g. the retry timer was lost
    }
    if (!this.session) return;
    this.report(Date.now() - this.lastReportAt >= FEED_HEARTBEAT_MS);
    await this.ctx.storage.setAlarm(Date.now() + FEED_ALARM_MS);
  }

  /** Tell the room (and the broadcaster) the state when it changed or a heartbeat is due. */
  private report(heartbeat = false): void {
    const session = this.session;
    if (!session) return;
    const frame = JSON.stringify(this.info);
    if (frame === this.lastReport && !heartbeat) return;
    const changed = frame !== this.lastReport;
    this.lastReport = frame;
    this.lastReportAt = Date.now();
    const info = this.info;
    if (changed) this.sendTo(this.broadcaster(), { type: 'broadcast-updated', broadcast: info });
    this.reports = this.reports
      .then(() => this.room(session.roomId).broadcastChanged(session.broadcastId, info))
      .then((answer) => {
        if (answer.stop && this.session === session && info.state !== 'idle' && info.state !== 'error') this.end('idle');
      })
      .catch((error) => console.error(`feed ${session.roomId}: cannot reach the room`, error));
  }

  private room(roomId: string): DurableObjectStub<Room> {
    const namespace = this.env.ROOMS as DurableObjectNamespace<Room>;
    return namespace.get(namespace.idFromName(roomId));
  }

  /** A host stopped the show (the room calls this at once; its stop flag is the fallback). */
  async stop(broadcastId: string): Promise<void> {
    if (this.session?.broadcastId === broadcastId) return this.end('idle');
    // Evicted meanwhile: no session, but the show's socket may still be open.
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = ws.deserializeAttachment() as { broadcastId?: string } | null;
      if (attachment?.broadcastId === broadcastId) close(ws, 1000, 'broadcast stopped');
    }
  }

  /** The show is over: the source ends, the broadcaster is told, the room hears the last state. */
  private end(state: 'idle' | 'error', reason?: string, closeCode = 1000): void {
    const session = this.session;
    if (!session) return;
    this.stopSource();
    this.info = state === 'idle' ? (reason ? { state, reason } : { state }) : { state, by: session.by, ...(reason ? { reason } : {}) };
    this.report();
    this.session = null;
    for (const ws of this.ctx.getWebSockets()) close(ws, closeCode, reason ?? 'broadcast stopped');
    this.current = null;
    this.lastReport = '';
    void this.ctx.storage.deleteAlarm();
  }
}
