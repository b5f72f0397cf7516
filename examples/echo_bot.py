"""An echo bot: replies in every group it is in with what the others wrote.

    python examples/echo_bot.py --url http://127.0.0.1:8080 --mobile 13800000009 --password secret99

(or IMHUB_BOT_TOKEN and IMHUB_BOT_ID instead of a password, e.g. a token that your
product got from the server API). It uses imhub.client: it reconnects by itself,
catches up on what it missed, and a reply is stored once even if it is resent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from imhub.client import Client, Refusal


async def run(args: argparse.Namespace) -> None:
    if args.password:
        bot = await Client.login(args.url, args.mobile, args.password)
    else:
        bot = Client(args.url, int(os.environ["IMHUB_BOT_ID"]), os.environ["IMHUB_BOT_TOKEN"])
    async with bot:
        print(f"echo bot {bot.user_id} connected", flush=True)
        async for msg in bot.messages():
            # Group text from someone else (not our own echoes, not group events).
            if msg["cmd"] != 11 or msg["userid"] == bot.user_id or msg.get("media") != 1:
                continue
            try:
                # The cid is derived from the message: a restarted bot that sees the same
                # message again sends the same reply, which the server stores only once.
                await bot.send(msg["dstid"], args.prefix + msg["content"], group=True, cid=f"echo-{msg['id']}")
            except Refusal as exc:  # e.g. removed from the group meanwhile
                print(f"reply refused: {exc}", flush=True)
            await bot.mark_read(msg["conv"], msg["seq"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("IMHUB_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--mobile", default=os.environ.get("IMHUB_BOT_MOBILE", ""))
    parser.add_argument("--password", default=os.environ.get("IMHUB_BOT_PASSWORD", ""))
    parser.add_argument("--prefix", default="echo: ")
    args = parser.parse_args()

    async def guarded() -> None:
        task = asyncio.create_task(run(args))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(guarded())


if __name__ == "__main__":
    main()
