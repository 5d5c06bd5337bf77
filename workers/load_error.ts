/**
 * What a worker handler module that fails to import becomes as text. A
 * syntax error names file, line and column: Node 20 leaves them out of the
 * SyntaxError an ES module's import() rejects with (message and stack carry
 * neither; only an uncaught one prints them), so they are read from a stack
 * that has them (CommonJS, newer Nodes), from tsx's esbuild error, or else
 * from `node --check` on the file. A TypeScript module that cannot load for
 * want of tsx says so, naming the file.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tsxMissingMessage } from '../src/handler_ref.js';
import { errorMessage, errorName } from '../src/protocol/error_text.js';

/** Where a syntax error is: `line` and `column` count from 1. */
export interface SyntaxLocation {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** How long `node --check` may take before the error goes out without a location. */
const CHECK_TIMEOUT_MS = 10_000;

const asPath = (file: string): string => (file.startsWith('file:') ? fileURLToPath(file) : file);

/**
 * Node's own layout: `file:line`, the source line, a caret line under the
 * column, then `SyntaxError: message` (CommonJS stacks, `node --check`, and
 * the ES module stacks of Nodes that add the location).
 */
export function locationInNodeText(text: string): SyntaxLocation | undefined {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i + 2 < lines.length && i < 8; i++) {
    const head = /^(.+):(\d+)$/.exec(lines[i]);
    const caret = lines[i + 2].search(/\^/);
    if (head === null || caret < 0 || lines[i + 2].slice(0, caret).trim() !== '') continue;
    const said = lines.slice(i + 3).find((l) => l.startsWith('SyntaxError: '));
    if (said === undefined) return undefined;
    return { file: asPath(head[1]), line: Number(head[2]), column: caret + 1, message: said.slice('SyntaxError: '.length) };
  }
  return undefined;
}

/** esbuild's layout (tsx's TransformError): `file:line:column: ERROR: message`, the column counted from 0. */
export function locationInEsbuildText(text: string): SyntaxLocation | undefined {
  const m = /^(.+?):(\d+):(\d+): ERROR: (.*)$/m.exec(text);
  return m === null ? undefined : { file: asPath(m[1]), line: Number(m[2]), column: Number(m[3]) + 1, message: m[4] };
}

/** Asks `node --check` (the same Node, parsing as import() does) where the syntax error in `file` is. */
function checkSyntax(file: string): Promise<SyntaxLocation | undefined> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--check', file], { timeout: CHECK_TIMEOUT_MS, encoding: 'utf8', windowsHide: true }, (err, _out, stderr) => {
      resolve(err === null ? undefined : locationInNodeText(stderr));
    });
  });
}

function stackOf(err: unknown): string {
  try {
    const stack = (err as { stack?: unknown } | null)?.stack;
    return typeof stack === 'string' ? stack : '';
  } catch {
    return '';
  }
}

async function syntaxLocation(file: string, err: unknown): Promise<SyntaxLocation | undefined> {
  const found = locationInNodeText(stackOf(err)) ?? locationInEsbuildText(errorMessage(err));
  if (found !== undefined) return found;
  // A SyntaxError with no location: a parse error in an ES module (found by --check), or one it cannot
  // place (a missing named export, an error in a module this one imports) where --check passes.
  if (errorName(err) !== 'SyntaxError' || /\.[cm]?ts$/.test(file)) return undefined;
  return checkSyntax(file);
}

function isUnknownTypeScriptExtension(err: unknown): boolean {
  try {
    return (err as { code?: unknown } | null)?.code === 'ERR_UNKNOWN_FILE_EXTENSION';
  } catch {
    return false;
  }
}

/** The text of the error a handler module (a file: URL) failed to import with. */
export async function loadFailureMessage(module: string, err: unknown, kind = 'worker handler'): Promise<string> {
  const file = asPath(module);
  if (/\.[cm]?ts$/.test(file) && isUnknownTypeScriptExtension(err)) return tsxMissingMessage(file);
  const where = await syntaxLocation(file, err);
  if (where === undefined) return `cannot load ${kind} module ${module}: ${errorMessage(err)}`;
  const what = `a syntax error at line ${where.line}, column ${where.column}: ${where.message}`;
  return where.file === file
    ? `${kind} module ${file} has ${what}`
    : `${kind} module ${file} cannot load: ${where.file}, which it imports, has ${what}`;
}
