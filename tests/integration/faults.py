"""A fault-injecting TCP proxy between the peers of a test cluster.

Why a proxy and not network namespaces: every test node runs on 127.0.0.1
and finds its peers through the addresses of its etc/peers.yml, which also
become the addresses of its Raft configuration (each node bootstraps from
its own file). So node i reaches node j only through the address i's file
lists for j: one proxy per ordered pair (i, j), listening where i dials j and
forwarding to j's real peer port, sees every byte i sends j (Raft entries,
forwarded requests) and every answer. No root, no veth, nothing left behind
if a test dies; the bytes are real TCP on both sides of the proxy.

This holds while each node's Raft configuration is the one it bootstrapped
from its own file. A snapshot installed from the leader carries the
leader's configuration (the leader's proxies), so the tests that use this
net turn snapshots off and check the members' addresses every round.

Faults, per link and per direction ("out": from the dialling node i to j,
"back": j's answers to i):

- blackhole: the proxy stops reading, so the sender's socket buffers fill
  and nothing arrives: what a cable pull looks like to TCP. New connections
  are accepted and stall the same way. Healing resets the connections that
  were held (a real TCP connection would by then have timed out), and the
  nodes dial afresh.
- delay: every chunk is delivered `seconds` after it was read, in order.
- reset: existing connections are cut and new ones closed at once (a peer
  whose port answers RST).

The proxies run on one asyncio loop in a background thread; every control
call returns once the change is in force on that loop.
"""
import asyncio
import itertools
import threading
import time

DIRECTIONS = ("out", "back")


class Link:
    """The proxy for node `src` dialling node `dst` (an ordered pair)."""

    def __init__(self, src, dst, target):
        self.src, self.dst = src, dst
        self.target = target  # "host:port" of dst's real peer port
        self.blackholed = {d: False for d in DIRECTIONS}
        self.delay = {d: 0.0 for d in DIRECTIONS}
        self.refuse = False
        self.conns = set()
        self.server = None
        self.address = None

    async def start(self):
        self.open = {d: asyncio.Event() for d in DIRECTIONS}
        for d in DIRECTIONS:
            self.open[d].set()
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.address = "127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]

    async def serve(self, client_r, client_w):
        conn = _Conn(client_w)
        self.conns.add(conn)  # from the start, so a reset during the dial cuts it too
        try:
            if self.refuse:
                return
            host, port = self.target.rsplit(":", 1)
            try:
                server_r, server_w = await asyncio.open_connection(host, int(port))
            except OSError:
                return  # the node is down: its port refuses
            conn.writers.append(server_w)
            if conn.cut:
                return
            await asyncio.gather(self.pump(client_r, server_w, "out"), self.pump(server_r, client_w, "back"))
        finally:
            self.conns.discard(conn)
            conn.abort()

    async def pump(self, reader, writer, direction):
        """Copy one direction, honouring the link's faults. Ends (and with it
        the connection) when either side closes or the link resets."""
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.open[direction].wait()
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while not sender.done():
                await self.open[direction].wait()  # blackholed: stop reading, TCP backs up
                data = await reader.read(65536)
                if not data:
                    break
                queue.put_nowait((time.monotonic() + self.delay[direction], data))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait((0, None))
            try:
                await sender
            except (ConnectionError, OSError):
                pass
            writer.transport.abort()

    def reset_connections(self):
        for conn in list(self.conns):
            conn.abort()


class _Conn:
    """One proxied connection: the dialling node's side and the target's."""

    def __init__(self, client_w):
        self.writers = [client_w]
        self.cut = False

    def abort(self):
        self.cut = True
        for w in self.writers:
            w.transport.abort()


class FaultNet:
    """Proxies for every ordered pair of `nodes` ({name: real peer address}).
    `address(src, dst)` is where src must dial dst (write it in src's
    peers.yml). Partitions are sets of node names; faults never touch a
    node's API port, only traffic between peers."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="faultnet", daemon=True)
        self.thread.start()
        self.links = {}

    def _call(self, fn):
        """Run fn() on the proxy loop; return its result once it ran."""

        async def wrapper():
            got = fn()
            return await got if asyncio.iscoroutine(got) else got

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout=30)

    def add(self, src, dst, target):
        link = Link(src, dst, target)
        self._call(link.start)
        self.links[(src, dst)] = link
        return link.address

    def address(self, src, dst):
        return self.links[(src, dst)].address

    def _links_between(self, a, b):
        return [l for (s, d), l in self.links.items() if (s in a and d in b) or (s in b and d in a)]

    def _set_blackhole(self, links, on, directions=DIRECTIONS):
        def change():
            for l in links:
                held = any(l.blackholed.values())
                for d in directions:
                    l.blackholed[d] = on
                    (l.open[d].clear if on else l.open[d].set)()
                if held and not on:
                    l.reset_connections()

        self._call(change)

    def partition(self, *groups):
        """Blackhole every link between nodes of different groups; links
        inside a group keep working."""
        groups = [set(g) for g in groups]
        cut = []
        for a, b in itertools.combinations(groups, 2):
            cut += self._links_between(a, b)
        self._set_blackhole(cut, True)

    def isolate(self, node):
        others = {d for (_, d) in self.links} - {node}
        self.partition({node}, others)

    def blackhole(self, src, dst, direction="out"):
        """One direction of one link only (an asymmetric fault)."""
        self._set_blackhole([self.links[(src, dst)]], True, (direction,))

    def mute(self, node):
        """Everything `node` sends is held, everything sent to it arrives
        (on connections already open): an asymmetric partition."""
        def change():
            for (s, d), l in self.links.items():
                direction = "out" if s == node else "back" if d == node else None
                if direction:
                    l.blackholed[direction] = True
                    l.open[direction].clear()

        self._call(change)

    def slow(self, node, seconds):
        """Delay every byte to and from `node` by `seconds`."""
        def change():
            for (s, d), l in self.links.items():
                if node in (s, d):
                    for direction in DIRECTIONS:
                        l.delay[direction] = seconds

        self._call(change)

    def set_delay(self, src, dst, seconds, direction="out"):
        link = self.links[(src, dst)]
        self._call(lambda: link.delay.__setitem__(direction, seconds))

    def reset(self, src, dst):
        link = self.links[(src, dst)]

        def change():
            link.refuse = True
            link.reset_connections()

        self._call(change)

    def heal(self):
        """Every link back to normal; connections held by a blackhole are
        reset so the nodes dial again."""
        self._set_blackhole(list(self.links.values()), False)

        def clear():
            for l in self.links.values():
                l.refuse = False
                for d in DIRECTIONS:
                    l.delay[d] = 0.0

        self._call(clear)

    def close(self):
        async def stop():
            for l in self.links.values():
                l.server.close()
                for d in DIRECTIONS:
                    l.open[d].set()
                l.reset_connections()
            await asyncio.sleep(0.05)  # the pumps see their connections end
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self._call(stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

