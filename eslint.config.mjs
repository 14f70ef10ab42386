import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The package and the examples users copy get typescript-eslint's strict type-checked rules; tests and
// the bench get the strict rules plus the type-checked ones that catch lost promises.
const typeChecked = tseslint.configs.strictTypeChecked.map((config) => ({
  ...config,
  files: ['src/**/*.ts', 'examples/**/*.ts'],
}));

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'docs/api/',
      '.build-test-*/',
      'node_modules/',
      'coverage/',
      'test-results/',
      'bench/results/',
      'test/consumer/apps/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  ...typeChecked,
  {
    files: ['src/**/*.ts', 'examples/**/*.ts'],
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // Express handlers end early with `return next()` or `return res.redirect(...)`, as Express's own
      // documentation writes them.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // The package checks at run time what its types already say: options and stored values come from
      // JavaScript callers, cookies and stores that the types cannot vouch for.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Some functions are async only so that a throw becomes a rejection the caller handles.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // One clock and one deadline (base/time.ts, ARCHITECTURE.md): nothing else in the package reads a clock
    // or starts a timer of its own. The emulator stands apart.
    files: ['src/**/*.ts'],
    ignores: ['src/base/time.ts', 'src/testing/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Use now() or epochNow() from base/time.ts.' },
        { object: 'performance', property: 'now', message: 'Use now() from base/time.ts.' },
        { object: 'AbortSignal', property: 'timeout', message: 'Use runUntil() from base/time.ts.' },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use after(), sleep() or a deadline from base/time.ts.' },
        { name: 'setInterval', message: 'Use after() from base/time.ts.' },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', '*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    // After the route's auth check (examples) or what the test just set up, the value is there.
    files: ['test/**/*.ts', 'examples/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // Excluded from the root tsconfig (its imports need decorators): typed with the NestJS recipe's tsconfig.
    files: ['test/examples/fixtures/nestjs-app.ts'],
    languageOptions: {
      parserOptions: {
        projectService: false,
        project: './examples/nestjs/tsconfig.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  { files: ['**/*.mjs', '**/*.cjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
);
