/**
 * `npm run check:architecture`: the shape rules anyone can check, measured on the syntax tree
 * (oxc's TypeScript parser), not by reading:
 *
 * - no import circle among the project's modules, type-only imports and re-exports included (a
 *   type import still ties two files together);
 * - no function (declaration, expression, arrow or method) over 80 lines outside tests, the test
 *   bed and scripts;
 * - `cli/program.ts` under 80 lines: commands register their own flags.
 *
 * Prints every violation and exits 1 when there is one. `--report` also prints the longest
 * functions per layer, for the record.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseSync } from "oxc-parser";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const SOURCE_DIRS = ["functions", "infra", "cli", "k8s", "scripts", "testbed", "test"];
/** Where the function-length rule applies: the product, not its tests or tools. */
const PRODUCT_DIRS = ["functions", "infra", "cli", "k8s"];
const MAX_FUNCTION_LINES = 80;
const MAX_PROGRAM_LINES = 80;
const PROGRAM_FILE = "cli/program.ts";

interface ParsedFile {
  readonly path: string;
  readonly imports: readonly string[];
  readonly functions: readonly FunctionSpan[];
  readonly lines: number;
}

interface FunctionSpan {
  readonly name: string;
  readonly line: number;
  readonly lines: number;
}

function sourceFiles(dir: string): string[] {
  const entries = readdirSync(join(ROOT, dir), { withFileTypes: true });
  return entries.flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : sourceFiles(path);
    return /\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let index = 0; index < text.length; index++)
    if (text[index] === "\n") starts.push(index + 1);
  return starts;
}

function lineOf(starts: readonly number[], offset: number): number {
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if ((starts[middle] ?? 0) <= offset) low = middle;
    else high = middle - 1;
  }
  return low + 1;
}

const FUNCTION_TYPES = new Set([
  "FunctionDeclaration",
  "FunctionExpression",
  "ArrowFunctionExpression",
]);

type AstNode = { readonly type?: unknown; readonly start?: number; readonly end?: number } & Record<
  string,
  unknown
>;

/** Every function in the tree with the name a reader would search for. */
function functionsIn(program: unknown, starts: readonly number[]): FunctionSpan[] {
  const found: FunctionSpan[] = [];
  const visit = (node: unknown, name: string): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, name);
      return;
    }
    if (node === null || typeof node !== "object") return;
    const ast = node as AstNode;
    const ownName = nameOf(ast) ?? name;
    if (typeof ast.type === "string" && FUNCTION_TYPES.has(ast.type)) {
      const line = lineOf(starts, ast.start ?? 0);
      found.push({ name: ownName, line, lines: lineOf(starts, ast.end ?? 0) - line + 1 });
    }
    for (const [key, value] of Object.entries(ast))
      if (key !== "type" && typeof value === "object") visit(value, ownName);
  };
  visit(program, "(anonymous)");
  return found;
}

function nameOf(node: AstNode): string | undefined {
  const identifier = (value: unknown) =>
    value && typeof value === "object" && "name" in value && typeof value.name === "string"
      ? value.name
      : undefined;
  switch (node.type) {
    case "FunctionDeclaration":
    case "FunctionExpression":
      return identifier(node.id);
    case "VariableDeclarator":
      return identifier(node.id);
    case "MethodDefinition":
    case "Property":
    case "PropertyDefinition":
      return identifier(node.key);
    default:
      return undefined;
  }
}

function parseFile(path: string): ParsedFile {
  const text = readFileSync(join(ROOT, path), "utf8");
  const parsed = parseSync(path, text);
  if (parsed.errors.length > 0)
    throw new Error(`${path}: ${parsed.errors.map((error) => error.message).join("; ")}`);
  // `import("./x.ts")` ties files together as surely as a static import, when its target is literal.
  const dynamicImports = parsed.module.dynamicImports.flatMap((entry) => {
    const literal = text.slice(entry.moduleRequest.start, entry.moduleRequest.end);
    return /^["'`][^"'`$]+["'`]$/.test(literal) ? [literal.slice(1, -1)] : [];
  });
  const relativeImports = [
    ...parsed.module.staticImports.map((entry) => entry.moduleRequest.value),
    ...parsed.module.staticExports.flatMap((entry) =>
      entry.entries.flatMap((item) => (item.moduleRequest ? [item.moduleRequest.value] : [])),
    ),
    ...dynamicImports,
  ].filter((specifier) => specifier.startsWith("."));
  return {
    path,
    imports: [...new Set(relativeImports.map((specifier) => join(dirname(path), specifier)))],
    functions: functionsIn(parsed.program, lineStarts(text)),
    lines: text.split("\n").length - (text.endsWith("\n") ? 1 : 0),
  };
}

/** Every import circle, each named once by its members in import order (Tarjan's SCCs). */
function importCircles(files: ReadonlyMap<string, ParsedFile>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const connect = (path: string): void => {
    index.set(path, counter);
    low.set(path, counter);
    counter++;
    stack.push(path);
    onStack.add(path);
    for (const next of files.get(path)?.imports ?? []) {
      if (!files.has(next)) continue;
      if (!index.has(next)) {
        connect(next);
        low.set(path, Math.min(low.get(path) ?? 0, low.get(next) ?? 0));
      } else if (onStack.has(next)) {
        low.set(path, Math.min(low.get(path) ?? 0, index.get(next) ?? 0));
      }
    }
    if (low.get(path) !== index.get(path)) return;
    const members: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      members.push(member);
    } while (member !== path);
    const selfImport = files.get(path)?.imports.includes(path) === true;
    if (members.length > 1 || selfImport) circles.push(members.reverse());
  };
  for (const path of files.keys()) if (!index.has(path)) connect(path);
  return circles;
}

function inProduct(path: string): boolean {
  return PRODUCT_DIRS.some((dir) => path.startsWith(`${dir}/`));
}

function main(): void {
  const files = new Map<string, ParsedFile>();
  for (const path of SOURCE_DIRS.flatMap(sourceFiles)) files.set(path, parseFile(path));
  const problems: string[] = [];
  for (const circle of importCircles(files))
    problems.push(`import circle: ${[...circle, circle[0]].join(" -> ")}`);
  // A TypeScript import that names no scanned file would hide its edges from the circle check.
  for (const file of files.values())
    for (const target of file.imports)
      if (/\.m?ts$/.test(target) && !files.has(target) && !existsSync(join(ROOT, target)))
        problems.push(`${file.path} imports ${target}, which does not exist`);
  const product = [...files.values()].filter((file) => inProduct(file.path));
  for (const file of product)
    for (const fn of file.functions)
      if (fn.lines > MAX_FUNCTION_LINES)
        problems.push(
          `${file.path}:${fn.line} ${fn.name} is ${fn.lines} lines (at most ${MAX_FUNCTION_LINES})`,
        );
  const program = files.get(PROGRAM_FILE);
  if (program && program.lines >= MAX_PROGRAM_LINES)
    problems.push(`${PROGRAM_FILE} is ${program.lines} lines (under ${MAX_PROGRAM_LINES})`);
  if (process.argv.includes("--report")) report(product);
  for (const problem of problems) console.error(problem);
  const functionCount = product.reduce((sum, file) => sum + file.functions.length, 0);
  console.log(
    `${files.size} files, ${functionCount} product functions: ${problems.length === 0 ? "no" : problems.length} architecture problem(s)`,
  );
  if (problems.length > 0) process.exitCode = 1;
}

/** Lines per layer and the five longest functions in each, for notes and reviews. */
function report(product: readonly ParsedFile[]): void {
  const layers = new Map<string, ParsedFile[]>();
  for (const file of product) {
    const layer = file.path.split("/").slice(0, 2).join("/").replace(/\.ts$/, "");
    layers.set(layer, [...(layers.get(layer) ?? []), file]);
  }
  for (const [layer, members] of [...layers].sort(([a], [b]) => a.localeCompare(b))) {
    const lines = members.reduce((sum, file) => sum + file.lines, 0);
    const longest = members
      .flatMap((file) => file.functions.map((fn) => ({ ...fn, path: relative(layer, file.path) })))
      .sort((a, b) => b.lines - a.lines)
      .slice(0, 5)
      .map((fn) => `${fn.name} ${fn.lines}`);
    console.log(
      `${layer}: ${members.length} files, ${lines} lines; longest: ${longest.join(", ")}`,
    );
  }
}

main();
