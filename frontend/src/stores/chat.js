// The live side: one WebSocket (lib/connection.js) feeding a reactive ChatCore
// (lib/chatcore.js), plus what the browser shows around it: connection state, unread
// count in the title, notifications while the tab is hidden.
import { defineStore } from 'pinia'
import { computed, markRaw, reactive, ref, shallowRef, watch } from 'vue'
import { ApiError, api } from '../lib/api.js'
import { ChatCore } from '../lib/chatcore.js'
import { Connection, STATE } from '../lib/connection.js'
import { t } from '../lib/i18n.js'
import { CMD, summary } from '../lib/protocol.js'
import { useContacts } from './contacts.js'
import { useSession } from './session.js'

const READ_KEY = (id) => `imhub.read.${id}`

export const useChat = defineStore('chat', () => {
  const core = shallowRef(null) // reactive ChatCore, replaced per login
  const state = ref(STATE.IDLE)
  const nextRetryAt = ref(0)
  const lastError = ref('')
  let conn = null
  let timers = []
  let unwatch = []
  let onLoggedOut = () => {}

  const totalUnread = computed(() => (core.value ? core.value.totalUnread : 0))
  const syncing = computed(() => !!core.value?.syncing)

  function wsUrl(session) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const q = new URLSearchParams({ id: String(session.id), token: session.token, autosync: '0' })
    return `${proto}//${location.host}/chat?${q}`
  }

  function send(frame) {
    return frame ? !!conn?.send(frame) : false
  }

  function notify(msg, conv) {
    if (typeof Notification === 'undefined' || Notification.permission !== 'granted') return
    if (!document.hidden) return
    const contacts = useContacts()
    const c = core.value.convs[conv]
    const who = contacts.userName(msg.userid)
    const title = c?.cmd === CMD.GROUP ? `${contacts.groupName(c.dstid)} · ${who}` : who
    try {
      const n = new Notification(title, { body: summary(msg, t).slice(0, 120), tag: conv })
      n.onclick = () => {
        window.focus()
        onNotificationClick(conv)
        n.close()
      }
    } catch { /* some browsers only allow notifications from a service worker */ }
  }
  let onNotificationClick = () => {}

  function onFrame(frame) {
    const c = core.value
    switch (frame.cmd) {
      case CMD.HEARTBEAT:
        return
      case CMD.ACK:
        c.onAck(frame)
        return
      case CMD.ERROR:
        if (!c.onError(frame)) lastError.value = frame.msg || frame.error || 'error'
        return
      case CMD.PRIVATE:
      case CMD.GROUP: {
        const r = c.receive(frame)
        if (r.gap) send(c.resyncFrame(r.conv))
        if (r.added) {
          useContacts().ensureUser(frame.userid)
          if (Number(frame.userid) !== Number(c.selfId)) notify(r.msg, r.conv)
        }
        return
      }
      case CMD.SYNC_PAGE:
        send(c.applySyncPage(frame))
        for (const m of frame.msgs || []) useContacts().ensureUser(m.userid)
        return
      case CMD.CONV_LIST_REPLY:
        send(c.applyConvList(frame))
        for (const item of frame.convs || []) if (item.last) useContacts().ensureUser(item.last.userid)
        return
      case CMD.RESYNC:
        send(c.requestConvList())
        return
      default:
        // Unknown commands come from a newer server: ignore them (forward compatible).
        // TODO(server: receipts/typing/recall/presence) — handle here when documented.
    }
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

  function start(handlers = {}) {
    stop()
    const session = useSession()
    if (!session.loggedIn) return
    onLoggedOut = handlers.onLoggedOut || (() => {})
    onNotificationClick = handlers.onNotificationClick || (() => {})
    let readSeqs = {}
    try {
      readSeqs = JSON.parse(localStorage.getItem(READ_KEY(session.id)) || '{}') || {}
    } catch { /* ignore */ }
    core.value = reactive(new ChatCore({ selfId: session.id, send: (f) => send(f), readSeqs }))
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
      onLoggedOut: () => onLoggedOut(),
    }))
    conn.start()
    timers.push(setInterval(() => core.value?.checkTimeouts(), 3000))
    const wake = () => {
      if (!document.hidden) {
        conn?.reconnectNow()
        if (core.value?.activeConv) core.value.markRead(core.value.activeConv)
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
    unwatch.push(watch(() => ({ ...core.value?.readSeqs }), (v) => {
      localStorage.setItem(READ_KEY(session.id), JSON.stringify(v))
    }))
    unwatch.push(watch(totalUnread, (n) => {
      document.title = n > 0 ? `(${n > 99 ? '99+' : n}) ${t('appName')}` : t('appName')
    }, { immediate: true }))
  }

  function stop() {
    conn?.stop()
    conn = null
    timers.forEach(clearInterval)
    timers = []
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
  function sendMessage(cmd, dstid, body) {
    return core.value.compose({ cmd, dstid, ...body })
  }

  function retry(cid) {
    core.value.retry(cid)
  }

  function discard(cid) {
    core.value.discard(cid)
  }

  function openConv(conv) {
    return core.value.open(conv)
  }

  function closeConv(conv) {
    core.value?.close(conv)
  }

  function loadOlder(conv) {
    const frame = core.value.olderFrame(conv)
    if (!frame) return false
    if (!send(frame)) {
      core.value.convs[conv].loadingOlder = false
      delete core.value.requests[frame.rid]
      return false
    }
    return true
  }

  return {
    core, state, nextRetryAt, lastError, totalUnread, syncing,
    start, stop, reconnectNow, sendMessage, retry, discard, openConv, closeConv, loadOlder,
  }
})
