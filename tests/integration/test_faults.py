"""The fault proxy (faults.py) on its own, between a real TCP client and a
real echo server: bytes pass, a blackhole holds them per direction, a
delay delays them in order, a reset cuts, and heal undoes all of it."""
import socket
import threading
import time
import unittest

from faults import FaultNet


class EchoServer:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.received = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.echo, args=(c,), daemon=True).start()

    def echo(self, c):
        with c:
            while True:
                try:
                    data = c.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                self.received.append(data)
                c.sendall(data)


class FaultProxy(unittest.TestCase):
    def setUp(self):
        self.echo = EchoServer()
        self.addCleanup(self.echo.sock.close)
        self.net = FaultNet()
        self.addCleanup(self.net.close)
        self.net.add("a", "b", self.echo.address)
        self.net.add("b", "a", self.echo.address)

    def connect(self, src="a", dst="b", timeout=1.0):
        host, port = self.net.address(src, dst).rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=5)
        s.settimeout(timeout)
        self.addCleanup(s.close)
        return s

    def roundtrip(self, s, data=b"ping"):
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got

    def test_bytes_pass_both_ways(self):
        s = self.connect()
        self.assertEqual(self.roundtrip(s, b"hello"), b"hello")
        self.assertEqual(self.roundtrip(s, b"x" * 100000), b"x" * 100000)

    def test_blackhole_out_holds_requests(self):
        s = self.connect()
        self.net.blackhole("a", "b", "out")
        s.sendall(b"held")
        with self.assertRaises(socket.timeout):
            s.recv(10)
        self.assertNotIn(b"held", b"".join(self.echo.received))

    def test_blackhole_back_holds_only_answers(self):
        s = self.connect()
        self.net.blackhole("a", "b", "back")
        s.sendall(b"arrives")
        deadline = time.monotonic() + 5
        while b"arrives" not in b"".join(self.echo.received):
            self.assertLess(time.monotonic(), deadline, "the request never reached the server")
            time.sleep(0.02)
        with self.assertRaises(socket.timeout):
            s.recv(10)

    def test_partition_and_heal(self):
        s = self.connect()
        self.net.isolate("a")
        fresh = self.connect()
        fresh.sendall(b"new")
        with self.assertRaises(socket.timeout):
            fresh.recv(10)  # new connections stall too
        self.net.heal()
        # Held connections are cut at heal; a new one works.
        self.assertEqual(s.recv(10), b"")
        self.assertEqual(self.roundtrip(self.connect()), b"ping")

    def test_delay_in_order(self):
        s = self.connect(timeout=5)
        self.net.set_delay("a", "b", 0.3)
        started = time.monotonic()
        got = self.roundtrip(s, b"one") + self.roundtrip(s, b"two")
        self.assertEqual(got, b"onetwo")
        self.assertGreaterEqual(time.monotonic() - started, 0.6)

    def test_reset_cuts_and_refuses(self):
        s = self.connect()
        self.net.reset("a", "b")
        self.assertIn(self.recv_or_error(s), (b"", "reset"))
        self.assertIn(self.recv_or_error(self.connect()), (b"", "reset"))
        self.net.heal()
        self.assertEqual(self.roundtrip(self.connect()), b"ping")

    def recv_or_error(self, s):
        try:
            s.sendall(b"x")
            return s.recv(10)
        except (ConnectionResetError, BrokenPipeError):
            return "reset"

    def test_mute_holds_what_a_node_sends(self):
        a_to_b, b_to_a = self.connect("a", "b"), self.connect("b", "a")
        self.net.mute("a")
        a_to_b.sendall(b"from-a")
        with self.assertRaises(socket.timeout):
            a_to_b.recv(10)
        # b's requests reach a's side; a's answers are held.
        b_to_a.sendall(b"from-b")
        deadline = time.monotonic() + 5
        while b"from-b" not in b"".join(self.echo.received):
            self.assertLess(time.monotonic(), deadline, "b's request never arrived")
            time.sleep(0.02)
        with self.assertRaises(socket.timeout):
            b_to_a.recv(10)
        self.assertNotIn(b"from-a", b"".join(self.echo.received))


if __name__ == "__main__":
    unittest.main()
