// Mobile numbers: the server's rule (imhub/services/accounts.py MOBILE_RE: an optional
// leading + and 5-20 digits, compared as stored) applied after dropping what people
// type between digits. tests/e2e/test_web_contacts.py checks that the two regexes agree.

export const MOBILE_RE = /^\+?[0-9]{5,20}$/

// Spaces (also non-breaking), dashes, dots and parentheses: `+86 (139) 1000-3352`.
const SEPARATORS = /[\s\-.()]/g

/**
 * The number as the server stores it: `+86 139 1000 3352` → `+8613910003352`.
 * @param {unknown} s
 */
export function normalizeMobile(s) {
  return String(s ?? '').trim().replace(SEPARATORS, '')
}

/** @param {string} s  a normalised number */
export function isMobile(s) {
  return MOBILE_RE.test(s)
}

/**
 * What the "add friend" box holds: `#12` or digits too short for a mobile are a user
 * id; anything else that is a mobile is looked up as one first (a user id of 5 or more
 * digits is tried when no one has that number).
 * @param {string} query
 * @returns {{id: number, mobile: string} | null}  null: neither
 */
export function parseUserQuery(query) {
  const q = String(query ?? '').trim()
  const hash = /^#(\d+)$/.exec(q)
  if (hash) return { id: Number(hash[1]), mobile: '' }
  const m = normalizeMobile(q)
  if (isMobile(m)) return { id: /^\d+$/.test(m) ? Number(m) : 0, mobile: m }
  if (/^\d+$/.test(m) && Number(m) > 0) return { id: Number(m), mobile: '' }
  return null
}
