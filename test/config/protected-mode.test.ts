/**
 * The start-up half of protected mode (issue 9, item 5): a peer listener on
 * a non-loopback address with nothing to authenticate peers (no secret, no
 * TLS) is a config error, exit 2, unless replication.insecure_no_auth says
 * the operator means it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig, type ConfigInput } from '../../src/config/resolve.ts';
import { isVrepError } from '../../src/errors.ts';
import { startCli } from '../helpers/process.ts';
import { tempDir } from '../helpers/tmp.ts';

function configError(input: ConfigInput): string {
  try {
    resolveConfig(input);
  } catch (err) {
    assert.ok(isVrepError(err, 'ERR_CONFIG'), `expected ERR_CONFIG, got ${String(err)}`);
    return err.message;
  }
  assert.fail(`expected ERR_CONFIG for ${JSON.stringify(input)}`);
}

const SECRET = 'a-secret-of-16-chars';

test('a non-loopback peer listener without a secret or TLS is refused, naming the key and the way out', () => {
  for (const bind of ['0.0.0.0:7001', '192.0.2.2:7001', '[::]:7001', 'vrep-1.example:7001']) {
    const message = configError({ flags: { '--role': 'primary', '--bind': bind } });
    assert.match(message, /^config replication\.bind_address: /, bind);
    assert.match(message, /loopback/, bind);
    assert.match(message, /replication\.secret/, bind);
    assert.match(message, /insecure_no_auth/, bind);
    assert.match(message, /\(from --bind\)/, bind);
  }
  // Loopback binds, a standalone node (no peer listener), a secret or TLS: no error.
  for (const bind of ['127.0.0.1:7001', '127.0.0.2:7001', 'localhost:7001', '[::1]:7001'])
    assert.equal(
      resolveConfig({ flags: { '--role': 'primary', '--bind': bind } }).node.replication.role,
      'primary',
    );
  assert.equal(resolveConfig({ flags: { '--bind': '0.0.0.0:7001' } }).node.replication.role, 'standalone');
  assert.equal(
    resolveConfig({ flags: { '--role': 'primary', '--bind': '0.0.0.0:7001' }, env: { VREP_SECRET: SECRET } })
      .node.replication.secret,
    SECRET,
  );
  const tls = { VREP_TLS_CERT: 'c.pem', VREP_TLS_KEY: 'k.pem', VREP_TLS_CA: 'ca.pem' };
  assert.ok(
    resolveConfig({ flags: { '--role': 'primary', '--bind': '0.0.0.0:7001' }, env: tls }).node.replication
      .tls,
  );
});

test('insecure_no_auth from the file, either env variable or the flag lets it start, with a warning', () => {
  const inputs: ConfigInput[] = [
    {
      file: {
        text: 'replication: { role: primary, bind_address: "0.0.0.0:7001", insecure_no_auth: true }',
        name: 'v.yaml',
      },
    },
    { flags: { '--role': 'primary', '--bind': '0.0.0.0:7001' }, env: { VREP_INSECURE_NO_AUTH: 'true' } },
    { flags: { '--role': 'primary', '--bind': '0.0.0.0:7001' }, env: { REPLICATION_INSECURE_NO_AUTH: '1' } },
    { flags: { '--role': 'primary', '--bind': '0.0.0.0:7001', '--insecure-no-auth': 'true' } },
  ];
  for (const input of inputs) {
    const c = resolveConfig(input);
    assert.equal(c.node.replication.insecureNoAuth, true, JSON.stringify(input));
    assert.ok(
      c.warnings.some((w) => /insecure_no_auth/.test(w) && /0\.0\.0\.0:7001/.test(w)),
      c.warnings.join('\n'),
    );
  }
  assert.match(
    configError({ env: { VREP_INSECURE_NO_AUTH: 'perhaps' } }),
    /config replication\.insecure_no_auth: expected true or false, got "perhaps" \(from VREP_INSECURE_NO_AUTH\)/,
  );
});

test('vrep serve: a non-loopback peer bind without a secret exits 2 with the message; --insecure-no-auth serves', async (t) => {
  const refused = startCli([
    'serve',
    '--role',
    'primary',
    '--bind',
    '0.0.0.0:0',
    '--http',
    '127.0.0.1:0',
    '--data-dir',
    tempDir(t),
  ]);
  t.after(() => refused.kill());
  assert.equal(await refused.exited(30_000), 2, refused.stdout());
  assert.match(refused.stderr(), /^vrep serve: config replication\.bind_address: .*loopback/m);

  const insecure = startCli([
    'serve',
    '--role',
    'primary',
    '--bind',
    '0.0.0.0:0',
    '--http',
    '127.0.0.1:0',
    '--insecure-no-auth',
    '--data-dir',
    tempDir(t),
  ]);
  t.after(() => insecure.kill());
  await insecure.waitForLine(/"msg":"vrep node serving"/, 30_000);
  assert.match(insecure.stdout(), /insecure_no_auth/);
});
