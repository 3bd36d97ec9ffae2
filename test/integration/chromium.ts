/** Chromium for the integration tests: Debian's binary, fake media devices, no stray network. */
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
];

/** `askForMicrophone`: no fake permission prompt, so (headless) the microphone is refused until the context grants it. */
export function launchChromium(extraArgs: string[] = [], { askForMicrophone = false } = {}): Promise<Browser> {
  const args = askForMicrophone ? CHROMIUM_ARGS.filter((arg) => arg !== '--use-fake-ui-for-media-stream') : CHROMIUM_ARGS;
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: [...args, ...extraArgs] });
}
