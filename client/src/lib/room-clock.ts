// This page's estimate of the room's clock, from `clock` round trips (NTP's rule, simply):
// the room read its clock somewhere inside the round trip, most likely in its middle, and
// the sample with the shortest round trip bounds the error best (± half of it).
export class RoomClock {
  /** The latest answers (the clocks drift apart over a long show: old answers age out). */
  private samples: { offset: number; roundTrip: number }[] = [];
  private best: { offset: number; roundTrip: number } | null = null;

  /** This page's clock now (epoch ms, sub-millisecond, monotonic within the page). */
  static local(): number {
    return performance.timeOrigin + performance.now();
  }

  /** One answer: sent at `sent` (this page's clock), the room read `now`, back at `received`. */
  sample(sent: number, now: number, received = RoomClock.local()): void {
    const roundTrip = received - sent;
    if (roundTrip < 0) return;
    this.samples = [...this.samples.slice(-(KEPT_SAMPLES - 1)), { offset: now - (sent + roundTrip / 2), roundTrip }];
    this.best = this.samples.reduce((a, b) => (b.roundTrip < a.roundTrip ? b : a));
  }

  /** Room clock minus this page's clock (ms); 0 until the first answer. */
  get offset(): number {
    return this.best?.offset ?? 0;
  }

  /** Half the best round trip: how far off the offset may be (ms); Infinity before any answer. */
  get uncertainty(): number {
    return this.best ? this.best.roundTrip / 2 : Number.POSITIVE_INFINITY;
  }
}

const KEPT_SAMPLES = 12;
