// Reconnect delays: exponential growth, capped, with jitter so a server restart does
// not get every client back in the same millisecond.

/**
 * Delay (ms) before reconnect attempt `attempt` (0 = first retry).
 * "Equal jitter": half the exponential step is fixed, half is random, so the delay
 * always grows but clients spread out.
 * @param {number} attempt
 * @param {{base?: number, max?: number, random?: () => number}} [o]
 */
export function backoffDelay(attempt, { base = 500, max = 30000, random = Math.random } = {}) {
  const n = Math.max(0, Math.min(30, Math.floor(attempt)))
  const step = Math.min(max, base * 2 ** n)
  return Math.round(step / 2 + random() * (step / 2))
}
