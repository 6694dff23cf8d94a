#!/usr/bin/env node
// Two rules on imports, run by `node build.mjs --lint`; exits 1 when one is broken.
//
// 1. A runtime-neutral core: only these files of ts/ load node:* modules at run time (a type
//    import loads nothing): the runtime adapters, splice, the Node-shaped tunnel sockets and
//    agents, and the command line. Everything else reaches the machine through runtime/.
//
// 2. No import circles: the modules of ts/ and of the engine's crate must read top-down, each
//    importing only what sits below it.
//
//   TypeScript: every import and re-export between files of ts/ (type-only ones too: a
//     circle of types still means two files that cannot be read one after the other).
//   Rust: a module (one file) depends on another when it names it in a path (`crate::`,
//     `super::`, `self::`, or a child module's name). A child using its ancestors is how Rust
//     nests modules and is not counted; everything else is, parent to child included.
//     Test-only code (`#[cfg(test)]` items and modules) is left out: it sits above everything.
//
// No npm dependencies, like build.mjs.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// Circles known and being removed elsewhere: their modules, and where the work is. A circle
// among a known one's modules is reported but does not fail the check (it may shrink on the
// way out); one that reaches any other module fails.
const KNOWN_CIRCLES = [];

const NODE_ALLOWED = [
  'ts/runtime/', // the adapters: UDP sockets, clock, files, interfaces, resolver
  'ts/splice.ts', // joins a TcpConnection to a net.Socket
  'ts/tunnel/socket.ts', // TunnelSocket is a stream.Duplex, as net.Socket is
  'ts/tunnel/udp.ts', // TunnelUdpSocket is an EventEmitter, as dgram.Socket is
  'ts/tunnel/http.ts', // http/https agents and undici's dispatcher
  'ts/cli/', // the command line: wg-netstack serve and connect, and the gateway's web page
  'ts/gateway/',
  'ts/connect/',
  'ts/web/',
];

function filesUnder(dir, suffix) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => join(entry.parentPath, entry.name));
}

// ---- TypeScript ----

// `import ... from "x"`, `export ... from "x"`, `import "x"`, `import("x")`.
const TS_IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g;

function tsGraph() {
  const graph = new Map();
  for (const file of filesUnder(join(root, 'ts'), '.ts')) {
    const name = relative(root, file);
    const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    const targets = new Set();
    for (const [, specifier] of text.matchAll(TS_IMPORT)) {
      if (!specifier.startsWith('.')) continue; // a package or node:*
      targets.add(relative(root, resolve(dirname(file), specifier)).replace(/\.js$/, '.ts'));
    }
    graph.set(name, targets);
  }
  return graph;
}

// Files outside NODE_ALLOWED whose code loads a node:* module: "file: node:x".
function nodeImports() {
  const found = [];
  for (const file of filesUnder(join(root, 'ts'), '.ts')) {
    const name = relative(root, file);
    if (name.endsWith('.test.ts') || NODE_ALLOWED.some((allowed) => name.startsWith(allowed))) continue;
    const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    // `import x from`, `import { a, type B } from`, `import "x"`, `export ... from`, `import("x")`;
    // only `import type`, `export type` and lists of `type X` alone are left out.
    for (const [statement, specifier] of text.matchAll(/\b(?:import|export)\b(?:[^;"']*?\bfrom)?\s*\(?\s*["'](node:[^"']+)["']/g)) {
      const typeOnly = /^(?:import|export)\s+type\b/.test(statement) || /^import\s*\{(?:\s*type\s+\w+(?:\s+as\s+\w+)?\s*,?)+\s*\}/.test(statement);
      if (!typeOnly) found.push(`${name}: ${specifier}`);
    }
  }
  return found;
}

// ---- Rust ----

// Comments, string literals and `#[cfg(test)]` items removed, so that only code is read.
function rustCode(text) {
  let code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$|"(?:\\.|[^"\\])*"/gm, '');
  for (let at = code.indexOf('#[cfg(test)]'); at >= 0; at = code.indexOf('#[cfg(test)]', at)) {
    // The item ends at its first `;` or at the `}` matching its first `{`, whichever comes first.
    let end = at + '#[cfg(test)]'.length;
    while (end < code.length && code[end] !== ';' && code[end] !== '{') end++;
    if (code[end] === '{') {
      for (let depth = 0; end < code.length; end++) {
        if (code[end] === '{') depth++;
        else if (code[end] === '}' && --depth === 0) break;
      }
    }
    code = code.slice(0, at) + code.slice(end + 1);
  }
  return code;
}

// The crate's modules, one a file: 'crate', 'crate::tcp', 'crate::tcp::connection'...; only
// those declared outside test code, from lib.rs down.
function rustModules(src) {
  const modules = new Map(); // module path -> its code
  const visit = (path, file) => {
    const code = rustCode(readFileSync(file, 'utf8'));
    modules.set(path, code);
    // A module's children live beside lib.rs and mod.rs, and in a folder named after any other file.
    const dir = /(?:lib|mod)\.rs$/.test(file) ? dirname(file) : file.replace(/\.rs$/, '');
    for (const [, child] of code.matchAll(/^\s*(?:pub(?:\([\w:]+\))?\s+)?mod\s+(\w+)\s*;/gm)) {
      const flat = join(dir, `${child}.rs`);
      const nested = join(dir, child, 'mod.rs');
      const found = [flat, nested].find(existsSync);
      if (!found) throw new Error(`${relative(root, file)}: no file for mod ${child}`);
      visit(`${path}::${child}`, found);
    }
  };
  visit('crate', join(src, 'lib.rs'));
  return modules;
}

// The paths of the use-tree group whose `{` is just before `at` (nested groups expanded, each
// path as its segments), and where the group ends.
function useTree(code, at) {
  const paths = [];
  let item = '';
  while (at < code.length) {
    const c = code[at++];
    if (c === '{') {
      const prefix = item.trim().split('::').filter(Boolean);
      const inner = useTree(code, at);
      for (const path of inner.paths) paths.push([...prefix, ...path]);
      at = inner.end;
      item = '';
    } else if (c === ',' || c === '}') {
      const path = item.replace(/\s+as\s+\w+\s*$/, '').trim();
      if (path) paths.push(path.split('::').filter(Boolean));
      item = '';
      if (c === '}') break;
    } else item += c;
  }
  return { paths, end: at };
}

function rustGraph(src) {
  const modules = rustModules(src);
  const isAncestor = (a, b) => b.startsWith(`${a}::`);
  // The deepest module that a path names (the rest is an item in it).
  const moduleOf = (segments) => {
    for (let n = segments.length; n > 0; n--) {
      const path = segments.slice(0, n).join('::');
      if (modules.has(path)) return path;
    }
    return undefined;
  };
  const graph = new Map();
  for (const [module, code] of modules) {
    const children = [...modules.keys()].filter((m) => m.startsWith(`${module}::`) && !m.slice(module.length + 2).includes('::'));
    const childNames = children.map((m) => m.slice(module.length + 2));
    const targets = new Set();
    const addPath = (segments) => {
      const target = moduleOf(segments);
      if (target && target !== module && !isAncestor(target, module)) targets.add(target);
    };
    const base = module.split('::');
    // A path's first segment, made absolute; undefined for another crate, a type's item, a local enum...
    const absolute = (first) => {
      if (first === 'crate') return ['crate'];
      if (first === 'self') return base;
      if (first === 'super') return base.slice(0, -1);
      if (childNames.includes(first)) return [...base, first];
      return undefined;
    };
    // `a::b::c`, and `a::{b, c::{d, e}}` in a use: each path in the tree, from its prefix.
    const PATH = /(?<![\w:])(crate|super|self|\w+)((?:::\w+)*)(::\{)?/g;
    for (let match = PATH.exec(code); match; match = PATH.exec(code)) {
      const [, first, more, group] = match;
      if (!more && !group) continue; // a lone name, not a path
      let prefix = absolute(first);
      if (!prefix) continue;
      const tail = more.split('::').slice(1);
      for (; tail[0] === 'super'; tail.shift()) prefix = prefix.slice(0, -1);
      prefix = [...prefix, ...tail];
      if (!group) addPath(prefix);
      else {
        const tree = useTree(code, PATH.lastIndex);
        for (const path of tree.paths) addPath([...prefix, ...path]);
        PATH.lastIndex = tree.end; // the group's paths are read: do not read them again as paths of their own
      }
    }
    graph.set(module, targets);
  }
  return graph;
}

// ---- circles ----

// Tarjan's strongly connected components with more than one member (each is a circle).
function circles(graph) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const connect = (node) => {
    index.set(node, next);
    low.set(node, next++);
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!graph.has(to)) continue;
      if (!index.has(to)) {
        connect(to);
        low.set(node, Math.min(low.get(node), low.get(to)));
      } else if (onStack.has(to)) low.set(node, Math.min(low.get(node), index.get(to)));
    }
    if (low.get(node) !== index.get(node)) return;
    const members = [];
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      members.push(member);
    } while (member !== node);
    if (members.length > 1) found.push(members.sort());
  };
  for (const node of graph.keys()) if (!index.has(node)) connect(node);
  return found;
}

// One way round a circle, for the message: the shortest path from `start` back to it.
function wayRound(graph, members, start) {
  const cameFrom = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const to of graph.get(node)) {
      if (to === start) {
        const path = [start];
        for (let at = node; at !== start; at = cameFrom.get(at)) path.splice(1, 0, at);
        return [...path, start].join(' -> ');
      }
      if (members.includes(to) && !cameFrom.has(to)) {
        cameFrom.set(to, node);
        queue.push(to);
      }
    }
  }
  return members.join(', ');
}

let failed = false;
for (const use of nodeImports()) {
  console.log(`[check-imports] ${use}`);
  failed = true;
}
if (failed) console.log('  only runtime/ and the Node-shaped parts load node:* (NODE_ALLOWED): reach the machine through runtime/system.ts');
const seen = [];
for (const [language, graph] of [
  ['TypeScript', tsGraph()],
  ['Rust', rustGraph(join(root, 'crates/engine/src'))],
]) {
  for (const members of circles(graph)) {
    seen.push(...members);
    const known = KNOWN_CIRCLES.find(({ modules }) => members.every((m) => modules.includes(m)))?.work;
    // Start from a module no known circle has, so that the way shown is the new one.
    const start = members.find((m) => !KNOWN_CIRCLES.some(({ modules }) => modules.includes(m))) ?? members[0];
    console.log(`[check-imports] ${language}${known ? ' (known)' : ''}: ${wayRound(graph, members, start)}`);
    if (known) console.log(`  being removed in ${known}`);
    else console.log(`  all the modules of this circle: ${members.join(' ')}`);
    if (!known) failed = true;
  }
}
for (const { modules, work } of KNOWN_CIRCLES) {
  if (!modules.some((m) => seen.includes(m))) console.log(`[check-imports] the known circle of ${modules.join(', ')} is gone (${work}): remove it from KNOWN_CIRCLES`);
}
if (failed) {
  console.error('[check-imports] error: see above; for a circle, a lower module must not import a higher one (move the shared part down)');
  process.exit(1);
}
console.log('[check-imports] node:* only where allowed, and no new circles');
