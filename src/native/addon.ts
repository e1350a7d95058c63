/**
 * The one place that loads the native addon. Every other module imports the
 * binding from here. Node loads the addon once per thread; each load has its
 * own state (see native/addon.h), so worker threads import this file too.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { isErrorCode, VrepError } from '../errors.ts';
import type { NativeBinding } from './binding-types.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// src/native/ and dist/native/ are both two levels below the package root.
const defaultPath = path.join(here, '..', '..', 'build', 'Release', 'vrep.node');
// VREP_ADDON_PATH lets scripts/sanitize.sh load an ASan/UBSan build.
const addonPath = process.env['VREP_ADDON_PATH'] ?? defaultPath;

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  try {
    return require(addonPath) as NativeBinding;
  } catch (err) {
    throw new VrepError(
      'ERR_ADDON_LOAD',
      `cannot load the vrep native addon from ${addonPath}: in an app, allow vrep's install script ` +
        `(README.md, "Installing into an app") and run "npm rebuild vrep"; in a vrep checkout, run "npm install" ` +
        `(or "npm run build:native")`,
      { cause: err },
    );
  }
}

/**
 * The class the addon builds its errors with (`new NativeError(code,
 * message)`, native/errors.cc). C++ cannot share the ErrorCode type, so the
 * code is checked here: one the registry lacks is an addon bug, raised as
 * ERR_INTERNAL naming it rather than passed on untyped.
 */
export class NativeError extends VrepError {
  constructor(code: string, message: string) {
    const known = isErrorCode(code);
    super(
      known ? code : 'ERR_INTERNAL',
      known ? message : `native error with unknown code ${code}: ${message}`,
    );
  }
}

export const binding: NativeBinding = load();
binding.setErrorClass(NativeError);
