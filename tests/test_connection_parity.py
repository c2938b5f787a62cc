"""Client connections as Java 3.8's ServerCnxn / NIOServerCnxn / NIOServerCnxnFactory and ResponseCache: the
per-connection statistics `cons` prints, the response cache's eviction and counters, and which thread logs each
connection line. Each test runs the same steps on a real Java 3.8.0 server and on zkref and compares."""
import re
import socket
import struct
import time

from kazoo.client import KazooClient

from conftest import four_letter_word, wait_for

CFG = {"4lw.commands.whitelist": "*"}


def mntr(port: int) -> dict[str, str]:
    "`mntr` as {name without zk_: value}."
    out = {}
    for line in four_letter_word(port, "mntr").splitlines():
        key, _, value = line.partition("\t")
        out[key.removeprefix("zk_")] = value.strip()
    return out


def kazoo(hosts: str) -> KazooClient:
    k = KazooClient(hosts=hosts, timeout=10)
    k.start(timeout=15)
    return k


CACHE_KEYS = ("response_packet_cache_hits", "response_packet_cache_misses")


def test_response_cache_evicts_in_insertion_order(zkref_zk, java_zk):
    """Java's ResponseCache is a LinkedHashMap in insertion order (its LRUCache calls `super(cacheSize / 4)`, not
    the access-order constructor) that drops its eldest entry once it holds `cacheSize` entries: a hit does not
    make an entry younger. With zookeeper.maxResponseCacheSize=3 (two entries kept), reading /a, /b, /a (a hit),
    /c evicts /a, so the next read of /a is a miss. Reference: Java ResponseCache.get/put, ResponseCache.LRUCache."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG, jvm_flags=["-Dzookeeper.maxResponseCacheSize=3"])
        k = kazoo(server.hosts)
        try:
            for p in ("/a", "/b", "/c"):
                k.create(p, p.encode())
            for p in ("/a", "/b", "/a", "/c", "/a", "/c"):
                k.get(p)
        finally:
            k.stop()
            k.close()
        m = mntr(server.client_port)
        seen[server.kind] = tuple(int(m[key]) for key in CACHE_KEYS)
    assert seen["java"] == (2, 4), seen["java"]       # hits: /a (3rd read), /c (6th); misses: /a, /b, /c, /a
    assert seen["zkref"] == seen["java"], seen


def test_response_cache_size_zero_counts_misses(zkref_zk, java_zk):
    """A cache of size 0 keeps nothing, but ServerCnxn.serialize still looks it up (it checks only that the cache
    exists, not ResponseCache.isEnabled), so every getData is a miss and counted as one; a cache of 1 likewise.
    Reference: Java ServerCnxn.serialize (RESPONSE_PACKET_CACHE_MISSING), ResponseCache.LRUCache.removeEldestEntry."""
    seen = {}
    for start, kind in ((java_zk, "java"), (zkref_zk, "zkref")):
        for size in (0, 1):
            server = start(CFG, name=f"{kind}{size}", jvm_flags=[f"-Dzookeeper.maxResponseCacheSize={size}"])
            k = kazoo(server.hosts)
            try:
                k.create("/a", b"x")
                for _ in range(3):
                    k.get("/a")
            finally:
                k.stop()
                k.close()
            m = mntr(server.client_port)
            seen[(server.kind, size)] = tuple(int(m[key]) for key in CACHE_KEYS)
            server.stop()
    assert seen[("java", 0)] == seen[("java", 1)] == (0, 3), seen
    assert seen[("zkref", 0)] == seen[("java", 0)] and seen[("zkref", 1)] == seen[("java", 1)], seen


class RawClient:
    "A ZooKeeper client written out byte by byte, so each packet (xid, ping, reconnect) is the test's choice."
    def __init__(self, port: int, session_id: int = 0, passwd: bytes = b"\0" * 16,
                 rcvbuf: int | None = None):           # SO_RCVBUF, set before connecting
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        body = struct.pack(">iqiq", 0, 0, 30000, session_id) + struct.pack(">i", len(passwd)) + passwd + b"\0"
        self.send(body)
        reply = self.recv()
        _, _, self.session_id, n = struct.unpack(">iiqi", reply[:20])
        self.passwd = reply[20:20 + n]
        self.port = self.sock.getsockname()[1]

    def send(self, body: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(body)) + body)

    def recv(self) -> bytes:
        def exactly(n):
            data = b""
            while len(data) < n:
                chunk = self.sock.recv(n - len(data))
                assert chunk, "the server closed the connection"
                data += chunk
            return data
        return exactly(struct.unpack(">i", exactly(4))[0])

    def get_data(self, xid: int, path: str) -> int:
        "getData (op 4); the reply's error code."
        p = path.encode()
        self.send(struct.pack(">ii", xid, 4) + struct.pack(">i", len(p)) + p + b"\0")
        return struct.unpack(">iqi", self.recv()[:16])[2]

    def ping(self) -> None:
        self.send(struct.pack(">ii", -2, 11))
        assert struct.unpack(">i", self.recv()[:4])[0] == -2

    def close(self) -> None:
        self.sock.close()


def cons_line(port: int, client: RawClient, times: str = "est|lresp|llat|avglat|maxlat") -> str:
    """The client's `cons` line with what differs from run to run masked: its port, the session id, and the
    `times` fields; minlat is left as printed. Read once the connection is quiet (as many packets sent as
    received): Java counts a reply as sent only after its worker has written it (NIOServerCnxn.handleWrite calls
    packetSent), so a `cons` asked the moment the client has read a reply can still show sent one short."""
    def read() -> str:
        return next(l for l in four_letter_word(port, "cons").splitlines() if f":{client.port}[" in l).strip()

    def quiet(l: str) -> bool:
        m = re.search(r"recved=(\d+),sent=(\d+)", l)
        return m is not None and m[1] == m[2]
    wait_for(lambda: quiet(read()), 10, what=f"connection :{client.port} quiet in cons")
    line = read()
    line = re.sub(r":\d+\[", ":P[", re.sub(r"sid=0x[0-9a-f]+", "sid=S", line))
    return re.sub(rf"({times})=\d+", r"\1=T", line)


def test_cons_statistics_as_java(zkref_zk, java_zk):
    """`cons` prints each connection's statistics as ServerCnxn keeps them: before a `crst` the minimum latency is
    0 whatever the latencies (the field starts at 0, and updateStatsForResponse only lowers it), a ping (xid -2)
    updates lop but not lcxid ("don't overwrite with special xids"), a session re-validated on a new connection
    shows Java's unset fields (lop=null, lcxid=0x0, lzxid=0x0) until its first request, and `crst` resets
    everything resetStats resets: packets, lop=NA, lcxid (left out), lzxid=-1, lresp, llat and the latencies. A
    four-letter word's own connection counts its 4 bytes as one packet received. avglat is a long division.
    Reference: Java ServerCnxn.resetStats, updateStatsForResponse, dumpConnectionInfo, getMinLatency,
    getAvgLatency; NIOServerCnxn.checkFourLetterWord (packetReceived(4)); CnxnStatResetCommand."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        port = server.client_port
        steps = []
        c = RawClient(port)
        try:
            assert c.get_data(1, "/") == 0
            c.ping()
            steps.append(cons_line(port, c))
            c2 = RawClient(port, c.session_id, c.passwd)        # the session moves to a new connection
            steps.append(cons_line(port, c2))
            assert four_letter_word(port, "crst") == "Connection stats reset.\n"
            steps.append(cons_line(port, c2, times="est"))     # reset: the others are 0
            assert c2.get_data(7, "/") == 0
            steps.append(re.sub(r"minlat=\d+", "minlat=T", cons_line(port, c2)))   # a real minimum now
            own = [l.strip() for l in four_letter_word(port, "cons").splitlines() if "sent=0)" in l]
            steps.append(re.sub(r":\d+\[", ":P[", own[0]) if own else None)
        finally:
            c.close()
            c2.close()
        seen[server.kind] = steps
    java = seen["java"]
    assert ",lop=PING," in java[0] and ",lcxid=0x1," in java[0] and ",minlat=0," in java[0], java[0]
    assert ",lop=null," in java[1] and ",lcxid=0x0,lzxid=0x0," in java[1], java[1]
    assert "recved=0,sent=0" in java[2] and ",lop=NA," in java[2] and "lcxid" not in java[2], java[2]
    assert ",lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)" in java[2], java[2]
    assert ",lop=GETD," in java[3] and ",lcxid=0x7," in java[3], java[3]
    assert java[4] == "/127.0.0.1:P[0](queued=0,recved=1,sent=0)", java[4]
    assert seen["zkref"] == java, seen


LINE = re.compile(r"^\S+ \S+ \[myid:\d*\] - (\w+)\s+\[(.+):(\w+)@\d+\] - (.*)$")


def lines_after(server, offset: int) -> list[tuple[str, str, str, str]]:
    "(level, thread, class, message) of each log line after `offset`, a message's next line joined to it."
    out = []
    for raw in server.logs()[offset:].splitlines():
        m = LINE.match(raw)
        if m:
            out.append(m.groups())
        elif (out and raw and not raw.startswith("\tat ") and " | " not in out[-1][3]
              and (out[-1][3].endswith(("Unexpected exception", "0x0")) or out[-1][3].startswith("Close of session"))):
            out[-1] = out[-1][:3] + (out[-1][3] + " | " + raw,)
    return out


def connection_scenarios(server) -> dict[str, list]:
    "Provoke each connection line once; the lines each step logged."
    port, seen = server.client_port, {}

    def step(name, action, expect):
        offset = len(server.logs())
        action()
        wait_for(lambda: expect in server.logs()[offset:], 10, what=f"{server.kind}: {name}")
        time.sleep(0.2)                      # a line that should not come would come by now
        seen[name] = [l for l in lines_after(server, offset) if "cons command from /127.0.0.2" not in l[3]]

    for i in range(5):
        step(f"srvr{i}", lambda: four_letter_word(port, "srvr"), "Processing srvr command")

    def drop():
        k = kazoo(server.hosts)
        k._connection._socket.shutdown(socket.SHUT_RDWR)   # the client's socket goes, its session stays
        k.stop()
        k.close()
    step("drop", drop, "EndOfStreamException")

    def len_error():
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"\x7f\xff\xff\xf0")
            c.recv(10)
    step("len", len_error, "Len error")

    def registered() -> int:
        "Connections from 127.0.0.1, as `cons` asked from 127.0.0.2 lists them (the per-IP limit is not its)."
        with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0)) as s:
            s.sendall(b"cons")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.decode().count(" /127.0.0.1:")

    def too_many():
        held = []
        try:
            for n in (1, 2):                 # one at a time: Java counts a connection once its selector has it
                held.append(socket.create_connection(("127.0.0.1", port)))
                wait_for(lambda: registered() == n, 10, what=f"{n} connections")
            held.append(socket.create_connection(("127.0.0.1", port)))
            wait_for(lambda: "Too many connections" in server.logs(), 10, what="the refusal")
        finally:
            for c in held:
                c.close()
    step("max", too_many, "Too many connections")
    return seen


def test_connection_lines_and_threads_as_java(zkref_zk, java_zk):
    """Java's connection lines come from the threads that do the work: a refused connection is logged by the
    accept thread (`NIOServerCxnFactory.AcceptThread:/127.0.0.1:<port>`) through its RateLogger (`Message:Error
    accepting new connection: Too many connections from /127.0.0.1 - max is 2 Value:null`); a four-letter word,
    a Len error and a client that closed its socket by a worker of the pool (`NIOWorkerThread-1`…`-M`, M =
    zookeeper.nio.numWorkerThreads: a pool's thread takes whichever task is queued, mostly in turn under a serial
    load, which zkref makes always); the end of a client's
    stream is `Unexpected exception` at WARN with `EndOfStreamException: Unable to read additional data from
    client, …` on the next line. Reference: Java NIOServerCnxnFactory.AcceptThread.doAccept, RateLogger,
    WorkerService (NIOWorker, DaemonThreadFactory's names), NIOServerCnxn.doIO, EndOfStreamException.toString."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(dict(CFG, maxClientCnxns=2), jvm_flags=["-Dzookeeper.nio.numWorkerThreads=3"])
        accept = f"NIOServerCxnFactory.AcceptThread:/127.0.0.1:{server.client_port}"
        lines = connection_scenarios(server)
        workers = []
        for i in range(5):
            # the step's own line, picked by its message: a server a moment after its start may still log a line
            # of its own (the connection classes' other lines, if any, are compared in `shape` below)
            (level, thread, cls, msg), = [l for l in lines[f"srvr{i}"] if l[3].startswith("Processing srvr command")]
            assert (level, cls) == ("INFO", "NIOServerCnxn") and msg.startswith("Processing srvr command from /127."), \
                (server.kind, lines[f"srvr{i}"])
            workers.append(int(re.fullmatch(r"NIOWorkerThread-(\d)", thread)[1]))
        assert all(w in (1, 2, 3) for w in workers), (server.kind, workers)
        if server.kind == "zkref":   # zkref deals the steps in turn; Java's pool mostly does (once: [1, 3, 2, 1, 3])
            assert all(b == a % 3 + 1 for a, b in zip(workers, workers[1:])), (server.kind, workers)
        shape = {}
        for name in ("srvr0", "srvr1", "srvr2", "srvr3", "srvr4", "drop", "len", "max"):
            shape[name] = [(level, re.sub(r"NIOWorkerThread-[123]$", "NIOWorkerThread-N", thread.replace(accept, "A")),
                            cls, re.sub(r"/127\.0\.0\.1:\d+|0x[0-9a-f]{6,}", "X", msg)) for level, thread, cls, msg in lines[name]
                           if cls in ("NIOServerCnxn", "NIOServerCnxnFactory", "RateLogger")]
        seen[server.kind] = shape
    java = seen["java"]
    assert java["drop"] == [("WARN", "NIOWorkerThread-N", "NIOServerCnxn", "Unexpected exception | EndOfStreamException: "
                             "Unable to read additional data from client, it probably closed the socket: address = X, "
                             "session = X")], java["drop"]
    assert java["max"][0] == ("WARN", "A", "RateLogger", "Message:Error accepting new connection: Too many connections "
                              "from /127.0.0.1 - max is 2 Value:null"), java["max"]
    assert seen["zkref"] == java, seen


def test_io_on_selector_thread_without_workers(zkref_zk, java_zk):
    """With zookeeper.nio.numWorkerThreads=0 Java has no worker pool: the selector thread that owns the connection
    does its I/O, so a four-letter word is logged by `NIOServerCxnFactory.SelectorThread-0` (one selector on this
    machine). Reference: Java WorkerService.schedule (no workers: run on the caller), NIOServerCnxnFactory.configure."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG, jvm_flags=["-Dzookeeper.nio.numWorkerThreads=0", "-Dzookeeper.nio.numSelectorThreads=1"])
        offset = len(server.logs())
        four_letter_word(server.client_port, "srvr")
        wait_for(lambda: "Processing srvr command" in server.logs()[offset:], 10, what="the line")
        seen[server.kind] = [(level, thread, cls) for level, thread, cls, msg in lines_after(server, offset)
                             if msg.startswith("Processing srvr")]
    assert seen["java"] == [("INFO", "NIOServerCxnFactory.SelectorThread-0", "NIOServerCnxn")], seen
    assert seen["zkref"] == seen["java"], seen


def test_client_reset_is_a_socket_exception_not_an_end_of_stream(zkref_zk, java_zk):
    """A client that resets its connection (SO_LINGER 0, then close: an RST, not a FIN) makes the worker's read
    throw `java.net.SocketException: Connection reset`: NIOServerCnxn.doIO's catch (IOException) logs `Close of
    session 0x…` at WARN with the exception, and closes. Unlike a client that closed its side (EndOfStreamException,
    handleFailedRead), it is not counted in connection_drop_count. Reference: Java NIOServerCnxn.doIO,
    handleFailedRead (CONNECTION_DROP_COUNT), JDK 17 NioSocketImpl ("Connection reset")."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG, jvm_flags=["-Dzookeeper.nio.numWorkerThreads=1"])
        before = int(mntr(server.client_port)["connection_drop_count"])
        c = RawClient(server.client_port)
        assert c.get_data(1, "/") == 0
        offset = len(server.logs())
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        wait_for(lambda: "Close of session" in server.logs()[offset:] or "Unexpected exception" in server.logs()[offset:],
                 10, what=f"{server.kind}: the server's line")
        time.sleep(0.2)
        lines = [(level, thread, cls, re.sub(r"0x[0-9a-f]+", "0xS", msg)) for level, thread, cls, msg in
                 lines_after(server, offset) if cls == "NIOServerCnxn"]
        seen[server.kind] = (lines, int(mntr(server.client_port)["connection_drop_count"]) - before)
    assert seen["java"] == ([("WARN", "NIOWorkerThread-1", "NIOServerCnxn",
                              "Close of session 0xS | java.net.SocketException: Connection reset")], 0), seen["java"]
    assert seen["zkref"] == seen["java"], seen


def test_cons_shows_write_interest_while_replies_wait(zkref_zk, java_zk):
    """`cons` prints each connection's interest ops in hex: 1 (OP_READ) for a connection being read, plus 4
    (OP_WRITE) while replies wait to be written, so `[5]` for a client that asked for more than it has read yet.
    Here a client with a small receive buffer sends twenty getData requests for a 900 kB node and reads nothing.
    Reference: Java ServerCnxn.dumpConnectionInfo (Integer.toHexString(interestOps)), NIOServerCnxn.getInterestOps
    (getReadInterest: not throttled; getWriteInterest: outgoingBuffers not empty)."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        k = kazoo(server.hosts)
        try:
            k.create("/big", b"x" * 900_000)
        finally:
            k.stop()
            k.close()
        c = RawClient(server.client_port, rcvbuf=4096)
        try:
            p = b"/big"
            for xid in range(1, 21):
                c.send(struct.pack(">ii", xid, 4) + struct.pack(">i", len(p)) + p + b"\0")

            def flags() -> str:
                line = next((l for l in four_letter_word(server.client_port, "cons").splitlines()
                             if f":{c.port}[" in l), "")
                return line.split("[", 1)[1].split("]", 1)[0] if "[" in line else ""
            shown = []                                     # what `cons` printed, each time it was asked

            def five() -> bool:
                shown.append(flags())
                return shown[-1] == "5"
            wait_for(five, 10, what=f"{server.kind}: write interest")
            seen[server.kind] = shown[-1]   # not asked again: Java's interest ops read 0 for a moment whenever
                                            # a worker is doing the connection's I/O (it did once, in CI)
        finally:
            c.close()
    assert seen == {"java": "5", "zkref": "5"}, seen


def frames_as_they_arrive(port: int) -> dict:
    """What a server answers to frames cut anywhere: one request a byte per segment, fifty requests in one
    segment, a request and a half and then the other half. Each reply is (xid, err)."""
    c = RawClient(port)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def replies(k: int) -> list[tuple[int, int]]:
        out = []
        for _ in range(k):
            xid, _zxid, err = struct.unpack(">iqi", c.recv()[:16])
            out.append((xid, err))
        return out

    seen = {}
    for b in get_data_frame(1, "/zookeeper"):       # a byte per segment
        c.sock.sendall(bytes([b]))
        time.sleep(0.002)
    seen["byte by byte"] = replies(1)
    c.sock.sendall(b"".join(get_data_frame(x, "/" if x % 2 else "/nope") for x in range(2, 52)))
    seen["fifty in one segment"] = replies(50)
    two = get_data_frame(52, "/") + get_data_frame(53, "/zookeeper")
    c.sock.sendall(two[:len(two) - 7])
    time.sleep(0.1)
    c.sock.sendall(two[len(two) - 7:])
    seen["one and a half, then the rest"] = replies(2)
    c.close()
    return seen


def get_data_frame(xid: int, path: str) -> bytes:
    "A framed getData request (op 4), no watch."
    p = path.encode()
    body = struct.pack(">ii", xid, 4) + struct.pack(">i", len(p)) + p + b"\0"
    return struct.pack(">i", len(body)) + body


def test_frames_are_read_however_they_arrive(zkref_zk, java_zk):
    """A connection reads whatever has arrived and takes whole frames out of it — a 4-byte length, then that many
    bytes — so a frame split over many segments waits for its last byte, and several frames in one segment are
    each answered, in order. Reference: Java NIOServerCnxn.doIO (readLength, readPayload, incomingBuffer)."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        seen[server.kind] = frames_as_they_arrive(server.client_port)
        server.stop()
    java = seen["java"]
    assert java["byte by byte"] == [(1, 0)], java
    assert java["fifty in one segment"] == [(x, 0 if x % 2 else -101) for x in range(2, 52)], java
    assert java["one and a half, then the rest"] == [(52, 0), (53, 0)], java
    assert seen["zkref"] == java, seen


def test_requests_sent_before_the_end_of_the_stream_are_read(zkref_zk, java_zk):
    """A client that sends its handshake, a create and the end of its stream (SHUT_WR) in one segment: the server
    reads nothing more while the handshake's session is being made (disableRecv), then reads the create, which
    takes effect, and then the end, and closes. Java's reply to the create races its close and is usually lost
    (its pipeline runs on other threads); zkref's pipeline answers in the step that read the request, so the
    reply goes out before the close: the test asserts what both do — the ConnectResponse first, the node made,
    the connection closed. Reference: Java NIOServerCnxn.doIO (a read of -1 after the payloads before it),
    disableRecv/enableRecv around ZooKeeperServer.processConnectRequest/finishSessionInit."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        s = socket.create_connection(("127.0.0.1", server.client_port), timeout=10)
        hello = struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + bytes(16) + b"\0"
        path = b"/before-the-end"
        create = struct.pack(">ii", 1, 1) + struct.pack(">i", len(path)) + path + struct.pack(">i", 1) + b"x" \
            + struct.pack(">i", 1) + struct.pack(">i", 31) + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) \
            + b"anyone" + struct.pack(">i", 0)
        s.sendall(struct.pack(">i", len(hello)) + hello + struct.pack(">i", len(create)) + create)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):              # until the server closes
            data += chunk
        s.close()
        first = data[4:4 + struct.unpack(">i", data[:4])[0]] if len(data) >= 4 else b""
        c = RawClient(server.client_port)
        made = c.get_data(1, path.decode())
        c.close()
        seen[server.kind] = (len(first), made)     # a ConnectResponse with the readOnly byte is 37 bytes
        server.stop()
    assert seen["java"] == (37, 0), seen
    assert seen["zkref"] == seen["java"], seen
