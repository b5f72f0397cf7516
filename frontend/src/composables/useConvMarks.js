// The chat list's per-browser marks (lib/convmarks.js) as reactive state of the
// logged-in user, saved on every change.
import { reactive, watch } from 'vue'
import { hide, isHidden, loadMarks, prune, saveMarks } from '../lib/convmarks.js'
import { useSession } from '../stores/session.js'

/** @param {() => Array<{conv: string, lastSeq: number}>} convs  the list's conversations */
export function useConvMarks(convs) {
  const session = useSession()
  const marks = reactive(loadMarks(session.id))
  const save = () => saveMarks(session.id, marks)
  // A newer message undoes a hide for good (deleting again hides up to it).
  watch(convs, (list) => { if (prune(marks, list)) save() }, { immediate: true })
  return {
    /** @param {{conv: string, lastSeq: number}} c */
    hidden: (c) => isHidden(marks, c),
    /** @param {string} conv */
    markedUnread: (conv) => !!marks.unread[conv],
    /** @param {{conv: string, lastSeq: number}} c */
    hide(c) { hide(marks, c); save() },
    /** @param {string} conv @param {boolean} yes */
    setUnread(conv, yes) {
      if (yes) marks.unread[conv] = true
      else if (!marks.unread[conv]) return
      else delete marks.unread[conv]
      save()
    },
  }
}
