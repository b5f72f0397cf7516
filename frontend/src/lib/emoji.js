// Emoji for the text picker, and the built-in sticker set: large emoji sent as media 6
// (`content` = the emoji), so no image files are needed.
export const EMOJI = [...'😀😁😂🤣😊😍😘😜🤔😎😭😡😱😴🤗🙄😅😇🥳🤩👍👎👏🙏💪👌✌️🤝🎉❤️💔🔥⭐🌹🍺☕🍉🎂🎁⚽🐶🐱🌙☀️']
  .reduce((out, ch) => {
    // keep variation selectors with their base character
    if (ch === '\ufe0f' && out.length) out[out.length - 1] += ch
    else out.push(ch)
    return out
  }, [])

export const STICKERS = ['👍', '😂', '🥰', '🎉', '😭', '😡', '🤔', '👋', '🙏', '💯', '🌹', '🐶']
