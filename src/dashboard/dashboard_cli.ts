/**
 * `ringbus dashboard --path FILE`: the dashboard's page over a dead-letter
 * file, with no bus running. Read-only unless a token is given (then a
 * dead letter can be deleted; replay needs a bus). Runs until SIGINT or
 * SIGTERM. Exit codes: 0 stopped, 2 usage error, 3 could not run.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultLogger } from '../logger.js';
import { listen, serveDashboard } from './dashboard.js';
import { deadLetterFileSource } from './file_source.js';
import { resolveDashboardOptions } from './options.js';

export const DASHBOARD_HELP = `  dashboard --path FILE [--port N] [--host H] [--token T] [--show-payloads]
                                          the dashboard's page over a dead-letter file, no bus needed
                                          (127.0.0.1:9465 by default); read-only unless --token (or
                                          RINGBUS_DASHBOARD_TOKEN) is set: then entries can be deleted
`;

export async function dashboardCommand(args: string[], signal?: AbortSignal): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args, allowPositionals: false, strict: true,
      options: { path: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, token: { type: 'string' }, 'show-payloads': { type: 'boolean' } },
    }).values;
  } catch (err) {
    process.stderr.write(`ringbus dashboard: ${(err as Error).message}\n`);
    return 2;
  }
  const path = values.path as string | undefined;
  if (path === undefined) {
    process.stderr.write('ringbus dashboard: --path FILE is needed (a dead-letter file)\n');
    return 2;
  }
  if (!existsSync(path)) {
    process.stderr.write(`ringbus dashboard: ${path} does not exist\n`);
    return 3;
  }
  let o;
  try {
    const token = (values.token as string | undefined) ?? process.env.RINGBUS_DASHBOARD_TOKEN;
    o = resolveDashboardOptions({
      ...(values.port !== undefined ? { port: Number(values.port) } : {}), ...(values.host !== undefined ? { host: values.host as string } : {}),
      ...(token !== undefined ? { token, actions: true } : {}), showPayloads: values['show-payloads'] === true,
    });
  } catch (err) {
    process.stderr.write(`ringbus dashboard: ${(err as Error).message}\n`);
    return 2;
  }
  const log = defaultLogger('warn');
  const server = await listen(serveDashboard(deadLetterFileSource(path, o, log), o), o).catch((err: unknown) => {
    process.stderr.write(`ringbus dashboard: could not listen on ${o.host}:${o.port}: ${(err as Error).message}\n`);
    return undefined;
  });
  if (server === undefined) return 3;
  process.stdout.write(`dashboard of ${path}: ${server.url}${o.actions ? ' (deletes allowed with the token)' : ' (read-only)'}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    signal?.addEventListener('abort', stop, { once: true });
  });
  await server.close();
  return 0;
}
