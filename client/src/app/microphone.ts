// The page's own microphone: device choice and "studio mode" (no echo cancellation, noise
// suppression or automatic gain: for headphones and music, which those treat as noise).

export class Microphone {
  stream: MediaStream | null = null;
  deviceId: string | undefined;
  studioMode = false;
  private listeners = new Set<(track: MediaStreamTrack) => void>();

  /** Called with the new track whenever the microphone or its processing changes. */
  onChange(listener: (track: MediaStreamTrack) => void): void {
    this.listeners.add(listener);
  }

  get track(): MediaStreamTrack | null {
    return this.stream?.getAudioTracks()[0] ?? null;
  }

  async open(): Promise<MediaStreamTrack> {
    const processing = !this.studioMode;
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        deviceId: this.deviceId ? { exact: this.deviceId } : undefined,
        echoCancellation: processing,
        noiseSuppression: processing,
        autoGainControl: processing,
        channelCount: 1,
      },
    });
    const track = stream.getAudioTracks()[0];
    if (!track) throw new Error('no audio track');
    track.contentHint = this.studioMode ? 'music' : 'speech';
    const enabled = this.track?.enabled ?? true;
    track.enabled = enabled;
    for (const old of this.stream?.getTracks() ?? []) old.stop();
    this.stream = stream;
    this.deviceId = track.getSettings().deviceId ?? this.deviceId;
    for (const listener of this.listeners) listener(track);
    return track;
  }

  setEnabled(enabled: boolean): void {
    if (this.track) this.track.enabled = enabled;
  }

  async devices(): Promise<MediaDeviceInfo[]> {
    return (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'audioinput');
  }

  close(): void {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }
}
