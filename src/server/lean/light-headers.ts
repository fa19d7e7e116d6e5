/**
 * A Headers for the lean paths' per-call request and response headers.
 * undici's Headers validates every name and value on every set, which showed
 * up as about a twentieth of a gRPC read's CPU; these come from Node's HTTP
 * parser (already validated) or from our own interceptors. Names are
 * lower-cased as Headers does; iteration is in insertion order, which is all
 * its users (connect's header copying, our interceptors) rely on.
 */
export class LightHeaders implements Headers {
  private readonly map = new Map<string, string>();

  constructor(init?: Iterable<[string, string]>) {
    if (init) for (const [k, v] of init) this.append(k, v);
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const existing = this.map.get(key);
    this.map.set(key, existing === undefined ? value : `${existing}, ${value}`);
  }

  delete(name: string): void {
    this.map.delete(name.toLowerCase());
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  getSetCookie(): string[] {
    const value = this.map.get("set-cookie");
    return value === undefined ? [] : [value];
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  set(name: string, value: string): void {
    this.map.set(name.toLowerCase(), value);
  }

  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    for (const [k, v] of this.map) callback.call(thisArg, v, k, this);
  }

  readonly entries = () => this.map.entries();
  readonly keys = () => this.map.keys();
  readonly values = () => this.map.values();
  readonly [Symbol.iterator] = () => this.map.entries();
}
