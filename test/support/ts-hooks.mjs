// Lets plain Node (20, which cannot run TypeScript) import the TypeScript test harness,
// e.g. the real-client benchmark importing test/interop/netns.ts:
//
//   import { register } from "node:module";
//   register("../test/support/ts-hooks.mjs", import.meta.url);
//   const { startWgClient } = await import("../test/interop/netns.ts");
//
// Types are only stripped (TypeScript's transpileModule), never checked: vitest, Deno and
// the editor check them.

import { readFile } from "node:fs/promises";
import ts from "typescript";

/** "./netns.js" in a .ts file means the sibling netns.ts (NodeNext style), when no .js exists. */
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!specifier.endsWith(".js") || !context.parentURL?.endsWith(".ts")) throw err;
    return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts")) return nextLoad(url, context);
  const source = await readFile(new URL(url), "utf8");
  const { outputText } = ts.transpileModule(source, {
    fileName: url,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  return { format: "module", source: outputText, shortCircuit: true };
}
