// Small helpers shared by views: how a conversation is named and pictured.
import { CMD } from '@imhub/sdk/protocol.js'
import { useContacts } from '../stores/contacts.js'

export function useConvInfo() {
  const contacts = useContacts()
  function title(c) {
    if (!c) return ''
    return c.cmd === CMD.GROUP ? contacts.groupName(c.dstid) : contacts.userName(c.dstid)
  }
  function avatar(c) {
    if (!c) return ''
    return c.cmd === CMD.GROUP ? contacts.groupById[c.dstid]?.icon || '' : contacts.users[c.dstid]?.avatar || ''
  }
  function online(c) {
    if (!c || c.cmd === CMD.GROUP) return null
    const u = contacts.users[c.dstid]
    return u ? !!u.online : null
  }
  return { title, avatar, online }
}
