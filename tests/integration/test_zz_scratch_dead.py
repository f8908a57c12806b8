import ipaddress, time, uuid
import asyncpg
from services.network import networks, ports

async def test_dead(db_url):
    conn = await asyncpg.connect(db_url)
    sup = ipaddress.IPv4Network("10.0.0.0/8")
    async with conn.transaction():
        net = await networks.ensure_default(conn, "p", supernet=sup, name="private", prefixlen=16)
    await conn.execute("VACUUM ANALYZE fixed_ips")
    taken = 0
    for target in (0, 1000, 10000, 50000):
        if target > taken:
            await conn.execute("UPDATE fixed_ips SET server_id = gen_random_uuid() WHERE network_id=$1 AND address < $2::inet",
                               net.id, str(ipaddress.IPv4Address("10.0.0.2") + target))
            taken = target
        last = ipaddress.IPv4Address("10.0.0.1") + target
        for label, start in (("from lowest", ipaddress.IPv4Address(0)), ("next-fit", last)):
            tr = conn.transaction(); await tr.start()
            await conn.fetchrow(ports._TAKE_ADDRESS, net.id, uuid.uuid4(), start)  # warm / kill tuples
            await tr.rollback()
            tr = conn.transaction(); await tr.start()
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + ports._TAKE_ADDRESS, net.id, uuid.uuid4(), start)
            await tr.rollback()
            buf = [r[0] for r in rows if "Buffers" in r[0]][0]
            print(f"dead={target:6d} {label:12} {buf.strip()}")
    await conn.execute("VACUUM fixed_ips")
    tr = conn.transaction(); await tr.start()
    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + ports._TAKE_ADDRESS, net.id, uuid.uuid4(), ipaddress.IPv4Address(0))
    await tr.rollback()
    print("after vacuum, from lowest", [r[0] for r in rows if "Buffers" in r[0]][0].strip())
    await conn.close()
