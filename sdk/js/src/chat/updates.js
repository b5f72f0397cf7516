// Updates (media 11, docs/protocol.md "Updates"): a change to an earlier message — an
// edit, its reactions, a pin — stored in the conversation's stream with its own seq.
// They move the conversation's cursors like any message but are never drawn, never
// unread and never the list's `last`: they change the message they name. The user's own
// stream `u<id>` carries what only their devices learn: hidden messages, cleared
// conversations and the conversation settings (pinned, muted).

import { MEDIA } from '../protocol.js'

/** @typedef {import('./state.js').CoreState} CoreState */
/** @typedef {import('./state.js').Conv} Conv */
/** @typedef {import('./state.js').Msg} Msg */

/** @param {Record<string, any> | null | undefined} m */
export function isUpdate(m) {
  return !!m && Number(m.media) === MEDIA.UPDATE
}

/**
 * The user's own stream (cmd 31 `own`), e.g. "u3".
 * @param {CoreState} s
 */
export function ownConv(s) {
  return `u${s.selfId}`
}

/** @param {string} conv */
export function isOwnConv(conv) {
  return /^u\d+$/.test(conv)
}

/**
 * The loaded copy of a message (by id, else seq), and the list's `last` when it is it.
 * @param {Conv} c
 * @param {number} id
 * @param {number} seq
 * @returns {Msg[]}
 */
function copiesOf(c, id, seq) {
  /** @param {Msg} m */
  const same = (m) => (id && Number(m.id) === id) || (!id && seq && m.seq === seq)
  const out = c.msgs.filter(same)
  if (c.last && same(c.last) && !out.includes(c.last)) out.push(c.last)
  return out
}

/**
 * Apply an update (media 11) that arrived in conversation `c` (live, sync, or a cmd 43
 * answer). Returns the messages it changed.
 * @param {CoreState} s
 * @param {Conv} c
 * @param {Record<string, any>} u  the update message
 * @returns {Msg[]}
 */
export function applyUpdate(s, c, u) {
  const body = u.update && typeof u.update === 'object' ? u.update : {}
  if (isOwnConv(c.conv)) return applyOwn(s, String(u.memo || ''), body)
  const id = Number(body.id ?? u.amount) || 0
  const seq = Number(body.seq) || 0
  // A history or sync page returns messages as they are now, then (older pages) the
  // updates that led there: one at or below what a copy already reflects is old news.
  const at = Number(u.seq) || 0
  const hits = copiesOf(c, id, seq).filter((m) => !at || at > (Number(m.asOf) || 0))
  switch (u.memo) {
    case 'edited':
      for (const m of hits) {
        if (m.recalled) continue
        m.content = String(body.content ?? m.content ?? '')
        m.edited_at = Number(body.edited_at) || Number(u.ts) || 1
      }
      break
    case 'reactions': {
      const list = Array.isArray(body.reactions) ? body.reactions : []
      for (const m of hits) m.reactions = list.length ? list.map((r) => ({ ...r })) : undefined
      break
    }
    case 'pinned':
    case 'unpinned': {
      const fresh = !at || at > (c.pinsAsOf || 0) // the conversation list's pins may be newer
      const pins = Array.isArray(body.pins) && fresh ? body.pins.map(Number) : null
      for (const m of hits) m.pinned = u.memo === 'pinned'
      if (pins) {
        c.pins = pins
        c.pinsAsOf = at
        for (const m of c.msgs) m.pinned = pins.includes(Number(m.id)) || undefined
      }
      break
    }
    default:
      // An update of a kind this client does not know: ignore it (forward compatible).
  }
  return hits
}

/**
 * @param {CoreState} s
 * @param {string} memo
 * @param {Record<string, any>} body
 * @returns {Msg[]}
 */
function applyOwn(s, memo, body) {
  if (memo === 'hidden') {
    const ids = new Set((Array.isArray(body.ids) ? body.ids : []).map(Number))
    const convs = Array.isArray(body.convs) && body.convs.length ? body.convs : Object.keys(s.convs)
    /** @type {Msg[]} */
    const gone = []
    for (const name of convs) {
      const c = s.convs[name]
      if (!c) continue
      c.msgs = c.msgs.filter((m) => {
        if (!ids.has(Number(m.id))) return true
        gone.push(m)
        return false
      })
      if (c.last && ids.has(Number(c.last.id))) resetLast(c)
    }
    return gone
  }
  if (memo === 'cleared') {
    const c = typeof body.conv === 'string' ? s.convs[body.conv] : null
    const upto = Number(body.upto) || 0
    if (!c) return []
    const gone = c.msgs.filter((m) => m.seq && m.seq <= upto)
    c.msgs = c.msgs.filter((m) => !(m.seq && m.seq <= upto))
    if (c.last && c.last.seq && c.last.seq <= upto) resetLast(c)
    if (upto >= c.lastSeq) c.unread = 0 // "no unread before the clear"
    return gone
  }
  if (memo === 'conv') {
    const c = typeof body.conv === 'string' ? s.convs[body.conv] : null
    if (!c) return []
    if (typeof body.pinned === 'boolean') c.pinned = body.pinned
    if (typeof body.muted === 'boolean') c.muted = body.muted
  }
  return []
}

/**
 * The list's `last` was hidden: the newest loaded message that is left (none: the list
 * shows the conversation without a preview).
 * @param {Conv} c
 */
function resetLast(c) {
  c.last = c.pending.at(-1) || c.msgs.at(-1) || null
  c.lastTs = c.last?.ts || c.lastTs
}
