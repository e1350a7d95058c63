// @ts-check
import tseslint from 'typescript-eslint';

/** What the consensus core gets instead of each, for the lint messages. */
const PURE =
  'src/consensus is pure (steps, ticks, Ready): time, randomness and I/O belong to its runtime (src/replication/runtime.ts)';

const NODE_IO_MODULES = [
  'fs',
  'fs/promises',
  'net',
  'http',
  'https',
  'http2',
  'tls',
  'dgram',
  'dns',
  'timers',
  'timers/promises',
  'worker_threads',
  'child_process',
  'cluster',
  'os',
  'process',
  'perf_hooks',
  'crypto',
  'readline',
  'stream',
];
const nodeIo = `(${NODE_IO_MODULES.map((m) => m.replace('/', '\\/')).join('|')})$`;

export default tseslint.config(
  { ignores: ['node_modules/', 'build/', 'build-*/', 'dist/', 'bench/results/', '.tmp/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The consensus core must stay replayable in the simulator: every input an argument.
    // test/consensus/purity.test.ts holds this rule.
    files: ['src/consensus/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: `^node:|^${nodeIo}`, message: `${PURE}; no Node built-in.` },
            {
              // Any package (uWebSockets.js, piscina, ws, pino ...): the core depends on none.
              regex: `^(?!\\.|node:|${nodeIo})`,
              message: `${PURE}; no package (transport, threads, logging stay outside).`,
            },
            {
              // Outside this folder, only modules with no I/O and no state: the error registry
              // (codes for CoreError) and the limits (src/limits.ts). ../transport, ../store, ../server,
              // ../node, ../replication, ../native, ../log/wal*, ../log/record* (loads the addon) are out.
              regex: '^\\.\\./(?!errors\\.ts$|limits\\.ts$)',
              message: `${PURE}; outside src/consensus import only ../errors.ts or ../limits.ts.`,
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...[
          'setTimeout',
          'setInterval',
          'setImmediate',
          'clearTimeout',
          'clearInterval',
          'clearImmediate',
          'queueMicrotask',
          'process',
          'performance',
          'crypto',
          'fetch',
          // An escape hatch to all of the above.
          'globalThis',
        ].map((name) => ({ name, message: `${PURE}.` })),
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: `${PURE}: time is tick().` },
        { object: 'Math', property: 'random', message: `${PURE}: randomness is the injected rng.` },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date']", message: `${PURE}: time is tick().` },
      ],
    },
  },
);
