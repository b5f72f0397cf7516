// Friends, groups and a cache of the people and groups messages mention.
import { defineStore } from 'pinia'
import { reactive, ref } from 'vue'
import { ApiError, api } from '../lib/api.js'
import { t } from '../lib/i18n.js'
import { parseUserQuery } from '../lib/mobile.js'
import { useSession } from './session.js'

/** @typedef {{id: number, mobile?: string, nickname?: string, avatar?: string, online?: boolean, last_seen?: number} & Record<string, any>} User */

export const useContacts = defineStore('contacts', () => {
  const friends = ref([])
  const groups = ref([])
  const users = reactive({}) // id → User
  const groupById = reactive({}) // id → Community
  const members = reactive({}) // group id → [User]
  const pendingUsers = new Set()
  const requests = ref([]) // incoming friend requests, newest first
  const blocked = ref([]) // users I blocked
  const groupEvent = ref(null) // the last cmd 42 (join request / invitation) event, for pages to react to

  /**
   * @param {User | null | undefined} u
   */
  function remember(u) {
    if (u && u.id) users[u.id] = { ...(users[u.id] || {}), ...u }
  }

  async function loadFriends() {
    const s = useSession()
    const rows = await api.loadFriends(s.id)
    rows.forEach(remember)
    friends.value = rows
    return rows
  }

  async function loadRequests() {
    const rows = await api.friendRequests('incoming')
    requests.value = rows
    return rows
  }

  /**
   * @param {number} id  the request
   * @param {boolean} yes  accept (else decline)
   */
  async function answerRequest(id, yes) {
    if (yes) await api.acceptFriend(id)
    else await api.declineFriend(id)
    await Promise.all([loadRequests(), loadFriends()])
  }

  async function loadBlocks() {
    blocked.value = await api.loadBlocks()
    return blocked.value
  }

  /**
   * Block (ends the friendship; they are not told) or unblock a user.
   * @param {number} id
   * @param {boolean} yes
   */
  async function setBlocked(id, yes) {
    if (yes) await api.block(id)
    else await api.unblock(id)
    await Promise.all([loadBlocks(), loadFriends()])
  }

  async function loadGroups() {
    const s = useSession()
    const rows = await api.loadGroups(s.id)
    for (const g of rows) groupById[g.id] = g
    groups.value = rows
    return rows
  }

  /**
   * @param {number | string} groupId
   */
  async function loadMembers(groupId) {
    const s = useSession()
    const rows = await api.members(s.id, groupId)
    rows.forEach((u) => { if (!users[u.id]) remember(u) })
    members[groupId] = rows
    return rows
  }

  /**
   * Look a user up once (for senders in groups who are not friends).
   * @param {number | string} id
   */
  function ensureUser(id) {
    id = Number(id)
    if (!id || users[id] || pendingUsers.has(id)) return
    pendingUsers.add(id)
    api.findById(id).then(remember).catch(() => {}).finally(() => pendingUsers.delete(id))
  }

  // user id -> `last_seen` of the presence event applied last: events of one user can
  // arrive out of order (an 'offline' published after a reconnect's 'online').
  const presenceAt = new Map()

  /**
   * cmd 35: a friend came online or went offline (`lastSeen` ms); a stale one is dropped.
   * @param {number | string} id
   * @param {boolean} online
   * @param {number} lastSeen
   */
  function setPresence(id, online, lastSeen) {
    id = Number(id)
    if (!id) return
    if (lastSeen) {
      if (lastSeen < (presenceAt.get(id) || 0)) return
      presenceAt.set(id, lastSeen)
    }
    const patch = { online: !!online }
    if (lastSeen) patch.last_seen = lastSeen
    users[id] = { ...(users[id] || { id }), ...patch }
    for (const f of friends.value) if (Number(f.id) === id) Object.assign(f, patch)
  }

  /**
   * @param {number | string} id
   * @returns {string}
   */
  function userName(id) {
    const s = useSession()
    if (Number(id) === Number(s.id)) return s.user?.nickname || s.user?.mobile || t('me')
    const u = users[id]
    return u?.nickname || u?.mobile || t('unknownUser', { id })
  }

  /**
   * @param {number | string} id
   * @returns {string}
   */
  function groupName(id) {
    return groupById[id]?.name || t('unknownGroup', { id })
  }

  /**
   * @param {string} query  a user id or a mobile number
   */
  async function addFriend(query) {
    const s = useSession()
    const q = parseUserQuery(query)
    if (!q) throw new Error(t('badMobileOrId'))
    let dstid = q.id
    if (q.mobile) {
      try {
        dstid = (await api.findByMobile(q.mobile)).id
      } catch (err) {
        // No one has this number (a refusal, not a limit or the network): it may be an id.
        if (!q.id || !(err instanceof ApiError) || err.status !== 200) throw err
      }
    }
    const reply = await api.addFriend(s.id, dstid)
    await loadFriends()
    // Under the consent model the other user has to accept first.
    return { id: dstid, requested: !!reply?.data?.request }
  }

  async function createGroup(p) {
    const s = useSession()
    const g = await api.createGroup({ ownerid: s.id, ...p })
    await loadGroups()
    return g
  }

  /**
   * @param {number | string} id
   */
  async function joinGroup(id) {
    const s = useSession()
    const reply = await api.joinGroup(s.id, id)
    await loadGroups()
    // An 'approval' group: a join request was filed; an owner or admin decides.
    return { pending: !!reply?.data?.pending }
  }

  /**
   * @param {number | string} id
   */
  async function leaveGroup(id) {
    const s = useSession()
    await api.leaveGroup(s.id, id)
    await loadGroups()
  }

  /**
   * @param {number | string} id
   * @param {string} name
   */
  async function renameGroup(id, name) {
    const s = useSession()
    const g = await api.renameGroup(s.id, id, name)
    if (g && g.id) groupById[g.id] = g
    await loadGroups()
    return g
  }

  /**
   * @param {number | string} id
   * @param {number | string} memberid
   */
  async function removeMember(id, memberid) {
    const s = useSession()
    await api.removeMember(s.id, id, memberid)
    await loadMembers(id)
  }

  /**
   * cmd 42: a join request was filed, approved, declined or cancelled, or I was invited.
   * Pages that list requests watch `groupEvent`; an approval of my own request adds a group.
   * @param {{event?: string, groupid?: number, userid?: number}} frame
   */
  function applyGroupEvent(frame) {
    groupEvent.value = { ...frame, at: Date.now() }
    const s = useSession()
    if (frame.event === 'join_approved' && Number(frame.userid) === Number(s.id)) loadGroups().catch(() => {})
  }

  /**
   * My role in a group: 'owner', 'admin', 'member' or '' when I am not in it.
   * @param {number | string} groupId
   * @returns {string}
   */
  function myRole(groupId) {
    const g = groupById[groupId]
    if (!g) return ''
    const s = useSession()
    if (Number(g.ownerid) === Number(s.id)) return 'owner'
    return g.role || 'member'
  }

  /**
   * Join with an invite link's token; returns the group.
   * @param {string} token
   */
  async function joinByToken(token) {
    const s = useSession()
    const g = await api.joinByToken(s.id, token)
    await loadGroups()
    return g
  }

  /**
   * Owner only: change `joinpolicy` and/or `visibility`.
   * @param {number | string} id
   * @param {{joinpolicy?: string, visibility?: string}} p
   */
  async function updateGroupSettings(id, p) {
    const g = await api.groupSettings(id, p)
    if (g && g.id) groupById[g.id] = { ...(groupById[g.id] || {}), ...g }
    return g
  }

  function reset() {
    friends.value = []
    requests.value = []
    blocked.value = []
    groups.value = []
    for (const k of Object.keys(users)) delete users[k]
    for (const k of Object.keys(groupById)) delete groupById[k]
    for (const k of Object.keys(members)) delete members[k]
    presenceAt.clear()
    groupEvent.value = null
  }

  return {
    friends, groups, users, groupById, members, requests, blocked, remember, loadFriends, loadRequests, answerRequest,
    loadBlocks, setBlocked,
    loadGroups, loadMembers, ensureUser,
    userName, groupName, addFriend, createGroup, joinGroup, leaveGroup, renameGroup, removeMember, setPresence, reset,
    groupEvent, applyGroupEvent, myRole, joinByToken, updateGroupSettings,
  }
})
