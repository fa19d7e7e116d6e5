import { describe, expect, it } from "vitest";
import { PageTokenCodec } from "../../src/tokens/page-token.js";

const codec = new PageTokenCodec("k".repeat(32));

describe("page tokens", () => {
  it("round-trip a cursor for the scope they were issued to", () => {
    const token = codec.encode({ afterId: "0190f3c2-0000-7000-8000-000000000001" }, "scope-a");
    expect(codec.decode(token, "scope-a")).toEqual({ afterId: "0190f3c2-0000-7000-8000-000000000001" });
  });

  it("are refused in another scope or under another key", () => {
    const token = codec.encode({ afterId: "x" }, "scope-a");
    expect(() => codec.decode(token, "scope-b")).toThrow(/page_token/);
    expect(() => new PageTokenCodec("j".repeat(32)).decode(token, "scope-a")).toThrow(/page_token/);
  });

  it("are refused when any character is changed", () => {
    const token = codec.encode({ afterId: "0190f3c2-0000-7000-8000-000000000001" }, "s");
    for (let i = 0; i < token.length; i++) {
      if (token[i] === ".") continue;
      const flipped = token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
      if (flipped === token) continue;
      expect(() => codec.decode(flipped, "s"), `position ${i}`).toThrow();
    }
  });

  it("are refused when malformed", () => {
    for (const bad of ["", ".", "a.b.c", "abc", "%%%.%%%"]) expect(() => codec.decode(bad, "s")).toThrow(/page_token/);
  });
});
