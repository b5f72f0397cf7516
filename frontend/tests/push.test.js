import { readFileSync } from 'node:fs'
import vm from 'node:vm'
import { describe, expect, it } from 'vitest'
import { dicts } from '../src/lib/i18n.js'
import { enablePush, keyBytes, pushSupported } from '../src/lib/push.js'

const SW = readFileSync(new URL('../public/sw.js', import.meta.url), 'utf8')

/** Load public/sw.js in a sandbox with a fake worker global; returns its listeners. */
function loadWorker({ language = 'en-US', fetch } = {}) {
  const listeners = {}
  const shown = []
  const opened = []
  const self = {
    navigator: { language },
    addEventListener: (type, fn) => { listeners[type] = fn },
    registration: { showNotification: async (title, options) => { shown.push({ title, ...options }) } },
    clients: { matchAll: async () => [], openWindow: async (url) => { opened.push(url) }, claim: async () => {} },
    skipWaiting: () => {},
  }
  vm.runInNewContext(SW, { self, fetch, URLSearchParams, String, Number, Array, Promise })
  async function push(data) {
    let done
    listeners.push({ data: { json: () => data }, waitUntil: (p) => { done = p } })
    await done
  }
  async function click(conv) {
    let done
    listeners.notificationclick({ notification: { data: { conv }, close() {} }, waitUntil: (p) => { done = p } })
    await done
  }
  return { push, click, shown, opened }
}

describe('service worker', () => {
  it('shows the last message, fetched with the session', async () => {
    const calls = []
    const fetch = async (url, init) => {
      calls.push([url, String(init.body), init.credentials])
      return { json: async () => ({ code: 0, rows: [{ media: 1, content: 'hello there', seq: 7 }] }) }
    }
    const w = loadWorker({ fetch })
    await w.push({ conv: 'p1_2', count: 1 })
    expect(calls).toEqual([['/message/history', 'conv=p1_2&limit=1', 'same-origin']])
    expect(w.shown).toHaveLength(1)
    expect(w.shown[0]).toMatchObject({ title: 'imhub', body: 'hello there', tag: 'p1_2', data: { conv: 'p1_2' } })
  })
  it('says "New message" when the text cannot be fetched, in the browser language', async () => {
    const fetch = async () => { throw new TypeError('offline') }
    const en = loadWorker({ fetch })
    await en.push({ conv: 'g3', count: 1 })
    expect(en.shown[0].body).toBe(dicts.en.newMessage)
    const zh = loadWorker({ fetch, language: 'zh-CN' })
    await zh.push({ conv: 'g3', count: 4 })
    expect(zh.shown[0].body).toBe(dicts.zh.newMessages.replace('{n}', '4'))
    const loggedOut = loadWorker({ fetch: async () => ({ json: async () => ({ code: -1, msg: 'unauthorized' }) }) })
    await loggedOut.push({ conv: 'g3', count: 1 })
    expect(loggedOut.shown[0].body).toBe(dicts.en.newMessage)
  })
  it('opens the conversation on click', async () => {
    const w = loadWorker({ fetch: async () => { throw new Error('x') } })
    await w.click('p1_2')
    expect(w.opened).toEqual(['/chat/p1_2'])
  })
})

describe('push opt-in', () => {
  it('decodes the VAPID key', () => {
    expect(Array.from(keyBytes('AQID_w'))).toEqual([1, 2, 3, 255])
  })
  it('needs a secure context with service workers and PushManager', () => {
    expect(pushSupported({})).toBe(false)
    expect(pushSupported({ isSecureContext: true, navigator: { serviceWorker: {} }, PushManager: {}, Notification: {} }))
      .toBe(true)
  })
  it('subscribes with the server key and stores the subscription', async () => {
    const posts = []
    const post = async (path, params) => {
      posts.push([path, params])
      return path === '/push/key' ? { data: { enabled: true, public_key: 'AQID' } } : { data: {} }
    }
    let subscribed
    const reg = {
      active: {},
      pushManager: {
        getSubscription: async () => null,
        subscribe: async (o) => {
          subscribed = o
          return { toJSON: () => ({ endpoint: 'https://push.example/x', keys: { p256dh: 'P', auth: 'A' } }) }
        },
      },
    }
    const g = {
      isSecureContext: true,
      PushManager: {},
      Notification: { permission: 'default', requestPermission: async () => 'granted' },
      navigator: { serviceWorker: { register: async (url, o) => { expect([url, o.scope]).toEqual(['/asset/sw.js', '/asset/']); return reg } } },
    }
    expect(await enablePush(post, g)).toBe('on')
    expect(subscribed.userVisibleOnly).toBe(true)
    expect(Array.from(subscribed.applicationServerKey)).toEqual([1, 2, 3])
    expect(posts).toEqual([
      ['/push/key', undefined],
      ['/push/subscribe', { endpoint: 'https://push.example/x', p256dh: 'P', auth: 'A' }],
    ])
    g.Notification = { permission: 'denied' }
    expect(await enablePush(post, g)).toBe('denied')
  })
})
