/**
 * The impure edge of configuration: reads the config file named by
 * `--config` or VREP_CONFIG, resolves every layer (resolve.ts), and checks
 * that files the config names exist, so a bad path stops start-up instead of
 * failing later inside a peer handshake.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { VrepError } from '../errors.ts';
import { configFilePath, resolveConfig, type ServeConfig } from './resolve.ts';

export function loadServeConfig(
  env: Readonly<Record<string, string | undefined>>,
  flags: Readonly<Record<string, string | undefined>>,
): ServeConfig {
  const path = configFilePath(env, flags);
  let file: { text: string; name: string } | null = null;
  if (path !== null) {
    const from = flags['--config'] !== undefined ? '--config' : 'VREP_CONFIG';
    try {
      file = { text: readFileSync(path, 'utf8'), name: path };
    } catch (err) {
      throw new VrepError(
        'ERR_CONFIG',
        `config file: expected a readable YAML file, got ${JSON.stringify(path)} (from ${from}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  const config = resolveConfig({ file, env, flags });
  const tls = config.node.replication.tls;
  if (tls) {
    for (const k of ['cert', 'key', 'ca'] as const) {
      try {
        accessSync(tls[k], constants.R_OK);
      } catch (err) {
        throw new VrepError(
          'ERR_CONFIG',
          `config replication.tls.${k}: expected a readable PEM file, got ${JSON.stringify(tls[k])}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
        );
      }
    }
  }
  return config;
}
