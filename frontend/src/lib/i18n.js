// A tiny dictionary, one language at a time: the one chosen in the Me view (kept in
// localStorage), else Chinese when the browser prefers it, English otherwise. `lang` is
// a ref, so every template that calls `t` re-renders when it changes; App.vue makes
// Vant's locale and <html lang> follow it. Other parts of the app append their keys to
// both dictionaries (a unit test checks that both have the same keys).
import { ref } from 'vue'

const en = {
  appName: 'imhub',
  login: 'Log in', register: 'Sign up', logout: 'Log out', mobile: 'Mobile', password: 'Password',
  nickname: 'Nickname', noAccount: 'No account? Sign up', haveAccount: 'Have an account? Log in',
  registered: 'Account created, please log in', required: 'Required', passwordShort: 'At least 6 characters',
  chats: 'Chats', contacts: 'Contacts', groups: 'Groups', me: 'Me', noChats: 'No conversations yet',
  noChatsHint: 'Add a friend or join a group to start chatting',
  addFriend: 'Add friend', addFriendHint: 'User id or mobile number',
  badMobile: 'A mobile number has 5 to 20 digits', badMobileOrId: 'Enter a user id or a mobile number',
  add: 'Add', friendAdded: 'Friend added', requestSent: 'Friend request sent',
  friendRequests: 'Friend requests', accept: 'Accept', decline: 'Decline',
  block: 'Block', unblock: 'Unblock', blockedUsers: 'Blocked', blockConfirm: 'Block {name}? They will not be told.',
  noFriends: 'No friends yet', online: 'Online', offline: 'Offline',
  createGroup: 'Create group', joinGroup: 'Join group', groupName: 'Group name', groupMemo: 'Description',
  groupIcon: 'Icon', groupId: 'Group id', create: 'Create', join: 'Join', joined: 'Joined the group',
  joinRequested: 'Join request sent',
  created: 'Group created', noGroups: 'No groups yet', members: 'Members', leaveGroup: 'Leave group',
  leaveConfirm: 'Leave this group?', left: 'You left the group', sendMessage: 'Send message', owner: 'Owner',
  send: 'Send', typeMessage: 'Message', holdToTalk: 'Hold to talk', releaseToSend: 'Release to send',
  releaseToCancel: 'Release to cancel', tooShort: 'Too short', recording: 'Recording…',
  micDenied: 'Microphone not available', album: 'Album', camera: 'Camera', sticker: 'Sticker',
  emoji: 'Emoji', link: 'Link', contactCard: 'Contact card', news: 'News', voice: 'Voice', image: 'Image',
  video: 'Video', redpacket: 'Red packet', message: 'Message', recalled: 'Message recalled',
  file: 'File', download: 'Download', playVideo: 'Play video',
  err_media_too_large: 'The file is too large', err_unsupported_media: 'This type of file cannot be sent',
  linkPrompt: 'Paste a link (http or https)', badLink: 'Only http and https links', chooseContact: 'Choose a contact',
  uploading: 'Uploading…', uploadFailed: 'Upload failed', sendFailed: 'Not sent — tap to retry',
  retry: 'Retry', delete: 'Delete', cancel: 'Cancel', save: 'Save', saved: 'Saved', loadingOlder: 'Loading…',
  noOlder: 'Beginning of the conversation', connecting: 'Connecting…', reconnectIn: 'Offline — reconnecting in {s}s',
  reconnectNow: 'Reconnect', syncing: 'Syncing…', loggedOut: 'Signed out: please log in again',
  notifications: 'Notifications', enableNotifications: 'Enable notifications', notificationsOn: 'On',
  notificationsBlocked: 'Blocked by the browser', pushNotifications: 'Notify me when offline',
  pushOn: 'On', pushOff: 'Off', pushUnsupported: 'Not supported by this browser', pushServerOff: 'Off on this server',
  newMessages: '{n} new messages', myId: 'My id', profile: 'Profile', avatar: 'Avatar',
  yuan: '¥{n}', openRedpacket: 'Red packet', tapToView: 'Tap to view', userId: 'Id {id}',
  today: 'Today', yesterday: 'Yesterday', groupChat: 'Group', unknownUser: 'User {id}', unknownGroup: 'Group {id}',
  newMessage: 'New message', errorNetwork: 'Network error, please retry', sessionExpired: 'Session expired, please log in',
  you: 'You', youObject: 'you', offlineNow: 'Not connected', delivered: 'Delivered', read: 'Read', readBy: 'Read by {n}',
  typing: 'typing…', typingName: '{name} is typing…', typingMany: 'Several people are typing…',
  lastSeen: 'Last seen {time}', lastSeenJustNow: 'Last seen just now',
  recall: 'Recall', copy: 'Copy', copied: 'Copied', recallDone: 'Message recalled',
  search: 'Search', searchHint: 'Search messages, contacts, groups', noResults: 'Nothing found',
  searchMessages: 'Messages', markUnread: 'Mark as unread', markRead: 'Mark as read',
  deleteChat: 'Delete from list', loadMore: 'Load more',
  noMore: 'No more results', messageGone: 'That message is no longer available',
  evCreated: '{actor} created the group "{name}"', evJoined: '{user} joined', evLeft: '{user} left',
  evRemoved: '{actor} removed {user}', evRenamed: '{actor} renamed the group to "{name}"', evOther: 'Group updated',
  renameGroup: 'Rename group', groupRenamed: 'Group renamed', removeMember: 'Remove from group',
  removeConfirm: 'Remove {name} from the group?', memberRemoved: 'Member removed', memberActions: 'Member',
  err_recall_window_passed: 'Messages can only be recalled within 2 minutes',
  err_not_yours: 'You can only recall your own messages', err_unknown_message: 'No such message',
  err_bad_query: 'Type something to search for', err_not_in_conversation: 'You are not in this conversation',
  err_rate_limited: 'Too fast, please wait a moment',
  groupSettings: 'Group settings', joinPolicy: 'Who can join', policyOpen: 'Anyone with the group id',
  policyApproval: 'Needs approval', policyInvite: 'Invitation only', historyVisibility: 'New members see',
  visJoined: 'Messages from when they joined', visShared: 'The whole history', settingsSaved: 'Settings saved',
  admins: 'Admins', admin: 'Admin', remove: 'Remove', makeAdmin: 'Make admin', removeAdmin: 'Remove admin',
  joinRequests: 'Join requests', noJoinRequests: 'No pending requests', approve: 'Approve',
  joinApproved: 'Request approved', joinDeclined: 'Request declined',
  bans: 'Banned', noBans: 'Nobody is banned', unban: 'Lift ban', unbanned: 'Ban lifted',
  inviteLinks: 'Invite links', createInviteLink: 'Create invite link', noInvites: 'No active links',
  inviteExpires: 'Expires {time}', inviteUses: 'Used {n}×', revoke: 'Revoke', revoked: 'Revoked',
  revokeConfirm: 'Revoke this invite link? It stops working at once.', inviteCreated: 'Invite link created',
  copyFailed: 'Copy failed: select the link and copy it', joinByInvite: 'Group invitation',
  inviteHint: 'You were invited to join a group on imhub.', inviteGroup: 'You were invited to join "{name}"',
  openChat: 'Open chat', backToChats: 'Back to chats',
  err_role_required: 'Only the group owner or an admin can do this', err_not_member: 'You are not a member of this group',
  err_banned: 'You are banned from this group', err_invite_required: 'This group can only be joined with an invitation',
  err_unknown_invite: 'This invite link does not exist', err_invite_revoked: 'This invite link was revoked',
  err_invite_expired: 'This invite link has expired', err_group_full: 'The group is full',
  err_already_requested: 'You already asked to join this group', err_already_member: 'Already a member of this group',
  err_no_join_request: 'That request no longer exists', err_owner_fixed: "The owner's role cannot be changed",
  err_not_banned: 'That user is not banned', err_bad_param: 'Invalid value', err_unknown_group: 'No such group',
  // every ErrorCode of imhub/errors.py (docs/protocol.md), by its name
  err_bad_json: 'The app sent a malformed request', err_bad_frame: 'The app sent a malformed request',
  err_unknown_cmd: 'This server does not know that request', err_unknown_media: 'This kind of message is not supported',
  err_frame_too_large: 'The message is too long', err_forged_userid: 'Not allowed for this account',
  err_bad_url: 'That link or file cannot be sent', err_refused: 'Not allowed',
  err_unauthorized: 'Session expired, please log in', err_not_friend: 'You can only message friends',
  err_forbidden: 'Not allowed', err_unknown_target: 'No such user or group', err_not_found: 'Not found',
  err_unknown_user: 'No such user', err_self_request: 'That is you',
  err_already_friends: 'Already friends', err_duplicate_request: 'You already sent a request; wait for an answer',
  err_unknown_request: 'That request no longer exists', err_request_decided: 'That request was already answered',
  err_request_expired: 'That request has expired', err_not_friends: 'Not a friend',
  err_you_blocked: 'You blocked this user; unblock them first', err_not_blocked: 'That user is not blocked',
  err_too_many_groups: 'You own too many groups', err_seq_beyond_end: 'Out of sync, please reload',
  err_internal: 'Server error, please retry', err_overloaded: 'The server is busy, please retry shortly',
  err_edit_window_passed: 'This message can no longer be edited', err_not_editable: 'This message cannot be edited',
  err_too_many_reactions: 'Too many reactions on this message', err_too_many_pins: 'Too many pinned messages',
  err_rejected: 'This message was not accepted', err_deactivated: 'This account is deactivated',
  err_hook_unavailable: 'The message could not be checked, please retry',
  // the generic `refused` of the seed's routes, recognised by its message (REFUSALS below)
  err_wrong_password: 'Wrong mobile number or password', err_mobile_taken: 'This mobile number is already registered',
  err_no_such_mobile: 'No user with this mobile number', err_account_banned: 'This account is banned',
  err_old_password: 'The old password is wrong', err_name_required: 'A name is required',
  err_too_long: 'Too long', err_bad_value: 'Invalid value',
  language: 'Language', back: 'Back', more: 'More', voiceInput: 'Voice message', keyboardInput: 'Keyboard',
  groupInfo: 'Group info', newChat: 'Add contact', selectChat: 'Choose a conversation to start chatting',
  openConversation: 'Open conversation with {name}', unreadCount: '{n} unread',
  // the chat view (issue #18)
  previousImage: 'Previous image', nextImage: 'Next image',
  backspace: 'Delete', unheard: 'Not played yet', newMessagesBelow: '{n} new messages', newMessagesDivider: 'New messages', addFriendConfirm: 'Add friend: {name}?', logoutConfirm: 'Log out of imhub?',
  notMemberComposer: 'You are no longer a member of this group, so you cannot send messages here.',
  sendTimeout: 'no reply from the server', notSentBecause: 'Not sent: {reason}',
  // message features (issue #19)
  edited: 'edited', forwarded: 'Forwarded', goToQuoted: 'Go to the quoted message', quoteDeleted: 'Message deleted',
  reactionLabel: '{emoji} {n}', replyAction: 'Reply', editAction: 'Edit', reactAction: 'React',
  deleteForMe: 'Delete for me', pinMessage: 'Pin', unpinMessage: 'Unpin', forwardAction: 'Forward',
  replyingTo: 'Replying to {name}', editingMessage: 'Editing', cancelReply: 'Cancel reply', cancelEdit: 'Cancel edit',
  pinnedMessage: 'Pinned message', pinChat: 'Pin to top', unpinChat: 'Unpin from top', muteChat: 'Mute',
  unmuteChat: 'Unmute', mutedChat: 'Muted', mentionedYou: '[@you]', forwardTo: 'Forward to',
  forwardedDone: 'Forwarded', mentionAll: 'Everyone', mentionPick: 'Mention someone', addReaction: 'React with {emoji}',
  selectAction: 'Select', selectMessage: 'Select message', nSelected: '{n} selected',
  selectLimit: 'At most {n} messages at once', reactionsAction: 'Reactions', reactorsTitle: 'Reactions',
  reactorsMore: 'and {n} more', pinnedList: 'Pinned messages', pinnedCount: '{n} pinned',
  showAllPins: 'All pinned messages', goToPinned: 'Go to the pinned message', unpinNamed: 'Unpin: {text}',
  loadingMessage: 'Loading…', close: 'Close',
}

const zh = {
  appName: 'imhub',
  login: '登录', register: '注册', logout: '退出登录', mobile: '手机号', password: '密码',
  nickname: '昵称', noAccount: '没有账号？去注册', haveAccount: '已有账号？去登录',
  registered: '注册成功，请登录', required: '必填', passwordShort: '至少 6 位',
  chats: '消息', contacts: '通讯录', groups: '群聊', me: '我', noChats: '还没有会话',
  noChatsHint: '添加好友或加入群聊开始聊天',
  addFriend: '添加好友', addFriendHint: '用户 ID 或手机号',
  badMobile: '手机号应为 5 到 20 位数字', badMobileOrId: '请输入用户 ID 或手机号', add: '添加', friendAdded: '已添加好友', requestSent: '已发送好友请求',
  friendRequests: '好友请求', accept: '接受', decline: '拒绝',
  block: '拉黑', unblock: '解除拉黑', blockedUsers: '黑名单', blockConfirm: '拉黑 {name}？对方不会收到通知。',
  noFriends: '还没有好友', online: '在线', offline: '离线',
  createGroup: '创建群聊', joinGroup: '加入群聊', groupName: '群名称', groupMemo: '群简介',
  groupIcon: '群头像', groupId: '群号', create: '创建', join: '加入', joined: '已加入群聊',
  joinRequested: '已发送入群申请',
  created: '群聊已创建', noGroups: '还没有群聊', members: '群成员', leaveGroup: '退出群聊',
  leaveConfirm: '确定退出该群？', left: '已退出群聊', sendMessage: '发消息', owner: '群主',
  send: '发送', typeMessage: '输入消息', holdToTalk: '按住 说话', releaseToSend: '松开 发送',
  releaseToCancel: '松开手指，取消发送', tooShort: '说话时间太短', recording: '录音中…',
  micDenied: '无法使用麦克风', album: '相册', camera: '拍摄', sticker: '表情包',
  emoji: '表情', link: '链接', contactCard: '名片', news: '图文', voice: '语音', image: '图片',
  video: '视频', redpacket: '红包', message: '消息', recalled: '消息已撤回',
  file: '文件', download: '下载', playVideo: '播放视频',
  err_media_too_large: '文件太大', err_unsupported_media: '不支持发送此类文件',
  linkPrompt: '粘贴链接（http 或 https）', badLink: '只支持 http 和 https 链接', chooseContact: '选择联系人',
  uploading: '上传中…', uploadFailed: '上传失败', sendFailed: '发送失败，点击重试',
  retry: '重试', delete: '删除', cancel: '取消', save: '保存', saved: '已保存', loadingOlder: '加载中…',
  noOlder: '没有更早的消息了', connecting: '连接中…', reconnectIn: '网络断开，{s} 秒后重连',
  reconnectNow: '立即重连', syncing: '同步中…', loggedOut: '已退出，请重新登录',
  notifications: '消息通知', enableNotifications: '开启通知', notificationsOn: '已开启',
  notificationsBlocked: '已被浏览器阻止', pushNotifications: '离线时推送通知',
  pushOn: '已开启', pushOff: '已关闭', pushUnsupported: '此浏览器不支持', pushServerOff: '服务器未开启',
  newMessages: '{n} 条新消息', myId: '我的 ID', profile: '个人资料', avatar: '头像',
  yuan: '¥{n}', openRedpacket: '红包', tapToView: '点击查看', userId: 'ID {id}',
  today: '今天', yesterday: '昨天', groupChat: '群', unknownUser: '用户 {id}', unknownGroup: '群 {id}',
  newMessage: '新消息', errorNetwork: '网络错误，请重试', sessionExpired: '登录已过期，请重新登录',
  you: '你', youObject: '你', offlineNow: '未连接', delivered: '已送达', read: '已读', readBy: '{n} 人已读',
  typing: '对方正在输入…', typingName: '{name} 正在输入…', typingMany: '多人正在输入…',
  lastSeen: '最后在线 {time}', lastSeenJustNow: '刚刚在线',
  recall: '撤回', copy: '复制', copied: '已复制', recallDone: '已撤回',
  search: '搜索', searchHint: '搜索聊天记录、联系人、群聊', noResults: '没有找到相关结果',
  searchMessages: '聊天记录', markUnread: '标为未读', markRead: '标为已读', deleteChat: '删除该聊天', loadMore: '加载更多',
  noMore: '没有更多结果了', messageGone: '该消息已不存在',
  evCreated: '{actor} 创建了群聊“{name}”', evJoined: '{user} 加入了群聊', evLeft: '{user} 退出了群聊',
  evRemoved: '{actor} 将 {user} 移出了群聊', evRenamed: '{actor} 将群名改为“{name}”', evOther: '群信息已更新',
  renameGroup: '修改群名', groupRenamed: '群名已修改', removeMember: '移出群聊',
  removeConfirm: '将 {name} 移出群聊？', memberRemoved: '已移出', memberActions: '群成员',
  err_recall_window_passed: '只能撤回 2 分钟内的消息',
  err_not_yours: '只能撤回自己的消息', err_unknown_message: '消息不存在',
  err_bad_query: '请输入要搜索的内容', err_not_in_conversation: '你不在该会话中',
  err_rate_limited: '操作太快，请稍后再试',
  groupSettings: '群管理', joinPolicy: '加群方式', policyOpen: '知道群号即可加入',
  policyApproval: '需群主或管理员同意', policyInvite: '仅限邀请', historyVisibility: '新成员可见',
  visJoined: '入群后的消息', visShared: '全部历史消息', settingsSaved: '设置已保存',
  admins: '管理员', admin: '管理员', remove: '移出', makeAdmin: '设为管理员', removeAdmin: '取消管理员',
  joinRequests: '入群申请', noJoinRequests: '暂无入群申请', approve: '同意',
  joinApproved: '已同意', joinDeclined: '已拒绝',
  bans: '禁止入群', noBans: '没有被禁止入群的用户', unban: '解除禁止', unbanned: '已解除',
  inviteLinks: '邀请链接', createInviteLink: '生成邀请链接', noInvites: '没有有效的邀请链接',
  inviteExpires: '{time} 过期', inviteUses: '已使用 {n} 次', revoke: '撤销', revoked: '已撤销',
  revokeConfirm: '撤销此邀请链接？撤销后立即失效。', inviteCreated: '邀请链接已生成',
  copyFailed: '复制失败，请手动选择链接复制', joinByInvite: '群邀请',
  inviteHint: '你收到了一个 imhub 群聊邀请。', inviteGroup: '邀请你加入“{name}”',
  openChat: '进入群聊', backToChats: '返回消息',
  err_role_required: '只有群主或管理员可以这样做', err_not_member: '你不是该群成员',
  err_banned: '你已被禁止加入该群', err_invite_required: '该群仅限邀请加入',
  err_unknown_invite: '邀请链接不存在', err_invite_revoked: '邀请链接已被撤销',
  err_invite_expired: '邀请链接已过期', err_group_full: '群成员已满',
  err_already_requested: '你已申请过加入该群', err_already_member: '已经是群成员',
  err_no_join_request: '该申请已不存在', err_owner_fixed: '群主的身份不能更改',
  err_not_banned: '该用户未被禁止入群', err_bad_param: '取值无效', err_unknown_group: '群不存在',
  err_bad_json: '应用发送了格式错误的请求', err_bad_frame: '应用发送了格式错误的请求',
  err_unknown_cmd: '服务器不支持该请求', err_unknown_media: '不支持这种消息类型',
  err_frame_too_large: '消息太长', err_forged_userid: '当前账号无权这样做',
  err_bad_url: '该链接或文件不能发送', err_refused: '操作被拒绝',
  err_unauthorized: '登录已过期，请重新登录', err_not_friend: '只能给好友发消息',
  err_forbidden: '无权这样做', err_unknown_target: '用户或群不存在', err_not_found: '不存在',
  err_unknown_user: '用户不存在', err_self_request: '不能对自己这样做',
  err_already_friends: '已经是好友', err_duplicate_request: '已发送过请求，请等待对方回复',
  err_unknown_request: '该请求已不存在', err_request_decided: '该请求已处理',
  err_request_expired: '该请求已过期', err_not_friends: '对方不是你的好友',
  err_you_blocked: '你已拉黑对方，请先解除拉黑', err_not_blocked: '该用户未被拉黑',
  err_too_many_groups: '你创建的群太多了', err_seq_beyond_end: '数据不同步，请刷新',
  err_internal: '服务器错误，请重试', err_overloaded: '服务器繁忙，请稍后重试',
  err_edit_window_passed: '已超过可编辑时间', err_not_editable: '该消息不能编辑',
  err_too_many_reactions: '该消息的表情回应太多了', err_too_many_pins: '置顶消息太多了',
  err_rejected: '该消息未被接受', err_deactivated: '该账号已停用',
  err_hook_unavailable: '消息暂时无法校验，请重试',
  err_wrong_password: '手机号或密码错误', err_mobile_taken: '该手机号已注册',
  err_no_such_mobile: '没有使用该手机号的用户', err_account_banned: '该账号已被封禁',
  err_old_password: '原密码错误', err_name_required: '请填写名称',
  err_too_long: '内容太长', err_bad_value: '取值无效',
  language: '语言', back: '返回', more: '更多', voiceInput: '语音消息', keyboardInput: '键盘',
  groupInfo: '群信息', newChat: '添加联系人', selectChat: '选择一个会话开始聊天',
  openConversation: '打开与 {name} 的会话', unreadCount: '{n} 条未读',
  // the chat view (issue #18)
  previousImage: '上一张', nextImage: '下一张',
  backspace: '删除', unheard: '未播放', newMessagesBelow: '{n} 条新消息', newMessagesDivider: '以下为新消息', addFriendConfirm: '添加好友：{name}？', logoutConfirm: '确定退出登录吗？',
  notMemberComposer: '你已不是该群成员，无法在此发送消息。',
  sendTimeout: '服务器无响应', notSentBecause: '发送失败：{reason}',
  // message features (issue #19)
  edited: '已编辑', forwarded: '转发的消息', goToQuoted: '跳转到引用的消息', quoteDeleted: '消息已删除',
  reactionLabel: '{emoji} {n}', replyAction: '回复', editAction: '编辑', reactAction: '回应',
  deleteForMe: '删除', pinMessage: '置顶消息', unpinMessage: '取消置顶消息', forwardAction: '转发',
  replyingTo: '回复 {name}', editingMessage: '编辑消息', cancelReply: '取消回复', cancelEdit: '取消编辑',
  pinnedMessage: '置顶消息', pinChat: '置顶聊天', unpinChat: '取消置顶', muteChat: '消息免打扰',
  unmuteChat: '取消免打扰', mutedChat: '免打扰', mentionedYou: '[有人@我]', forwardTo: '转发给',
  forwardedDone: '已转发', mentionAll: '所有人', mentionPick: '选择提醒的人', addReaction: '回应 {emoji}',
  selectAction: '多选', selectMessage: '选择消息', nSelected: '已选 {n} 条',
  selectLimit: '一次最多 {n} 条消息', reactionsAction: '查看回应', reactorsTitle: '回应',
  reactorsMore: '还有 {n} 人', pinnedList: '置顶消息', pinnedCount: '{n} 条置顶',
  showAllPins: '全部置顶消息', goToPinned: '跳转到置顶消息', unpinNamed: '取消置顶消息：{text}',
  loadingMessage: '加载中…', close: '关闭',
}

export const dicts = { en, zh }
/** The languages offered, each named in itself (the switch in the Me view). */
export const LANGS = [{ code: 'en', name: 'English' }, { code: 'zh', name: '中文' }]
const STORE_KEY = 'imhub.lang'

/**
 * @param {readonly string[]} languages  navigator.languages
 */
export function pickLang(languages) {
  for (const l of languages || []) {
    const s = String(l).toLowerCase()
    if (s.startsWith('zh')) return 'zh'
    if (s.startsWith('en')) return 'en'
  }
  return 'en'
}

function storage() {
  try {
    return globalThis.localStorage || null
  } catch {
    return null // storage disabled
  }
}

function initialLang() {
  const saved = storage()?.getItem(STORE_KEY)
  if (saved && Object.hasOwn(dicts, saved)) return saved
  return pickLang(globalThis.navigator ? (navigator.languages?.length ? navigator.languages : [navigator.language]) : [])
}

/** The current language ('en' | 'zh'). */
export const lang = ref(initialLang())

/**
 * Switch the language and remember the choice (it then wins over the browser's).
 * @param {string} l
 */
export function setLang(l) {
  if (!Object.hasOwn(dicts, l)) return
  lang.value = l
  try {
    storage()?.setItem(STORE_KEY, l)
  } catch { /* private mode: this tab only */ }
}

/** BCP 47 tag of the current language, for <html lang> and Intl. */
export function langTag(l = lang.value) {
  return l === 'zh' ? 'zh-CN' : 'en'
}

/**
 * @param {string} key
 * @param {Record<string, unknown>} [params]
 * @returns {string}
 */
export function t(key, params) {
  return tIn(lang.value, key, params)
}

const CJK = /[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]/

/**
 * `t` in a given language. Placeholders are filled in one pass, so a value that
 * contains `{name}` or `$&` (a user's nickname, a group name) stays as it is. Chinese
 * templates put a space between a placeholder and the text ("{user} 加入了群聊") for
 * Latin names; it is dropped when the name meets the text with a Chinese character
 * ("你加入了群聊", not "你 加入了群聊").
 * @param {string} l  language
 * @param {string} key
 * @param {Record<string, unknown>} [params]
 * @returns {string}
 */
export function tIn(l, key, params) {
  const s = dicts[l]?.[key] ?? dicts.en[key] ?? key
  if (!params) return s
  return s.replace(/( ?)\{(\w+)\}( ?)/g, (m, pre, k, post, at) => {
    if (!Object.hasOwn(params, k)) return m
    const v = String(params[k])
    const before = pre && CJK.test(s[at - 1] || '') && CJK.test(v[0] || '') ? '' : pre
    const after = post && CJK.test(s[at + m.length] || '') && CJK.test(v.at(-1) || '') ? '' : post
    return before + v + after
  })
}

// The seed's routes refuse with the generic `refused` and an English message: the ones
// a user of this app can meet, recognised so that they are shown in the user's language.
/** @type {Array<[RegExp, string]>} */
const REFUSALS = [
  [/wrong mobile or password/i, 'err_wrong_password'],
  [/already registered/i, 'err_mobile_taken'],
  [/^mobile must be/i, 'badMobile'],
  [/must be at least 6 characters/i, 'passwordShort'],
  [/no user with this mobile/i, 'err_no_such_mobile'],
  [/^no such user/i, 'err_unknown_user'],
  [/account is banned/i, 'err_account_banned'],
  [/server busy|restarting/i, 'err_overloaded'],
  [/old password is wrong/i, 'err_old_password'],
  [/(name|nickname) (is required|must not be empty)/i, 'err_name_required'],
  [/is too long|at most \d+ characters/i, 'err_too_long'],
  [/is required$/i, 'required'],
  [/must be|out of range|must not contain/i, 'err_bad_value'],
]

/**
 * A refusal from the server as text in the user's language: its `error` code
 * translated (docs/protocol.md); a generic refusal by its known message; a network
 * failure as such; the server's message only for what this app does not know.
 * @param {unknown} err  an ApiError (its body `{error, msg}`, its status), a WebSocket
 *   error (`code`: the error name) or any Error
 * @returns {string}
 */
export function errorText(err) {
  const e = /** @type {{body?: {error?: string}, code?: unknown, status?: number, message?: string}} */ (err || {})
  const name = e.body?.error || (typeof e.code === 'string' ? e.code : '')
  if (name) {
    const s = t(`err_${name}`)
    if (s !== `err_${name}`) return s
  }
  const msg = e.message || String(err)
  if (e.status === 0) return t('errorNetwork')
  if (e.body && !name) {
    for (const [re, key] of REFUSALS) if (re.test(msg)) return t(key)
  }
  return msg
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/**
 * "14:05" today, "Yesterday 14:05", "Mar 21 14:05" / "3月21日 14:05" this year, else
 * "Mar 21, 2024" / "2024年3月21日", in the current language.
 * @param {number} ms
 * @param {number} [now]
 * @param {string} [l]  language
 */
export function formatTime(ms, now = Date.now(), l = lang.value) {
  if (!ms) return ''
  const d = new Date(ms)
  const n = new Date(now)
  const pad = (x) => String(x).padStart(2, '0')
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`
  const day = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime()
  const diff = Math.round((day(n) - day(d)) / 86400000)
  if (diff === 0) return hm
  if (diff === 1) return `${tIn(l, 'yesterday')} ${hm}`
  const [y, mo, dd] = [d.getFullYear(), d.getMonth(), d.getDate()]
  const thisYear = y === n.getFullYear()
  if (l === 'zh') return thisYear ? `${mo + 1}月${dd}日 ${hm}` : `${y}年${mo + 1}月${dd}日`
  return thisYear ? `${MONTHS[mo]} ${dd} ${hm}` : `${MONTHS[mo]} ${dd}, ${y}`
}
