"""Interoperability probe: the official `realtime` client subscribes to postgres_changes through Herald.

Usage: postgres_changes.py URL TOKEN EVENT TABLE FILTER COUNT [RESUME]
Prints one line `SUBSCRIBED` once the channel is subscribed, then one JSON line per received change
(the raw payload the client hands to callbacks), and exits after COUNT changes (or 40 s). With RESUME, the join
asks Herald to resume after that position, set the way an application would: a top-level join payload key,
which the client merges into the payload it sends on every (re)join.
"""

import asyncio
import json
import sys

from realtime import AsyncRealtimeClient, RealtimeSubscribeStates


async def main() -> None:
    url, token, event, table, filter_, count = sys.argv[1:7]
    resume = sys.argv[7] if len(sys.argv) > 7 else None
    count = int(count)
    received: list = []
    done = asyncio.Event()
    subscribed = asyncio.Event()

    def on_change(payload) -> None:
        print(json.dumps(payload, sort_keys=True), flush=True)
        received.append(payload)
        if len(received) >= count:
            done.set()

    def on_subscribe(status: RealtimeSubscribeStates, error) -> None:
        if status == RealtimeSubscribeStates.SUBSCRIBED:
            subscribed.set()
        elif error is not None:
            print(f"ERROR {status} {error}", flush=True)

    client = AsyncRealtimeClient(url, token, auto_reconnect=False)
    await client.connect()
    channel = client.channel("interop")
    channel.on_postgres_changes(event, on_change, table=table, schema="public", filter=filter_ or None)
    if resume:
        channel.join_push.update_payload({"postgres_changes_resume": resume})
    await channel.subscribe(on_subscribe)
    await asyncio.wait_for(subscribed.wait(), 30)
    print("SUBSCRIBED", flush=True)
    try:
        await asyncio.wait_for(done.wait(), 40)
    finally:
        await client.close()


asyncio.run(main())
