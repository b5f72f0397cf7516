"""cmd 44: a nickname or avatar change reaches the friends' and the user's own sockets
(issue #18 bug 9: an open chat shows the new name), and no one else's."""

from __future__ import annotations

from tests.integration.chatkit import api, befriend, connect, make_user


async def test_profile_change_reaches_friends_and_own_sockets_only(client) -> None:
    ann, ben, cid = await make_user(client, "Ann"), await make_user(client, "Ben"), await make_user(client, "Cid")
    await befriend(client, ann, ben)
    s_ann, s_ben, s_cid = await connect(client, ann), await connect(client, ben), await connect(client, cid)
    body = await api(client, "/user/update", ann, nickname="Annie")
    assert body["code"] == 0, body
    for sock in (s_ben, s_ann):
        got = await sock.recv_until(lambda f: f["cmd"] == 44)
        assert got == {"cmd": 44, "userid": ann.id, "nickname": "Annie", "avatar": ""}
    await s_cid.no_frame()
    # Other fields change nobody's view: no event.
    assert (await api(client, "/user/update", ann, memo="hello"))["code"] == 0
    await s_ben.no_frame()
