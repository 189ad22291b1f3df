import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The dependency rules of src/: no import cycle between files, and none between the bounded
 * contexts (the folders under src/). Type-only imports count too: a cycle of types is a cycle of
 * design, and it is the first step to a runtime one.
 */

const SRC = path.resolve(import.meta.dirname, "../../src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** Relative imports and re-exports of a file, resolved to absolute paths. */
function importsOf(file: string, text: string): string[] {
  const found: string[] = [];
  const pattern =
    /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;
  for (const match of text.matchAll(pattern)) {
    const spec = match[1] ?? match[2];
    if (spec !== undefined) found.push(path.resolve(path.dirname(file), spec));
  }
  return found;
}

/** Strongly connected components with more than one member, or a self-loop (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    indices.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indices.get(w)!));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) out.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) visit(v);
  return out;
}

function graphs() {
  const files = new Map<string, Set<string>>();
  const folders = new Map<string, Set<string>>();
  const folderOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!.replace(/\.ts$/, "");
  for (const file of sourceFiles(SRC)) {
    const rel = path.relative(SRC, file);
    const targets = importsOf(file, readFileSync(file, "utf8"));
    files.set(rel, new Set(targets.map((t) => path.relative(SRC, t))));
    const from = folderOf(file);
    for (const t of targets) {
      const to = folderOf(t);
      if (to === from) continue;
      if (!folders.has(from)) folders.set(from, new Set());
      folders.get(from)!.add(to);
    }
  }
  return { files, folders };
}

describe("src/ import structure", () => {
  it("finds a cycle when there is one (the checker itself)", () => {
    const g = new Map([
      ["a", new Set(["b"])],
      ["b", new Set(["c"])],
      ["c", new Set(["a"])],
      ["d", new Set(["a"])],
    ]);
    expect(cycles(g)).toEqual([["a", "b", "c"]]);
    expect(
      importsOf("/x/src/a/f.ts", 'import type { T } from "../b/g.ts";\nexport { y } from "./h.ts";'),
    ).toEqual(["/x/src/b/g.ts", "/x/src/a/h.ts"]);
  });

  it("has no import cycle between files", () => {
    expect(cycles(graphs().files)).toEqual([]);
  });

  it("has no import cycle between the folders of src/", () => {
    expect(cycles(graphs().folders)).toEqual([]);
  });
});
