/**
 * ringbus/jetstream: the entry point that carries a bus's events through NATS
 * JetStream, so the same handlers run across processes and machines. Only
 * this entry point loads the NATS client; `import 'ringbus'` never does.
 *
 * ```ts
 * import { ResilientMessageBus } from 'ringbus';
 * import { jetstream } from 'ringbus/jetstream';
 * const bus = new ResilientMessageBus({ transport: jetstream({ servers: 'nats://127.0.0.1:4222' }) });
 * ```
 * @module ringbus/jetstream
 */
import { JetStreamTransport } from './jetstream_transport.js';
import { resolveJetStreamOptions, type JetStreamOptions } from './options.js';
import type { Transport } from '../transport.js';

export { JETSTREAM_DEFAULTS, type JetStreamOptions } from './options.js';
export type { Transport } from '../transport.js';

/**
 * A JetStream transport for one bus (`new MessageBus({ transport: jetstream({...}) })`).
 * Options are checked here: an error names the option and echoes the value.
 * @group Bus
 */
export function jetstream(options?: JetStreamOptions): Transport {
  return new JetStreamTransport(resolveJetStreamOptions(options));
}
