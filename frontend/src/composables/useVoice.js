// Hold-to-talk: press starts recording, sliding up past CANCEL_SLIDE_PX cancels,
// release sends. The recorder (lib/recorder.js) stops by itself at its time limit.
import { showToast } from 'vant'
import { onBeforeUnmount, ref } from 'vue'
import { t } from '../lib/i18n.js'
import { VoiceRecorder } from '../lib/recorder.js'

const CANCEL_SLIDE_PX = 60

/**
 * @param {(clip: {blob: Blob, ext: string, seconds: number}) => void} onClip  a kept recording
 */
export function useVoice(onClip) {
  const recorder = new VoiceRecorder({ onAutoStop: () => finish(true) })
  const recording = ref(false)
  const cancelling = ref(false)
  const seconds = ref(0)
  let tick = null
  let startY = 0

  /** @param {PointerEvent} e */
  async function start(e) {
    if (recording.value) return
    /** @type {HTMLElement | null} */ (e.currentTarget)?.setPointerCapture?.(e.pointerId)
    startY = e.clientY
    cancelling.value = false
    recording.value = true
    seconds.value = 0
    tick = setInterval(() => { seconds.value = Math.floor(recorder.elapsed) }, 250)
    try {
      await recorder.start()
    } catch {
      clearInterval(tick)
      recording.value = false
      showToast(t('micDenied'))
    }
  }

  /** @param {PointerEvent} e */
  function move(e) {
    if (recording.value) cancelling.value = startY - e.clientY > CANCEL_SLIDE_PX
  }

  /** @param {boolean} keep  false: the gesture was cancelled by the browser */
  async function finish(keep) {
    if (!recording.value) return
    clearInterval(tick)
    recording.value = false
    const clip = await recorder.stop(keep && !cancelling.value)
    if (!clip) return
    if (clip.tooShort) {
      showToast(t('tooShort'))
      return
    }
    onClip(clip)
  }

  onBeforeUnmount(() => { if (recording.value) finish(false) })

  return { recording, cancelling, seconds, start, move, finish }
}
