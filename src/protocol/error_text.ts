/**
 * What a thrown value becomes as text, on either thread: never throws itself,
 * whatever was thrown, and fits the error text an outcome entry carries.
 */
import { MAX_ERROR_NAME_LENGTH, MAX_ERROR_STACK_BYTES, MAX_ERROR_TEXT_BYTES } from './limits.js';

/** A thrown value as text (null-prototype objects, revoked proxies and non-string messages included). */
export function errorMessage(err: unknown): string {
  try {
    if (err instanceof Error) return typeof err.message === 'string' ? err.message : String(err.message);
    return String(err);
  } catch {
    try {
      return `non-error value thrown: ${Object.prototype.toString.call(err)}`;
    } catch {
      return 'non-error value thrown';
    }
  }
}

/** `errorMessage`, cut to at most MAX_ERROR_TEXT_BYTES of UTF-8 (on a character boundary). */
export function errorText(err: unknown): string {
  return cutUtf8(errorMessage(err), MAX_ERROR_TEXT_BYTES);
}

/** A thrown Error's stack, cut to at most MAX_ERROR_STACK_BYTES ('' when it has none); never throws. */
export function errorStack(err: unknown): string {
  try {
    if (!(err instanceof Error)) return '';
    let stack = err.stack;
    if (typeof stack !== 'string') return '';
    // The stack repeats the message before its frames: a long message must not push the frames out.
    const frames = stack.indexOf('\n    at ');
    if (frames > STACK_HEADER_CHARS) stack = `${stack.slice(0, STACK_HEADER_CHARS)}…${stack.slice(frames)}`;
    return cutUtf8(stack, MAX_ERROR_STACK_BYTES);
  } catch {
    return '';
  }
}

/** Characters of a stack's first lines (its name and message) kept before its frames. */
const STACK_HEADER_CHARS = 512;

/** `text`, cut to at most `max` bytes of UTF-8 on a character boundary. */
function cutUtf8(text: string, max: number): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: short texts need no measuring.
  if (text.length * 3 <= max || Buffer.byteLength(text) <= max) return text;
  let cut = text.slice(0, max);
  while (Buffer.byteLength(cut) > max) cut = cut.slice(0, Math.floor(cut.length * 0.9));
  // Never end on half a surrogate pair.
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/** The `name` of a thrown Error ('' for anything else); never throws. */
export function errorName(err: unknown): string {
  try {
    if (!(err instanceof Error)) return '';
    const name = err.name;
    return typeof name === 'string' ? name.slice(0, MAX_ERROR_NAME_LENGTH) : '';
  } catch {
    return '';
  }
}
