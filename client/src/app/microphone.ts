// The page's own microphone: device choice and "studio mode" (no echo cancellation, noise
// suppression or automatic gain: for headphones and music, which those treat as noise).

export class Microphone {
  stream: MediaStream | null = null;
  deviceId: string | undefined;
  studioMode = false;
  /** Whether the track sends sound (false while muted); kept across microphone changes. */
  private enabled = true;
  /** Opens done so far (or under way): only the latest one's microphone is kept. */
  private opens = 0;
  private listeners = new Set<(track: MediaStreamTrack) => void>();

  /** Called with the new track whenever the microphone or its processing changes. */
  onChange(listener: (track: MediaStreamTrack) => void): void {
    this.listeners.add(listener);
  }

  get track(): MediaStreamTrack | null {
    return this.stream?.getAudioTracks()[0] ?? null;
  }

  /**
   * Open the microphone with the current device and studio mode. Resolves with the new track,
   * or null if a later open (the caller changed device or studio mode meanwhile) replaced it.
   */
  async open(): Promise<MediaStreamTrack | null> {
    const open = ++this.opens;
    const processing = !this.studioMode;
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          deviceId: this.deviceId ? { exact: this.deviceId } : undefined,
          echoCancellation: processing,
          noiseSuppression: processing,
          autoGainControl: processing,
          channelCount: 1,
        },
      });
    } catch (error) {
      if (open !== this.opens) return null; // a later open decides
      throw error;
    }
    if (open !== this.opens) {
      for (const track of stream.getTracks()) track.stop();
      return null;
    }
    const track = stream.getAudioTracks()[0];
    if (!track) throw new Error('no audio track');
    track.contentHint = this.studioMode ? 'music' : 'speech';
    track.enabled = this.enabled;
    for (const old of this.stream?.getTracks() ?? []) old.stop();
    this.stream = stream;
    this.deviceId = track.getSettings().deviceId ?? this.deviceId;
    for (const listener of this.listeners) listener(track);
    return track;
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    if (this.track) this.track.enabled = enabled;
  }

  async devices(): Promise<MediaDeviceInfo[]> {
    return (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'audioinput');
  }

  close(): void {
    this.opens += 1; // an open still under way stops its microphone
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }
}
