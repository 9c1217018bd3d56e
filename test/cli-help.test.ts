// Every command `lispnode --help` lists, and every subcommand those list in turn, answers --help with
// exit status 0, its usage line and a description — found by walking the help output itself, so
// a command added later is covered without touching this test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

interface Help {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function help(path: readonly string[]): Help {
  const r = spawnSync(process.execPath, [CLI, ...path, '--help'], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The names under "Commands:" (continuation lines of a description are indented further). */
function subcommands(text: string): string[] {
  const section = text.split('\nCommands:\n')[1];
  if (section === undefined) return [];
  return section
    .split('\n')
    .map((line) => /^ {2}([a-z][\w-]*)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && name !== 'help');
}

/** Checks one command's help and returns the paths of its subcommands. */
function check(path: readonly string[]): string[][] {
  const r = help(path);
  const name = ['lispnode', ...path].join(' ');
  assert.equal(r.status, 0, `${name} --help exits 0 (stderr: ${r.stderr})`);
  assert.equal(r.stderr, '', `${name} --help writes nothing on stderr`);
  const lines = r.stdout.split('\n');
  assert.ok(lines[0]?.startsWith(`Usage: ${name}`), `${name} --help starts with its usage: ${lines[0] ?? ''}`);
  // Commander prints the description after the usage line and a blank line.
  assert.equal(lines[1], '', `${name} --help: a blank line after the usage`);
  assert.ok((lines[2] ?? '').trim().length >= 10 && !(lines[2] ?? '').startsWith('Options:'), `${name} --help has a description: ${lines[2] ?? ''}`);
  return subcommands(r.stdout).map((sub) => [...path, sub]);
}

test('lispnode --help lists the commands of this issue and the ones before', () => {
  const names = subcommands(help([]).stdout);
  for (const command of ['xtr', 'map-server', 'capture', 'replay', 'decode', 'lig', 'eid', 'datakey', 'demo', 'version']) assert.ok(names.includes(command), `${command} is listed: ${names.join(', ')}`);
});

test('every command and subcommand answers --help with exit 0 and a description', (t) => {
  const seen: string[] = [];
  const queue: string[][] = [[]];
  for (let path = queue.shift(); path !== undefined; path = queue.shift()) {
    queue.push(...check(path));
    seen.push(path.join(' ') || '(top level)');
  }
  t.diagnostic(`checked ${seen.length}: ${seen.join(', ')}`);
  assert.ok(seen.length >= 15, `walked the whole tree (${seen.length})`);
});
