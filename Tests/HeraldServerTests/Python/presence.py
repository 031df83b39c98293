"""Interoperability probe: one official `realtime` client tracking presence in `lobby` through Herald.

Usage: presence.py URL TOKEN KEY
Joins with presence key KEY, tracks {"name": KEY}, then prints the sorted presence keys (one JSON list per line)
every time the client's presence state syncs. Runs until killed or 60 s pass.
"""

import asyncio
import json
import sys

from realtime import AsyncRealtimeClient, RealtimeSubscribeStates


async def main() -> None:
    url, token, key = sys.argv[1:4]
    client = AsyncRealtimeClient(url, token, auto_reconnect=False)
    await client.connect()
    channel = client.channel("lobby", {"config": {"broadcast": {"self": False, "ack": False}, "presence": {"key": key, "enabled": True}, "private": False}})
    channel.on_presence_sync(lambda: print(json.dumps(sorted(channel.presence_state().keys())), flush=True))
    ready = asyncio.Event()
    await channel.subscribe(lambda status, error: ready.set() if status == RealtimeSubscribeStates.SUBSCRIBED else None)
    await asyncio.wait_for(ready.wait(), 30)
    await channel.track({"name": key})
    await asyncio.sleep(60)
    await client.close()


asyncio.run(main())
