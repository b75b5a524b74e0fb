// Long-lived objects a facade group needs across calls (shell sessions, output spools), owned by the server.

/** Something that holds resources and must be released when the server stops. */
export interface Closable {
  close(): Promise<void> | void;
}

/**
 * A keyed bag of per-server singletons, created on first use. `closeAll` releases every item that has a
 * `close` method (called at shutdown and when the MCP client goes away).
 */
export class ServerState {
  private readonly items = new Map<string, unknown>();

  /** The item under `key`, created with `create` the first time. */
  get<T>(key: string, create: () => T): T {
    if (!this.items.has(key)) this.items.set(key, create());
    return this.items.get(key) as T;
  }

  async closeAll(): Promise<void> {
    const items = [...this.items.values()];
    this.items.clear();
    for (const item of items) {
      const closable = item as Partial<Closable> | null;
      if (closable !== null && typeof closable.close === 'function') await Promise.resolve(closable.close()).catch(() => undefined);
    }
  }
}
