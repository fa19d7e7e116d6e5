// ESLint decides correctness, Prettier decides layout (typescript-eslint's recommended sets have no layout rules).
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["gen/", "dist/", "data/", "coverage/", "examples/browser/dist/"] },
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
);
