/**
 * What a thrown value becomes as text, on either thread: never throws itself,
 * whatever was thrown, and fits the error text an outcome entry carries.
 */
import { MAX_ERROR_NAME_LENGTH, MAX_ERROR_TEXT_BYTES } from './limits.js';

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
  const text = errorMessage(err);
  // A UTF-16 unit is at most 3 UTF-8 bytes: short texts need no measuring.
  if (text.length * 3 <= MAX_ERROR_TEXT_BYTES || Buffer.byteLength(text) <= MAX_ERROR_TEXT_BYTES) return text;
  let cut = text.slice(0, MAX_ERROR_TEXT_BYTES);
  while (Buffer.byteLength(cut) > MAX_ERROR_TEXT_BYTES) cut = cut.slice(0, Math.floor(cut.length * 0.9));
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
