// The studio page: create a show (and land in its console as host), or open an invite link
// (`#room=<id>&token=<token>`), check the microphone, and join. `?relay` forces TURN.
import { HttpError, ProgramMix, UploadQueue, createRoom, recordingState } from '../lib';
import type { CreatedRoom, Role } from '../lib';
import { byId, h, showLevel } from './dom';
import { Microphone } from './microphone';
import { SENTENCES } from './sentences';
import { Studio, inviteLink, recordingSentence } from './studio';

const relay = new URLSearchParams(location.search).has('relay');
const microphone = new Microphone();
// At once, on every page of this origin: chunks an earlier page recorded and kept upload now.
const uploads = new UploadQueue();
let mix: ProgramMix | null = null;
let studio: Studio | null = null;
let checkTimer: ReturnType<typeof setInterval> | undefined;

function notice(text: string): void {
  byId('notice').textContent = text;
  byId('notice').hidden = text === '';
}

/** Open the microphone and show its level before joining (the microphone check). */
async function openMicrophone(): Promise<boolean> {
  try {
    await microphone.open();
  } catch {
    notice(SENTENCES.microphone);
    return false;
  }
  mix ??= new ProgramMix();
  void mix.context.resume();
  // Once in the console, the studio attaches the microphone itself.
  if (!studio && microphone.stream) mix.addChannel('me', microphone.stream);
  performance.mark('openstudio:microphone');
  await listDevices();
  return true;
}

async function listDevices(): Promise<void> {
  const select = byId<HTMLSelectElement>('microphone');
  const devices = await microphone.devices();
  select.replaceChildren(
    ...devices.map((d, i) =>
      h('option', { value: d.deviceId, selected: d.deviceId === microphone.deviceId }, d.label || `Microphone ${i + 1}`),
    ),
  );
}

function startMicCheck(): void {
  clearInterval(checkTimer);
  checkTimer = setInterval(() => {
    const channel = mix?.channel('me');
    if (!channel || studio) return clearInterval(checkTimer);
    const { level, peak } = channel.meter.read();
    showLevel(byId('my-level'), level, peak);
  }, 100);
}

function wireMicPanel(): void {
  byId<HTMLSelectElement>('microphone').addEventListener('change', async (event) => {
    microphone.deviceId = (event.target as HTMLSelectElement).value;
    await reopen();
  });
  byId<HTMLInputElement>('studio-mode').addEventListener('change', async (event) => {
    microphone.studioMode = (event.target as HTMLInputElement).checked;
    await reopen();
  });
  byId('mute-me').addEventListener('click', () => studio?.toggleSelfMute());
}

async function reopen(): Promise<void> {
  try {
    await microphone.open();
    if (!studio && microphone.stream) mix?.addChannel('me', microphone.stream);
    performance.mark('openstudio:microphone');
  } catch {
    notice(SENTENCES.microphone);
  }
}

function enterConsole(options: { roomId: string; token: string; name: string; invites?: Partial<Record<Role, string>> }): void {
  if (!mix || studio) return;
  byId('create-view').hidden = true;
  byId('join-view').hidden = true;
  byId('self-controls').hidden = false;
  byId('panels').prepend(byId('mic-panel'));
  studio = new Studio({ ...options, microphone, mix, relay, uploads });
  byId('go-live').addEventListener('click', () => void studio?.toggleBroadcast());
  byId('record').addEventListener('click', () => studio?.toggleRecording());
  byId('talkback-all').addEventListener('click', () => studio?.show.toggleTalkback(null));
  byId('mute-all').addEventListener('click', () => studio?.show.muteAllCallers());
  byId('staff-chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const field = byId<HTMLInputElement>('staff-message');
    studio?.show.sendMessage('staff', field.value);
    field.value = '';
  });
  byId('leave').addEventListener('click', () => studio?.leaveShow());
  byId('end-show').addEventListener('click', () => studio?.endShow());
  for (const role of ['producer', 'caller'] as const) {
    byId(`copy-${role}`).addEventListener('click', async () => {
      const link = byId<HTMLInputElement>(`${role}-link`).value;
      await navigator.clipboard?.writeText(link).catch(() => {});
      byId(`${role}-link-note`).textContent = 'Copied.';
    });
    byId(`new-${role}`).addEventListener('click', () => void studio?.newInvite(role));
  }
  void studio.start();
}

function showCreate(): void {
  byId('create-view').hidden = false;
  byId('mic-panel').hidden = true;
  byId('create-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = byId<HTMLInputElement>('show-name').value.trim();
    const hostName = byId<HTMLInputElement>('host-name').value.trim() || 'Host';
    const lobby = byId<HTMLInputElement>('screen-callers').checked;
    // Inside the click: the browser lets the audio start. Made once: a try that failed leaves
    // it for the next one (every AudioContext holds audio threads until closed).
    mix ??= new ProgramMix();
    void mix.context.resume();
    let created: CreatedRoom;
    try {
      created = await createRoom({ name, lobby });
    } catch (error) {
      return notice(`The show could not be created: ${error instanceof HttpError ? error.message : 'the studio could not be reached'}.`);
    }
    if (!(await openMicrophone())) return;
    byId('mic-panel').hidden = false;
    // The host's own link, so a reload comes back to this console.
    history.replaceState(null, '', inviteLink(created.roomId, created.tokens.host));
    enterConsole({ roomId: created.roomId, token: created.tokens.host, name: hostName, invites: created.tokens });
  });
}

function showJoin(roomId: string, token: string): void {
  byId('join-view').hidden = false;
  byId('join-mic').append(byId('mic-panel'));
  const nameField = byId<HTMLInputElement>('your-name');
  nameField.value = localStorage.getItem('openstudio:name') ?? '';
  performance.mark('openstudio:join-form');
  // Consent: a caller knows the show is being recorded before pressing Join show.
  void recordingState(roomId, token)
    .then(({ recording }) => {
      if (!studio) byId('recording-status').textContent = recordingSentence(recording, true);
    })
    .catch(() => {}); // the join itself says what is wrong with the link
  void openMicrophone().then((ok) => {
    if (ok) startMicCheck();
  });
  byId('join-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = nameField.value.trim();
    if (!name) return;
    localStorage.setItem('openstudio:name', name);
    // Join at once: a microphone still opening comes into the show when it is ready (and
    // one that cannot open leaves the caller listening only).
    mix ??= new ProgramMix(); // inside the click: the browser lets the audio start
    enterConsole({ roomId, token, name });
  });
}

wireMicPanel();
const params = new URLSearchParams(location.hash.slice(1));
const roomId = params.get('room');
const token = params.get('token');
if (roomId && token) showJoin(roomId, token);
else showCreate();
