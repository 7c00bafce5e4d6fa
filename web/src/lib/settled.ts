/**
 * Runs `fetch` again while a live event of its kind (counted by `version`)
 * arrived during it, at most `tries` times. An answer that raced an event may
 * be older than the event, and applying it would undo what the event showed.
 */
export async function fetchSettled<T>(version: () => number, fetch: () => Promise<T>, tries = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const before = version()
    const result = await fetch()
    if (version() === before || attempt >= tries) return result
  }
}
