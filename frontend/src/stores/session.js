// Who is logged in. The session cookie is HttpOnly, so the token and id the login reply
// carries are also kept in localStorage for the WebSocket URL.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api } from '../lib/api.js'

const KEY = 'imhub.session'

function load() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || 'null')
    if (s && s.id && s.token) return s
  } catch { /* corrupted: start over */ }
  return null
}

/** @typedef {import('./contacts.js').User} User */

export const useSession = defineStore('session', () => {
  const saved = load()
  const id = ref(saved?.id || 0)
  const token = ref(saved?.token || '')
  const user = ref(saved?.user || null)

  const loggedIn = computed(() => !!(id.value && token.value))

  function persist() {
    if (!id.value) localStorage.removeItem(KEY)
    else localStorage.setItem(KEY, JSON.stringify({ id: id.value, token: token.value, user: user.value }))
  }

  /**
   * @param {string} mobile
   * @param {string} passwd
   */
  async function login(mobile, passwd) {
    const u = await api.login(mobile, passwd)
    id.value = Number(u.id)
    token.value = u.token
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
    token.value = ''
    user.value = null
    persist()
  }

  async function logout() {
    try {
      await api.logout()
    } catch { /* the local session goes anyway */ }
    clear()
  }

  return { id, token, user, loggedIn, login, logout, clear, refresh, setUser }
})
