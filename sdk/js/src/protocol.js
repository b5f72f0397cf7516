// The wire protocol of docs/protocol.md: command and media numbers, conversation ids,
// frame builders. Pure functions only, so they are unit-tested without a browser.

export const CMD = Object.freeze({
  HEARTBEAT: 0,
  ACK: 1,
  ERROR: 2,
  PRIVATE: 10,
  GROUP: 11,
  SYNC: 20,
  CONV_LIST: 21,
  HISTORY: 22,
  READ: 23,
  TYPING: 24,
  RECALL: 25,
  RECEIPTS: 26,
  SEARCH: 27,
  SYNC_PAGE: 30,
  CONV_LIST_REPLY: 31,
  HISTORY_PAGE: 32,
  RECEIPT: 33,
  TYPING_EVENT: 34,
  PRESENCE: 35,
  RECALLED: 36,
  RESYNC: 37,
  RECEIPT_LIST: 38,
  SEARCH_RESULTS: 39,
  NOTICE: 40, // system notice from the operators (not stored)
  FRIEND_REQUEST: 41, // a friend request was filed, accepted, declined or cancelled
  GROUP_REQUEST: 42, // a join request / invitation event
  CHANGED: 43, // the answer to cmd 50–55 (an update, reactions, forwarded copies)
  PROFILE: 44, // a friend's (or my) nickname / avatar changed
  EDIT: 50,
  REACT: 51,
  HIDE: 52,
  PIN: 53,
  CONV_SETTINGS: 54,
  FORWARD: 55,
})

export const MEDIA = Object.freeze({
  TEXT: 1,
  NEWS: 2,
  VOICE: 3,
  IMAGE: 4,
  REDPACKET: 5,
  STICKER: 6,
  LINK: 7,
  VIDEO: 8,
  CONTACT: 9,
  EVENT: 10, // group event, server only (docs/protocol.md "Group events")
  UPDATE: 11, // a change to an earlier message, server only ("Updates (media 11)")
  FILE: 12, // content = name, url, amount = bytes, memo = MIME type ("Files and video")
})

/** How long after sending a message its sender may recall it (IMHUB_RECALL_WINDOW_SECONDS). */
export const RECALL_WINDOW_MS = 120_000
/** IMHUB_EDIT_WINDOW_SECONDS' default: a text message can be edited for 48 h. */
export const EDIT_WINDOW_MS = 48 * 3600_000
/** The reactions offered by the message menu. */
export const QUICK_REACTIONS = Object.freeze(['👍', '❤️', '😂', '😮', '😢', '🙏'])
/** At most one typing frame per conversation this often (the server drops extras). */
export const TYPING_INTERVAL_MS = 2000

// Close codes after which reconnecting with the same token is pointless.
export const CLOSE_LOGGED_OUT = 4001

/**
 * Conversation id: `p<lo>_<hi>` for a 1:1 pair, `g<groupid>` for a group.
 * @param {number} cmd
 * @param {number} selfId
 * @param {number | string} dstid
 * @returns {string}
 */
export function convId(cmd, selfId, dstid) {
  if (Number(cmd) === CMD.GROUP) return `g${Number(dstid)}`
  const a = Number(selfId)
  const b = Number(dstid)
  return a < b ? `p${a}_${b}` : `p${b}_${a}`
}

/**
 * `{cmd, dstid}` of a conversation seen from `selfId` (the peer for 1:1, the group).
 * @param {string} conv
 * @param {number} selfId
 * @returns {{cmd: number, dstid: number} | null}
 */
export function parseConv(conv, selfId) {
  if (typeof conv !== 'string') return null
  let m = /^g(\d+)$/.exec(conv)
  if (m) return { cmd: CMD.GROUP, dstid: Number(m[1]) }
  m = /^p(\d+)_(\d+)$/.exec(conv)
  if (!m) return null
  const lo = Number(m[1])
  const hi = Number(m[2])
  return { cmd: CMD.PRIVATE, dstid: lo === Number(selfId) ? hi : lo }
}

/**
 * Conversation of an incoming message frame (uses `conv` when the server sent it).
 * @param {Record<string, any>} msg
 * @param {number} selfId
 * @returns {string}
 */
export function messageConv(msg, selfId) {
  if (msg.conv) return msg.conv
  if (Number(msg.cmd) === CMD.GROUP) return convId(CMD.GROUP, selfId, msg.dstid)
  const peer = Number(msg.userid) === Number(selfId) ? msg.dstid : msg.userid
  return convId(CMD.PRIVATE, selfId, peer)
}

let cidCounter = 0

/**
 * A client message id (≤ 64 chars), unique per tab.
 * @param {number} [now]
 * @param {() => number} [rand]
 */
export function newCid(now = Date.now(), rand = Math.random) {
  cidCounter = (cidCounter + 1) % 1e6
  return `c-${now.toString(36)}-${cidCounter.toString(36)}-${Math.floor(rand() * 2 ** 32).toString(36)}`
}

const BODY_FIELDS = ['content', 'pic', 'url', 'memo', 'amount']

/**
 * A message frame for cmd 10/11. Only seed fields plus `cid`, `reply_to` and `mentions`
 * (docs/protocol.md "Replies", "Mentions") go on the wire.
 * @param {{cmd: number, dstid: number | string, media: number, cid?: string} & Record<string, any>} msg
 * @returns {Record<string, any>}
 */
export function buildMessageFrame({ cmd, dstid, media, cid, ...body }) {
  if (cmd !== CMD.PRIVATE && cmd !== CMD.GROUP) throw new Error(`not a message cmd: ${cmd}`)
  if (!((media >= 1 && media <= 9) || media === MEDIA.FILE)) throw new Error(`unknown media: ${media}`)
  const frame = { cmd, dstid: Number(dstid), media }
  for (const k of BODY_FIELDS) {
    if (body[k] === undefined || body[k] === null || body[k] === '') continue
    frame[k] = k === 'amount' ? Math.round(Number(body[k])) : String(body[k])
  }
  if (cid) frame.cid = cid
  if (Number(body.reply_to) > 0) frame.reply_to = Number(body.reply_to)
  if (body.mentions === 'all') frame.mentions = 'all'
  else if (Array.isArray(body.mentions) && body.mentions.length) frame.mentions = body.mentions.map(Number).slice(0, 50)
  return frame
}

let ridCounter = 0
/**
 * @param {string} [prefix]
 */
export function newRid(prefix = 'r') {
  ridCounter += 1
  return `${prefix}${ridCounter}`
}

export function heartbeatFrame() {
  return { cmd: CMD.HEARTBEAT }
}

/**
 * @param {Record<string, number>} after  conv → seq to sync after
 * @param {number} limit
 * @param {string} [rid]
 */
export function syncFrame(after, limit, rid = newRid('s')) {
  const frame = { cmd: CMD.SYNC, rid, after: { ...after } }
  if (limit) frame.limit = limit
  return frame
}

/**
 * @param {string} [rid]
 */
export function convListFrame(rid = newRid('l')) {
  return { cmd: CMD.CONV_LIST, rid }
}

/**
 * cmd 22: up to `limit` messages of `conv` with seq < `before` (omitted: the newest).
 * @param {string} conv
 * @param {number} before
 * @param {number} limit
 * @param {string} [rid]
 */
export function historyFrame(conv, before, limit, rid = newRid('h')) {
  const frame = { cmd: CMD.HISTORY, rid, conv }
  if (before) frame.before = before
  if (limit) frame.limit = limit
  return frame
}

/**
 * @param {string} conv
 * @param {number} seq
 */
export function readFrame(conv, seq) {
  return { cmd: CMD.READ, conv, seq }
}

/**
 * @param {string} conv
 */
export function typingFrame(conv) {
  return { cmd: CMD.TYPING, conv }
}

/**
 * @param {number} id  the message's server id
 * @param {string} [rid]
 */
export function recallFrame(id, rid = newRid('x')) {
  return { cmd: CMD.RECALL, rid, id: Number(id) }
}

/**
 * @param {string} conv
 * @param {string} [rid]
 */
export function receiptsFrame(conv, rid = newRid('r')) {
  return { cmd: CMD.RECEIPTS, rid, conv }
}

// ---- changes to messages and conversations (cmd 50–55, answered by cmd 43) ---------

/**
 * cmd 50: new text for my text message (within the edit window).
 * @param {number} id
 * @param {string} content
 * @param {string} [rid]
 */
export function editFrame(id, content, rid = newRid('e')) {
  return { cmd: CMD.EDIT, rid, id: Number(id), content: String(content) }
}

/**
 * cmd 51: add my reaction `emoji` to a message (or take it back: `add` false).
 * @param {number} id
 * @param {string} emoji
 * @param {boolean} [add]
 * @param {string} [rid]
 */
export function reactFrame(id, emoji, add = true, rid = newRid('e')) {
  return { cmd: CMD.REACT, rid, id: Number(id), emoji: String(emoji), add: !!add }
}

/**
 * cmd 52: delete for me: up to 100 messages (`ids`), or a whole conversation so far (`conv`).
 * @param {{ids?: number[], conv?: string}} what
 * @param {string} [rid]
 */
export function hideFrame(what, rid = newRid('e')) {
  return what.conv ? { cmd: CMD.HIDE, rid, conv: String(what.conv) }
    : { cmd: CMD.HIDE, rid, ids: (what.ids || []).map(Number) }
}

/**
 * cmd 53: pin a message in its conversation for everyone (or unpin: `pinned` false).
 * @param {number} id
 * @param {boolean} [pinned]
 * @param {string} [rid]
 */
export function pinFrame(id, pinned = true, rid = newRid('e')) {
  return { cmd: CMD.PIN, rid, id: Number(id), pinned: !!pinned }
}

/**
 * cmd 54: my settings of a conversation (pinned to the top of my list, muted).
 * @param {string} conv
 * @param {{pinned?: boolean, muted?: boolean}} settings
 * @param {string} [rid]
 */
export function convSettingsFrame(conv, settings, rid = newRid('e')) {
  /** @type {{cmd: number, rid: string, conv: string, pinned?: boolean, muted?: boolean}} */
  const frame = { cmd: CMD.CONV_SETTINGS, rid, conv: String(conv) }
  if (typeof settings.pinned === 'boolean') frame.pinned = settings.pinned
  if (typeof settings.muted === 'boolean') frame.muted = settings.muted
  return frame
}

/**
 * cmd 55: copy up to 20 messages (oldest first, the order they arrive in) into up to
 * 10 conversations, each marked forwarded.
 * @param {number[]} ids
 * @param {string[]} to  conversation ids
 * @param {string} [rid]
 */
export function forwardFrame(ids, to, rid = newRid('e')) {
  return { cmd: CMD.FORWARD, rid, ids: ids.map(Number), to: to.map(String) }
}

/**
 * @param {string} q
 * @param {number} before  message id to continue below (0: newest)
 * @param {number} [limit]
 * @param {string} [rid]
 */
export function searchFrame(q, before, limit = 20, rid = newRid('q')) {
  const frame = { cmd: CMD.SEARCH, rid, q: String(q).trim(), limit }
  if (before) frame.before = before
  return frame
}

/**
 * The parts of a search hit's server snippet (`snippet` + `marks`: [start, end) in
 * UTF-16 units, which is how JavaScript indexes strings), its kind's label first
 * ("[News] …"); a hit without a snippet (an older server) marks `q` in its summary.
 * @param {any} hit
 * @param {string} q
 * @param {(key: string, vars?: any) => string} [t]
 * @param {(id: number) => string} [name]
 * @returns {Array<{text: string, mark?: boolean}>}
 */
export function snippetParts(hit, q, t = (k) => k, name = undefined) {
  if (!hit || hit.recalled) return [{ text: t('recalled') }]
  if (typeof hit.snippet !== 'string') return highlight(summary(hit, t, name), q)
  const label = { [MEDIA.NEWS]: 'news', [MEDIA.REDPACKET]: 'redpacket', [MEDIA.CONTACT]: 'contactCard' }[
    Number(hit.media)]
  const parts = label ? [{ text: `[${t(label)}] ` }] : []
  const s = hit.snippet
  let at = 0
  for (const m of Array.isArray(hit.marks) ? hit.marks : []) {
    const start = Math.max(at, Math.min(s.length, Number(m[0]) || 0))
    const end = Math.max(start, Math.min(s.length, Number(m[1]) || 0))
    if (start > at) parts.push({ text: s.slice(at, start) })
    if (end > start) parts.push({ text: s.slice(start, end), mark: true })
    at = end
  }
  if (at < s.length) parts.push({ text: s.slice(at) })
  return parts
}

/**
 * Text parts of `text` with every case-insensitive occurrence of `q` marked (for hits).
 * @param {string} text
 * @param {string} q
 * @returns {Array<{text: string, hit?: boolean}>}
 */
export function highlight(text, q) {
  const s = String(text ?? '')
  const words = String(q ?? '').trim().split(/\s+/).filter(Boolean).map((w) => w.toLowerCase())
  if (!words.length) return [{ text: s }]
  const lower = s.toLowerCase()
  const parts = []
  let i = 0
  let start = 0
  while (i < s.length) {
    const w = words.find((x) => lower.startsWith(x, i))
    if (w) {
      if (i > start) parts.push({ text: s.slice(start, i) })
      parts.push({ text: s.slice(i, i + w.length), mark: true })
      i += w.length
      start = i
    } else {
      i += 1
    }
  }
  if (start < s.length) parts.push({ text: s.slice(start) })
  return parts
}

/**
 * The line a group event (media 10) shows: `content` is the kind, `userid` did it,
 * `amount` is the member concerned, `memo` the (new) group name.
 * @param {Record<string, any>} msg
 * @param {(key: string, params?: Record<string, unknown>) => string} [t]
 * @param {(id: number, role?: 'subject'|'object') => string} [name]  a user's display name
 *   (`role` lets "You" become "you" where the user is the object: "Bob removed you")
 */
export function eventText(msg, t = (k) => k, name = (id) => `#${id}`) {
  const actor = name(Number(msg.userid), 'subject')
  const subjectId = Number(msg.amount) || Number(msg.userid)
  const subject = name(subjectId, String(msg.content) === 'removed' ? 'object' : 'subject')
  const group = String(msg.memo ?? '')
  switch (String(msg.content)) {
    case 'created': return t('evCreated', { actor, name: group })
    case 'joined': return t('evJoined', { user: subject })
    case 'left': return t('evLeft', { user: subject })
    case 'removed': return t('evRemoved', { actor, user: subject })
    case 'renamed': return t('evRenamed', { actor, name: group })
    // `system` (operators' notice, userid 0) and kinds this client does not know: the memo
    default: return group || t('evOther')
  }
}

/**
 * Only http(s) links are ever made clickable.
 * @param {unknown} url
 * @returns {string} the absolute URL (a relative one resolves against the page), or '' unless http(s)
 */
export function safeUrl(url) {
  if (typeof url !== 'string' || !url) return ''
  try {
    const u = new URL(url, globalThis.location ? globalThis.location.href : 'http://localhost/')
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : ''
  } catch {
    return ''
  }
}

/**
 * Split text into plain and http(s)-link parts for rendering as text nodes.
 * @param {string} text
 */
export function linkify(text) {
  const parts = []
  const re = /\bhttps?:\/\/[^\s<>"'\u3000-\u303f\uff00-\uffef]+/gi
  let last = 0
  let m
  const s = String(text ?? '')
  while ((m = re.exec(s))) {
    if (m.index > last) parts.push({ text: s.slice(last, m.index) })
    const href = safeUrl(m[0])
    parts.push(href ? { text: m[0], href } : { text: m[0] })
    last = m.index + m[0].length
  }
  if (last < s.length) parts.push({ text: s.slice(last) })
  return parts
}

/**
 * One-line summary of a message for lists and notifications.
 * @param {Record<string, any>} msg
 * @param {(key: string, params?: object) => string} [t]
 * @param {(id: number) => string} [name]
 */
export function summary(msg, t = (k) => k, name = undefined) {
  if (!msg) return ''
  if (msg.recalled) return t('recalled')
  if (Number(msg.media) === MEDIA.EVENT) return eventText(msg, t, name)
  switch (Number(msg.media)) {
    case MEDIA.TEXT: return String(msg.content ?? '')
    case MEDIA.NEWS: return `[${t('news')}] ${msg.content ?? ''}`
    case MEDIA.VOICE: return `[${t('voice')}] ${msg.amount ?? 0}″`
    case MEDIA.IMAGE: return `[${t('image')}]`
    case MEDIA.REDPACKET: return `[${t('redpacket')}] ${msg.memo ?? ''}`
    case MEDIA.STICKER: return msg.url ? `[${t('sticker')}]` : String(msg.content ?? '')
    case MEDIA.LINK: return `[${t('link')}] ${msg.url ?? ''}`
    case MEDIA.VIDEO: return `[${t('video')}]`
    case MEDIA.FILE: return `[${t('file')}] ${msg.content ?? ''}`
    case MEDIA.CONTACT: return `[${t('contactCard')}] ${msg.memo ?? ''}`
    default: return `[${t('message')}]`
  }
}
