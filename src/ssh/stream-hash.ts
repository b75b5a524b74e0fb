// sha256 of a transfer's stream on a worker thread: hashing 256 MiB costs ~150 ms of CPU, which on the main
// thread competes with ssh2's decryption, the bottleneck of a transfer. The bytes are shared with the worker
// (SharedArrayBuffer), never copied.
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** A running sha256. */
export interface StreamHash {
  /** Adds `data`; resolves once it was consumed, after which the caller may reuse the buffer. */
  update(data: Buffer): Promise<void>;
  /** Digest (hex) of the bytes so far; the hash goes on. */
  peek(): Promise<string>;
  /** Final digest (hex); the hash ends. */
  digest(): Promise<string>;
  /** Frees the hash without a digest (a transfer that failed). */
  drop(): void;
}

/** A hash computed on this thread, continuing `hash` (for example the state after a verified prefix). */
export function inlineHash(hash: Hash = createHash('sha256')): StreamHash {
  return {
    update: (data) => {
      hash.update(data);
      return Promise.resolve();
    },
    peek: () => Promise.resolve(hash.copy().digest('hex')),
    digest: () => Promise.resolve(hash.digest('hex')),
    drop: () => undefined,
  };
}

// CommonJS, run with `eval`: no file to locate next to the compiled module (dist/ or vitest's sources).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'drop') { hashes.delete(m.id); return; }
  try {
    let result = null;
    if (m.op === 'start') hashes.set(m.id, createHash('sha256'));
    else if (m.op === 'update') hashes.get(m.id).update(new Uint8Array(m.buffer, m.offset, m.length));
    else if (m.op === 'peek') result = hashes.get(m.id).copy().digest('hex');
    else if (m.op === 'digest') { result = hashes.get(m.id).digest('hex'); hashes.delete(m.id); }
    parentPort.postMessage({ seq: m.seq, result });
  } catch (err) {
    parentPort.postMessage({ seq: m.seq, error: String((err && err.message) || err) });
  }
});
`;

interface Reply {
  seq: number;
  result?: string | null;
  error?: string;
}

/** One worker for the whole process, started on first use; it never keeps the process alive (unref). */
class HashWorker {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: (value: string | null) => void; reject: (err: Error) => void }>();
  private seq = 0;
  private ids = 0;

  private start(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.seq);
      if (waiter === undefined) return;
      this.pending.delete(reply.seq);
      if (reply.error === undefined) waiter.resolve(reply.result ?? null);
      else waiter.reject(new Error(`hash worker: ${reply.error}`));
    });
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = null;
      for (const waiter of this.pending.values()) waiter.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      fail(new Error(`hash worker exited (code ${code})`));
    });
    this.worker = worker;
    return worker;
  }

  private request(message: Record<string, unknown>): Promise<string | null> {
    const worker = this.start();
    this.seq += 1;
    const seq = this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      worker.postMessage({ ...message, seq });
    });
  }

  create(): StreamHash {
    this.ids += 1;
    const id = this.ids;
    const started = this.request({ op: 'start', id });
    started.catch(() => undefined);
    const digestOf = async (op: 'peek' | 'digest'): Promise<string> => {
      const hex = await this.request({ op, id });
      if (typeof hex !== 'string') throw new Error('hash worker: no digest');
      return hex;
    };
    return {
      update: async (data) => {
        // Buffers of a transfer are shared; anything else is copied once into shared memory.
        let view = data;
        if (!(data.buffer instanceof SharedArrayBuffer)) {
          view = Buffer.from(new SharedArrayBuffer(data.length));
          data.copy(view);
        }
        await this.request({ op: 'update', id, buffer: view.buffer, offset: view.byteOffset, length: view.length });
      },
      peek: () => digestOf('peek'),
      digest: () => digestOf('digest'),
      drop: () => {
        this.worker?.postMessage({ op: 'drop', id });
      },
    };
  }
}

let shared: HashWorker | null = null;

/**
 * A new sha256 computed on the shared worker thread (falls back to this thread when no worker can start).
 * Updates are consumed in the order they are made.
 */
export function workerHash(): StreamHash {
  try {
    shared ??= new HashWorker();
    return shared.create();
  } catch {
    return inlineHash();
  }
}

/** A buffer the hash worker can read without a copy. */
export function sharedBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}
