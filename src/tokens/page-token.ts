import { createHmac, timingSafeEqual } from "node:crypto";
import { invalidArgument } from "../errors/service-error.js";

/**
 * ListDashboards page tokens (AIP-158): opaque to clients, tamper-evident, and
 * bound to the scope they were issued for, so a token altered by hand or
 * issued to another caller or organization is refused instead of leaking or
 * skipping rows. The scope key also holds the parameters that choose the rows (a list's filter),
 * so a token is refused with any other. The position is a keyset cursor (the last id seen).
 */
export interface PageCursor {
  afterId: string;
}

const VERSION = 1;
const MAC_BYTES = 16;

export class PageTokenCodec {
  constructor(private readonly key: string) {}

  encode(cursor: PageCursor, scopeKey: string): string {
    const body = Buffer.from(JSON.stringify({ v: VERSION, a: cursor.afterId }));
    return `${body.toString("base64url")}.${this.mac(body, scopeKey).toString("base64url")}`;
  }

  /** Throws VALIDATION_ERROR for anything this service did not issue to this scope. */
  decode(token: string, scopeKey: string): PageCursor {
    const refuse = () =>
      invalidArgument([
        { field: "page_token", description: "is not a page token issued for this caller and these request parameters" },
      ]);
    const [bodyText, macText, extra] = token.split(".");
    if (!bodyText || !macText || extra !== undefined) throw refuse();
    const body = Buffer.from(bodyText, "base64url");
    const mac = Buffer.from(macText, "base64url");
    const expected = this.mac(body, scopeKey);
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw refuse();
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      throw refuse();
    }
    const p = parsed as { v?: unknown; a?: unknown };
    if (p.v !== VERSION || typeof p.a !== "string") throw refuse();
    return { afterId: p.a };
  }

  private mac(body: Buffer, scopeKey: string): Buffer {
    return createHmac("sha256", this.key).update(scopeKey).update("\0").update(body).digest().subarray(0, MAC_BYTES);
  }
}
