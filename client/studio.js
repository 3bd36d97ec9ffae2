// The studio page: create a room and share its invite links, or join one from a link
// (`#room=<id>&token=<token>`), talk over WebRTC, and moderate as host or producer.
import { StudioClient } from './studio-client.js';
import { AudioMesh } from './mesh.js';
import { Broadcaster, ProgramMix } from './broadcaster.js';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {string} roomId @param {string} token */
function inviteLink(roomId, token) {
  return `${location.origin}/#room=${encodeURIComponent(roomId)}&token=${encodeURIComponent(token)}`;
}

$('create').addEventListener('click', async () => {
  const lobby = /** @type {HTMLInputElement} */ ($('lobby')).checked;
  const response = await fetch('/rooms', { method: 'POST', body: JSON.stringify({ lobby }) });
  const body = await response.json();
  if (!response.ok) return void ($('invites').textContent = body.error?.message ?? 'could not create a room');
  $('invites').replaceChildren(
    ...Object.entries(body.tokens).map(([role, token]) => {
      const item = document.createElement('li');
      const link = inviteLink(body.roomId, /** @type {string} */ (token));
      item.innerHTML = `<strong>${role}</strong>: <a></a>`;
      const anchor = /** @type {HTMLAnchorElement} */ (item.querySelector('a'));
      anchor.href = link;
      anchor.textContent = link;
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
  /** @type {Map<string, import('../protocol/messages').Participant>} */
  const people = new Map();

  const render = () => {
    const me = client.welcome;
    $('status').textContent = me ? `You are ${me.role} ${me.peerId}${me.waiting ? ' — waiting to be admitted' : ''}` : 'connecting…';
    $('participants').replaceChildren(
      ...[...people.values()].map((p) => {
        const item = document.createElement('li');
        item.textContent = `${p.name ?? p.peerId} (${p.role})${p.muted ? ' muted' : ''}${p.connected ? '' : ' reconnecting'}${p.waiting ? ' waiting' : ''}`;
        if (me && me.role !== 'caller') {
          /** @type {[string, () => void][]} */
          const actions = [
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
    $('onair').textContent = b.state === 'live' ? `ON AIR — ${b.listenUrl}` : b.state === 'error' ? `broadcast error: ${b.error}` : b.state;
  });
  /** @type {Broadcaster | null} */
  let broadcaster = null;
  $('live').addEventListener('click', async () => {
    if (broadcaster) {
      broadcaster.stop();
      broadcaster = null;
      $('live').textContent = 'Go live';
      return;
    }
    await mix.context.resume();
    broadcaster = new Broadcaster({ url: wsUrl.replace(/\/ws$/, '/broadcast'), token });
    await broadcaster.start(mix.stream);
    $('live').textContent = 'Stop broadcast';
  });

  let muted = false;
  $('mic').addEventListener('click', () => client.mute(/** @type {string} */ (client.peerId), (muted = !muted)));
  $('leave').addEventListener('click', () => client.leave());
  const welcome = await client.connect().catch((error) => void ($('status').textContent = String(error.message)));
  if (welcome && welcome.role !== 'caller') $('live').hidden = false;
  render();
}

void join();
