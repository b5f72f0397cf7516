// Web Push opt-in (docs/protocol.md "Web Push"): register the service worker
// (public/sw.js, served at /asset/sw.js), subscribe with the server's VAPID key and
// hand the subscription to the server. Only after the user asks for it (Me tab).

export const SW_URL = '/asset/sw.js'

/** Whether this browser can do Web Push at all (secure context, SW, PushManager). */
export function pushSupported(g = globalThis) {
  return !!(g.isSecureContext && g.navigator?.serviceWorker && g.PushManager && g.Notification)
}

/** base64url -> Uint8Array (applicationServerKey). */
export function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (b64url.length % 4)) % 4)
  const bin = atob(b64)
  return Uint8Array.from(bin, (c) => c.charCodeAt(0))
}

/** The current subscription of this browser, or null. */
export async function currentSubscription(g = globalThis) {
  if (!pushSupported(g)) return null
  const reg = await g.navigator.serviceWorker.getRegistration(SW_URL)
  return reg ? reg.pushManager.getSubscription() : null
}

/**
 * Ask for permission, subscribe, and store the subscription on the server.
 * @param {(path: string, params?: Record<string, unknown>) => Promise<any>} post  api.js `post`
 * @returns {Promise<'on'|'denied'|'unsupported'|'off'>}
 */
export async function enablePush(post, g = globalThis) {
  if (!pushSupported(g)) return 'unsupported'
  const perm = g.Notification.permission === 'default' ? await g.Notification.requestPermission() : g.Notification.permission
  if (perm !== 'granted') return 'denied'
  const { data } = await post('/push/key')
  if (!data?.enabled || !data.public_key) return 'off'
  const reg = await g.navigator.serviceWorker.register(SW_URL, { scope: '/asset/' })
  await activated(reg)
  let sub = await reg.pushManager.getSubscription()
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(data.public_key) })
  const json = sub.toJSON()
  await post('/push/subscribe', { endpoint: json.endpoint, p256dh: json.keys.p256dh, auth: json.keys.auth })
  return 'on'
}

/**
 * Wait until the registration has an active worker (subscribe needs one). Not
 * `serviceWorker.ready`: that waits for a worker controlling this page, and ours
 * (scope /asset/) never controls the app's pages.
 */
function activated(reg) {
  if (reg.active) return Promise.resolve(reg)
  const worker = reg.installing || reg.waiting
  if (!worker) return Promise.resolve(reg)
  return new Promise((resolve) => {
    worker.addEventListener('statechange', () => {
      if (worker.state === 'activated' || reg.active) resolve(reg)
    })
  })
}

/** Stop pushes to this browser (server first, then the browser's subscription). */
export async function disablePush(post, g = globalThis) {
  const sub = await currentSubscription(g)
  if (!sub) return
  await post('/push/unsubscribe', { endpoint: sub.endpoint }).catch(() => {})
  await sub.unsubscribe().catch(() => {})
}
