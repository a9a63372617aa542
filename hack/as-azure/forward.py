"""Byte forwarder for hack/as-azure.sh, across network namespaces through Unix sockets (which network
namespaces do not separate). Two halves:

  outside SOCK HOST:PORT        (in the caller's namespace) accept on Unix socket SOCK, connect to HOST:PORT
  inside  ADDR:PORT=SOCK ...    (in CMD's namespace) accept on each loopback ADDR:PORT, connect to its SOCK

Writes "ready" on stdout once every listener is bound. Only loopback addresses are accepted.
"""
import asyncio
import ipaddress
import os
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


def relay(connect):
    async def handle(r1, w1):
        try:
            r2, w2 = await connect()
        except OSError:
            w1.close()
            return
        await asyncio.gather(pipe(r1, w2), pipe(r2, w1))
    return handle


async def main(mode, args):
    servers = []
    if mode == "outside":
        sock, target = args
        host, port = target.rsplit(":", 1)
        assert ipaddress.ip_address(host).is_loopback, f"{host} is not a loopback address"
        servers.append(await asyncio.start_unix_server(
            relay(lambda: asyncio.open_connection(host, int(port))), path=sock))
        os.chmod(sock, 0o600)
    else:
        for spec in args:
            listen, sock = spec.split("=", 1)
            host, port = listen.rsplit(":", 1)
            assert ipaddress.ip_address(host).is_loopback, f"{host} is not a loopback address"
            servers.append(await asyncio.start_server(
                relay(lambda sock=sock: asyncio.open_unix_connection(sock)), host, int(port)))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2:]))
    except KeyboardInterrupt:
        pass
