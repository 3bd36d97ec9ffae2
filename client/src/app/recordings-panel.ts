// The Recordings panel (staff): every take with its date, length and tracks, each track's
// state, its downloads, "Download all" (one archive, assembled here with client-zip from
// one request per track) and "Delete". Listed over HTTP: refreshed every 2 s while a take
// records or uploads, every 15 s otherwise, and at once when a take starts or stops.
import { downloadZip } from 'client-zip';
import { HttpError, deleteTake, listRecordings } from '../lib';
import type { TakeListing, TrackSummary } from '../lib';
import { byId, h } from './dom';

const BUSY_REFRESH_MS = 2_000;
const IDLE_REFRESH_MS = 15_000;

/** m:ss (or h:mm:ss) of a duration in ms. */
export function clockText(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const hh = Math.floor(seconds / 3600);
  const mm = Math.floor(seconds / 60) % 60;
  const ss = String(seconds % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

function stateText(track: TrackSummary): string {
  switch (track.state) {
    case 'recording':
      return 'recording';
    case 'uploading':
      return `uploading ${Math.floor(track.progress * 100)} %`;
    case 'complete':
      return 'complete';
    case 'incomplete': {
      const spans = track.missing.map((m) => `${clockText(m.fromMs)}–${clockText(m.toMs)}`).join(', ');
      return spans ? `incomplete: missing ${spans}` : 'incomplete';
    }
  }
}

/** A file name of safe characters only. */
function fileName(...parts: string[]): string {
  return parts
    .join('-')
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .toLowerCase();
}

export class RecordingsPanel {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private takes: TakeListing[] = [];
  private stopped = false;

  constructor(
    private readonly roomId: string,
    private readonly token: string,
    private readonly onNotice: (text: string) => void,
  ) {}

  start(): void {
    byId('recordings').hidden = false;
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Read the list now (and again after the refresh period). */
  async refresh(): Promise<void> {
    clearTimeout(this.timer);
    if (this.stopped) return;
    try {
      ({ takes: this.takes } = await listRecordings(this.roomId, this.token));
      this.render();
    } catch (error) {
      if (!(error instanceof HttpError)) {
        // the studio is away for a moment: the next refresh tries again
      } else if (error.status === 401 || error.status === 403) {
        return this.stop();
      }
    }
    const busy = this.takes.some((take) => take.tracks.some((t) => t.state === 'recording' || t.state === 'uploading'));
    if (!this.stopped) this.timer = setTimeout(() => void this.refresh(), busy ? BUSY_REFRESH_MS : IDLE_REFRESH_MS);
  }

  private render(): void {
    const list = byId('takes');
    byId('no-takes').hidden = this.takes.length > 0;
    const wanted = new Set(this.takes.map((take) => take.takeId));
    for (const element of [...list.children] as HTMLElement[]) if (!wanted.has(element.dataset.takeId ?? '')) element.remove();
    this.takes.forEach((take, i) => {
      let element = list.querySelector<HTMLElement>(`[data-take-id="${take.takeId}"]`);
      if (!element) {
        element = h('section', { className: 'take', role: 'group', 'aria-label': take.title });
        element.dataset.takeId = take.takeId;
      }
      if (list.children[i] !== element) list.insertBefore(element, list.children[i] ?? null);
      this.renderTake(element, take);
    });
  }

  private renderTake(element: HTMLElement, take: TakeListing): void {
    const length = (take.stoppedAt ?? Date.now()) - take.startedAt;
    const when = new Date(take.startedAt).toLocaleString();
    const heading = `${take.title} · ${when} · ${clockText(length)}${take.stoppedAt === null ? ' · recording' : ''}`;
    // Rebuilt whole: its links are fresh (their keys expire) and nothing in it holds focus for long.
    const rows = take.tracks.map((track) => {
      const links = take.links.tracks[track.trackId];
      const label = track.kind === 'program' ? 'Program' : track.name;
      return h(
        'li',
        { className: 'track' },
        h('span', { className: 'track-name' }, `${label} (${track.kind === 'program' ? 'program' : track.role})`),
        ' ',
        h('span', { role: 'status', 'aria-label': `${label} track status` }, stateText(track)),
        ' ',
        h(
          'a',
          { href: links?.wav ?? '', download: `${fileName(take.title, label)}.wav` },
          track.kind === 'program' ? 'Download program' : `Download ${label}`,
        ),
        ' ',
        h(
          'a',
          {
            href: links?.raw ?? '',
            download: `${fileName(take.title, label, 'as-recorded')}.wav`,
            'aria-label': `Download ${label} as recorded`,
          },
          'as recorded',
        ),
      );
    });
    const all = h('a', { href: take.links.manifest, onclick: (event) => this.downloadAll(event, take) }, 'Download all');
    const remove = h(
      'button',
      { className: 'danger', disabled: take.stoppedAt === null, onclick: () => void this.remove(take) },
      `Delete ${take.title}`,
    );
    element.replaceChildren(
      h('h3', {}, heading),
      h('ul', { className: 'tracks' }, ...rows),
      h('div', { className: 'actions' }, all, ' ', remove),
    );
  }

  /** One archive: every track aligned, the program, and the manifest. */
  private async downloadAll(event: Event, take: TakeListing): Promise<void> {
    event.preventDefault();
    const files = [
      { name: 'manifest.json', input: fetch(take.links.manifest) },
      ...take.tracks.map((track) => ({
        name: `${fileName(track.kind === 'program' ? 'program' : `${track.name}-${track.trackId}`)}.wav`,
        input: fetch(take.links.tracks[track.trackId]!.wav),
      })),
    ];
    try {
      const inputs = await Promise.all(files.map(async ({ name, input }) => ({ name, input: await input })));
      const failed = inputs.find(({ input }) => !input.ok);
      if (failed) return this.onNotice(`The archive could not be made: ${failed.name} answered ${failed.input.status}.`);
      const blob = await downloadZip(inputs).blob();
      const link = h('a', { href: URL.createObjectURL(blob), download: `${fileName(take.title)}.zip`, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    } catch {
      this.onNotice('The archive could not be made: the studio could not be reached.');
    }
  }

  private async remove(take: TakeListing): Promise<void> {
    try {
      await deleteTake(this.roomId, this.token, take.takeId);
    } catch (error) {
      this.onNotice(`${take.title} was not deleted: ${error instanceof HttpError ? error.message : 'the studio could not be reached'}.`);
    }
    await this.refresh();
  }
}
