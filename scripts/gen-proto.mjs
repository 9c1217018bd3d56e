#!/usr/bin/env node
// Regenerates the TypeScript for proto/**/*.proto with protoc + protoc-gen-es:
//   node scripts/gen-proto.mjs [outDir]     (default src/control/proto/gen)
// The output is committed so a build needs no protoc; test/proto.test.ts regenerates into a
// temporary directory and checks the committed files are byte-identical. Idempotent: it builds
// into a staging directory next to outDir and swaps it in whole, so a proto file that was
// removed leaves no stale module behind. Node core only.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoDir = join(root, 'proto');
// proto/google/ only declares well-known types for protoc to resolve; the runtime has them.
const notGenerated = new Set(['google']);
const outDir = resolve(process.argv[2] ?? join(root, 'src', 'control', 'proto', 'gen'));

function fail(message) {
  process.stderr.write(`gen-proto: ${message}\n`);
  process.exit(1);
}

/** Files under `dir` (minus the top-level `skip` directories) relative to it, '/'-separated, sorted. */
function walk(dir, skip = new Set()) {
  const found = [];
  const visit = (current) => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (!entry.isDirectory()) found.push(relative(dir, path).split(sep).join('/'));
      else if (current !== dir || !skip.has(entry.name)) visit(path);
    }
  };
  visit(dir);
  return found.sort();
}

const inputs = walk(protoDir, notGenerated).filter((path) => path.endsWith('.proto'));
if (inputs.length === 0) fail(`no .proto files under ${protoDir}`);

// Only ever delete a directory this script made: one holding nothing but generated modules.
if (existsSync(outDir)) {
  const foreign = walk(outDir).filter((path) => !basename(path).endsWith('_pb.ts'));
  if (foreign.length > 0) fail(`${outDir} holds files that are not generated (${foreign[0]}); refusing to replace it`);
}

mkdirSync(dirname(outDir), { recursive: true });
const staging = mkdtempSync(join(dirname(outDir), '.gen-proto-'));
const plugin = join(root, 'node_modules', '.bin', 'protoc-gen-es');
const result = spawnSync(
  process.env.PROTOC ?? 'protoc',
  [
    `--proto_path=${protoDir}`,
    `--plugin=protoc-gen-es=${plugin}`,
    `--es_out=${staging}`,
    '--es_opt=target=ts,import_extension=js',
    ...inputs,
  ],
  { cwd: root, stdio: 'inherit' },
);
if (result.status !== 0) {
  rmSync(staging, { recursive: true, force: true });
  fail(result.error ? `cannot run protoc: ${result.error.message}` : `protoc failed (exit ${result.status ?? result.signal})`);
}

rmSync(outDir, { recursive: true, force: true });
renameSync(staging, outDir);
process.stderr.write(`gen-proto: ${inputs.length} files → ${relative(root, outDir) || '.'}\n`);
