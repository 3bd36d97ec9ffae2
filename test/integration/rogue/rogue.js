// A caller that ignores a moderator's mute: an attacker's own page on the studio's origin,
// built on the published client library (/lib/openstudio.js), sending an oscillator as its
// microphone and never turning it off. Served by the test under the studio's strict CSP.
// Settings come from the URL: #room=…&token=…&name=…&hz=…
import { AudioMesh, StudioClient } from '/lib/openstudio.js';

const params = new URLSearchParams(location.hash.slice(1));
const context = new AudioContext();
const tone = new OscillatorNode(context, { frequency: Number(params.get('hz')) });
const out = context.createMediaStreamDestination();
tone.connect(new GainNode(context, { gain: 0.125 })).connect(out);
tone.start();
const client = new StudioClient({
  url: `${location.origin.replace(/^http/, 'ws')}/rooms/${params.get('room')}/ws`,
  token: params.get('token'),
});
new AudioMesh(client, { localTrack: out.stream.getAudioTracks()[0], iceTransportPolicy: 'relay' });
client.on('welcome', () => client.setName(params.get('name')));
client.connect().then(
  () => (document.body.dataset.state = 'joined'),
  (error) => (document.body.dataset.state = `refused: ${error.message}`),
);
