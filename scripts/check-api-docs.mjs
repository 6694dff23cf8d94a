#!/usr/bin/env node
// The API reference in docs/api is generated (`npm run docs`) and committed, so it can be read
// on GitHub and in the package; this check, run by `npm test`, keeps it true. It runs TypeDoc
// (its validation too: every export documented, every link resolving) into a scratch folder
// and fails when that differs from docs/api, naming the files to regenerate.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(root, 'docs/api');
const scratch = mkdtempSync(join(tmpdir(), 'wg-netstack-api-'));

/** Every file below `dir`, as paths relative to it. */
function files(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}

try {
  execFileSync(join(root, 'node_modules/.bin/typedoc'), ['--out', scratch], { cwd: root, stdio: 'inherit' });
  const expected = files(scratch);
  const actual = files(committed);
  const stale = [...new Set([...expected, ...actual])].filter(
    (file) => !expected.includes(file) || !actual.includes(file) || !readFileSync(join(scratch, file)).equals(readFileSync(join(committed, file))),
  );
  if (stale.length > 0) {
    console.error(`[check-api-docs] docs/api is not what the sources say; run \`npm run docs\` and commit. Differs: ${stale.join(', ')}`);
    process.exitCode = 1;
  } else {
    console.log(`[check-api-docs] docs/api matches the sources (${expected.length} files)`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
