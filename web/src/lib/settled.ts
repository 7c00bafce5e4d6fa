/**
 * One kind of live data (the Docker view, schedules, …), loaded by fetches
 * and kept current by events. A fetched answer may be older than events that
 * arrived while it was in flight: those events are kept and applied again on
 * top of the answer, so the newest state wins however long the fetch took or
 * however busy the event stream is. Each event carries its object's whole
 * state, so applying one twice is harmless.
 */
export class LiveKind {
  private inFlight = new Set<Array<() => void>>()

  /** Keeps an event's change to apply again after every load in flight. */
  record(apply: () => void): void {
    for (const later of this.inFlight) later.push(apply)
  }

  /** Fetches, stores the answer with `set`, then replays the events that came meanwhile. */
  async load<T>(fetch: () => Promise<T>, set: (answer: T) => void): Promise<void> {
    const later: Array<() => void> = []
    this.inFlight.add(later)
    try {
      const answer = await fetch()
      set(answer)
      for (const apply of later) apply()
    } finally {
      this.inFlight.delete(later)
    }
  }
}

/** Applies an event's change now, and again after each load in flight of the kinds it touches. */
export function applyLive(kinds: LiveKind[], apply: () => void): void {
  apply()
  for (const k of kinds) k.record(apply)
}
