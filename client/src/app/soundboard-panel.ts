// The Soundboard panel (staff): "Add sound", one pad per sound (Play, Stop, its level, Loop,
// Delete, and whether it sounds now), and the `Sounds` strip (its meter and its program
// fader). Pads are updated in place, never rebuilt: a press lands on the button it began on.
import { HttpError } from '../lib';
import type { SoundInfo } from '../lib';
import { byId, h, meterElement, showLevel } from './dom';
import { clockText } from './recordings-panel';
import type { Show } from './show';

/** Level changes sent while a slider moves: a few a second (the room's change budget), and the last one always. */
const LEVEL_SEND_MS = 400;

interface Pad {
  element: HTMLElement;
  title: HTMLElement;
  state: HTMLElement;
  play: HTMLButtonElement;
  stop: HTMLButtonElement;
  level: HTMLInputElement;
  loop: HTMLInputElement;
  remove: HTMLButtonElement;
  /** Level changes waiting to be sent, and when the last went. */
  pendingLevel: number | null;
  sentAt: number;
  timer?: ReturnType<typeof setTimeout>;
}

export class SoundboardPanel {
  private pads = new Map<string, Pad>();
  private meter: HTMLElement;

  constructor(private show: Show) {
    const input = byId<HTMLInputElement>('add-sound');
    input.addEventListener('change', () => {
      const files = [...(input.files ?? [])];
      input.value = '';
      void this.add(files);
    });
    const fader = byId<HTMLInputElement>('sounds-fader');
    fader.addEventListener('input', () => {
      const value = Number(fader.value);
      show.soundsChannel.setFader(value / 100);
      fader.setAttribute('aria-valuetext', `${value} %`);
    });
    this.meter = meterElement('Sounds level');
    byId('sounds-meter').replaceWith(this.meter);
    show.on('sounds', () => this.render());
  }

  private say(text: string): void {
    byId('sound-status').textContent = text;
  }

  private async add(files: File[]): Promise<void> {
    for (const file of files) {
      this.say(`Adding ${file.name}…`);
      try {
        const sound = await this.show.addSound(file);
        this.say(`Added ${sound.name}.`);
      } catch (error) {
        const why = error instanceof HttpError ? error.message : 'the studio could not be reached';
        this.say(`${file.name} was not added: ${why}.`);
      }
    }
  }

  render(): void {
    const sounds = this.show.sounds;
    const ids = new Set(sounds.map((s) => s.soundId));
    for (const [soundId, pad] of this.pads) {
      if (ids.has(soundId)) continue;
      clearTimeout(pad.timer);
      pad.element.remove();
      this.pads.delete(soundId);
    }
    const list = byId('pads');
    for (const sound of sounds) {
      const pad = this.pads.get(sound.soundId) ?? this.makePad(sound);
      this.renderPad(pad, sound);
      list.append(pad.element); // in the room's order
    }
    byId('no-sounds').hidden = sounds.length > 0;
  }

  private makePad(sound: SoundInfo): Pad {
    const { soundId } = sound;
    const pad: Pad = {
      element: h('section', { className: 'strip pad', role: 'group' }),
      title: h('h3'),
      state: h('p', { className: 'detail' }),
      play: h('button', { className: 'play', onclick: () => this.show.playSound(soundId) }, 'Play'),
      stop: h('button', { onclick: () => this.show.stopSound(soundId) }, 'Stop'),
      level: h('input', { type: 'range', min: 0, max: 200, step: 1, className: 'fader' }),
      loop: h('input', { type: 'checkbox' }),
      remove: h('button', { className: 'danger', onclick: () => void this.remove(soundId) }, 'Delete'),
      pendingLevel: null,
      sentAt: 0,
    };
    pad.level.addEventListener('input', () => this.levelMoved(soundId, pad));
    pad.loop.addEventListener('change', () => this.show.setSound(soundId, { loop: pad.loop.checked }));
    pad.element.append(
      pad.title,
      pad.state,
      h('div', { className: 'actions' }, pad.play, pad.stop),
      h('label', { className: 'fader-label' }, 'Level ', pad.level),
      h('label', { className: 'check' }, pad.loop, ' Loop'),
      h('div', { className: 'actions' }, pad.remove),
    );
    this.pads.set(soundId, pad);
    return pad;
  }

  private renderPad(pad: Pad, sound: SoundInfo): void {
    const { name } = sound;
    pad.element.setAttribute('aria-label', name);
    pad.title.textContent = name;
    pad.play.setAttribute('aria-label', `Play ${name}`);
    pad.stop.setAttribute('aria-label', `Stop ${name}`);
    pad.level.setAttribute('aria-label', `${name} level`);
    pad.loop.setAttribute('aria-label', `Loop ${name}`);
    pad.remove.setAttribute('aria-label', `Delete ${name}`);
    const sounding = this.show.soundPlayer.playing(sound.soundId);
    pad.element.classList.toggle('playing', sounding);
    const problem = this.show.soundPlayer.problem(sound.soundId);
    const length = sound.duration === null ? '' : clockText(sound.duration * 1000);
    const state = problem ? `cannot be played here: ${problem}` : [sounding ? 'playing' : 'stopped', length].filter(Boolean).join(' · ');
    if (pad.state.textContent !== state) pad.state.textContent = state;
    // The room's level, unless this page is moving the slider.
    if (pad.pendingLevel === null && document.activeElement !== pad.level) pad.level.value = String(Math.round(sound.level * 100));
    pad.level.setAttribute('aria-valuetext', `${pad.level.value} %`);
    pad.loop.checked = sound.loop;
  }

  private levelMoved(soundId: string, pad: Pad): void {
    pad.pendingLevel = Number(pad.level.value) / 100;
    pad.level.setAttribute('aria-valuetext', `${pad.level.value} %`);
    const send = () => {
      pad.timer = undefined;
      if (pad.pendingLevel === null) return;
      this.show.setSound(soundId, { level: pad.pendingLevel });
      pad.pendingLevel = null;
      pad.sentAt = Date.now();
    };
    if (pad.timer === undefined) pad.timer = setTimeout(send, Math.max(0, pad.sentAt + LEVEL_SEND_MS - Date.now()));
  }

  private async remove(soundId: string): Promise<void> {
    const name = this.show.sounds.find((s) => s.soundId === soundId)?.name ?? 'the sound';
    try {
      await this.show.deleteSound(soundId);
      this.say(`Deleted ${name}.`);
    } catch (error) {
      this.say(`${name} was not deleted: ${error instanceof HttpError ? error.message : 'the studio could not be reached'}.`);
    }
  }

  updateMeter(now: number): void {
    const reading = this.show.soundsChannel.meter.read(now);
    showLevel(this.meter, reading.level, reading.peak);
  }
}
