/**
 * Garbage in, ERR_CONFIG out: whatever the file text, env values and flag
 * values, resolveConfig either resolves or throws a VrepError ERR_CONFIG whose
 * every line names a key (`config ...`). Nothing else escapes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { resolveConfig, type ConfigInput } from '../../src/config/resolve.ts';
import { ENV_SOURCES, FLAG_SOURCES } from '../../src/config/sources.ts';
import { isVrepError } from '../../src/errors.ts';
import { scale } from '../helpers/tmp.ts';

function resolvesOrConfigError(input: ConfigInput): void {
  try {
    resolveConfig(input);
  } catch (err) {
    assert.ok(isVrepError(err, 'ERR_CONFIG'), `not ERR_CONFIG: ${String(err)} for ${JSON.stringify(input)}`);
    for (const line of err.message.split('\n')) assert.match(line, /^config \S/, err.message);
  }
}

const runs = scale(300, 5000);
const keys = fc.constantFrom(
  'node_id',
  'data_dir',
  'http',
  'replication',
  'storage',
  'logging',
  'host',
  'port',
  'role',
  'tls',
  'peers',
  'compression',
  'primary_address',
  'heartbeat_interval',
  'level',
  '__proto__',
  'constructor',
);
const leaf = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('127.0.0.1:7001', 'primary', 'replica', 'everysec', '[::1]:0', 'master', 'x'),
);
const tree = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 3 }), tie('object')),
  object: fc.dictionary(keys, tie('node'), { maxKeys: 5 }),
})).object;

test('random text as the config file', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) =>
      resolvesOrConfigError({ file: { text, name: 'f.yaml' } }),
    ),
    { numRuns: runs },
  );
});

test('random trees of plausible keys and values as YAML', () => {
  fc.assert(
    fc.property(tree, (t) => resolvesOrConfigError({ file: { text: stringify(t), name: 'f.yaml' } })),
    { numRuns: runs },
  );
});

test('random env and flag values', () => {
  const env = fc.dictionary(
    fc.constantFrom(...ENV_SOURCES.map((s) => s.name), 'VREP_SOMETHING'),
    fc.oneof(
      fc.string(),
      fc.constantFrom('', 'null', '1', '-1', '1e400', '0x10', 'true', 'a:1,b:2', '::1:80'),
    ),
  );
  const flags = fc.dictionary(
    fc.constantFrom(...FLAG_SOURCES.map((s) => s.name)),
    fc.oneof(fc.string(), fc.constantFrom('', '127.0.0.1:0', 'replica', ' 5 ', 'a,,b')),
  );
  fc.assert(
    fc.property(env, flags, (e, f) => resolvesOrConfigError({ env: e, flags: f })),
    { numRuns: runs },
  );
});
