import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConfig, configFilePath, DEFAULTS, type ConfigInput } from '../../src/config/resolve.ts';
import { ENV_SOURCES } from '../../src/config/sources.ts';
import { isVrepError } from '../../src/errors.ts';

const file = (text: string, name = 'vrep.yaml'): { text: string; name: string } => ({ text, name });

/** The ERR_CONFIG message resolving `input` throws. */
function configError(input: ConfigInput): string {
  try {
    resolveConfig(input);
  } catch (err) {
    assert.ok(isVrepError(err, 'ERR_CONFIG'), `expected ERR_CONFIG, got ${String(err)}`);
    return err.message;
  }
  assert.fail(`expected ERR_CONFIG for ${JSON.stringify(input)}`);
}

test('zero config: standalone, HTTP on loopback 15002, ./data, peer bind 127.0.0.1:7001', () => {
  const c = resolveConfig({});
  assert.deepEqual(c.http, {
    host: '127.0.0.1',
    port: 15002,
    token: null,
    maxBodyBytes: 64 * 1024 * 1024,
    advertiseAddress: null,
  });
  assert.equal(c.node.nodeId, 'n1');
  assert.equal(c.node.dataDir, './data');
  assert.deepEqual(c.node.storage, { fsync: 'everysec' });
  assert.equal(c.logLevel, 'info');
  assert.deepEqual(c.warnings, []);
  assert.deepEqual(c.node.replication, {
    role: 'standalone',
    bindAddress: '127.0.0.1:7001',
    masterAddress: null,
    peers: [],
    heartbeatIntervalMs: 5000,
    replicaTimeoutMs: 30_000,
    reconnectIntervalMs: 5000,
    logSize: 1_000_000,
    consistency: 'one',
    compression: { enabled: true, level: 1 },
    bandwidthBytesPerSec: null,
    secret: null,
    tls: null,
    httpAddress: null,
  });
});

test('the interface doc example file resolves, seconds becoming milliseconds', () => {
  const c = resolveConfig({
    file: file(`
node_id: n1
data_dir: ./data
http: { host: 127.0.0.1, port: 15002, token: null }
replication:
  enabled: true
  role: primary
  bind_address: 127.0.0.1:7001
  master_address: null
  peers: []
  heartbeat_interval_secs: 5
  replica_timeout_secs: 30
  reconnect_interval_secs: 2.5
  log_size: 1000000
  consistency: quorum
  compression: { enabled: true, level: 3 }
  bandwidth_bytes_per_sec: null
  secret: null
  tls: null
storage:
  fsync: always
`),
  });
  assert.equal(c.node.replication.role, 'primary');
  assert.equal(c.node.replication.reconnectIntervalMs, 2500);
  assert.equal(c.node.replication.heartbeatIntervalMs, 5000);
  assert.equal(c.node.replication.replicaTimeoutMs, 30_000);
  assert.equal(c.node.replication.consistency, 'quorum');
  assert.deepEqual(c.node.replication.compression, { enabled: true, level: 3 });
  assert.deepEqual(c.node.storage, { fsync: 'always' });
});

test('precedence: defaults < file < env < flags, key by key', () => {
  const yaml = file(`
node_id: from-file
data_dir: /file/dir
http: { host: 0.0.0.0, port: 1111 }
replication: { role: primary, bind_address: "127.0.0.1:7100", log_size: 10 }
storage: { fsync: always }
`);
  const env = {
    VREP_DATA_DIR: '/env/dir',
    VREP_HTTP_PORT: '2222',
    REPLICATION_LOG_SIZE: '20',
    VREP_FSYNC: 'no',
  };
  const flags = { '--data-dir': '/flag/dir', '--http': '127.0.0.1:3333' };

  const fileOnly = resolveConfig({ file: yaml });
  assert.equal(fileOnly.node.nodeId, 'from-file');
  assert.equal(fileOnly.node.dataDir, '/file/dir');
  assert.equal(fileOnly.http.port, 1111);
  assert.equal(fileOnly.http.host, '0.0.0.0');

  const withEnv = resolveConfig({ file: yaml, env });
  assert.equal(withEnv.node.nodeId, 'from-file', 'a key env does not set stays from the file');
  assert.equal(withEnv.node.dataDir, '/env/dir');
  assert.equal(withEnv.http.port, 2222);
  assert.equal(withEnv.http.host, '0.0.0.0');
  assert.equal(withEnv.node.replication.logSize, 20);
  assert.equal(withEnv.node.storage.fsync, 'no');
  assert.equal(withEnv.node.replication.bindAddress, '127.0.0.1:7100');

  const all = resolveConfig({ file: yaml, env, flags });
  assert.equal(all.node.dataDir, '/flag/dir');
  assert.equal(all.http.port, 3333);
  assert.equal(all.http.host, '127.0.0.1', '--http sets both host and port');
  assert.equal(all.node.replication.logSize, 20);
  assert.equal(all.node.replication.role, 'primary');
  assert.equal(all.node.storage.fsync, 'no');
});

test('flags map onto their keys', () => {
  const c = resolveConfig({
    flags: {
      '--node-id': 'r1',
      '--role': 'replica',
      '--primary': '10.0.0.1:7001',
      '--bind': '0.0.0.0:7002',
      '--peers': '10.0.0.2:7001, 10.0.0.3:7001',
      '--fsync': 'always',
      '--token': 'sesame',
      '--max-body-bytes': '1024',
      '--log-level': 'debug',
      // 0.0.0.0 with no secret is protected mode's refusal without it.
      '--insecure-no-auth': 'true',
    },
  });
  assert.equal(c.node.nodeId, 'r1');
  assert.equal(c.node.replication.role, 'replica');
  assert.equal(c.node.replication.masterAddress, '10.0.0.1:7001');
  assert.equal(c.node.replication.bindAddress, '0.0.0.0:7002');
  assert.deepEqual(c.node.replication.peers, ['10.0.0.2:7001', '10.0.0.3:7001']);
  assert.equal(c.node.storage.fsync, 'always');
  assert.equal(c.http.token, 'sesame');
  assert.equal(c.http.maxBodyBytes, 1024);
  assert.equal(c.logLevel, 'debug');
  assert.equal(c.node.replication.insecureNoAuth, true);
});

test('every env variable is read, and each reaches its key', () => {
  const env: Record<string, string> = {
    REPLICATION_ROLE: 'replica',
    REPLICATION_BIND_ADDRESS: '127.0.0.1:7005',
    REPLICATION_MASTER_ADDRESS: 'primary.local:7001',
    REPLICATION_HEARTBEAT_INTERVAL: '2',
    REPLICATION_LOG_SIZE: '5000',
    REPLICATION_RECONNECT_INTERVAL: '0.5',
    VREP_NODE_ID: 'n9',
    VREP_DATA_DIR: '/var/lib/vrep',
    VREP_HTTP_HOST: '::1',
    VREP_HTTP_PORT: '8080',
    VREP_HTTP_TOKEN: 'tok',
    VREP_HTTP_MAX_BODY_BYTES: '4096',
    VREP_HTTP_ADVERTISE_ADDRESS: 'vrep-9.example:8080',
    VREP_REPLICATION_ENABLED: 'yes',
    VREP_PEERS: 'a.local:1,b.local:2',
    VREP_REPLICA_TIMEOUT: '10',
    VREP_CONSISTENCY: 'all',
    VREP_COMPRESSION: 'off',
    VREP_COMPRESSION_LEVEL: '7',
    VREP_BANDWIDTH_BYTES_PER_SEC: '1000000',
    VREP_LAG_THRESHOLD_OPS: '50',
    VREP_SECRET: 'a-secret-of-16-chars',
    VREP_INSECURE_NO_AUTH: 'true',
    VREP_TLS_CERT: 'c.pem',
    VREP_TLS_KEY: 'k.pem',
    VREP_TLS_CA: 'ca.pem',
    VREP_CLUSTER_ID: 'prod',
    VREP_FSYNC: 'no',
    VREP_WAL_SEGMENT_BYTES: '1048576',
    VREP_LOG_BYTES: '2097152',
    VREP_SNAPSHOT_EVERY_BYTES: '0',
    VREP_STREAMS_MAX_RETAINED_BYTES: '2097152',
    VREP_LOG_LEVEL: 'warn',
  };
  // The test covers the whole table (the synonyms and role auto's timings are tested on their own).
  const synonyms = [
    'REPLICATION_PRIMARY_ADDRESS',
    'REPLICATION_INSECURE_NO_AUTH',
    'VREP_ELECTION_TIMEOUT_MS',
    'VREP_HEARTBEAT_INTERVAL_MS',
  ];
  for (const s of ENV_SOURCES) {
    if (!synonyms.includes(s.name)) assert.ok(s.name in env, `${s.name} untested`);
  }
  const c = resolveConfig({ env });
  const r = c.node.replication;
  assert.deepEqual(
    {
      role: r.role,
      bind: r.bindAddress,
      master: r.masterAddress,
      hb: r.heartbeatIntervalMs,
      log: r.logSize,
      reconnect: r.reconnectIntervalMs,
      peers: r.peers,
      timeout: r.replicaTimeoutMs,
      consistency: r.consistency,
      compression: r.compression,
      bandwidth: r.bandwidthBytesPerSec,
      lag: r.lagThresholdOps,
      secret: r.secret,
      tls: r.tls,
      cluster: r.clusterId,
      httpAddress: r.httpAddress,
    },
    {
      role: 'replica',
      bind: '127.0.0.1:7005',
      master: 'primary.local:7001',
      hb: 2000,
      log: 5000,
      reconnect: 500,
      peers: ['a.local:1', 'b.local:2'],
      timeout: 10_000,
      consistency: 'all',
      compression: { enabled: false, level: 7 },
      bandwidth: 1_000_000,
      lag: 50,
      secret: 'a-secret-of-16-chars',
      tls: { cert: 'c.pem', key: 'k.pem', ca: 'ca.pem' },
      cluster: 'prod',
      httpAddress: 'vrep-9.example:8080',
    },
  );
  assert.equal(c.node.nodeId, 'n9');
  assert.equal(c.node.dataDir, '/var/lib/vrep');
  assert.deepEqual(c.http, {
    host: '::1',
    port: 8080,
    token: 'tok',
    maxBodyBytes: 4096,
    advertiseAddress: 'vrep-9.example:8080',
  });
  assert.deepEqual(c.node.storage, {
    fsync: 'no',
    walSegmentBytes: 1_048_576,
    logBytes: 2_097_152,
    snapshotEveryBytes: 0,
  });
  assert.deepEqual(c.node.streams, { maxRetainedBytes: 2_097_152 });
  assert.equal(c.logLevel, 'warn');
});

test('role auto timings from env: the election timeout, and a heartbeat in ms that wins over seconds', () => {
  const env = {
    REPLICATION_ROLE: 'auto',
    VREP_PEERS: 'a.local:1,b.local:2',
    VREP_ELECTION_TIMEOUT_MS: '3000',
    VREP_HEARTBEAT_INTERVAL_MS: '250',
    REPLICATION_HEARTBEAT_INTERVAL: '2',
  };
  const r = resolveConfig({ env }).node.replication;
  assert.equal(r.electionTimeoutMs, 3000);
  assert.equal(r.heartbeatIntervalMs, 250);
  const { REPLICATION_ROLE, VREP_PEERS, VREP_ELECTION_TIMEOUT_MS } = env;
  const byDefault = resolveConfig({ env: { REPLICATION_ROLE, VREP_PEERS, VREP_ELECTION_TIMEOUT_MS } });
  assert.equal(byDefault.node.replication.heartbeatIntervalMs, 300, 'a tenth of the election timeout');
});

test('env parsing: empty or "null" clears a nullable key; booleans in several spellings', () => {
  const yaml = file('http: { token: abc }\nreplication: { bandwidth_bytes_per_sec: 100 }');
  const c = resolveConfig({ file: yaml, env: { VREP_HTTP_TOKEN: '', VREP_BANDWIDTH_BYTES_PER_SEC: 'null' } });
  assert.equal(c.http.token, null);
  assert.equal(c.node.replication.bandwidthBytesPerSec, null);
  for (const [text, value] of [
    ['true', true],
    ['1', true],
    ['ON', true],
    ['no', false],
    ['0', false],
    ['False', false],
  ] as const) {
    assert.equal(
      resolveConfig({ env: { VREP_COMPRESSION: text } }).node.replication.compression?.enabled,
      value,
    );
  }
  assert.match(
    configError({ env: { VREP_COMPRESSION: 'maybe' } }),
    /^config replication\.compression\.enabled: expected true or false, got "maybe" \(from VREP_COMPRESSION\)$/,
  );
  assert.match(
    configError({ env: { VREP_DATA_DIR: '' } }),
    /config data_dir: expected .*, got "" \(from VREP_DATA_DIR\)/,
  );
});

test('Vectorizer synonyms: master_address / primary_address, heartbeat_interval, role master', () => {
  const a = resolveConfig({ file: file('replication: { role: replica, primary_address: "p:7001" }') });
  assert.equal(a.node.replication.masterAddress, 'p:7001');
  const b = resolveConfig({
    file: file(
      'replication: { role: master, heartbeat_interval: 2, replica_timeout: 9, reconnect_interval: 3 }',
    ),
  });
  assert.equal(b.node.replication.role, 'primary');
  assert.equal(b.node.replication.heartbeatIntervalMs, 2000);
  assert.equal(b.node.replication.replicaTimeoutMs, 9000);
  assert.equal(b.node.replication.reconnectIntervalMs, 3000);
  const c = resolveConfig({ env: { REPLICATION_ROLE: 'replica', REPLICATION_PRIMARY_ADDRESS: 'p:1' } });
  assert.equal(c.node.replication.masterAddress, 'p:1');

  assert.match(
    configError({ file: file('replication: { master_address: "a:1", primary_address: "b:1" }') }),
    /^config replication\.primary_address: expected either primary_address or master_address, not both .*got "b:1" \(in vrep\.yaml\)$/,
  );
  assert.match(
    configError({ env: { REPLICATION_MASTER_ADDRESS: 'a:1', REPLICATION_PRIMARY_ADDRESS: 'b:1' } }),
    /replication\.master_address: .*REPLICATION_MASTER_ADDRESS and REPLICATION_PRIMARY_ADDRESS are synonyms/,
  );
  // A bad value under a synonym is reported under the name the user wrote.
  assert.match(
    configError({ file: file('replication: { heartbeat_interval: -1 }') }),
    /^config replication\.heartbeat_interval: expected a positive number of seconds.*, got -1 \(in vrep\.yaml\)$/,
  );
});

test('each bad value names the key, the value, the expectation and the source', () => {
  const cases: [ConfigInput, RegExp][] = [
    [
      { env: { REPLICATION_HEARTBEAT_INTERVAL: 'abc' } },
      /^config replication\.heartbeat_interval_secs: expected a positive number of seconds \(0\.001 to 3600\), got "abc" \(from REPLICATION_HEARTBEAT_INTERVAL\)$/,
    ],
    [
      { env: { REPLICATION_LOG_SIZE: '1.5' } },
      /^config replication\.log_size: expected a positive integer .*, got "1\.5" \(from REPLICATION_LOG_SIZE\)$/,
    ],
    [
      { env: { REPLICATION_ROLE: 'leader' } },
      /^config replication\.role: expected one of standalone, primary, replica, auto, multi-master \(master = primary\), got "leader" \(from REPLICATION_ROLE\)$/,
    ],
    [
      { env: { REPLICATION_BIND_ADDRESS: 'localhost' } },
      /^config replication\.bind_address: expected HOST:PORT .*, got "localhost" \(from REPLICATION_BIND_ADDRESS\)$/,
    ],
    [
      { env: { REPLICATION_MASTER_ADDRESS: 'host:0' } },
      /^config replication\.master_address: expected HOST:PORT \(port 1-65535.*, got "host:0" \(from REPLICATION_MASTER_ADDRESS\)$/,
    ],
    [
      { env: { VREP_HTTP_PORT: '70000' } },
      /^config http\.port: expected a port number from 0 to 65535.*, got "70000" \(from VREP_HTTP_PORT\)$/,
    ],
    [
      { env: { VREP_PEERS: 'a:1,,b:2' } },
      /^config replication\.peers: expected a list of .*HOST:PORT.*, got "a:1,,b:2" \(from VREP_PEERS\)$/,
    ],
    [
      { env: { VREP_SECRET: 'short' } },
      /^config replication\.secret: expected a string of 16 to 1024 characters, or null, got "short" \(from VREP_SECRET\)$/,
    ],
    [
      { env: { VREP_LOG_LEVEL: 'loud' } },
      /^config logging\.level: expected one of fatal, error, warn, info, debug, trace, silent, got "loud" \(from VREP_LOG_LEVEL\)$/,
    ],
    [
      { flags: { '--http': 'nonsense' } },
      /^config http: expected HOST:PORT .*, got "nonsense" \(from --http\)$/,
    ],
    [
      { flags: { '--role': 'boss' } },
      /^config replication\.role: expected one of .*, got "boss" \(from --role\)$/,
    ],
    [
      { flags: { '--fsync': 'sometimes' } },
      /^config storage\.fsync: expected one of always, everysec, no, got "sometimes" \(from --fsync\)$/,
    ],
    [
      { flags: { '--max-body-bytes': '0' } },
      /^config http\.max_body_bytes: expected a byte count from 1 to \d+, got "0" \(from --max-body-bytes\)$/,
    ],
    [
      { flags: { '--node-id': 'has space' } },
      /^config node_id: expected a node id: .*, got "has space" \(from --node-id\)$/,
    ],
    [
      { file: file('replication:\n  heartbeat_interval_secs: "5s"\n', 'a.yaml') },
      /^config replication\.heartbeat_interval_secs: expected a positive number of seconds.*, got "5s" \(in a\.yaml\)$/,
    ],
    [
      { file: file('http:\n  port: true\n') },
      /^config http\.port: expected a port number.*, got true \(in vrep\.yaml\)$/,
    ],
    [
      { file: file('http: 5\n') },
      /^config http: expected a mapping of keys \(host, port, token, max_body_bytes, advertise_address\), got 5 \(in vrep\.yaml\)$/,
    ],
    [
      { file: file('storage: { wal_segment_bytes: 10 }\n') },
      /^config storage\.wal_segment_bytes: expected a byte count from 65536 to 4294967296, got 10 \(in vrep\.yaml\)$/,
    ],
  ];
  for (const [input, expected] of cases) assert.match(configError(input), expected, JSON.stringify(input));
});

test('an unknown key fails, naming it, its value and the keys allowed there', () => {
  assert.match(
    configError({ file: file('replication:\n  hearbeat_interval_secs: 5\n') }),
    /^config replication\.hearbeat_interval_secs: unknown key \(value 5, in vrep\.yaml\); expected one of: enabled, role, bind_address, .*heartbeat_interval_secs/,
  );
  assert.match(
    configError({ file: file('nodeid: n1\n') }),
    /^config nodeid: unknown key \(value "n1", in vrep\.yaml\); expected one of: node_id, data_dir, http, replication, storage, streams, logging$/,
  );
  assert.match(configError({ file: file('http: { hots: x }\n') }), /^config http\.hots: unknown key/);
  assert.match(
    configError({ file: file('replication: { tls: { cert: a, key: b, ca: c, pass: d } }\n') }),
    /^config replication\.tls\.pass: unknown key/,
  );
});

test('every bad value of a run is reported at once, file and env alike', () => {
  const message = configError({
    file: file('node_id: "x y"\nstorage: { fsync: maybe }\n'),
    env: { VREP_HTTP_PORT: 'eighty' },
    flags: { '--role': 'boss' },
  });
  const lines = message.split('\n');
  assert.equal(lines.length, 4, message);
  // A malformed file and a malformed --http are reported together too.
  const both = configError({ file: file('a: [\n'), flags: { '--http': 'x' } }).split('\n');
  assert.equal(both.length, 2, both.join('\n'));
  assert.match(message, /config node_id: .* \(in vrep\.yaml\)/);
  assert.match(message, /config storage\.fsync: .*"maybe" \(in vrep\.yaml\)/);
  assert.match(message, /config http\.port: .*"eighty" \(from VREP_HTTP_PORT\)/);
  assert.match(message, /config replication\.role: .*"boss" \(from --role\)/);
});

test('a malformed YAML file or a top level that is not a mapping stops start-up', () => {
  assert.match(
    configError({ file: file('node_id: [\n', 'broken.yaml') }),
    /^config file broken\.yaml: not valid YAML: .*line \d+/,
  );
  assert.match(
    configError({ file: file('a: 1\na: 2\n') }),
    /not valid YAML: Map keys must be unique at line 2/,
  );
  assert.match(
    configError({ file: file('- 1\n- 2\n') }),
    /^config \(top level\): expected a mapping of keys .*got \[1,2\] \(in vrep\.yaml\)$/,
  );
  // An empty file (or only comments) is an empty config.
  assert.equal(resolveConfig({ file: file('# nothing\n') }).node.nodeId, DEFAULTS.nodeId);
});

test('checks across keys: a replica needs its primary; peers; timeouts; tls', () => {
  assert.match(
    configError({ flags: { '--role': 'replica' } }),
    /^config replication\.master_address: expected the primary's HOST:PORT, required when replication\.role is replica \(from --role\), got null \(default\)$/,
  );
  assert.match(
    configError({ flags: { '--role': 'replica', '--primary': '127.0.0.1:7001' } }),
    /replication\.master_address: expected another node's address, not this node's bind_address/,
  );
  assert.match(
    configError({ flags: { '--role': 'multi-master', '--peers': 'a:1,a:1' } }),
    /replication\.peers: .*a:1 is listed twice/,
  );
  assert.match(
    configError({ env: { VREP_PEERS: '127.0.0.1:7001' } }),
    /replication\.peers: .*this node's bind_address.*\(from VREP_PEERS\)/,
  );
  assert.match(
    configError({ file: file('replication: { replica_timeout_secs: 5 }') }),
    /^config replication\.replica_timeout_secs: expected more than replication\.heartbeat_interval_secs \(5, default\), got 5 \(in vrep\.yaml\)$/,
  );
  assert.match(
    configError({ file: file('replication: { tls: { cert: c.pem } }') }),
    /^config replication\.tls: expected cert, key and ca together \(missing: key, ca\)/,
  );
  // tls keys may come from different layers.
  const t = resolveConfig({
    file: file('replication: { tls: { cert: c.pem, key: k.pem } }'),
    env: { VREP_TLS_CA: 'ca.pem' },
  });
  assert.deepEqual(t.node.replication.tls, { cert: 'c.pem', key: 'k.pem', ca: 'ca.pem' });
});

test('replication.enabled false runs standalone, with a warning; unknown VREP_ variables are warned about', () => {
  const c = resolveConfig({
    file: file('replication: { enabled: false, role: primary }'),
    env: { VREP_DATADIR: '/x', VREP_TEST_SCALE: 'long', PATH: '/bin' },
  });
  assert.equal(c.node.replication.role, 'standalone');
  assert.equal(c.warnings.length, 2, c.warnings.join('\n'));
  assert.match(c.warnings.join('\n'), /VREP_DATADIR is not a vrep setting/);
  assert.match(c.warnings.join('\n'), /replication\.enabled is false \(in vrep\.yaml\): role "primary"/);
  assert.match(
    resolveConfig({ flags: { '--primary': 'p:1' } }).warnings.join('\n'),
    /master_address set but the role is standalone/,
  );
});

test('addresses: names, IPv4, bracketed IPv6; ports in range', () => {
  for (const ok of ['localhost:1', 'a-b.example.com:65535', '10.1.2.3:7001', '[::1]:7001', '[fe80::1]:80']) {
    assert.equal(
      resolveConfig({ env: { REPLICATION_MASTER_ADDRESS: ok } }).node.replication.masterAddress,
      ok,
    );
  }
  for (const bad of [
    '::1:7001',
    'host',
    'host:',
    ':80',
    'host:65536',
    'ho st:1',
    '-host:1',
    'host:1:2',
    '[nothex]:1',
  ]) {
    assert.match(configError({ env: { REPLICATION_MASTER_ADDRESS: bad } }), /expected HOST:PORT/, bad);
  }
  // A listener may take port 0 (a free one); a dialed address may not.
  assert.equal(
    resolveConfig({ flags: { '--bind': '127.0.0.1:0' } }).node.replication.bindAddress,
    '127.0.0.1:0',
  );
  assert.equal(resolveConfig({ flags: { '--http': '[::1]:0' } }).http.host, '::1');
});

test('the config file path: --config wins over VREP_CONFIG', () => {
  assert.equal(configFilePath({}, {}), null);
  assert.equal(configFilePath({ VREP_CONFIG: 'e.yaml' }, {}), 'e.yaml');
  assert.equal(configFilePath({ VREP_CONFIG: 'e.yaml' }, { '--config': 'f.yaml' }), 'f.yaml');
});
