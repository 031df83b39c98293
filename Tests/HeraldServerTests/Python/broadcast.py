"""Interoperability probe: two official `realtime` clients broadcast to each other through Herald.

Usage: broadcast.py URL TOKEN
Client A joins `chat` with broadcast self=true, ack=true; client B with self=false. A sends `msg` {"n": 1} over
the socket, B sends `msg` {"n": 2}, then A sends `rest` {"n": 3} through the REST endpoint (http_send).
Prints one JSON line {"a": [...], "b": [...], "ack": status} with the payloads each received, sorted by n.
"""

import asyncio
import json
import sys

from realtime import AsyncRealtimeClient, RealtimeSubscribeStates


async def join(url: str, token: str, self_: bool, ack: bool, inbox: list):
    client = AsyncRealtimeClient(url, token, auto_reconnect=False)
    await client.connect()
    channel = client.channel("chat", {"config": {"broadcast": {"self": self_, "ack": ack}, "presence": {"key": "", "enabled": False}, "private": False}})
    channel.on_broadcast("msg", lambda message: inbox.append(message["payload"]))
    channel.on_broadcast("rest", lambda message: inbox.append(message["payload"]))
    ready = asyncio.Event()
    await channel.subscribe(lambda status, error: ready.set() if status == RealtimeSubscribeStates.SUBSCRIBED else None)
    await asyncio.wait_for(ready.wait(), 30)
    return client, channel


async def main() -> None:
    url, token = sys.argv[1:3]
    a_inbox: list = []
    b_inbox: list = []
    a_client, a = await join(url, token, True, True, a_inbox)
    b_client, b = await join(url, token, False, False, b_inbox)
    await a.send_broadcast("msg", {"n": 1})
    await b.send_broadcast("msg", {"n": 2})
    await a.http_send("rest", {"n": 3})
    for _ in range(600):
        if len(a_inbox) >= 3 and len(b_inbox) >= 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # anything extra (a self-broadcast B should not get) would arrive by now
    print(json.dumps({"a": sorted(a_inbox, key=lambda p: p.get("n", 0)), "b": sorted(b_inbox, key=lambda p: p.get("n", 0))}), flush=True)
    await a_client.close()
    await b_client.close()


asyncio.run(main())
