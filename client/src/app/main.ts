// The studio page: create a room and share its invite links, or join one from a link
// (`#room=<id>&token=<token>`), talk over WebRTC, and moderate as host or producer.
import { AudioMesh, Broadcaster, ProgramMix, StudioClient } from '../lib';
import type { Participant } from '../lib';

const $ = (id: string) => document.getElementById(id) as HTMLElement;

function inviteLink(roomId: string, token: string): string {
  return `${location.origin}/#room=${encodeURIComponent(roomId)}&token=${encodeURIComponent(token)}`;
}

$('create').addEventListener('click', async () => {
  const lobby = ($('lobby') as HTMLInputElement).checked;
  const response = await fetch('/rooms', { method: 'POST', body: JSON.stringify({ lobby }) });
  const body = await response.json();
  if (!response.ok) return void ($('invites').textContent = body.error?.message ?? 'could not create a room');
  $('invites').replaceChildren(
    ...Object.entries(body.tokens as Record<string, string>).map(([role, token]) => {
      const item = document.createElement('li');
      const link = inviteLink(body.roomId, token);
      const strong = document.createElement('strong');
      strong.textContent = role;
      const anchor = document.createElement('a');
      anchor.href = link;
      anchor.textContent = link;
      item.append(strong, ': ', anchor);
      return item;
    }),
  );
});

async function join() {
  const params = new URLSearchParams(location.hash.slice(1));
  const roomId = params.get('room');
  const token = params.get('token');
  if (!roomId || !token) return;
  $('start').hidden = true;
  $('studio').hidden = false;
  const wsUrl = `${location.origin.replace(/^http/, 'ws')}/rooms/${encodeURIComponent(roomId)}/ws`;
  const client = new StudioClient({ url: wsUrl, token });
  const localStream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const people = new Map<string, Participant>();

  const render = () => {
    const me = client.welcome;
    $('status').textContent = me ? `You are ${me.role} ${me.peerId}${me.waiting ? ' — waiting to be admitted' : ''}` : 'connecting…';
    $('participants').replaceChildren(
      ...[...people.values()].map((p) => {
        const item = document.createElement('li');
        item.textContent = `${p.name ?? p.peerId} (${p.role})${p.muted ? ' muted' : ''}${p.connected ? '' : ' reconnecting'}${p.waiting ? ' waiting' : ''}`;
        if (me && me.role !== 'caller') {
          const actions: [string, () => void][] = [
            [p.muted ? 'Unmute' : 'Mute', () => client.mute(p.peerId, !p.muted)],
            ['Kick', () => client.kick(p.peerId)],
          ];
          if (p.waiting) actions.unshift(['Admit', () => client.admit(p.peerId)]);
          for (const [label, action] of actions) {
            const button = document.createElement('button');
            button.textContent = label;
            button.onclick = action;
            item.append(button);
          }
        }
        return item;
      }),
    );
  };

  // The program: this page's microphone plus everyone it hears.
  const mix = new ProgramMix();
  mix.add(localStream);
  new AudioMesh(client, {
    localStream,
    onTrack: (peerId, stream) => {
      mix.add(stream);
      const audio = document.createElement('audio');
      audio.autoplay = true;
      audio.srcObject = stream;
      audio.dataset.peer = peerId;
      $('audio').append(audio);
    },
  });
  client.on('welcome', (w) => {
    people.clear();
    for (const p of w.participants) people.set(p.peerId, p);
    render();
  });
  client.on('admitted', (m) => {
    for (const p of m.participants) people.set(p.peerId, p);
    render();
  });
  client.on('peer-joined', (m) => (people.set(m.participant.peerId, m.participant), render()));
  client.on('participant-updated', (m) => {
    if (m.participant.peerId === client.peerId) {
      for (const track of localStream.getAudioTracks()) track.enabled = !m.participant.muted;
      $('mic').textContent = m.participant.muted ? 'Unmute me' : 'Mute me';
    } else people.set(m.participant.peerId, m.participant);
    render();
  });
  client.on('peer-left', (m) => (people.delete(m.peerId), render()));
  client.on('error', (m) => ($('status').textContent = `${m.code}: ${m.message}`));
  client.on('close', (c) => c.final && ($('status').textContent = `disconnected (${c.code} ${c.reason})`));

  client.on('broadcast-updated', (m) => {
    const b = m.broadcast;
    const listening = b.listeners ? ` (${b.listeners.current} listening, peak ${b.listeners.peak})` : '';
    $('onair').textContent = b.state === 'live' ? `ON AIR — ${b.listenUrl}${listening}` : b.reason ? `${b.state}: ${b.reason}` : b.state;
  });
  let broadcaster: Broadcaster | null = null;
  $('live').addEventListener('click', async () => {
    if (broadcaster) {
      broadcaster.stop();
      broadcaster = null;
      $('live').textContent = 'Go live';
      return;
    }
    await mix.context.resume();
    const mine: Broadcaster = new Broadcaster({
      url: wsUrl.replace(/\/ws$/, '/broadcast'),
      token,
      // It reconnects by itself; once it has stopped for good (stopped by a host, refused,
      // given up) the button offers to go live again.
      onStatus: (status) => {
        if ((status.state === 'stopped' || status.state === 'failed') && broadcaster === mine) {
          broadcaster = null;
          $('live').textContent = 'Go live';
          if (status.reason) $('status').textContent = status.reason;
        }
      },
    });
    broadcaster = mine;
    $('live').textContent = 'Stop broadcast';
    await mine.start(mix.stream).catch(() => {});
  });

  let muted = false;
  $('mic').addEventListener('click', () => client.mute(client.peerId as string, (muted = !muted)));
  $('leave').addEventListener('click', () => client.leave());
  const welcome = await client.connect().catch((error: Error) => void ($('status').textContent = error.message));
  if (welcome && welcome.role !== 'caller') $('live').hidden = false;
  render();
}

void join();
