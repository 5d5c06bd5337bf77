/** A handler's thrown value as text. Never throws itself, whatever was thrown (null-prototype objects, revoked proxies…). */
export function errorMessage(err: unknown): string {
  try {
    if (err instanceof Error) return err.message;
    return String(err);
  } catch {
    try {
      return `non-error value thrown: ${Object.prototype.toString.call(err)}`;
    } catch {
      return 'non-error value thrown';
    }
  }
}
