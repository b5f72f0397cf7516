/* imhub service worker: shows Web Push notifications (docs/protocol.md "Web Push").
 * The push carries only {conv, count}; the text is fetched here with the user's
 * session cookie, and when that fails (logged out, offline) the notification says
 * "New message". Served as /asset/sw.js (scope /asset/: it only handles pushes and
 * notification clicks, never the page's requests). A classic script: no imports. */

// Keep in step with newMessage / newMessages in src/lib/i18n.js (a test checks it).
const STRINGS = {
  en: { newMessage: 'New message', newMessages: '{n} new messages' },
  zh: { newMessage: '新消息', newMessages: '{n} 条新消息' },
}

function strings() {
  const l = String((self.navigator && self.navigator.language) || '').toLowerCase()
  return l.startsWith('zh') ? STRINGS.zh : STRINGS.en
}

async function lastMessage(conv) {
  const res = await fetch('/message/history', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ conv, limit: '1' }),
  })
  const body = await res.json()
  const rows = body && body.code === 0 && Array.isArray(body.rows) ? body.rows : []
  return rows[rows.length - 1] || null
}

/** The notification for a push payload: title and options for showNotification. */
async function notificationFor(data) {
  const s = strings()
  const conv = typeof data.conv === 'string' ? data.conv : ''
  const count = Number(data.count) || 1
  let body = count > 1 ? s.newMessages.replace('{n}', String(count)) : s.newMessage
  try {
    const m = conv ? await lastMessage(conv) : null
    if (m && !m.recalled && Number(m.media) === 1 && m.content) {
      body = String(m.content).slice(0, 120)
      if (count > 1) body = `[${count}] ${body}`
    }
  } catch { /* no session or offline: the generic text */ }
  return ['imhub', { body, tag: conv || 'imhub', renotify: true, data: { conv } }]
}

self.addEventListener('push', (event) => {
  let data = {}
  try {
    data = event.data ? event.data.json() : {}
  } catch { /* not JSON: the generic text */ }
  event.waitUntil(notificationFor(data || {}).then(([title, options]) => self.registration.showNotification(title, options)))
})

self.addEventListener('notificationclick', (event) => {
  event.notification.close()
  const conv = event.notification.data && event.notification.data.conv
  const url = conv ? `/chat/${encodeURIComponent(conv)}` : '/chats'
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true })
    for (const w of windows) {
      if ('focus' in w) {
        await w.focus()
        if ('navigate' in w) await w.navigate(url).catch(() => {})
        return
      }
    }
    await self.clients.openWindow(url)
  })())
})

self.addEventListener('install', () => self.skipWaiting())
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()))
