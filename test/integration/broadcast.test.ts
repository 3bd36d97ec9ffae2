// The program feed end to end: a host streams Ogg/Opus over the broadcast WebSocket, the
// Worker pushes it into the real Icecast as the source, and a listener hears audio that
// ffmpeg decodes. The room sees the state; callers cannot broadcast.
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';

const http = () => inject('workerUrl');
const ws = () => http().replace(/^http/, 'ws');
const ip = () => `broadcast-${Math.random().toString(36).slice(2)}`;

/** Four seconds of a 440 Hz sine as Ogg/Opus, the way a browser's MediaRecorder sends it. */
function oggOpus(seconds: number): Buffer {
  const out = spawnSync(
    'ffmpeg',
    ['-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`, '-c:a', 'libopus', '-b:a', '64k', '-f', 'ogg', '-'],
    { maxBuffer: 10 * 1024 * 1024 },
  );
  if (out.status !== 0) throw new Error(`ffmpeg failed: ${out.stderr}`);
  return out.stdout;
}

function opened(url: string): Promise<{ socket: WebSocket; frames: any[]; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { 'CF-Connecting-IP': ip() } });
    const frames: any[] = [];
    socket.on('message', (data, binary) => !binary && frames.push(JSON.parse(String(data))));
    const closed = new Promise<number>((r) => socket.on('close', (code) => r(code)));
    socket.on('open', () => resolve({ socket, frames, closed }));
    socket.on('error', reject);
  });
}

function mountTaken(): boolean {
  const status = spawnSync('curl', ['-s', `${inject('icecastUrl')}/status-json.xsl`], { encoding: 'utf8' }).stdout;
  return status.includes('/live.ogg');
}

async function until<T>(check: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('broadcast to Icecast through the Worker', () => {
  it('a host streams the program; listeners hear decodable Ogg/Opus; the room sees the state', { timeout: 60_000 }, async () => {
    await until(() => (mountTaken() ? undefined : true), 'the mount to be free of earlier tests');
    const created = await fetch(`${http()}/rooms`, { method: 'POST', headers: { 'CF-Connecting-IP': ip() }, body: '{"name":"Drive time"}' });
    const room = (await created.json()) as { roomId: string; tokens: Record<string, string> };
    const signaling = await opened(`${ws()}/rooms/${room.roomId}/ws?token=${room.tokens.caller}`);
    const welcome = await until(() => signaling.frames.find((f) => f.type === 'welcome'), 'welcome');
    expect(welcome.broadcast).toEqual({ state: 'idle' });

    // A caller may not broadcast.
    const refused = await opened(`${ws()}/rooms/${room.roomId}/broadcast?token=${room.tokens.caller}`);
    expect(await until(() => refused.frames[0], 'error')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await refused.closed).toBe(4003);

    const audio = oggOpus(5);
    const slices = 20;
    const sliceBytes = Math.ceil(audio.length / slices);
    const feed = await opened(`${ws()}/rooms/${room.roomId}/broadcast?token=${room.tokens.host}&format=ogg`);
    // The first slice (the Opus headers) goes out at once, as MediaRecorder's would, without
    // waiting for Icecast's answer: the Worker must keep it rather than drop it.
    feed.socket.send(audio.subarray(0, sliceBytes));
    const live = await until(
      () => signaling.frames.find((f) => f.type === 'broadcast-updated' && f.broadcast.state === 'live'),
      'broadcast live',
    );
    expect(live.broadcast).toMatchObject({ by: 'host', listenUrl: `${inject('icecastUrl')}/live.ogg` });
    expect(JSON.stringify(signaling.frames)).not.toContain(inject('icecastSourcePassword'));

    // Only one program at a time.
    const second = await opened(`${ws()}/rooms/${room.roomId}/broadcast?token=${room.tokens.producer}`);
    expect(await until(() => second.frames[0], 'error')).toMatchObject({ code: 'broadcast-busy' });

    // Stream the rest in real time (250 ms slices, like MediaRecorder) while a listener records.
    const listener = spawn('curl', ['-s', '--max-time', '4', live.broadcast.listenUrl]);
    const heard: Buffer[] = [];
    listener.stdout.on('data', (chunk: Buffer) => heard.push(chunk));
    const listened = new Promise((r) => listener.on('close', r));
    for (let i = 1; i < slices; i++) {
      feed.socket.send(audio.subarray(i * sliceBytes, (i + 1) * sliceBytes));
      await new Promise((r) => setTimeout(r, 200));
    }
    await listened;
    const recording = Buffer.concat(heard);
    expect(recording.length).toBeGreaterThan(10_000);
    const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', '-', '-f', 'null', '-'], { input: recording, encoding: 'utf8' });
    expect(decode.status).toBe(0);
    expect(decode.stderr).toBe('');
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', '-'], {
      input: recording,
      encoding: 'utf8',
    });
    expect(probe.stdout.trim()).toBe('opus');

    // Closing the feed ends the broadcast; the room sees it go idle.
    feed.socket.close(1000);
    await until(() => signaling.frames.find((f) => f.type === 'broadcast-updated' && f.broadcast.state === 'idle'), 'idle');
    // ...and Icecast lets go of the mount.
    await until(() => (mountTaken() ? undefined : true), 'the mount to be free');
    signaling.socket.close();
  });

  it('reports an Icecast refusal as an error state (mount already taken by another source)', { timeout: 30_000 }, async () => {
    // Another source holds the mount: Icecast refuses ours with 403.
    const squatter = spawn('ffmpeg', [
      '-v', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=220:duration=20', '-c:a', 'libopus', '-f', 'ogg',
      '-content_type', 'audio/ogg', `icecast://source:${inject('icecastSourcePassword')}@${new URL(inject('icecastUrl')).host}/live.ogg`,
    ]);
    try {
      await until(() => (mountTaken() ? true : undefined), 'squatter on the mount');
      const created = await fetch(`${http()}/rooms`, { method: 'POST', headers: { 'CF-Connecting-IP': ip() } });
      const room = (await created.json()) as { roomId: string; tokens: Record<string, string> };
      const signaling = await opened(`${ws()}/rooms/${room.roomId}/ws?token=${room.tokens.host}`);
      const feed = await opened(`${ws()}/rooms/${room.roomId}/broadcast?token=${room.tokens.host}`);
      feed.socket.send(oggOpus(1));
      const failed = await until(
        () => signaling.frames.find((f) => f.type === 'broadcast-updated' && f.broadcast.state === 'error'),
        'error state',
      );
      expect(failed.broadcast.error).toMatch(/busy|403/);
      expect(await feed.closed).toBe(1011);
      signaling.socket.close();
    } finally {
      squatter.kill('SIGKILL');
    }
  });

  it('a host stops a producer’s broadcast from the signaling socket', { timeout: 30_000 }, async () => {
    await until(() => (mountTaken() ? undefined : true), 'the mount to be free of earlier tests');
    const created = await fetch(`${http()}/rooms`, { method: 'POST', headers: { 'CF-Connecting-IP': ip() } });
    const room = (await created.json()) as { roomId: string; tokens: Record<string, string> };
    const host = await opened(`${ws()}/rooms/${room.roomId}/ws?token=${room.tokens.host}`);
    const feed = await opened(`${ws()}/rooms/${room.roomId}/broadcast?token=${room.tokens.producer}`);
    feed.socket.send(oggOpus(1));
    const live = await until(() => host.frames.find((f) => f.type === 'broadcast-updated' && f.broadcast.state === 'live'), 'live');
    expect(live.broadcast.by).toBe('producer');
    host.socket.send(JSON.stringify({ type: 'stop-broadcast' }));
    // The feed's next heartbeat (every 5 s) learns of the stop.
    expect(await feed.closed).toBe(1000);
    await until(() => host.frames.find((f) => f.type === 'broadcast-updated' && f.broadcast.state === 'idle'), 'idle');
    await until(() => (mountTaken() ? undefined : true), 'the mount to be free');
    host.socket.close();
  });
});
