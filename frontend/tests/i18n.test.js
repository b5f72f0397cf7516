import { describe, expect, it } from 'vitest'
import { ApiError } from '../src/lib/api.js'
import { dicts, errorText, formatTime, lang, pickLang, setLang, tIn } from '../src/lib/i18n.js'

describe('i18n', () => {
  it('follows the browser language', () => {
    expect(pickLang(['zh-CN', 'en'])).toBe('zh')
    expect(pickLang(['zh-TW'])).toBe('zh')
    expect(pickLang(['en-GB', 'zh'])).toBe('en')
    expect(pickLang(['fr-FR'])).toBe('en')
    expect(pickLang([])).toBe('en')
  })
  it('has every key in both languages', () => {
    expect(Object.keys(dicts.zh).sort()).toEqual(Object.keys(dicts.en).sort())
  })
  it('translates refusals by their error name, else shows the server message', () => {
    const refusal = (error, msg) => new ApiError(msg, 403, { code: -1, error, msg })
    expect(errorText(refusal('role_required', 'only the group owner may do this'))).toBe(dicts.en.err_role_required)
    expect(errorText(refusal('invite_revoked', 'x'))).toBe(dicts.en.err_invite_revoked)
    expect(errorText(refusal('something_new', 'server says no'))).toBe('server says no')
    expect(errorText(new Error('network down'))).toBe('network down')
    for (const k of ['err_role_required', 'err_banned', 'err_invite_expired', 'err_owner_fixed']) {
      expect(dicts.zh[k]).toBeTruthy()
      expect(dicts.zh[k]).not.toBe(dicts.en[k])
    }
  })
  it('formats times relative to now', () => {
    const now = new Date(2025, 5, 15, 18, 0).getTime()
    expect(formatTime(new Date(2025, 5, 15, 9, 5).getTime(), now)).toBe('09:05')
    expect(formatTime(new Date(2025, 5, 14, 23, 59).getTime(), now)).toMatch(/23:59$/)
    expect(formatTime(new Date(2025, 0, 2, 7, 0).getTime(), now, 'en')).toBe('Jan 2 07:00')
    expect(formatTime(new Date(2023, 0, 2, 7, 0).getTime(), now, 'en')).toBe('Jan 2, 2023')
    expect(formatTime(new Date(2025, 5, 14, 23, 59).getTime(), now, 'zh')).toBe('昨天 23:59')
    expect(formatTime(new Date(2025, 0, 2, 7, 0).getTime(), now, 'zh')).toBe('1月2日 07:00')
    expect(formatTime(new Date(2023, 0, 2, 7, 0).getTime(), now, 'zh')).toBe('2023年1月2日')
    expect(formatTime(0, now)).toBe('')
  })
  it('switches language at run time', () => {
    const before = lang.value
    setLang('zh')
    expect(lang.value).toBe('zh')
    expect(errorText(new ApiError('x', 403, { code: -1, error: 'banned', msg: 'x' }))).toBe(dicts.zh.err_banned)
    setLang('xx')
    expect(lang.value).toBe('zh')
    setLang(before)
  })
  it('joins a Chinese name to Chinese text without a space, a Latin one with', () => {
    expect(tIn('zh', 'evJoined', { user: '你' })).toBe('你加入了群聊')
    expect(tIn('zh', 'evJoined', { user: 'Ann' })).toBe('Ann 加入了群聊')
    expect(tIn('zh', 'evRemoved', { actor: '小明', user: 'Bo' })).toBe('小明将 Bo 移出了群聊')
    expect(tIn('en', 'evJoined', { user: '{user} $&' })).toBe('{user} $& joined')
    expect(tIn('zh', 'noOlder')).not.toBe('已经到底了')
  })
  it('names every server error code in both languages', () => {
    // imhub/errors.py ErrorCode labels (docs/protocol.md)
    const codes = ['bad_json', 'bad_frame', 'unknown_cmd', 'unknown_media', 'frame_too_large', 'forged_userid',
      'bad_query', 'bad_url', 'refused', 'unauthorized', 'not_friend', 'not_member', 'not_yours',
      'recall_window_passed', 'not_in_conversation', 'forbidden', 'unknown_target', 'unknown_message', 'not_found',
      'bad_param', 'unknown_user', 'self_request', 'already_friends', 'duplicate_request', 'unknown_request',
      'request_decided', 'request_expired', 'not_friends', 'you_blocked', 'not_blocked', 'unknown_group',
      'already_member', 'role_required', 'banned', 'invite_required', 'unknown_invite', 'invite_revoked',
      'invite_expired', 'group_full', 'already_requested', 'no_join_request', 'owner_fixed', 'not_banned',
      'too_many_groups', 'seq_beyond_end', 'rate_limited', 'internal', 'overloaded', 'edit_window_passed',
      'not_editable', 'too_many_reactions', 'too_many_pins', 'rejected', 'deactivated', 'hook_unavailable']
    for (const c of codes) {
      expect(dicts.en[`err_${c}`], c).toBeTruthy()
      expect(dicts.zh[`err_${c}`], c).toMatch(/[\u4e00-\u9fff]/)
    }
  })
  it('recognises the generic refusals by their message', () => {
    const generic = (msg) => new ApiError(msg, 200, { code: -1, msg })
    expect(errorText(generic('wrong mobile or password'))).toBe(dicts.en.err_wrong_password)
    expect(errorText(generic('this mobile number is already registered'))).toBe(dicts.en.err_mobile_taken)
    expect(errorText(new ApiError('Failed to fetch', 0))).toBe(dicts.en.errorNetwork)
  })
})
