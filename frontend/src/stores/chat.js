// The live side: one WebSocket (@imhub/sdk connection.js) feeding a reactive ChatCore
// (@imhub/sdk chatcore.js, sdk/js), plus what the browser shows around it: connection state, unread
// count in the title, notifications while the tab is hidden, read cursors sent
// (debounced) while a chat is on screen, typing, presence, recall and search.
import { defineStore } from 'pinia'
import { computed, markRaw, reactive, ref, shallowRef, watch } from 'vue'
import { ApiError, api } from '../lib/api.js'
import { mentionsMe } from '@imhub/sdk/chat/window.js'
import { ChatCore } from '@imhub/sdk/chatcore.js'
import { Connection, STATE } from '@imhub/sdk/connection.js'
import { t } from '../lib/i18n.js'
import {
  CMD, MEDIA, TYPING_INTERVAL_MS, convSettingsFrame, editFrame, forwardFrame, hideFrame, pinFrame, reactFrame,
  searchFrame, summary,
} from '@imhub/sdk/protocol.js'
import { useContacts } from './contacts.js'
import { useSession } from './session.js'

/** @typedef {import('@imhub/sdk/chatcore.js').Msg} Msg */

const READ_DEBOUNCE_MS = 400
const REQUEST_TIMEOUT_MS = 15000
// loadUntilId gives up after this many history pages (of ChatCore's pageSize, 50)
const MAX_PAGES_TO_FIND = 40

export const useChat = defineStore('chat', () => {
  const core = shallowRef(null) // reactive ChatCore, replaced per login
  const state = ref(/** @type {import('@imhub/sdk/connection.js').State} */ (STATE.IDLE))
  const nextRetryAt = ref(0)
  const lastError = ref('')
  const notice = ref(null) // latest system notice (cmd 40), shown by App.vue
  let conn = null
  let timers = []
  let unwatch = []
  /** @type {(code?: number) => void} */
  let onLoggedOut = () => {}
  let readTimer = null
  let typingTimer = null
  let typingTrail = null // the trailing cmd 24 (see typing())
  const waiting = new Map() // rid → {resolve, reject, timer}: requests answered by rid
  const search = reactive({
    q: '', hits: [], users: [], groups: [], more: false, loading: false, error: '', done: false,
  })

  const totalUnread = computed(() => (core.value ? core.value.totalUnread : 0))
  const syncing = computed(() => !!core.value?.syncing)

  function wsUrl(session) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    // v=2: the modern protocol (acks, receipts, events); autosync=0: it syncs itself.
    // No token here: the session cookie authenticates the handshake (same origin), and
    // a URL ends up in proxies' logs and the console's errors.
    const q = new URLSearchParams({ id: String(session.id), autosync: '0', v: '2' })
    return `${proto}//${location.host}/chat?${q}`
  }

  /**
   * @param {Record<string, any> | null} frame
   * @returns {boolean} false when offline (or no frame)
   */
  function send(frame) {
    return frame ? !!conn?.send(frame) : false
  }

  /**
   * @param {Record<string, any>} msg
   * @param {string} conv
   */
  function notify(msg, conv) {
    if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return
    if (!document.hidden) return
    const contacts = useContacts()
    const c = core.value.convs[conv]
    const who = contacts.userName(msg.userid)
    const title = c?.cmd === CMD.GROUP ? `${contacts.groupName(c.dstid)} · ${who}` : who
    try {
      const n = new Notification(title, { body: summary(msg, t, contacts.userName).slice(0, 120), tag: conv })
      n.onclick = () => {
        window.focus()
        onNotificationClick(conv)
        n.close()
      }
    } catch { /* some browsers only allow notifications from a service worker */ }
  }
  /** @type {(conv: string) => void} */
  let onNotificationClick = () => {}

  /**
   * Send `frame` and wait for the reply carrying its rid (cmd 2 rejects).
   * @param {{rid: string} & Record<string, any>} frame
   * @returns {Promise<Record<string, any>>}
   */
  function request(frame) {
    return new Promise((resolve, reject) => {
      if (!send(frame)) {
        reject(new Error(t('offlineNow')))
        return
      }
      const timer = setTimeout(() => {
        waiting.delete(frame.rid)
        reject(new Error(t('errorNetwork')))
      }, REQUEST_TIMEOUT_MS)
      waiting.set(frame.rid, { resolve, reject, timer })
    })
  }

  /**
   * @param {Record<string, any>} frame
   * @returns {boolean} whether a request was waiting for it
   */
  function settle(frame) {
    const w = frame.rid !== undefined && waiting.get(frame.rid)
    if (!w) return false
    waiting.delete(frame.rid)
    clearTimeout(w.timer)
    if (frame.cmd === CMD.ERROR) {
      const err = /** @type {Error & {code?: string}} */ (new Error(errorText(frame)))
      err.code = frame.error
      w.reject(err)
    } else {
      w.resolve(frame)
    }
    return true
  }

  /** Ask the server for the read cursors soon (several reads in a row make one frame). */
  function scheduleReads() {
    if (readTimer) return
    readTimer = setTimeout(() => {
      readTimer = null
      if (!core.value || !conn?.isOpen) return
      for (const f of core.value.flushReads()) send(f)
    }, READ_DEBOUNCE_MS)
  }

  /** Re-arm the typing expiry timer for the earliest indicator still shown. */
  function scheduleTypingPrune() {
    clearTimeout(typingTimer)
    const next = core.value?.pruneTyping() || 0
    if (next) typingTimer = setTimeout(scheduleTypingPrune, Math.max(50, next - Date.now() + 20))
  }

  const groupRefresh = new Map() // group id → timer: refresh name/members after events
  function onGroupEvent(msg) {
    const gid = Number(msg.dstid)
    if (!gid || groupRefresh.has(gid)) return
    useContacts().ensureUser(msg.amount)
    groupRefresh.set(gid, setTimeout(() => {
      groupRefresh.delete(gid)
      const contacts = useContacts()
      contacts.loadGroups().catch(() => {})
      if (contacts.members[gid]) contacts.loadMembers(gid).catch(() => {})
    }, 300))
  }

  function onMessage(m) {
    useContacts().ensureUser(m.userid)
    if (Number(m.media) === MEDIA.EVENT) onGroupEvent(m)
  }

  /**
   * @param {Record<string, any>} frame  any server frame
   */
  function onFrame(frame) {
    const c = core.value
    switch (frame.cmd) {
      case CMD.HEARTBEAT:
        return
      case CMD.ACK:
        c.onAck(frame)
        scheduleReads()
        return
      case CMD.ERROR: {
        if (settle(frame)) return
        if (frame.rid && c.failRequest(frame.rid)) return
        const failed = c.onError(frame)
        if (!failed) lastError.value = errorText(frame)
        // Not (any longer) in that group: refresh my groups so its chat says so.
        else if (failed.error === 'not_member') useContacts().loadGroups().catch(() => {})
        return
      }
      case CMD.PRIVATE:
      case CMD.GROUP: {
        const r = c.receive(frame)
        if (r.gap) send(c.resyncFrame(r.conv))
        if (r.added) {
          onMessage(frame)
          const cv = c.convs[r.conv]
          const loud = !cv?.muted || mentionsMe(r.msg, c.selfId) // muted: only mentions notify
          if (Number(frame.userid) !== Number(c.selfId) && loud) notify(r.msg, r.conv)
        }
        scheduleReads()
        return
      }
      case CMD.SYNC_PAGE:
        send(c.applySyncPage(frame))
        for (const m of frame.msgs || []) onMessage(m)
        scheduleReads()
        return
      case CMD.CONV_LIST_REPLY:
        send(c.applyConvList(frame))
        for (const item of frame.convs || []) if (item.last) useContacts().ensureUser(item.last.userid)
        scheduleReads()
        return
      case CMD.HISTORY_PAGE:
        send(c.applyHistory(frame))
        for (const m of frame.msgs || []) onMessage(m)
        settle(frame)
        return
      case CMD.RECEIPT:
        c.applyReceipt(frame)
        return
      case CMD.RECEIPT_LIST:
        c.applyReceiptList(frame)
        return
      case CMD.TYPING_EVENT:
        c.applyTyping(frame)
        scheduleTypingPrune()
        return
      case CMD.PRESENCE:
        useContacts().setPresence(frame.userid, !!frame.online, Number(frame.last_seen) || 0)
        return
      case CMD.RECALLED:
        c.applyRecalled(frame)
        for (const h of search.hits) {
          if (Number(h.id) === Number(frame.id)) Object.assign(h, { recalled: true, content: '' })
        }
        settle(frame)
        return
      case CMD.SEARCH_RESULTS:
        settle(frame)
        return
      case CMD.CHANGED:
        // The answer to cmd 50–55: an update this connection gets only here.
        if (frame.msg && typeof frame.msg === 'object') {
          const r = c.receive(frame.msg)
          if (r.gap) send(c.resyncFrame(r.conv))
        }
        settle(frame)
        return
      case CMD.RESYNC:
        send(c.requestConvList())
        return
      case CMD.FRIEND_REQUEST: {
        // Someone asked, or answered our request: refresh the inbox and the friends.
        const contacts = useContacts()
        contacts.loadRequests().catch(() => {})
        if (frame.event === 'accepted') contacts.loadFriends().catch(() => {})
        return
      }
      case CMD.GROUP_REQUEST:
        useContacts().applyGroupEvent(frame)
        return
      case CMD.PROFILE:
        applyProfile(frame)
        return
      case CMD.NOTICE:
        if (typeof frame.text === 'string' && frame.text) notice.value = { text: frame.text, ts: frame.ts || Date.now() }
        return
      default:
        // Unknown commands come from a newer server: ignore them (forward compatible).
    }
  }

  /**
   * cmd 44: someone's name or picture changed; open chats, lists and my own "Me" follow.
   * @param {{userid?: number, nickname?: unknown, avatar?: unknown}} frame
   */
  function applyProfile(frame) {
    const id = Number(frame.userid)
    if (!id) return
    const patch = {}
    if (typeof frame.nickname === 'string' && frame.nickname) patch.nickname = frame.nickname
    if (typeof frame.avatar === 'string') patch.avatar = frame.avatar
    const contacts = useContacts()
    contacts.remember({ id, ...patch })
    for (const f of contacts.friends) if (Number(f.id) === id) Object.assign(f, patch)
    const session = useSession()
    if (id === Number(session.id)) session.setUser(patch)
  }

  function errorText(frame) {
    const key = `err_${frame.error}`
    const s = t(key)
    return s !== key ? s : frame.msg || frame.error || 'error'
  }

  let checkingToken = false
  async function checkToken() {
    if (checkingToken) return
    checkingToken = true
    try {
      await api.me()
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onLoggedOut()
    } finally {
      checkingToken = false
    }
  }

  /**
   * @param {{onLoggedOut?: (code?: number) => void, onNotificationClick?: (conv: string) => void}} [handlers]
   */
  function start(handlers = {}) {
    stop()
    const session = useSession()
    if (!session.loggedIn) return
    onLoggedOut = handlers.onLoggedOut || (() => {})
    onNotificationClick = handlers.onNotificationClick || (() => {})
    try {
      localStorage.removeItem(`imhub.read.${session.id}`) // the old client-side read cursors
    } catch { /* ignore */ }
    core.value = reactive(new ChatCore({ selfId: session.id, send: (f) => send(f) }))
    core.value.setVisible(!document.hidden)
    conn = markRaw(new Connection({
      url: () => wsUrl(session),
      onFrame,
      onOpen: () => {
        core.value.flushOutbox()
        send(core.value.requestConvList())
      },
      onState: (s, info) => {
        state.value = s
        nextRetryAt.value = info.nextRetryAt
        if (s !== STATE.OPEN) core.value?.onDisconnect()
        // Several refused attempts in a row may mean the token is no longer valid.
        if (s === STATE.WAITING && info.attempt >= 2) checkToken()
      },
      onLoggedOut: (code) => onLoggedOut(code),
    }))
    conn.start()
    timers.push(setInterval(() => core.value?.checkTimeouts(), 3000))
    const wake = () => {
      core.value?.setVisible(!document.hidden)
      if (!document.hidden) {
        conn?.reconnectNow()
        scheduleReads()
      }
    }
    const online = () => conn?.reconnectNow()
    const offline = () => conn?.networkLost()
    document.addEventListener('visibilitychange', wake)
    window.addEventListener('online', online)
    window.addEventListener('offline', offline)
    unwatch.push(() => document.removeEventListener('visibilitychange', wake))
    unwatch.push(() => window.removeEventListener('online', online))
    unwatch.push(() => window.removeEventListener('offline', offline))
    unwatch.push(watch(totalUnread, (n) => {
      document.title = n > 0 ? `(${n > 99 ? '99+' : n}) ${t('appName')}` : t('appName')
    }, { immediate: true }))
  }

  function stop() {
    conn?.stop()
    conn = null
    timers.forEach(clearInterval)
    timers = []
    clearTimeout(readTimer)
    readTimer = null
    clearTimeout(typingTimer)
    clearTimeout(typingTrail)
    typingTrail = null
    for (const timer of groupRefresh.values()) clearTimeout(timer)
    groupRefresh.clear()
    for (const w of waiting.values()) {
      clearTimeout(w.timer)
      w.reject(new Error('stopped'))
    }
    waiting.clear()
    Object.assign(search, { q: '', hits: [], users: [], groups: [], more: false, loading: false, error: '', done: false })
    unwatch.forEach((f) => f())
    unwatch = []
    core.value = null
    state.value = STATE.IDLE
    document.title = t('appName')
  }

  function reconnectNow() {
    conn?.reconnectNow()
  }

  // ---- actions used by the views ----------------------------------------------------
  /**
   * @param {number} cmd
   * @param {number} dstid
   * @param {{media: number} & Record<string, any>} body
   */
  function sendMessage(cmd, dstid, body) {
    return core.value.compose({ cmd, dstid, ...body })
  }

  /**
   * @param {string} cid
   */
  function retry(cid) {
    core.value.retry(cid)
  }

  /**
   * @param {string} cid
   */
  function discard(cid) {
    core.value.discard(cid)
  }

  /**
   * @param {string} conv
   */
  function openConv(conv) {
    const c = core.value.open(conv)
    scheduleReads()
    send(core.value.receiptsRequest(conv))
    return c
  }

  /**
   * @param {string} conv
   */
  function closeConv(conv) {
    core.value?.close(conv)
  }

  /**
   * @param {string} conv
   * @returns {boolean} whether a page was asked for
   */
  function loadOlder(conv) {
    const frame = core.value.olderFrame(conv)
    if (!frame) return false
    if (!send(frame)) {
      core.value.failRequest(frame.rid)
      return false
    }
    return true
  }

  /**
   * Resolves once `pred()` holds (or after `ms`).
   * @param {() => boolean} pred
   * @param {number} [ms]
   * @returns {Promise<boolean>}
   */
  function until(pred, ms = REQUEST_TIMEOUT_MS) {
    if (pred()) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => { stopWatch(); resolve(false) }, ms)
      const stopWatch = watch(pred, (ok) => {
        if (!ok) return
        clearTimeout(timer)
        stopWatch()
        resolve(true)
      })
    })
  }

  /**
   * Load history down to `seq` (a search hit) so the chat can show it; the follow-up
   * pages go out from onFrame (applyHistory). Resolves to whether `seq` is loaded.
   * @param {string} conv
   * @param {number} seq
   */
  async function loadUntil(conv, seq) {
    const c = core.value
    await until(() => !!c.convs[conv]?.loaded)
    await until(() => !c.convs[conv]?.loadingOlder)
    const frame = c.jumpFrame(conv, seq)
    if (frame) {
      if (!send(frame)) {
        c.failRequest(frame.rid)
        return false
      }
      await until(() => !c.convs[conv]?.loadingOlder)
    }
    return !!c.convs[conv]?.seen[seq]
  }

  /**
   * Load older pages of `conv` until the message with server id `id` is loaded (a pinned
   * message: the pins name ids only). Ids grow with seq within a conversation, so paging
   * stops once the oldest loaded message is older than `id` (it was hidden or deleted)
   * or nothing older is left. Resolves to the message, or null.
   * @param {string} conv
   * @param {number} id
   * @returns {Promise<Msg | null>}
   */
  async function loadUntilId(conv, id) {
    const c = core.value
    id = Number(id)
    const find = () => c.convs[conv]?.msgs.find((m) => Number(m.id) === id) || null
    await until(() => !!c.convs[conv]?.loaded)
    for (let pages = 0; pages < MAX_PAGES_TO_FIND && !find(); pages += 1) {
      await until(() => !c.convs[conv]?.loadingOlder)
      const cv = c.convs[conv]
      const oldest = cv?.msgs.find((m) => m.id)
      if (find() || !cv || (oldest && Number(oldest.id) < id) || !loadOlder(conv)) break
      await until(() => !c.convs[conv]?.loadingOlder)
    }
    return find()
  }

  /**
   * The user is typing in `conv`: tell the others (at most every 2 s). A keystroke
   * inside the 2 s window is not lost: one trailing cmd 24 goes out when the window
   * ends, if `stillTyping()` then.
   * @param {string} conv
   * @param {() => boolean} [stillTyping]
   */
  function typing(conv, stillTyping = () => true) {
    const c = core.value
    if (!c) return
    const frame = c.typingFrame(conv)
    if (frame) {
      send(frame)
      return
    }
    if (typingTrail) return
    const wait = Math.max(0, TYPING_INTERVAL_MS - (Date.now() - (c.typingSentAt[conv] || 0))) + 50
    typingTrail = setTimeout(() => {
      typingTrail = null
      if (core.value === c && c.activeConv === conv && stillTyping()) send(c.typingFrame(conv))
    }, wait)
  }

  /**
   * @param {Msg} msg
   */
  function canRecall(msg) {
    return !!core.value?.canRecall(msg)
  }

  /**
   * @param {Msg} msg
   */
  function canEdit(msg) {
    return !!core.value?.canEdit(msg)
  }

  /**
   * @param {Msg} msg
   */
  async function recall(msg) {
    const reply = await request(core.value.recallRequest(msg))
    core.value.applyRecalled(reply)
    return reply
  }

  // ---- changes to messages and conversations (cmd 50–55, answered by cmd 43) ---------
  /**
   * @param {Msg} msg
   * @param {string} content
   */
  function editMessage(msg, content) {
    return request(editFrame(msg.id, content))
  }
  /**
   * Add `emoji` (or remove it: `add` false) to `msg`; the update comes to every device.
   * @param {Msg} msg
   * @param {string} emoji
   * @param {boolean} [add]
   */
  function react(msg, emoji, add = true) {
    return request(reactFrame(msg.id, emoji, add))
  }
  /** @param {Msg[]} msgs */
  async function hideMessages(msgs) {
    return request(hideFrame({ ids: msgs.map((m) => m.id) }))
  }
  /**
   * @param {Msg} msg
   * @param {boolean} pinned
   */
  function pinMessage(msg, pinned) {
    return request(pinFrame(msg.id, pinned))
  }
  /**
   * My settings of a conversation (cmd 54): pinned to the top, muted.
   * @param {string} conv
   * @param {{pinned?: boolean, muted?: boolean}} settings
   */
  function setConvSettings(conv, settings) {
    return request(convSettingsFrame(conv, settings))
  }
  /**
   * @param {Msg[]} msgs
   * @param {string[]} to  conversation ids
   */
  async function forward(msgs, to) {
    const reply = await request(forwardFrame(msgs.map((m) => m.id), to))
    // The copies are mine in other conversations: the list and a sync bring them here.
    send(core.value?.requestConvList() || null)
    return reply
  }

  /**
   * cmd 27: a new search (`more` false) or its next page.
   * @param {string} q
   * @param {boolean} [more]
   */
  async function runSearch(q, more = false) {
    q = String(q || '').trim()
    if (!q) {
      Object.assign(search, { q: '', hits: [], users: [], groups: [], more: false, loading: false, error: '', done: false })
      return
    }
    if (search.loading) return
    const before = more && search.hits.length ? search.hits.at(-1).id : 0
    if (!more) Object.assign(search, { q, hits: [], users: [], groups: [], more: false, done: false })
    search.loading = true
    search.error = ''
    try {
      const reply = await request(searchFrame(q, before, 20))
      if (search.q !== q) return
      for (const h of reply.hits || []) {
        onMessage(h)
        search.hits.push({ ...h, recalled: !!h.recalled })
      }
      // The first page lists the friends and groups that match (cmd 39 `users`, `groups`).
      if (!more) Object.assign(search, { users: reply.users || [], groups: reply.groups || [] })
      search.more = !!reply.more
      search.done = true
    } catch (err) {
      search.error = err.message
    } finally {
      search.loading = false
    }
  }

  return {
    core, state, nextRetryAt, lastError, totalUnread, syncing,
    search, notice,
    start, stop, reconnectNow, sendMessage, retry, discard, openConv, closeConv, loadOlder, loadUntil, loadUntilId,
    typing,
    canRecall, canEdit, recall, runSearch,
    editMessage, react, hideMessages, pinMessage, setConvSettings, forward,
  }
})
