"""LISTEN/NOTIFY-to-WebSocket fan-out: the Python peer of herald-bench s4 (docs/benchmarks.md).

A row trigger sends every new row of public.bench_rows as JSON with pg_notify('bench_rows', ...); this program
LISTENs (asyncpg) and forwards each row to the WebSocket subscribers of its key (websockets), in the Phoenix V2
frames Herald sends, so the same benchmark clients measure both. It answers joins and heartbeats with an ok reply
and understands only the binding the benchmark sends: INSERT on the table, optional filter k=eq.N.

Usage: python notify_fanout.py DATABASE_URL PORT
"""
import asyncio
import json
import sys

import asyncpg
import websockets

# key (None: every row) -> (join_ref, topic) -> the sockets subscribed with that join.
subscribers = {}


def reply(join_ref, ref, topic):
    return json.dumps([join_ref, ref, topic, "phx_reply", {"status": "ok", "response": {}}], separators=(",", ":"))


async def serve(socket):
    joined = []
    try:
        async for text in socket:
            join_ref, ref, topic, event, payload = json.loads(text)
            if event == "phx_join":
                for binding in payload.get("config", {}).get("postgres_changes", []):
                    key = binding.get("filter", "").partition("k=eq.")[2] or None
                    group = subscribers.setdefault(key, {}).setdefault((join_ref, topic), set())
                    group.add(socket)
                    joined.append(group)
            if ref is not None:
                await socket.send(reply(join_ref, ref, topic))
    except websockets.ConnectionClosed:
        pass
    finally:
        for group in joined:
            group.discard(socket)


def forward(connection, pid, channel, row):
    key = str(json.loads(row)["k"])
    for joins in (subscribers.get(key, {}), subscribers.get(None, {})):
        for (join_ref, topic), sockets in joins.items():
            frame = '["%s",null,"%s","postgres_changes",{"ids":[0],"data":{"type":"INSERT","record":%s}}]' % (join_ref, topic, row)
            websockets.broadcast(sockets, frame)


async def main(database_url, port):
    connection = await asyncpg.connect(database_url)
    await connection.execute("""
        CREATE OR REPLACE FUNCTION public.bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('bench_rows', row_to_json(NEW)::text); RETURN NULL; END $$;
        DROP TRIGGER IF EXISTS bench_notify ON public.bench_rows;
        CREATE TRIGGER bench_notify AFTER INSERT ON public.bench_rows FOR EACH ROW EXECUTE FUNCTION public.bench_notify();
    """)
    await connection.add_listener("bench_rows", forward)
    try:
        async with websockets.serve(serve, "127.0.0.1", port, ping_interval=None, max_queue=None):
            await asyncio.Future()
    finally:
        await connection.execute("DROP TRIGGER IF EXISTS bench_notify ON public.bench_rows")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
