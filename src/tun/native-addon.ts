// Loads the project's N-API addon (build/Release/lispnode_native.node) once, for the modules that
// wrap its classes, with one message that says how to build it when it is missing.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// This module runs as dist/src/tun/native-addon.js; node-gyp builds into <package root>/build.
const ADDON_PATH = fileURLToPath(new URL('../../../build/Release/lispnode_native.node', import.meta.url));

let loaded: { readonly exports: Readonly<Record<string, unknown>> } | { readonly error: Error } | undefined;

function load(): { readonly exports: Readonly<Record<string, unknown>> } | { readonly error: Error } {
  if (loaded !== undefined) return loaded;
  try {
    loaded = { exports: createRequire(import.meta.url)(ADDON_PATH) as Record<string, unknown> };
  } catch (cause) {
    const missing = (cause as { code?: unknown }).code === 'MODULE_NOT_FOUND';
    const message = missing
      ? `the lispnode_native addon is not built (no ${ADDON_PATH}): run \`npm run build\` (or \`npm run build:native\`), which needs python3, make and a C++ compiler`
      : `the lispnode_native addon at ${ADDON_PATH} failed to load: rebuild it with \`npm run build:native\``;
    loaded = { error: new Error(message, { cause }) };
  }
  return loaded;
}

/** The addon's class `name`; throws an Error saying how to build the addon when it is unavailable. */
export function nativeClass<C>(name: string): C {
  const result = load();
  if ('error' in result) throw result.error;
  const value = result.exports[name];
  if (typeof value !== 'function') throw new Error(`lispnode_native at ${ADDON_PATH} has no ${name}: rebuild it with \`npm run build:native\``);
  return value as C;
}

/** Whether the addon is built, loads, and has class `name`. */
export function nativeClassAvailable(name: string): boolean {
  const result = load();
  return 'exports' in result && typeof result.exports[name] === 'function';
}
