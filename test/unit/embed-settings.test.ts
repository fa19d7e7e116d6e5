import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalLocale, canonicalTimeZone } from "../../src/tokens/embed-settings.js";
import { checkEmbedSettings } from "../../src/validation/embed-rules.js";

/** What a renderer does with a signed value: it must accept it, and see it as already canonical. */
const intlLocale = (tag: string) => Intl.getCanonicalLocales(tag);
const intlTimeZone = (name: string) => new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;

/** Any text, strings shaped like language tags, and real zone names in random case, so both outcomes are common. */
const anyText = fc.string({ unit: "binary", maxLength: 80 });
const tagLike = fc.stringMatching(/^[A-Za-z]{1,9}(?:[-_][A-Za-z0-9]{1,9}){0,5}$/);
const zoneNames = Intl.supportedValuesOf("timeZone");
const zoneLike = fc
  .tuple(fc.constantFrom(...zoneNames), fc.array(fc.boolean(), { maxLength: 40 }))
  .map(([zone, flips]) => [...zone].map((c, i) => (flips[i] ? c.toUpperCase() : c.toLowerCase())).join(""));
const offsetLike = fc.stringMatching(/^[+-]\d{2}(?::?\d{2})?$/);

describe("embed settings: locales and time zones", () => {
  it("never lets through a locale Intl rejects, and signs only what Intl sees as canonical", () => {
    fc.assert(
      fc.property(fc.oneof(anyText, tagLike), (locale) => {
        const { violations, canonical } = checkEmbedSettings({ locale }, "");
        if (violations.length > 0) {
          expect(violations.map((v) => v.field)).toEqual(["locale"]);
          expect(canonical.locale).toBeUndefined();
          return;
        }
        // "" is "the renderer's own": nothing is signed (embedClaims leaves the claim out).
        if (locale === "") {
          expect(canonical.locale).toBe("");
          return;
        }
        expect(intlLocale(canonical.locale!)).toEqual([canonical.locale]);
        expect(canonical.locale).toBe(intlLocale(locale)[0]);
      }),
      { numRuns: 3000 },
    );
  });

  it("never lets through a time zone Intl rejects, nor an offset, and signs the name Intl resolves", () => {
    fc.assert(
      fc.property(fc.oneof(anyText, zoneLike, offsetLike), (timeZone) => {
        const { violations, canonical } = checkEmbedSettings({ timeZone }, "");
        if (violations.length > 0) {
          expect(violations.map((v) => v.field)).toEqual(["time_zone"]);
          return;
        }
        if (timeZone === "") {
          expect(canonical.timeZone).toBe("");
          return;
        }
        expect(intlTimeZone(canonical.timeZone!)).toBe(canonical.timeZone);
        expect(canonical.timeZone).toBe(intlTimeZone(timeZone));
        expect(canonical.timeZone).toMatch(/^[A-Za-z]/);
      }),
      { numRuns: 3000 },
    );
  });

  it("accepts every zone Intl lists, in any case", () => {
    for (const zone of zoneNames) expect(canonicalTimeZone(zone.toUpperCase()), zone).toBe(intlTimeZone(zone));
  });

  it("canonicalises and refuses these examples alike on every Node version", () => {
    expect(canonicalLocale("EN-us")).toBe("en-US");
    expect(canonicalLocale("zh-hant-tw")).toBe("zh-Hant-TW");
    for (const refused of ["en_US", "i-klingon", "x-private", "en-US,fr", `en-${"a".repeat(70)}`]) {
      expect(canonicalLocale(refused), refused).toBeUndefined();
    }
    expect(canonicalTimeZone("europe/berlin")).toBe("Europe/Berlin");
    expect(canonicalTimeZone("utc")).toBe("UTC");
    // Node 22+ would accept offsets; they are not IANA names.
    for (const refused of ["+05:30", "-08", "Mars/Olympus_Mons", "Europe/Berlin "]) {
      expect(canonicalTimeZone(refused), refused).toBeUndefined();
    }
  });
});
