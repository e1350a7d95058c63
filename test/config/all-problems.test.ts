/**
 * One run lists every problem (docs/config.md, issue 9 item 13): checks that
 * compare two keys run even when other keys are bad, and a bad key is never
 * compared against a default it does not have.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig, type ConfigInput } from '../../src/config/resolve.ts';
import { isVrepError } from '../../src/errors.ts';

function problems(input: ConfigInput): string[] {
  try {
    resolveConfig(input);
  } catch (err) {
    assert.ok(isVrepError(err, 'ERR_CONFIG'), `expected ERR_CONFIG, got ${String(err)}`);
    return err.message.split('\n');
  }
  assert.fail(`expected ERR_CONFIG for ${JSON.stringify(input)}`);
}

test('a bad value and a cross-key problem in other keys are reported in the same run', () => {
  const lines = problems({
    env: { VREP_HTTP_PORT: 'eighty' },
    flags: { '--role': 'replica' },
    file: {
      text: 'replication: { replica_timeout_secs: 1, heartbeat_interval_secs: 2 }\nstorage: { fsync: maybe }',
      name: 'v.yaml',
    },
  });
  assert.equal(lines.length, 4, lines.join('\n'));
  assert.match(lines.join('\n'), /config http\.port: .*"eighty"/);
  assert.match(lines.join('\n'), /config storage\.fsync: .*"maybe"/);
  assert.match(lines.join('\n'), /config replication\.master_address: expected the primary's HOST:PORT/);
  assert.match(lines.join('\n'), /config replication\.replica_timeout_secs: expected more than/);
});

test('a cross-key check whose key is itself bad is skipped, not run against a default', () => {
  const lines = problems({
    env: { REPLICATION_HEARTBEAT_INTERVAL: 'abc' },
    file: { text: 'replication: { replica_timeout_secs: 3 }', name: 'v.yaml' },
  });
  assert.deepEqual(lines.length, 1, lines.join('\n'));
  assert.match(lines[0] as string, /heartbeat_interval_secs: .*"abc"/);
  // An unknown key next to a cross-key problem: both.
  const both = problems({ file: { text: 'replication: { role: replica, colour: blue }', name: 'v.yaml' } });
  assert.equal(both.length, 2, both.join('\n'));
  assert.match(both.join('\n'), /replication\.colour: unknown key/);
  assert.match(both.join('\n'), /replication\.master_address: expected the primary's HOST:PORT/);
});
