// `npm run lint`. typescript-eslint's recommended rules, plus the type-aware rules that
// catch real bugs in this code base (a promise nobody awaits, an async callback where a
// sync one is expected, awaiting a non-promise, throwing a non-Error, a switch that misses
// a member of a union) at the cost of one type-checked program (~25 s on one core).
// No formatting or style rules: the code style is kept by review, not by the linter.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**', '.scratch/**', 'e2e-artifacts/**', 'bench/results/**',
      // The demo shop is its own set of programs with its own suite (examples/shop/test.sh).
      'examples/**']
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  // dependency-cruiser reads its configuration as CommonJS.
  { files: ['.dependency-cruiser.cjs'], languageOptions: { sourceType: 'commonjs', globals: { module: 'writable' } } },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        // tsconfig.json covers the sources, tests and benchmarks, e2e/tsconfig.json the e2e
        // suite; scripts/gen-docs.ts (run by tsx) has none.
        projectService: { allowDefaultProject: ['scripts/gen-docs.ts'] },
        tsconfigRootDir: import.meta.dirname
      }
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // tap tracks its subtests itself: `t.test(...)` needs no await.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/restrict-plus-operands': 'error',
      '@typescript-eslint/restrict-template-expressions': 'error',
      '@typescript-eslint/no-for-in-array': 'error',
      '@typescript-eslint/no-implied-eval': 'error',
      '@typescript-eslint/no-redundant-type-constituents': 'error',
      // A switch over a union (error codes, modes, datatypes) names every member or has a default.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // `_` marks a parameter or binding kept for its position.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // `catch {}` is how this code says "best effort, nothing to do".
      'no-empty': ['error', { allowEmptyCatch: true }]
    }
  },
  {
    // Tests read JSON replies and fake objects loosely; `any` there is not a hole in the product.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' }
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked]
  }
)
