/**
 * A Durable Object has one alarm, and each `setAlarm` is a billed row write. This keeps the
 * time it last set, so that an alarm already due earlier is kept (when it fires, the owner
 * asks for the next one): joins and messages rarely write one.
 */
export class AlarmSchedule {
  /** The alarm as last set by this instance: a time, none (null), or not known yet (undefined). */
  private at: number | null | undefined = undefined;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** What storage holds is not known any more (a fresh load, storage deleted). */
  forget(): void {
    this.at = undefined;
  }

  /** The alarm fired: it is gone. */
  fired(): void {
    this.at = null;
  }

  /**
   * Make sure an alarm fires at `next` or earlier (`Infinity`: none is needed). With
   * `exactly`, an earlier alarm is moved to `next` too: one write now instead of a wake for
   * nothing later (an emptied room's silence check, say).
   */
  async ensure(next: number, { exactly = false } = {}): Promise<void> {
    if (this.at === undefined) this.at = await this.storage.getAlarm();
    if (next === Number.POSITIVE_INFINITY) {
      if (this.at === null) return;
      await this.storage.deleteAlarm();
      this.at = null;
    } else if (this.at === null || next < this.at || (exactly && next !== this.at)) {
      await this.storage.setAlarm(next);
      this.at = next;
    }
  }
}
