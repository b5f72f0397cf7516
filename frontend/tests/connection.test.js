import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Connection, STATE } from '@imhub/sdk/connection.js'

class FakeWS {
  static all = []
  constructor(url) {
    this.url = url
    this.sent = []
    this.closed = false
    FakeWS.all.push(this)
  }
  send(d) { this.sent.push(JSON.parse(d)) }
  close() { this.closed = true }
  open() { this.onopen?.() }
  message(obj) { this.onmessage?.({ data: JSON.stringify(obj) }) }
  drop(code = 1006) { this.onclose?.({ code }) }
}

describe('connection', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    FakeWS.all = []
  })
  afterEach(() => vi.useRealTimers())

  function make(extra = {}) {
    const frames = []
    const states = []
    const opens = []
    const c = new Connection({
      url: () => 'ws://x/chat?id=1&token=t&autosync=0',
      WebSocketImpl: FakeWS,
      onFrame: (f) => frames.push(f),
      onState: (s) => states.push(s),
      onOpen: () => opens.push(1),
      heartbeatMs: 20000,
      backoff: { base: 1000, max: 8000, random: () => 1 },
      now: () => Date.now(),
      ...extra,
    })
    return { c, frames, states, opens }
  }

  it('opens, heartbeats every 20 s and dispatches frames', () => {
    const { c, frames, opens } = make()
    c.start()
    const ws = FakeWS.all[0]
    expect(ws.url).toContain('autosync=0')
    expect(c.send({ cmd: 0 })).toBe(false) // not open yet
    ws.open()
    expect(c.state).toBe(STATE.OPEN)
    expect(opens).toHaveLength(1)
    vi.advanceTimersByTime(20000)
    expect(ws.sent).toEqual([{ cmd: 0 }])
    ws.message({ cmd: 0, ts: 1 })
    ws.onmessage({ data: 'not json' })
    expect(frames).toEqual([{ cmd: 0, ts: 1 }])
  })

  it('reconnects with growing, capped delays', () => {
    const { c, states } = make()
    c.start()
    const delays = []
    for (let i = 0; i < 6; i++) {
      const ws = FakeWS.all.at(-1)
      ws.drop()
      expect(c.state).toBe(STATE.WAITING)
      delays.push(c.nextRetryAt - Date.now())
      vi.advanceTimersByTime(c.nextRetryAt - Date.now())
      expect(FakeWS.all).toHaveLength(i + 2)
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000, 8000])
    expect(states).toContain(STATE.CONNECTING)
  })

  it('resets the backoff once the server talks', () => {
    const { c } = make()
    c.start()
    FakeWS.all[0].drop()
    vi.advanceTimersByTime(1000)
    FakeWS.all[1].drop()
    vi.advanceTimersByTime(2000)
    const ws = FakeWS.all[2]
    ws.open()
    ws.message({ cmd: 0 })
    ws.drop()
    expect(c.nextRetryAt - Date.now()).toBe(1000)
  })

  it('drops a silent connection and reconnects', () => {
    const { c } = make()
    c.start()
    FakeWS.all[0].open()
    vi.advanceTimersByTime(60000) // no frame for 60 s > 2.5 heartbeats
    expect(FakeWS.all[0].closed).toBe(true)
    expect(c.state === STATE.WAITING || c.state === STATE.CONNECTING).toBe(true)
    vi.advanceTimersByTime(10000)
    expect(FakeWS.all.length).toBeGreaterThan(1)
  })

  it('gives up on 4001 (logged out)', () => {
    const onLoggedOut = vi.fn()
    const { c } = make({ onLoggedOut })
    c.start()
    FakeWS.all[0].open()
    FakeWS.all[0].drop(4001)
    expect(c.state).toBe(STATE.CLOSED)
    expect(onLoggedOut).toHaveBeenCalledWith(4001)
    vi.advanceTimersByTime(60000)
    expect(FakeWS.all).toHaveLength(1)
  })

  it('stop() closes and does not reconnect; reconnectNow skips the wait', () => {
    const { c } = make()
    c.start()
    FakeWS.all[0].drop()
    c.reconnectNow()
    expect(FakeWS.all).toHaveLength(2)
    c.stop()
    vi.advanceTimersByTime(60000)
    expect(FakeWS.all).toHaveLength(2)
    expect(c.state).toBe(STATE.CLOSED)
  })
})

describe('network loss', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    FakeWS.all = []
  })
  afterEach(() => vi.useRealTimers())

  it('networkLost() drops the socket and schedules a reconnect', () => {
    const c = new Connection({ url: () => 'ws://x', WebSocketImpl: FakeWS, backoff: { base: 1000, random: () => 1 } })
    c.start()
    FakeWS.all[0].open()
    expect(c.isOpen).toBe(true)
    c.networkLost()
    expect(FakeWS.all[0].closed).toBe(true)
    expect(c.state).toBe(STATE.WAITING)
    expect(c.send({ cmd: 0 })).toBe(false)
    vi.advanceTimersByTime(1000)
    expect(FakeWS.all).toHaveLength(2)
  })
})
