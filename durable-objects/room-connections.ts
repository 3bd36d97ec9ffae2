/**
 * The room's live sockets, in the spirit of partyserver's connection manager: which socket
 * is which peer's now, what each remembers through hibernation (its attachment), and its
 * budgets in memory. Hibernation API: sockets outlive the object's memory and are found
 * again through `ctx.getWebSockets()` and their attachments. No protocol decisions here.
 */
import { close, TokenBucket } from '../server/websocket';
import { CLOSE_CODES } from '../protocol/messages';

/** What a hibernated socket remembers about itself (kept by the runtime, ≤ 2 KiB). */
interface SocketAttachment {
  peerId: string;
  /** When the room last heard from this socket (accept or a frame it handled), epoch ms. */
  seenAt: number;
}

/** A socket's memory: its attachment, its frame budget and its budget for state changes. */
export interface Connection {
  attachment: SocketAttachment;
  /** When the room last heard from this socket, exactly (the attachment keeps it coarsely). */
  heardAt: number;
  bucket: TokenBucket;
  /** Name and mute changes: each is stored and told to everyone, so they have a budget of their own. */
  changes: TokenBucket;
}

export interface ConnectionBudgets {
  perSecond: number;
  burst: number;
  changesPerSecond: number;
  changeBurst: number;
  /** How stale a socket's last-heard time may be in its attachment (the silence check's slack). */
  seenRefreshMs: number;
}

export class Connections {
  private readonly byPeer = new Map<string, WebSocket>();
  private readonly memory = new WeakMap<WebSocket, Connection>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly budgets: ConnectionBudgets,
  ) {}

  /** After a restart: the sockets of peers still known, found again; any other socket is closed. */
  rebuild(isPeer: (peerId: string) => boolean): void {
    this.byPeer.clear();
    for (const ws of this.ctx.getWebSockets()) {
      const attachment = ws.deserializeAttachment() as SocketAttachment | null;
      if (attachment && isPeer(attachment.peerId)) this.byPeer.set(attachment.peerId, ws);
      else close(ws, CLOSE_CODES.forbidden, 'session no longer exists');
    }
  }

  /** Accept a hibernatable socket as `peerId`'s current one; the response completes the upgrade. */
  accept(peerId: string, protocol: string | null): Response {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [peerId]);
    server.serializeAttachment({ peerId, seenAt: Date.now() } satisfies SocketAttachment);
    this.byPeer.set(peerId, server);
    const headers = protocol ? { 'Sec-WebSocket-Protocol': protocol } : undefined;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /** The peer's current socket. */
  socketOf(peerId: string): WebSocket | undefined {
    return this.byPeer.get(peerId);
  }

  /** The peer has no current socket any more (it left, dropped or was replaced). */
  forget(peerId: string): void {
    this.byPeer.delete(peerId);
  }

  /** Every peer with a current socket. */
  entries(): IterableIterator<[string, WebSocket]> {
    return this.byPeer.entries();
  }

  sockets(): IterableIterator<WebSocket> {
    return this.byPeer.values();
  }

  /** A socket's memory (made on first use after a restart), or undefined for a socket that never was a peer's. */
  of(ws: WebSocket): Connection | undefined {
    let connection = this.memory.get(ws);
    if (!connection) {
      const attachment = ws.deserializeAttachment() as SocketAttachment | null;
      if (!attachment) return undefined;
      attachment.seenAt ??= Date.now(); // a socket accepted before the room kept this
      const { perSecond, burst, changesPerSecond, changeBurst } = this.budgets;
      connection = {
        attachment,
        heardAt: attachment.seenAt,
        bucket: new TokenBucket(perSecond, burst),
        changes: new TokenBucket(changesPerSecond, changeBurst),
      };
      this.memory.set(ws, connection);
    }
    return connection;
  }

  /** The peer whose current socket this is, if it still is. */
  currentPeerOf(ws: WebSocket): string | undefined {
    const peerId = this.of(ws)?.attachment.peerId;
    return peerId !== undefined && this.byPeer.get(peerId) === ws ? peerId : undefined;
  }

  /**
   * Remember that this socket is alive, in its attachment so hibernation keeps it: at most
   * every `refreshMs` (a quarter of the silence timeout, at most 10 s), not on every frame.
   */
  heardFrom(ws: WebSocket, connection: Connection): void {
    const now = Date.now();
    connection.heardAt = now;
    if (now - connection.attachment.seenAt < this.budgets.seenRefreshMs) return;
    connection.attachment.seenAt = now;
    ws.serializeAttachment(connection.attachment);
  }

  /** Last sign of life from a socket: a frame the room handled, or a ping the runtime answered. */
  lastHeard(ws: WebSocket): number {
    const heardAt = this.of(ws)?.heardAt ?? 0;
    return Math.max(heardAt, this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? 0);
  }
}
