// Real Chromium pages, served by the running Worker, talk WebRTC through the room's
// signaling and the real coturn — relay-only, so the audio must cross the TURN server
// with the credentials the Worker minted. Then the signaling socket drops and resumes
// while the audio keeps flowing.
import { spawnSync } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchChromium } from './chromium';


let browser: Browser;
const workerUrl = () => inject('workerUrl');

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

/** Open the studio origin and join a room with the client library, relay-only. */
async function joinInPage(roomId: string, token: string): Promise<Page> {
  // bypassCSP: the studio page's CSP forbids inline scripts, which this test injects.
  const page = await (await browser.newContext({ bypassCSP: true })).newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  await page.goto(`${workerUrl()}/`);
  // A module script loads the client library as another studio would (its bundled ES module).
  await page.addScriptTag({
    type: 'module',
    content: `import { StudioClient, AudioMesh, Broadcaster, ProgramMix } from '/lib/openstudio.js';
      Object.assign(window, { StudioClient, AudioMesh, Broadcaster, ProgramMix });`,
  });
  await page.waitForFunction(() => 'AudioMesh' in window);
  await page.evaluate(
    async ({ roomId, token }) => {
      const w = window as any;
      const { StudioClient, AudioMesh } = w;
      w.states = {};
      w.client = new StudioClient({ url: `${location.origin.replace(/^http/, 'ws')}/rooms/${roomId}/ws`, token });
      const localStream = await navigator.mediaDevices.getUserMedia({ audio: true });
      w.mesh = new AudioMesh(w.client, {
        localStream,
        iceTransportPolicy: 'relay',
        onState: (peerId: string, state: string) => (w.states[peerId] = state),
        onTrack: (_peerId: string, stream: MediaStream) => {
          const audio = document.createElement('audio');
          audio.autoplay = true;
          audio.srcObject = stream;
          document.body.append(audio);
        },
      });
      w.welcomes = [];
      w.client.on('welcome', (m: unknown) => w.welcomes.push(m));
      w.updates = [];
      w.client.on('participant-updated', (m: unknown) => w.updates.push(m));
      w.broadcasts = [];
      w.client.on('broadcast-updated', (m: any) => w.broadcasts.push(m.broadcast));
      w.localStream = localStream;
      await w.client.connect();
    },
    { roomId, token },
  );
  return page;
}

/** Inbound audio packets and the type of the selected local candidate, from getStats. */
async function mediaStats(page: Page, peerId: string) {
  return page.evaluate(async (peerId) => {
    const pc: RTCPeerConnection = (window as any).mesh.peers.get(peerId);
    const stats = await pc.getStats();
    let packetsReceived = 0;
    let localCandidateType = '';
    const byId = new Map<string, any>();
    stats.forEach((s: any) => byId.set(s.id, s));
    stats.forEach((s: any) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') packetsReceived += s.packetsReceived ?? 0;
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = byId.get(s.selectedCandidatePairId);
        localCandidateType = byId.get(pair?.localCandidateId)?.candidateType ?? '';
      }
    });
    return { packetsReceived, localCandidateType, state: pc.connectionState };
  }, peerId);
}

describe('WebRTC through the signaling and the real coturn (Chromium)', () => {
  it('two pages connect relay-only, audio flows, and survives a signaling drop', { timeout: 60_000 }, async () => {
    const created = await fetch(`${workerUrl()}/rooms`, {
      method: 'POST',
      headers: { 'CF-Connecting-IP': 'browser-test' },
      body: '{"name":"browser test"}',
    });
    expect(created.status).toBe(201);
    const room = (await created.json()) as { roomId: string; tokens: Record<string, string> };

    const host = await joinInPage(room.roomId, room.tokens.host!);
    const caller = await joinInPage(room.roomId, room.tokens.caller!);
    const hostId = await host.evaluate(() => (window as any).client.peerId as string);
    const callerId = await caller.evaluate(() => (window as any).client.peerId as string);

    // The caller (newcomer) offered; both sides reach `connected` over the TURN relay.
    await host.waitForFunction((id) => (window as any).states[id] === 'connected', callerId, { timeout: 20_000 });
    await caller.waitForFunction((id) => (window as any).states[id] === 'connected', hostId, { timeout: 20_000 });
    await expect.poll(async () => (await mediaStats(host, callerId)).packetsReceived, { timeout: 10_000 }).toBeGreaterThan(20);
    expect((await mediaStats(host, callerId)).localCandidateType).toBe('relay');
    expect((await mediaStats(caller, hostId)).localCandidateType).toBe('relay');

    // Drop the caller's signaling socket (not a leave): the client resumes with its peer id,
    // and the peer-to-peer audio never stopped.
    const before = (await mediaStats(host, callerId)).packetsReceived;
    await caller.evaluate(() => (window as any).client.socket.close(4000, 'network blip'));
    await caller.waitForFunction(() => (window as any).welcomes.length === 2, null, { timeout: 10_000 });
    const resumed = await caller.evaluate(() => (window as any).welcomes[1]);
    expect(resumed).toMatchObject({ resumed: true, peerId: callerId });
    await expect.poll(async () => (await mediaStats(host, callerId)).packetsReceived, { timeout: 10_000 }).toBeGreaterThan(before + 20);
    expect((await mediaStats(host, callerId)).state).toBe('connected');

    // Signaling still works after the resume: a mute reaches the host.
    await caller.evaluate((id) => (window as any).client.mute(id, true), callerId);
    await host.waitForFunction(
      (id) => (window as any).updates.some((u: any) => u.participant.peerId === id && u.participant.muted && u.participant.connected),
      callerId,
      { timeout: 5_000 },
    );
    await host.close();
    await caller.close();
  });

  it('the host page mixes and broadcasts the program; Icecast listeners hear Opus', { timeout: 60_000 }, async () => {
    const created = await fetch(`${workerUrl()}/rooms`, {
      method: 'POST',
      headers: { 'CF-Connecting-IP': 'browser-broadcast-test' },
      body: '{"name":"browser broadcast"}',
    });
    const room = (await created.json()) as { roomId: string; tokens: Record<string, string> };
    const host = await joinInPage(room.roomId, room.tokens.host!);
    const format = await host.evaluate(async (roomId) => {
      const w = window as any;
      const mix = new w.ProgramMix();
      mix.add(w.localStream);
      await mix.context.resume();
      w.broadcaster = new w.Broadcaster({ url: `${location.origin.replace(/^http/, 'ws')}/rooms/${roomId}/broadcast`, token: w.client.options.token });
      await w.broadcaster.start(mix.stream);
      return w.broadcaster.recorder.mimeType as string;
    }, room.roomId);
    expect(format).toMatch(/opus/);
    await host.waitForFunction(() => (window as any).broadcasts.some((b: any) => b.state === 'live'), null, { timeout: 10_000 });
    const listenUrl = await host.evaluate(() => (window as any).broadcasts.find((b: any) => b.state === 'live').listenUrl as string);
    expect(listenUrl).toMatch(new RegExp(`^${inject('icecastUrl')}/show-[A-Za-z0-9_-]{22}\\.(ogg|webm)$`));

    // Listen for three seconds, as a listener's player would.
    const listener = await fetch(listenUrl, { signal: AbortSignal.timeout(3_000) });
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of listener.body as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
    } catch {
      // the timeout ends the listening
    }
    const recording = Buffer.concat(chunks);
    expect(recording.length).toBeGreaterThan(5_000);
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', '-'], {
      input: recording,
      encoding: 'utf8',
    });
    expect(probe.stdout.trim()).toBe('opus');
    const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', '-', '-f', 'null', '-'], { input: recording, encoding: 'utf8' });
    expect(decode.status).toBe(0);

    await host.evaluate(() => (window as any).broadcaster.stop());
    await host.waitForFunction(() => (window as any).broadcasts.at(-1)?.state === 'idle', null, { timeout: 10_000 });
    await host.close();
  });
});
