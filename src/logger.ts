/**
 * The logger interface ringbus writes to, and its default.
 */
import { pino } from 'pino';

type LogFn = (obj: unknown, msg?: string, ...args: unknown[]) => void;

/**
 * The subset of pino's API ringbus uses; any pino-compatible logger fits.
 *
 * @group Options
 */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/**
 * How much the default logger says.
 *
 * @group Options
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

const noop = (): void => {};
/** `logger: false`: nothing is logged. */
export const SILENT_LOGGER: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

/**
 * The default: pino on stderr (written synchronously, so nothing is lost at
 * exit), at `level`. A library writes nothing on stdout: that is the app's.
 */
export function defaultLogger(level: LogLevel): Logger {
  if (level === 'silent') return SILENT_LOGGER;
  return pino({ name: 'ringbus', level }, pino.destination({ dest: 2, sync: true }));
}
