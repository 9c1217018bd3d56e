#!/usr/bin/env node
// First-use installer behind `npm test`, `npm run demo`, `npm run fuzz` and `npm run bench`.
// Idempotent: installs npm dependencies only when node_modules is missing or older than the
// lock file, and Debian packages only when dpkg says they are missing. Uses Node's core only,
// because it runs before any dependency exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// Debian packages each purpose needs; `tshark` is the wire-format oracle of the test suite,
// swtpm + tpm2-tools the software TPM behind the identity tests, protoc the protobuf oracle.
const tpm = ['swtpm', 'swtpm-tools', 'tpm2-tools'];
const debianPackages = {
  test: ['tshark', 'openssl', 'iproute2', 'iputils-ping', 'iperf3', 'protobuf-compiler', ...tpm],
  demo: ['iproute2', 'iputils-ping', 'iperf3', 'openssl', ...tpm],
  bench: ['iproute2', 'iputils-ping', 'iperf3', ...tpm],
};

function log(message) {
  process.stderr.write(`setup: ${message}\n`);
}

function run(cmd, args, env = process.env) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) {
    log(`'${cmd} ${args.join(' ')}' failed (exit ${result.status ?? result.signal})`);
    process.exit(1);
  }
}

function npmDependencies() {
  const lock = join(root, 'package-lock.json');
  const installed = join(root, 'node_modules', '.package-lock.json');
  if (existsSync(installed) && (!existsSync(lock) || statSync(installed).mtimeMs >= statSync(lock).mtimeMs)) {
    return;
  }
  log('installing npm dependencies');
  run('npm', existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund']);
}

function debianMissing(packages) {
  return packages.filter((name) => {
    try {
      const status = execFileSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      return !status.includes('install ok installed');
    } catch {
      return true;
    }
  });
}

function debianDependencies(packages) {
  const missing = debianMissing(packages);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    log(`missing Debian packages: ${missing.join(', ')}; run as root or install them with apt-get`);
    process.exit(1);
  }
  log(`installing Debian packages: ${missing.join(', ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Keep dumpcap unprivileged-free: we run as root and need no setuid helper.
  spawnSync('debconf-set-selections', { input: 'wireshark-common wireshark-common/install-setuid boolean false\n' });
  run('apt-get', ['update', '-qq'], env);
  run('apt-get', ['install', '-y', '-qq', '-o', 'Dpkg::Use-Pty=0', '--no-install-recommends', ...missing], env);
}

const purpose = process.argv[2] ?? 'test';
const packages = debianPackages[purpose];
if (!packages) {
  log(`unknown purpose '${purpose}' (expected one of: ${Object.keys(debianPackages).join(', ')})`);
  process.exit(2);
}
npmDependencies();
debianDependencies(packages);
