// Who is logged in. The session token lives only in the HttpOnly cookie set at login,
// which authenticates the HTTP calls and the WebSocket alike; localStorage keeps the
// user's id and profile (not secret) so a reload knows who it is before asking.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api } from '../lib/api.js'

const KEY = 'imhub.session'

function load() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || 'null')
    if (s && s.id) {
      // Saved by an older client, which kept the token here too: forget it.
      if ('token' in s) localStorage.setItem(KEY, JSON.stringify({ id: s.id, user: s.user || null }))
      return s
    }
  } catch { /* corrupted: start over */ }
  return null
}

/** @typedef {import('./contacts.js').User} User */

export const useSession = defineStore('session', () => {
  const saved = load()
  const id = ref(saved?.id || 0)
  const user = ref(saved?.user || null)

  const loggedIn = computed(() => !!id.value)

  function persist() {
    if (!id.value) localStorage.removeItem(KEY)
    else localStorage.setItem(KEY, JSON.stringify({ id: id.value, user: user.value }))
  }

  /**
   * @param {string} mobile
   * @param {string} passwd
   */
  async function login(mobile, passwd) {
    const u = await api.login(mobile, passwd)
    id.value = Number(u.id)
    user.value = { ...u, token: undefined }
    persist()
    return u
  }

  /**
   * @param {Partial<User> | null | undefined} u
   */
  function setUser(u) {
    if (!u) return
    user.value = { ...(user.value || {}), ...u, token: undefined }
    persist()
  }

  async function refresh() {
    setUser(await api.me())
  }

  function clear() {
    id.value = 0
    user.value = null
    persist()
  }

  async function logout() {
    try {
      await api.logout()
    } catch { /* the local session goes anyway */ }
    clear()
  }

  return { id, user, loggedIn, login, logout, clear, refresh, setUser }
})
