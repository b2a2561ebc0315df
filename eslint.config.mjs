import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["build/", "node_modules/", "rendered/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.mjs"],
    languageOptions: { globals: { console: "readonly", process: "readonly" } },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/no-require-imports": "off",
    },
  },
  {
    // Each folder of modules/ is used by the others through its index.ts: what a folder offers is what its index
    // exports. Tests and benchmarks may reach inside (they test the parts).
    files: ["modules/**/*.ts"],
    ignores: [
      // Dynamic providers are shipped by closure serialization: a folder's index would drag the whole folder
      // (handlebars, fs) into every serialized provider, where the one helper they need is enough.
      "modules/remote/**",
      // Validation checks pinned host keys with the SSH layer's parser, not the SSH layer (its index loads Pulumi).
      "modules/stack/semantic.ts",
    ],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^\\.\\./[^/]+/",
              message: "Import another folder of modules/ through its index (`../<folder>`).",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["modules/remote/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^\\.\\./(?!render/shell$)[^/]+/",
              message: "Import another folder through its index; only ../render/shell is imported directly here.",
            },
          ],
        },
      ],
    },
  },
);
