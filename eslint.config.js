// ESLint decides correctness, Prettier decides layout (typescript-eslint's recommended sets have no layout rules).
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["gen/", "dist/", "data/", "coverage/", "examples/browser/dist/", "sdk/embed/dist/"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `void promise` is how a fire-and-forget gets written without a .catch; make it a decision, not a habit.
      "@typescript-eslint/no-floating-promises": ["error", { ignoreVoid: false }],
      // Passing on what was caught (typed unknown) is how a failure travels on; new rejections still need an Error.
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
    },
  },
  { files: ["**/*.js"], extends: [tseslint.configs.disableTypeChecked] },
  ...layering(),
);

/**
 * What each folder of src/ must not import (docs/architecture.md explains why): the listener knows
 * sockets, the edge knows protocols but no domain, the domain knows no protocol, the store no caller.
 * Where a folder may borrow another's types but not its code, type-only imports stay allowed.
 */
function layering() {
  // vocabulary: modules of pure values (closed sets, field rules) any layer may read.
  const vocabulary = ["tokens/embed-settings.js", "tokens/filters.js"].flatMap((m) => [`!../${m}`, `!../../${m}`]);
  const rule = (folder, forbidden, { typesAllowed = [] } = {}) => ({
    files: [`src/${folder}/**/*.ts`],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            ...forbidden.map((f) => ({
              group: [`../${f}/*`, `../../${f}/*`, ...vocabulary],
              message: `src/${folder} must not import src/${f}`,
            })),
            ...typesAllowed.map((f) => ({
              group: [`../${f}/*`, `../../${f}/*`, ...vocabulary],
              allowTypeImports: true,
              message: `src/${folder} may use src/${f}'s types only`,
            })),
          ],
        },
      ],
    },
  });
  const all = [
    "auth",
    "call",
    "config",
    "edge",
    "errors",
    "jobs",
    "keys",
    "listener",
    "log",
    "ops",
    "ratelimit",
    "rest",
    "service",
    "store",
    "tokens",
    "tracing",
    "validation",
  ];
  const except = (...allowed) => all.filter((f) => !allowed.includes(f));
  return [
    rule("errors", except("errors")),
    rule("listener", except("listener", "config")),
    rule("config", except("config")),
    rule("log", except("log", "config")),
    // Every layer opens spans; the span helpers themselves know only the configuration and the logger.
    rule("tracing", except("tracing", "config", "log")),
    rule("validation", except("validation", "errors")),
    rule("call", ["edge", "listener", "ops", "rest", "service", "store", "tokens"]),
    rule("auth", ["call", "edge", "listener", "ops", "rest", "service", "store", "tokens"]),
    rule("ratelimit", ["call", "edge", "listener", "ops", "rest", "service", "store", "tokens"]),
    rule("store", ["auth", "edge", "listener", "ops", "ratelimit", "rest", "service", "validation"], {
      typesAllowed: ["tokens"],
    }),
    rule("edge", ["rest", "service", "store", "tokens", "validation"], { typesAllowed: ["ops"] }),
    rule("service", ["edge", "listener", "ops", "rest", "ratelimit"]),
    rule("tokens", ["auth", "call", "ops", "ratelimit", "rest", "service"], { typesAllowed: ["store"] }),
    rule("rest", ["listener", "ops", "ratelimit", "tokens"], { typesAllowed: ["store"] }),
    rule("ops", ["auth", "call", "rest", "service", "tokens"]),
    rule("jobs", except("jobs", "log"), { typesAllowed: ["store"] }),
  ];
}
