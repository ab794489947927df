// A SOCKS5 proxy on loopback for tests (RFC 1928 CONNECT, with RFC 1929 username/password when
// `credentials` is given). Enough of the protocol for a kubeconfig's `proxy-url: socks5://…`:
// method negotiation, one CONNECT per connection to an IPv4, domain or IPv6 address, then bytes
// relayed both ways. It records each tunnel's destination and the user name it was opened with.
//
// Wire facts (RFC 1928 §3–6, RFC 1929 §2):
//   greeting   VER=5 NMETHODS METHODS…             → VER=5 METHOD (0 none, 2 user/pass, 0xff no method)
//   user/pass  VER=1 ULEN UNAME PLEN PASSWD        → VER=1 STATUS (0 = success)
//   request    VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT (CMD 1 = CONNECT; ATYP 1 IPv4, 3 domain, 4 IPv6)
//   reply      VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT (REP 0 succeeded, 1 general failure,
//              5 connection refused, 7 command not supported, 8 address type not supported)

import { connect, createServer, type Server, type Socket } from "node:net";

export interface Socks5Tunnel {
  destination: string; // host:port as asked
  user: string | null;
}

export interface Socks5Server {
  url: string; // socks5://127.0.0.1:port (no credentials in it)
  tunnels: Socks5Tunnel[];
  /** Greetings refused: wrong password, or no acceptable method. */
  refused: number;
  close(): Promise<void>;
}

/** Reads exactly `n` bytes from the socket's pending input; resolves null when the peer went away. */
class ByteReader {
  private pending: Buffer[] = [];
  private have = 0;
  private waiter: { n: number; resolve: (b: Buffer | null) => void } | null = null;
  private ended = false;

  constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.pending.push(chunk);
      this.have += chunk.length;
      this.wake();
    });
    socket.on("close", () => {
      this.ended = true;
      this.wake();
    });
  }

  read(n: number): Promise<Buffer | null> {
    return new Promise((resolve) => {
      this.waiter = { n, resolve };
      this.wake();
    });
  }

  /** What arrived after the handshake (the client may send its TLS hello right behind CONNECT). */
  rest(): Buffer {
    const out = Buffer.concat(this.pending);
    this.pending = [];
    this.have = 0;
    this.socket.removeAllListeners("data");
    return out;
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.have >= w.n) {
      const all = Buffer.concat(this.pending);
      this.pending = all.length > w.n ? [all.subarray(w.n)] : [];
      this.have = all.length - w.n;
      this.waiter = null;
      w.resolve(all.subarray(0, w.n));
    } else if (this.ended) {
      this.waiter = null;
      w.resolve(null);
    }
  }
}

export async function startSocks5Server(options: { credentials?: { user: string; password: string } } = {}): Promise<Socks5Server> {
  const tunnels: Socks5Tunnel[] = [];
  const open = new Set<Socket>();
  const state = { refused: 0 };

  const handle = async (client: Socket): Promise<void> => {
    const reader = new ByteReader(client);
    const head = await reader.read(2);
    if (!head || head[0] !== 5) return void client.destroy();
    const methods = await reader.read(head[1]!);
    if (!methods) return void client.destroy();
    const wanted = options.credentials ? 2 : 0;
    if (!methods.includes(wanted)) {
      state.refused++;
      client.end(Buffer.from([5, 0xff]));
      return;
    }
    client.write(Buffer.from([5, wanted]));
    let user: string | null = null;
    if (options.credentials) {
      const ver = await reader.read(2);
      if (!ver || ver[0] !== 1) return void client.destroy();
      const name = await reader.read(ver[1]!);
      const plen = await reader.read(1);
      const password = plen ? await reader.read(plen[0]!) : null;
      if (!name || !password) return void client.destroy();
      if (name.toString() !== options.credentials.user || password.toString() !== options.credentials.password) {
        state.refused++;
        client.end(Buffer.from([1, 1]));
        return;
      }
      user = name.toString();
      client.write(Buffer.from([1, 0]));
    }
    const req = await reader.read(4);
    if (!req || req[0] !== 5) return void client.destroy();
    const reply = (code: number) => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    let host: string;
    if (req[3] === 1) {
      const a = await reader.read(4);
      if (!a) return void client.destroy();
      host = [...a].join(".");
    } else if (req[3] === 3) {
      const len = await reader.read(1);
      const name = len ? await reader.read(len[0]!) : null;
      if (!name) return void client.destroy();
      host = name.toString();
    } else if (req[3] === 4) {
      const a = await reader.read(16);
      if (!a) return void client.destroy();
      host = Array.from({ length: 8 }, (_, i) => a.readUInt16BE(i * 2).toString(16)).join(":");
    } else {
      client.end(reply(8));
      return;
    }
    const portBytes = await reader.read(2);
    if (!portBytes) return void client.destroy();
    const port = portBytes.readUInt16BE(0);
    if (req[1] !== 1) {
      client.end(reply(7));
      return;
    }
    const upstream = connect(port, host);
    open.add(upstream);
    upstream.on("close", () => open.delete(upstream));
    upstream.once("error", () => {
      if (!client.destroyed) client.end(reply(5));
    });
    upstream.once("connect", () => {
      tunnels.push({ destination: `${host}:${port}`, user });
      const local = upstream.localAddress?.split(".").map(Number) ?? [0, 0, 0, 0];
      const ok = Buffer.from([5, 0, 0, 1, ...(local.length === 4 ? local : [0, 0, 0, 0]), 0, 0]);
      ok.writeUInt16BE(upstream.localPort ?? 0, 8);
      client.write(ok);
      const early = reader.rest();
      if (early.length) upstream.write(early);
      upstream.pipe(client);
      client.pipe(upstream);
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
  };

  const server: Server = createServer((client) => {
    open.add(client);
    client.on("close", () => open.delete(client));
    client.on("error", () => {});
    handle(client).catch(() => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `socks5://127.0.0.1:${port}`,
    tunnels,
    get refused() {
      return state.refused;
    },
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
