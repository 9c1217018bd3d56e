#!/usr/bin/env node
// Builds the lispnode_native addon (binding.gyp -> build/Release/lispnode_native.node) with npm's
// own node-gyp. Runs as the package's `install` script (npm ci / npm install) and at the start of
// `npm run build`. Idempotent and quiet: nothing happens when the addon is newer than every source;
// otherwise `node-gyp build` (incremental make) when build/ is configured for the current
// binding.gyp, else `node-gyp rebuild`. Compiler output is shown only when the build fails.
// Uses Node's core only, because it runs before any dependency exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const gypFile = join(root, 'binding.gyp');
const addon = join(root, 'build', 'Release', 'lispnode_native.node');
const makefile = join(root, 'build', 'Makefile');
const sourceDir = join(root, 'src', 'tun', 'native');

function log(message) {
  process.stderr.write(`build-native: ${message}\n`);
}

function mtime(path) {
  return existsSync(path) ? statSync(path).mtimeMs : -Infinity;
}

function newestSource(dir) {
  let newest = -Infinity;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'build') newest = Math.max(newest, newestSource(path));
    } else if (/\.(cc|cpp|c|h|hh|hpp|gypi)$/.test(entry.name)) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

// npm exports npm_config_node_gyp to its scripts; run directly, use the node-gyp bundled with the
// npm beside this node, or one in node_modules.
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  for (const candidate of candidates) {
    if (candidate && existsSync(candidate)) return candidate;
  }
  try {
    return createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return undefined;
  }
}

// Node's headers (OpenSSL's included) come from npm's `nodedir`; without npm around, use the ones
// installed beside this node, so node-gyp never tries to download them.
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

if (!existsSync(gypFile)) process.exit(0);
const inputs = Math.max(mtime(gypFile), newestSource(sourceDir));
if (mtime(addon) >= inputs) process.exit(0);

const gyp = nodeGyp();
if (gyp === undefined) {
  log('node-gyp not found: run `npm run build` (npm bundles node-gyp), or install node-gyp');
  process.exit(1);
}
const command = existsSync(makefile) && mtime(makefile) >= mtime(gypFile) ? 'build' : 'rebuild';
log(`compiling lispnode_native (node-gyp ${command})`);
const result = spawnSync(process.execPath, [gyp, command, '--loglevel=warn', ...nodedirArgs()], {
  cwd: root,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
});
if (result.status !== 0) {
  process.stderr.write(result.stdout ?? '');
  process.stderr.write(result.stderr ?? '');
  log(`node-gyp ${command} failed (exit ${result.status ?? result.signal}); it needs python3, make and a C++ compiler`);
  process.exit(1);
}
// make leaves the addon alone when only an unused file changed; mark it current all the same.
if (mtime(addon) < inputs) {
  const now = new Date();
  utimesSync(addon, now, now);
}
