#!/usr/bin/env node
// Build script for wg-netstack: Rust engine -> dist/wg_netstack.wasm, TypeScript ts/ -> dist/.
//
//   node build.mjs                  toolchain check (+ apt install when root), wasm build, tsc
//   node build.mjs --wasm-only      only the wasm
//   node build.mjs --ts-only        only tsc
//   node build.mjs --cargo-test     Rust unit tests on the host target
//   node build.mjs --lint           formatter and linters (rustfmt, clippy, Biome), imports (scripts/check-imports.mjs): first in `npm test`
//   node build.mjs --install-deps   apt-install the toolchain AND the packages the tests use (CI)
//   node build.mjs --fuzz [seconds] fuzz each fuzz target for that long (default 60), see fuzz/README.md
//   node build.mjs --mutants [seconds]  a bounded mutation run over tcp/ (default 420), see crates/engine/README.md
//
// No npm dependencies on purpose: it must run before `npm ci`.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
// `--fuzz` and `--mutants` may be followed by how long to run, in seconds.
const TIMED_FLAGS = { '--fuzz': 60, '--mutants': 420 };
const timedFlag = Object.hasOwn(TIMED_FLAGS, argv[0] ?? '') ? argv[0] : undefined;
const seconds = timedFlag ? Number(argv[1] ?? TIMED_FLAGS[timedFlag]) : undefined;
if (timedFlag && !(Number.isInteger(seconds) && seconds > 0)) die(`${timedFlag} takes whole seconds, got ${argv[1]}`);
if (timedFlag && argv.length > 2) die(`${timedFlag} [seconds] takes nothing else`);
const args = new Set(timedFlag ? [timedFlag] : argv);
const FLAGS = ['--wasm-only', '--ts-only', '--cargo-test', '--lint', '--install-deps', ...Object.keys(TIMED_FLAGS)];
for (const a of args) if (!FLAGS.includes(a)) die(`unknown flag ${a} (known: ${FLAGS.join(' ')})`);
const TARGET = 'wasm32-wasip1';
const WASM_OUT = join(root, 'target/wasm', TARGET, 'release/wg_netstack_engine.wasm');

// Debian 12 has no prebuilt wasm std for a recent rustc, so we use rustc-web 1.96 and
// build std ourselves (-Zbuild-std) against wasi-libc, linking with lld's wasm-ld.
// clang/llvm-ar compile ring's C code for wasm.
const TOOLCHAIN_PKGS = ['rustc-web', 'cargo-web', 'rust-web-src', 'lld', 'wasi-libc', 'clang-19', 'llvm-19'];
// What the integration tests (vitest) drive: a real WireGuard peer in a network namespace;
// tshark reads back the gateway's pcap files; dig asks DNS through connect's forwards and proxies. g++ builds libFuzzer for the fuzz targets.
// chromium (driven by playwright-core) opens serve --web's page; zbarimg decodes its QR code from a screenshot.
// nft (nftables) makes connect's test namespace answer SYNs with ICMP unreachable.
const TEST_PKGS = ['wireguard-go', 'wireguard-tools', 'iproute2', 'iputils-ping', 'socat', 'curl', 'tshark', 'g++', 'postgresql', 'openssl', 'dnsutils', 'chromium', 'zbar-tools', 'nftables', 'openssh-server', 'procps'];

const log = (msg) => console.log(`[build] ${msg}`);
function die(msg) {
  console.error(`[build] error: ${msg}`);
  process.exit(1);
}
// Run a command with inherited output; exit on failure.
function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) die(`${cmd} ${argv.join(' ')} exited with ${r.status ?? r.signal}`);
}
// Run a command and return its trimmed stdout, or null if it cannot run / fails.
function capture(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: root });
  return r.status === 0 ? r.stdout.trim() : null;
}
const hasCmd = (cmd) => capture('sh', ['-c', `command -v ${cmd}`]) !== null;

// ---- apt (the only place in the repo that installs system packages) ----

// Packages from `pkgs` that dpkg does not report as installed (all of them off Debian).
function missingDebs(pkgs) {
  // dpkg-query exits 1 when some name is unknown but still lists the known ones, so read stdout.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${field} syntax, not a JS template
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\\n', ...pkgs], { encoding: 'utf8' });
  const installed = (r.stdout ?? '').split('\n').filter((l) => / ii/.test(l)).map((l) => l.split(' ')[0]);
  return pkgs.filter((p) => !installed.includes(p));
}

function aptInstall(pkgs, hint = '') {
  const missing = missingDebs(pkgs);
  if (missing.length === 0) return;
  const cmds = ['apt-get update', `apt-get install -y ${missing.join(' ')}`];
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    die(`missing packages: ${missing.join(' ')}\nInstall them with:\n  sudo ${cmds.join('\n  sudo ')}${hint}`);
  }
  log(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-q'], { env });
  run('apt-get', ['install', '-y', '-q', ...missing], { env });
}

// ---- toolchain detection ----

// WebAssembly SIMD (Node ≥ 16.4, Deno, Bun all run it), for Rust and for ring's C. Measured
// with bench/engine.mjs: 1.14× the payload rate of the scalar build, 14 % fewer instructions
// per byte. ring's ChaCha20 rounds stay scalar (only its XOR with the data vectorises).
const SIMD_RUSTFLAGS = '-C target-feature=+simd128';
const SIMD_CFLAGS = '-msimd128';

// Returns how to invoke cargo for the wasm build: { desc, cargo, args, env }.
function wasmToolchain() {
  // 1. A toolchain that ships the wasm std (rustup with the target added, or similar): plain build.
  //    ring still needs a wasm-capable C compiler; prefer Debian's clang-19 when present.
  const cc = existsSync('/usr/bin/clang-19') && existsSync('/usr/bin/llvm-ar-19')
    ? { CC_wasm32_wasip1: 'clang-19', AR_wasm32_wasip1: 'llvm-ar-19' } : {};
  const simd = { RUSTFLAGS: SIMD_RUSTFLAGS, CFLAGS_wasm32_wasip1: SIMD_CFLAGS };
  const sysroot = capture('rustc', ['--print', 'sysroot']);
  if (sysroot && existsSync(join(sysroot, 'lib/rustlib', TARGET))) {
    return { desc: `rustc at ${sysroot} (has ${TARGET})`, cargo: 'cargo', args: [], env: { ...cc, ...simd } };
  }
  // 2. Debian's rustc-web + build-std. Install the packages if we can, else explain how.
  aptInstall(TOOLCHAIN_PKGS, `\nor use a Rust toolchain that has ${TARGET} (\`rustup target add ${TARGET}\`) plus clang`);
  return {
    desc: `/usr/bin/rustc (${capture('/usr/bin/rustc', ['--version'])}) with -Zbuild-std`,
    cargo: '/usr/bin/cargo',
    args: ['-Zbuild-std=std,panic_abort'],
    env: {
      RUSTC: '/usr/bin/rustc', // not rustup's proxy, which is first on PATH
      RUSTC_BOOTSTRAP: '1', // -Z flags on a stable compiler
      CARGO_TARGET_WASM32_WASIP1_LINKER: 'wasm-ld',
      // Link against Debian's wasi-libc instead of the self-contained copy we don't have.
      // (With --target, RUSTFLAGS reach the wasm build and std, not the build scripts.)
      RUSTFLAGS: `-C link-self-contained=no -L /usr/lib/wasm32-wasi ${SIMD_RUSTFLAGS}`,
      CC_wasm32_wasip1: 'clang-19',
      AR_wasm32_wasip1: 'llvm-ar-19',
      CFLAGS_wasm32_wasip1: SIMD_CFLAGS,
    },
  };
}

// ---- steps ----

function buildWasm() {
  const tc = wasmToolchain();
  log(`wasm: ${tc.desc}`);
  const t0 = Date.now();
  // Own target dir: the host `cargo test` build (target/host) must not invalidate it.
  run(tc.cargo, ['build', '--release', '--target', TARGET, ...tc.args, '-p', 'wg-netstack-engine', '--lib',
    '--target-dir', 'target/wasm'], { env: { ...process.env, ...tc.env } });
  mkdirSync(join(root, 'dist'), { recursive: true });
  copyFileSync(WASM_OUT, join(root, 'dist/wg_netstack.wasm'));
  const kib = (statSync(WASM_OUT).size / 1024).toFixed(0);
  log(`wasm: dist/wg_netstack.wasm ${kib} KiB in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

// Host-target builds (the ABI generator, cargo test): any cargo, rustup's or Debian's.
const hostCargo = () => (hasCmd('cargo') ? 'cargo' : '/usr/bin/cargo');

// ts/wasm/abi.ts is generated from the engine's abi module (the one source of the contract).
function generateAbi() {
  const r = spawnSync(hostCargo(), ['run', '-q', '-p', 'wg-netstack-engine', '--bin', 'abi', '--target-dir', 'target/host'],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) die(`generating ts/wasm/abi.ts failed (exit ${r.status})`);
  const path = join(root, 'ts/wasm/abi.ts');
  if (!existsSync(path) || readFileSync(path, 'utf8') !== r.stdout) {
    writeFileSync(path, r.stdout);
    log('ts/wasm/abi.ts regenerated');
  }
}

function buildTs() {
  generateAbi();
  if (!existsSync(join(root, 'node_modules'))) {
    const lock = existsSync(join(root, 'package-lock.json'));
    log(`node_modules missing: npm ${lock ? 'ci' : 'install'}`);
    run('npm', [lock ? 'ci' : 'install']);
  }
  const t0 = Date.now();
  // tsc never deletes outputs of removed sources; they would ship in the package.
  mkdirSync(join(root, 'dist'), { recursive: true });
  for (const entry of readdirSync(join(root, 'dist'), { withFileTypes: true })) {
    if (entry.isDirectory() || !entry.name.endsWith('.wasm')) rmSync(join(root, 'dist', entry.name), { recursive: true });
  }
  run(join(root, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json']);
  log(`ts: dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

function cargoTest() {
  // Separate target dir from the wasm build.
  const cargo = hostCargo();
  log(`cargo test on the host with ${capture(cargo, ['--version']) ?? cargo}`);
  run(cargo, ['test', '-p', 'wg-netstack-engine', '--target-dir', 'target/host']);
}

// Every lint CI enforces, fast, so `npm test` fails before its long steps. The fuzz crate is its
// own workspace (fuzz/Cargo.toml), so each workspace is checked on its own.
const RUST_WORKSPACES = [
  { manifest: 'Cargo.toml', targetDir: 'target/host' }, // the dir cargoTest() builds in
  { manifest: 'fuzz/Cargo.toml', targetDir: 'fuzz/target' }, // the dir fuzz() builds in
];
function lint() {
  const cargo = hostCargo();
  // rustup's minimal profile leaves both out: add them where rustup is (CI's toolchain).
  const components = ['rustfmt', 'clippy'];
  const missing = () => components.filter((c) => capture(cargo, [c === 'rustfmt' ? 'fmt' : c, '--version']) === null);
  if (missing().length > 0 && hasCmd('rustup')) run('rustup', ['component', 'add', ...missing()]);
  if (missing().length > 0) die(`cargo ${missing().join(' and ')} missing: rustup component add ${missing().join(' ')}`);
  for (const { manifest, targetDir } of RUST_WORKSPACES) {
    run(cargo, ['fmt', '--check', '--manifest-path', manifest]);
    // A lint is allowed only where the code says why (#[allow(clippy::...)] with a comment).
    run(cargo, ['clippy', '--manifest-path', manifest, '--all-targets', '--target-dir', targetDir, '--', '-D', 'warnings']);
  }
  // TypeScript and JavaScript: biome.jsonc says which rules and why.
  run(join(root, 'node_modules/.bin/biome'), ['lint', '--error-on-warnings']);
  run(process.execPath, [join(root, 'scripts/check-imports.mjs')]);
  log('lint: clean');
}

// The fuzz targets (fuzz/): cargo-fuzz on the host toolchain. They use no nightly feature
// but cargo-fuzz passes -Z flags, which a stable rustc takes with RUSTC_BOOTSTRAP=1.
const CARGO_FUZZ_VERSION = '0.13.2';
const FUZZ_TARGETS = ['datagram', 'inner'];

// A cargo subcommand from crates.io at a pinned version, installed once into ~/.cargo/bin.
function cargoInstall(crate, version) {
  const subcommand = crate.replace(/^cargo-/, '');
  if (capture('cargo', [subcommand, '--version']) === `${crate} ${version}`) return;
  log(`installing ${crate} ${version} (kept in ~/.cargo/bin)`);
  const t0 = Date.now();
  run('cargo', ['install', crate, '--version', version, '--locked']);
  log(`${crate} installed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

function fuzz(seconds) {
  const env = { ...process.env, RUSTC_BOOTSTRAP: '1' };
  cargoInstall('cargo-fuzz', CARGO_FUZZ_VERSION);
  // The harness reaches what it should (seeds open connections...), and known crashes stay fixed.
  run('cargo', ['test', '--manifest-path', 'fuzz/Cargo.toml', '--locked'], { env });
  for (const target of FUZZ_TARGETS) {
    // New inputs go to a scratch corpus under target/; the checked-in seeds are read only.
    const scratch = join('fuzz/target/corpus', target);
    mkdirSync(join(root, scratch), { recursive: true });
    log(`fuzz: ${target} for ${seconds} s`);
    // No sanitizer: the code fuzzed has no unsafe Rust, and ASan halves the speed. Debug
    // assertions (-a) turn integer overflows into crashes.
    run('cargo', ['fuzz', 'run', '--fuzz-dir', 'fuzz', '-a', '-s', 'none', target, scratch, join('fuzz/corpus', target),
      '--', `-max_total_time=${seconds}`, '-timeout=10', '-print_final_stats=1'], { env });
  }
}

// Mutation testing of the engine with cargo-mutants (.cargo/mutants.toml, crates/engine/README.md).
// Every mutant of MUTANT_FILES (tcp/, tunnel/ and the files listed) was measured caught, timed
// out, unviable or listed in KNOWN_MISSED (crates/engine/README.md gives the runs). A bounded
// run for CI: the mutants on lines changed since the last commit's parent, or else all of them,
// cut into slices of MUTANTS_PER_RUN; each commit to those files takes the next slice, so a run
// is the same for the same commit on any machine. It fails on a missed mutant (a change to the
// code that no test notices) unless KNOWN_MISSED lists it with the reason, and on an entry of
// KNOWN_MISSED that names no mutant of MUTANT_FILES (stale: its code moved, changed or went).
const CARGO_MUTANTS_VERSION = '27.1.0';
const MUTANT_FILES = ['crates/engine/src/tcp/**/*.rs', 'crates/engine/src/tunnel/*.rs',
  ...['allowed_ips', 'udp_flows', 'wire', 'engine', 'addr', 'counters', 'commands', 'events'].map((f) => `crates/engine/src/${f}.rs`)];
const KNOWN_MISSED = 'crates/engine/known-missed-mutants.txt';
// About 7 s each on an idle 2-core machine (build + the engine's tests), after a first build.
const MUTANTS_PER_RUN = 12;
const MUTANTS_OUT = 'target/mutants';
// cargo-mutants builds in a copy of the tree, with the copy's own target/: each run builds the
// dependencies again. A target dir kept across runs (CARGO_TARGET_DIR) would save that, but is
// unsafe: cargo keeps dep-info paths relative to the package and compares mtimes, and the copy
// keeps the tree's mtimes, so the last mutant of the previous run can look up to date.

// A mutant's name without line and column, so that the list survives edits elsewhere in the
// file: "crates/engine/src/tcp/recv.rs: replace < with <= in Receiver::hold". (The same
// mutation twice in one function is one entry.) The file stays: a mutant in no function (a
// constant) is named by its mutation alone, and "replace + with *" is in tcp/ and tunnel/.
const mutantKey = (name) => name.replace(/:\d+:\d+: /, ': ');

// KNOWN_MISSED: one mutant a line, "<key> -- <why no test catches it>"; # starts a comment.
function knownMissedMutants() {
  const known = new Map();
  readFileSync(join(root, KNOWN_MISSED), 'utf8').split('\n').forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const at = line.indexOf(' -- ');
    if (at < 0 || line.slice(at + 4).trim() === '') die(`${KNOWN_MISSED}:${i + 1}: "<mutant> -- <reason>" expected, got: ${line}`);
    known.set(line.slice(0, at).trim(), line.slice(at + 4).trim());
  });
  return known;
}

// The names of the mutants cargo-mutants would make, "file:line:col: mutation".
function listMutants(args) {
  const list = spawnSync('cargo', ['mutants', '--list', ...args], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (list.status !== 0) die(`cargo mutants --list failed (exit ${list.status}): ${list.stderr}`);
  return list.stdout.split('\n').filter(Boolean);
}

// cargo-mutants arguments that choose this run's mutants, of `all` (the names of every mutant
// of the files `files` gives to cargo-mutants).
function chooseMutants(files, all) {
  let args = files;
  let [count, what] = [all.length, 'of tcp/, tunnel/ and the engine files listed'];
  const paths = MUTANT_FILES.map((f) => `:(glob)${f}`);
  // Lines changed since the last commit's parent (nothing without git or without that parent).
  const diff = capture('git', ['diff', 'HEAD~1', '--', ...paths]);
  if (diff) {
    writeFileSync(join(root, MUTANTS_OUT, 'changed.diff'), `${diff}\n`);
    const changed = [...args, '--in-diff', join(MUTANTS_OUT, 'changed.diff')];
    const n = listMutants(changed).length;
    if (n > 0) [args, count, what] = [changed, n, 'on lines the last commit changed'];
  }
  // Each commit that changes those files takes the next slice (each day, without git): commits
  // elsewhere keep the slice, so a run checked before them still holds after.
  const slices = Math.max(1, Math.ceil(count / MUTANTS_PER_RUN));
  const commits = capture('git', ['rev-list', '--count', 'HEAD', '--', ...paths]);
  const turn = Number(commits ?? Math.floor(Date.now() / 86_400_000)) % slices;
  log(`mutants: slice ${turn + 1} of ${slices} of the ${count} ${what}`);
  return [...args, '--shard', `${turn}/${slices}`, '--sharding', 'round-robin'];
}

function mutants(seconds) {
  cargoInstall('cargo-mutants', CARGO_MUTANTS_VERSION);
  const known = knownMissedMutants();
  const files = MUTANT_FILES.flatMap((f) => ['-f', f]);
  const all = listMutants(files);
  const names = new Set(all.map(mutantKey));
  const stale = [...known.keys()].filter((key) => !names.has(key));
  if (stale.length > 0) die(`${KNOWN_MISSED} lists mutants cargo-mutants no longer makes (the code moved, changed or went: update or remove the entry):\n  ${stale.join('\n  ')}`);
  mkdirSync(join(root, MUTANTS_OUT), { recursive: true });
  const t0 = Date.now();
  // At the time cap cargo-mutants is interrupted as by ^C; the mutants it finished still count.
  const r = spawnSync('cargo', ['mutants', '-j', '1', ...chooseMutants(files, all), '-o', MUTANTS_OUT],
    { cwd: root, stdio: 'inherit', timeout: seconds * 1000, killSignal: 'SIGINT', env: { ...process.env, RUST_BACKTRACE: '0' } });
  const capped = r.error?.code === 'ETIMEDOUT';
  // cargo-mutants exits 0 (all caught), 2 (some missed) or 3 (some timed out); anything else
  // (the unmutated tree fails its tests, a build breaks) is a failure of its own.
  if (!capped && ![0, 2, 3].includes(r.status)) die(`cargo mutants exited with ${r.status ?? r.signal}`);
  const outcomesFile = join(root, MUTANTS_OUT, 'mutants.out/outcomes.json');
  const outcomes = existsSync(outcomesFile)
    ? JSON.parse(readFileSync(outcomesFile, 'utf8')).outcomes.filter((o) => o.scenario !== 'Baseline') : [];
  if (outcomes.length === 0 && capped) die(`cargo mutants tested no mutant in ${seconds} s: give it more (node build.mjs --mutants <seconds>)`);
  const named = (summary) => outcomes.filter((o) => o.summary === summary).map((o) => o.scenario.Mutant.name);
  const missed = named('MissedMutant');
  const unexpected = missed.filter((name) => !known.has(mutantKey(name)));
  log(`mutants: ${outcomes.length} tested in ${((Date.now() - t0) / 1000).toFixed(0)} s${capped ? ' (time cap)' : ''}: ` +
    `${named('CaughtMutant').length} caught, ${missed.length} missed (${missed.length - unexpected.length} known), ` +
    `${named('Timeout').length} timeout, ${named('Unviable').length} unviable`);
  // An entry covers its mutation anywhere in the function: caught here, it may still be missed elsewhere.
  for (const name of named('CaughtMutant').filter((n) => known.has(mutantKey(n)))) {
    log(`mutants: caught ${name}, listed in ${KNOWN_MISSED}: remove the entry unless it is missed elsewhere in the function`);
  }
  if (unexpected.length > 0) {
    die(`missed mutants: no test failed when the code was changed like this:\n  ${unexpected.join('\n  ')}\n` +
      `Add a test that fails for each (diffs in ${MUTANTS_OUT}/mutants.out/diff/), or list it in ${KNOWN_MISSED}:\n  ` +
      `${unexpected.map((name) => `${mutantKey(name)} -- <equivalent: why | not yet covered>`).join('\n  ')}`);
  }
}

// ---- main ----

if (args.has('--install-deps')) {
  aptInstall([...TOOLCHAIN_PKGS, ...TEST_PKGS]);
  log('system packages present');
} else if (args.has('--cargo-test')) {
  cargoTest();
} else if (args.has('--lint')) {
  lint();
} else if (args.has('--fuzz')) {
  fuzz(seconds);
} else if (args.has('--mutants')) {
  mutants(seconds);
} else {
  if (!args.has('--ts-only')) buildWasm();
  if (!args.has('--wasm-only')) buildTs();
}
