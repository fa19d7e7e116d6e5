import { describe, expect, it } from "vitest";
import { LightHeaders } from "../../src/server/lean/light-headers.js";

describe("LightHeaders", () => {
  it("behaves as Headers for what the lean paths use", () => {
    const light = new LightHeaders();
    const real = new Headers();
    for (const h of [light, real]) {
      h.set("Authorization", "Bearer x");
      h.append("X-Many", "a");
      h.append("x-many", "b");
      h.set("ratelimit-limit", "10");
      h.delete("RateLimit-Limit");
    }
    expect(light.get("authorization")).toBe(real.get("authorization"));
    expect(light.get("X-MANY")).toBe(real.get("X-MANY"));
    expect(light.has("ratelimit-limit")).toBe(real.has("ratelimit-limit"));
    expect(light.get("missing")).toBeNull();
    expect(new Map(light)).toEqual(new Map(real));
    const seen: [string, string][] = [];
    light.forEach((v, k) => seen.push([k, v]));
    expect(seen).toEqual([...light.entries()]);
    // connect copies it into real Headers.
    expect(new Map(new Headers(light))).toEqual(new Map(real));
  });
});
