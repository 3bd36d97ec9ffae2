// A few DOM helpers: elements are built in code (the page's CSP allows no inline markup
// handlers or styles), with accessible names set where they are made.

type Props = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

/** `h('button', { 'aria-label': 'Mute Ann', onclick: … }, 'Mute')` */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(key.replace(/^on/, ''), value);
    else if (key in element && !key.includes('-')) (element as unknown as Record<string, unknown>)[key] = value;
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  element.append(...children);
  return element;
}

export const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** A level meter: `role=meter`, value in dBFS (-60 … 0) in `aria-valuenow`, with a peak-hold mark. */
export function meterElement(label: string): HTMLElement {
  const meter = h('div', {
    className: 'meter',
    role: 'meter',
    'aria-label': label,
    'aria-valuemin': -60,
    'aria-valuemax': 0,
    'aria-valuenow': -60,
    'aria-valuetext': 'silent',
  });
  meter.append(h('span', { className: 'meter-level' }), h('span', { className: 'meter-peak' }));
  return meter;
}

/** Show a level on a meter made by `meterElement`. */
export function showLevel(meter: HTMLElement, level: number, peak: number): void {
  const rounded = Math.round(level);
  if (meter.getAttribute('aria-valuenow') === String(rounded) && meter.dataset.peak === String(Math.round(peak))) return;
  meter.setAttribute('aria-valuenow', String(rounded));
  meter.setAttribute('aria-valuetext', rounded <= -60 ? 'silent' : `${rounded} dBFS, peak ${Math.round(peak)} dBFS`);
  meter.dataset.peak = String(Math.round(peak));
  // CSSOM, not a style attribute: allowed by the CSP.
  meter.style.setProperty('--level', String((level + 60) / 60));
  meter.style.setProperty('--peak', String((peak + 60) / 60));
}
