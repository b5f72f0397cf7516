// The WebSocket connection: heartbeat, dead-connection detection, reconnect with
// exponential backoff + jitter, and a visible state. It knows nothing about messages:
// frames go out through send() and come in through onFrame. The outgoing queue lives in
// the chat core (its pending messages), which resends them on every `open`.

import { backoffDelay } from './backoff.js'
import { CLOSE_LOGGED_OUT, heartbeatFrame } from './protocol.js'

export const STATE = Object.freeze({
  IDLE: 'idle', // not started
  CONNECTING: 'connecting',
  OPEN: 'open',
  WAITING: 'waiting', // closed, a reconnect is scheduled
  CLOSED: 'closed', // stopped (logout, or token refused)
})

/** @typedef {typeof STATE[keyof typeof STATE]} State */
/** @typedef {{attempt: number, nextRetryAt: number, closeCode: number}} StateInfo */

export class Connection {
  /**
   * @param {object} o
   * @param {() => string} o.url            WebSocket URL, asked again on each attempt
   * @param {new (url: string) => WebSocket} [o.WebSocketImpl]  defaults to globalThis.WebSocket
   * @param {(frame: any) => void} [o.onFrame]
   * @param {(state: State, info: StateInfo) => void} [o.onState]
   * @param {() => void} [o.onOpen]
   * @param {(code: number) => void} [o.onLoggedOut]
   * @param {number} [o.heartbeatMs]        a heartbeat goes out this often
   * @param {number} [o.deadMs]             nothing received for this long: the socket is dead
   * @param {number} [o.connectTimeoutMs]   an attempt not open after this is dropped
   * @param {{base?: number, max?: number, random?: () => number}} [o.backoff]  see backoff.js
   * @param {() => number} [o.now]
   */
  constructor(o) {
    this.url = o.url
    this.WebSocketImpl = o.WebSocketImpl || globalThis.WebSocket
    this.onFrame = o.onFrame || (() => {})
    this.onState = o.onState || (() => {})
    this.onOpen = o.onOpen || (() => {})
    this.onLoggedOut = o.onLoggedOut || (() => {})
    this.heartbeatMs = o.heartbeatMs ?? 20000
    this.deadMs = o.deadMs ?? 2.5 * this.heartbeatMs
    this.connectTimeoutMs = o.connectTimeoutMs ?? 10000
    this.backoff = o.backoff || {}
    this.now = o.now || (() => Date.now())
    /** @type {State} */
    this.state = STATE.IDLE
    this.attempt = 0
    this.ws = null
    this.lastRx = 0
    this.nextRetryAt = 0
    this.closeCode = 0
    this._retryTimer = null
    this._hbTimer = null
    this._connectTimer = null
  }

  /** @param {State} state */
  _set(state) {
    this.state = state
    this.onState(state, { attempt: this.attempt, nextRetryAt: this.nextRetryAt, closeCode: this.closeCode })
  }

  start() {
    if (this.state === STATE.CONNECTING || this.state === STATE.OPEN) return
    this._clearRetry()
    this._connect()
  }

  stop() {
    this._clearRetry()
    this._stopHeartbeat()
    const ws = this.ws
    this.ws = null
    if (ws) {
      ws.onopen = ws.onclose = ws.onmessage = ws.onerror = null
      try { ws.close(1000) } catch { /* already closed */ }
    }
    this._set(STATE.CLOSED)
  }

  /** Reconnect at once (network came back, tab became visible, user tapped retry). */
  reconnectNow() {
    if (this.state === STATE.WAITING || this.state === STATE.IDLE) {
      this._clearRetry()
      this._connect()
    }
  }

  /** The browser says the network is gone: stop trusting the socket, retry with backoff. */
  networkLost() {
    if (this.ws) this._drop(this.ws)
  }

  get isOpen() {
    return this.state === STATE.OPEN && !!this.ws
  }

  /** Write a frame; false when not connected (the caller keeps it queued). */
  send(frame) {
    if (!this.isOpen) return false
    try {
      this.ws.send(JSON.stringify(frame))
      return true
    } catch {
      return false
    }
  }

  _connect() {
    let ws
    this.closeCode = 0
    this._set(STATE.CONNECTING)
    try {
      ws = new this.WebSocketImpl(this.url())
    } catch {
      this._scheduleRetry()
      return
    }
    this.ws = ws
    this._connectTimer = setTimeout(() => {
      if (this.ws === ws && this.state === STATE.CONNECTING) this._drop(ws)
    }, this.connectTimeoutMs)
    ws.onopen = () => {
      if (this.ws !== ws) return
      clearTimeout(this._connectTimer)
      this.lastRx = this.now()
      this._set(STATE.OPEN)
      this._startHeartbeat()
      this.onOpen()
    }
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return
      this.lastRx = this.now()
      // A frame proves the server accepted us: the next outage starts from a short delay.
      this.attempt = 0
      let frame
      try {
        frame = JSON.parse(ev.data)
      } catch {
        return
      }
      if (frame && typeof frame === 'object' && !Array.isArray(frame)) this.onFrame(frame)
    }
    ws.onerror = () => { /* onclose follows */ }
    ws.onclose = (ev) => {
      if (this.ws !== ws) return
      this.ws = null
      clearTimeout(this._connectTimer)
      this._stopHeartbeat()
      this.closeCode = ev?.code || 0
      if (this.closeCode === CLOSE_LOGGED_OUT) {
        this._set(STATE.CLOSED)
        this.onLoggedOut(this.closeCode)
        return
      }
      this._scheduleRetry()
    }
  }

  _drop(ws) {
    // Treat as closed now; the socket's own close event is ignored (this.ws changed).
    ws.onopen = ws.onclose = ws.onmessage = ws.onerror = null
    try { ws.close() } catch { /* ignore */ }
    this.ws = null
    clearTimeout(this._connectTimer)
    this._stopHeartbeat()
    this._scheduleRetry()
  }

  _scheduleRetry() {
    const delay = backoffDelay(this.attempt, this.backoff)
    this.attempt += 1
    this.nextRetryAt = this.now() + delay
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null
      this._connect()
    }, delay)
    this._set(STATE.WAITING)
  }

  _clearRetry() {
    if (this._retryTimer) clearTimeout(this._retryTimer)
    this._retryTimer = null
  }

  _startHeartbeat() {
    this._stopHeartbeat()
    this._hbTimer = setInterval(() => {
      const ws = this.ws
      if (!ws) return
      if (this.now() - this.lastRx > this.deadMs) {
        this._drop(ws) // silent for too long: the connection is dead
        return
      }
      this.send(heartbeatFrame())
    }, this.heartbeatMs)
  }

  _stopHeartbeat() {
    if (this._hbTimer) clearInterval(this._hbTimer)
    this._hbTimer = null
  }
}
