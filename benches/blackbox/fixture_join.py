#!/usr/bin/env python3
"""Joins N buyers to a sale through the JSON API, each with a cookie of its own, and writes
"<bo_session cookie> <reservation code> <place>" a line for the wrk poll scripts.
Usage: fixture_join.py BASE SALE N OUT"""
import asyncio, sys, aiohttp

BASE, SALE, N, OUT = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3]), sys.argv[4]


async def main():
    rows, sem = [], asyncio.Semaphore(64)
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=conn, cookie_jar=aiohttp.DummyCookieJar()) as s:
        async def one(i):
            async with sem:
                async with s.post(f"{BASE}/api/v1/sales/{SALE}/reservations", json={"quantity": 1}) as r:
                    body = await r.json()
                    ck = r.cookies.get("bo_session")
                    if r.status != 201 or ck is None or not body.get("place"):
                        raise SystemExit(f"join {i}: {r.status} {body}")
                    rows.append(f"{ck.value} {body['code']} {body['place']}")
        await asyncio.gather(*(one(i) for i in range(N)))
    with open(OUT, "w") as f:
        f.write("\n".join(rows) + "\n")
    print(f"joined {len(rows)}")

asyncio.run(main())
