/**
 * What the transport keeps on the server: the event stream (Interest
 * retention: a message stays until every handler's consumer took it) and one
 * durable pull consumer per (topic, handler) for its events and one for its
 * retries. Made when missing, checked when present (a stream that cannot
 * serve is a ConfigError naming it), made again when a server lost them.
 */
import type { ConsumerConfig, JetStreamManager, StreamConfig } from '@nats-io/jetstream';
import { ConfigError } from '../errors.js';
import type { ResolvedJetStreamOptions } from './options.js';
import { streamSubjects } from './subjects.js';

const nanos = (ms: number): number => ms * 1_000_000;

/** The event stream exists with our subjects and Interest retention; created when missing. A ConfigError naming it when it cannot serve. */
export async function ensureEventStream(jsm: JetStreamManager, o: ResolvedJetStreamOptions): Promise<void> {
  const subjects = streamSubjects(o.subjectPrefix);
  let config: StreamConfig | undefined;
  try {
    config = (await jsm.streams.info(o.stream)).config;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (config === undefined) {
    try {
      await jsm.streams.add({
        name: o.stream, subjects, retention: 'interest' as StreamConfig['retention'], storage: o.storage as StreamConfig['storage'],
        num_replicas: o.replicas, duplicate_window: nanos(o.duplicateWindowMs), max_age: nanos(o.maxAgeMs), max_bytes: o.maxBytes,
        discard: 'old' as StreamConfig['discard'],
      });
      return;
    } catch (err) {
      // Another process created it meanwhile: check that one.
      config = (await jsm.streams.info(o.stream).catch(() => { throw err; })).config;
    }
  }
  if (config.retention !== 'interest') {
    throw new ConfigError(`transport.jetstream.stream '${o.stream}' exists with ${config.retention} retention; ringbus needs interest ` +
      'retention (each handler\'s consumer takes every event). Name another stream, or delete this one');
  }
  const missing = subjects.filter((s) => !config.subjects?.includes(s));
  if (missing.length > 0) {
    throw new ConfigError(`transport.jetstream.stream '${o.stream}' does not take subject ${missing.join(', ')} ` +
      `(it takes ${JSON.stringify(config.subjects)}); another subjectPrefix belongs in another stream`);
  }
}

/**
 * A handler's durable consumer (of its events, or of its retries): made, or
 * its changeable settings updated; true when it had to be made.
 */
export async function ensureHandlerConsumer(jsm: JetStreamManager, o: ResolvedJetStreamOptions, name: string, topic: string, handler: string,
  filter: string, retries: boolean): Promise<boolean> {
  const description = `ringbus: ${retries ? 'retries of ' : ''}handler '${handler}' on topic '${topic}'`;
  try {
    await jsm.consumers.info(o.stream, name);
    await jsm.consumers.update(o.stream, name, { ack_wait: nanos(o.ackWaitMs), max_ack_pending: o.maxAckPending, description });
    return false;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await jsm.consumers.add(o.stream, {
    durable_name: name, description, filter_subject: filter, ack_policy: 'explicit' as ConsumerConfig['ack_policy'],
    ack_wait: nanos(o.ackWaitMs), max_ack_pending: o.maxAckPending, max_deliver: -1,
    // Events published from now on; a handler's retries are only ever for it, so all of them.
    deliver_policy: (retries ? 'all' : 'new') as ConsumerConfig['deliver_policy'],
  });
  return true;
}

/** A "no such stream/consumer" answer of the JetStream API. */
export function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; status?: unknown; name?: unknown };
  return e !== null && typeof e === 'object' && (e.status === 404 || e.name === 'StreamNotFoundError' || e.name === 'ConsumerNotFoundError' ||
    e.code === 10059 || e.code === 10014);
}
