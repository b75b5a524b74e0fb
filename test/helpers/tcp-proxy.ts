// Network faults on demand for integration tests: a TCP proxy that can stall, reset or cut, and a silent tarpit.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface ProxyOptions {
  target: { host: string; port: number };
  /** Address to listen on (default 127.0.0.1); the port is always a free one. */
  listen?: { host?: string };
}

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /**
   * Stops forwarding in both directions and keeps every socket open, like a blackholed link: bytes wait in
   * the kernel buffers (no FIN, no RST) until {@link TcpProxy.resume}. New connections are accepted, then stall too.
   */
  stall(): void;
  /** Forwards again, delivering what waited during the stall. */
  resume(): void;
  /** Destroys every open connection with a TCP RST on both sides; new connections are still accepted. */
  resetAll(): void;
  /**
   * From now on, resets each connection once `bytes` more bytes went server -> client on it (new connections
   * count from their start). The chunk that crosses the limit is forwarded up to it. `Infinity` switches it off.
   */
  cutAfter(bytes: number): void;
  /** Bytes forwarded so far, both directions, all connections. */
  bytesForwarded(): number;
  /** Connections currently open through the proxy. */
  connectionCount(): number;
  /** Resets every connection and stops listening. */
  close(): Promise<void>;
}

interface Pipe {
  client: Socket;
  upstream: Socket;
  /** Server -> client bytes still allowed before the cut. */
  budget: number;
}

function listenOn(server: Server, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      server.off('error', reject);
      const address = server.address();
      if (address !== null && typeof address === 'object') resolve(address.port);
      else reject(new Error(`could not read the port bound on ${host}`));
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
}

export async function startProxy(options: ProxyOptions): Promise<TcpProxy> {
  const host = options.listen?.host ?? '127.0.0.1';
  const pipes = new Set<Pipe>();
  let isStalled = false;
  let cutLimit = Infinity;
  let forwarded = 0;

  const resetSocket = (s: Socket): void => {
    if (s.destroyed) return;
    // resetAndDestroy needs a connected socket; one still connecting is simply destroyed.
    if (s.connecting) s.destroy();
    else s.resetAndDestroy();
  };

  const endSocket = (s: Socket): void => {
    if (!s.destroyed && !s.writableEnded) s.end();
  };

  /** Copies `from` to `to` by hand (not pipe()), so pipe's own resume on 'drain' cannot end a stall. */
  const forward = (pipe: Pipe, from: Socket, to: Socket, isDownstream: boolean): void => {
    from.on('data', (chunk: Buffer) => {
      if (to.destroyed || to.writableEnded) return;
      if (isDownstream && chunk.length >= pipe.budget) {
        // The cut: the client gets exactly the allowed bytes, then a FIN (an RST could overtake them);
        // sshd gets an RST.
        const allowed = chunk.subarray(0, pipe.budget);
        pipe.budget = 0;
        forwarded += allowed.length;
        to.end(allowed);
        resetSocket(from);
        return;
      }
      if (isDownstream) pipe.budget -= chunk.length;
      forwarded += chunk.length;
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => {
          if (!isStalled) from.resume();
        });
      }
    });
    // Half-closes travel through as they are (allowHalfOpen); an error on one side resets the other.
    from.on('end', () => {
      endSocket(to);
    });
    from.on('error', () => {
      resetSocket(to);
    });
    from.on('close', () => {
      endSocket(to);
      if (from === pipe.client ? pipe.upstream.destroyed : pipe.client.destroyed) pipes.delete(pipe);
    });
  };

  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const upstream = createConnection({ host: options.target.host, port: options.target.port, allowHalfOpen: true, noDelay: true });
    const pipe: Pipe = { client, upstream, budget: cutLimit };
    pipes.add(pipe);
    forward(pipe, client, upstream, false);
    forward(pipe, upstream, client, true);
    if (isStalled) {
      client.pause();
      upstream.pause();
    }
  });
  const port = await listenOn(server, host);

  return {
    host,
    port,
    stall: () => {
      isStalled = true;
      for (const p of pipes) {
        p.client.pause();
        p.upstream.pause();
      }
    },
    resume: () => {
      isStalled = false;
      for (const p of pipes) {
        // A side whose peer is still full waits for its 'drain', which resumes it.
        if (!p.upstream.writableNeedDrain) p.client.resume();
        if (!p.client.writableNeedDrain) p.upstream.resume();
      }
    },
    resetAll: () => {
      for (const p of [...pipes]) {
        pipes.delete(p);
        resetSocket(p.client);
        resetSocket(p.upstream);
      }
    },
    cutAfter: (bytes: number) => {
      cutLimit = bytes;
      for (const p of pipes) p.budget = bytes;
    },
    bytesForwarded: () => forwarded,
    connectionCount: () => pipes.size,
    close: async () => {
      for (const p of [...pipes]) {
        pipes.delete(p);
        resetSocket(p.client);
        resetSocket(p.upstream);
      }
      await closeServer(server);
    },
  };
}

export interface Tarpit {
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  connectionCount(): number;
  /** Destroys the held sockets and stops listening. */
  close(): Promise<void>;
}

/** A listener that accepts every connection and never sends a byte (nor closes), like a wedged sshd. */
export async function startTarpit(host = '127.0.0.1'): Promise<Tarpit> {
  const held = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    held.add(socket);
    socket.on('error', () => {
      held.delete(socket);
    });
    socket.on('close', () => {
      held.delete(socket);
    });
  });
  const port = await listenOn(server, host);
  return {
    host,
    port,
    connectionCount: () => accepted,
    close: async () => {
      for (const s of held) s.destroy();
      held.clear();
      await closeServer(server);
    },
  };
}
