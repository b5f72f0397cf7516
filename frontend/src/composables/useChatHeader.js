// The chat's title bar: the conversation's name, and under it who is typing, else the
// peer's presence (cmd 35 keeps it live).
import { computed } from 'vue'
import { formatTime, t } from '../lib/i18n.js'
import { CMD } from '@imhub/sdk/protocol.js'
import { useChat } from '../stores/chat.js'
import { useContacts } from '../stores/contacts.js'
import { useConvInfo } from './useConvInfo.js'

const JUST_NOW_MS = 60000

/**
 * @param {() => string} conv
 * @param {import('vue').Ref<{cmd: number, dstid: number} | null>} target  parsed `conv`
 */
export function useChatHeader(conv, target) {
  const chat = useChat()
  const contacts = useContacts()
  const info = useConvInfo()
  const isGroup = computed(() => target.value?.cmd === CMD.GROUP)

  const title = computed(() => info.title(chat.core?.convs[conv()] || { ...target.value, conv: conv() }))
  const typingIds = computed(() => chat.core?.typingUsers(conv()) || [])
  const subtitle = computed(() => {
    const ids = typingIds.value
    if (ids.length) {
      if (!isGroup.value) return t('typing')
      return ids.length === 1 ? t('typingName', { name: contacts.userName(ids[0]) }) : t('typingMany')
    }
    if (isGroup.value || !target.value) return ''
    const u = contacts.users[target.value.dstid]
    if (!u) return ''
    if (u.online) return t('online')
    if (u.last_seen) {
      return Date.now() - u.last_seen < JUST_NOW_MS ? t('lastSeenJustNow') : t('lastSeen', { time: formatTime(u.last_seen) })
    }
    return t('offline')
  })

  return { isGroup, title, typingIds, subtitle }
}
