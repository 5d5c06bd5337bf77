/**
 * The logger interface ringbus writes to, and its default.
 */
import { pino } from 'pino';

type LogFn = (obj: unknown, msg?: string, ...args: unknown[]) => void;

/** The subset of pino's API ringbus uses; any pino-compatible logger fits. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

export function defaultLogger(): Logger {
  return pino({ name: 'ringbus', level: 'info' });
}
