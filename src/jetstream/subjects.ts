/**
 * Names on the NATS side: a topic's subject, a handler's durable consumer.
 * Topics are dot-separated like subjects, so a topic's tokens stay tokens
 * (`orders.created` → `<prefix>.ev.orders.created`). Any other character
 * (not a letter, digit or one of `_-=:@+`; so whitespace, `*`, `>` and `~`
 * itself) is written `~XX` per UTF-8 byte, and an empty token (`a..b`) `~`:
 * subjects stay safe for every NATS tool, and distinct topics stay distinct.
 */
import { createHash } from 'node:crypto';

const PLAIN = /^[A-Za-z0-9_\-=:@+]+$/;

function token(t: string): string {
  if (t.length === 0) return '~';
  if (PLAIN.test(t)) return t;
  let out = '';
  for (const ch of t) {
    if (PLAIN.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `~${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The subject tokens of a topic. */
export function topicSubject(topic: string): string {
  return topic.split('.').map(token).join('.');
}

/** Where events of `topic` are published. */
export function eventSubject(prefix: string, topic: string): string {
  return `${prefix}.ev.${topicSubject(topic)}`;
}

/**
 * What a handler registered on `topic` consumes: its subject, where a
 * wildcard pattern's `*` and `>` tokens stay NATS wildcards (both have the
 * same token semantics) and its literal tokens are written as above.
 */
export function subscriptionSubject(prefix: string, topic: string): string {
  return `${prefix}.ev.${topic.split('.').map((t) => (t === '*' || t === '>' ? t : token(t))).join('.')}`;
}

/** Where retries of one handler's deliveries wait for their next attempt (`consumer`: its consumerName()). */
export function retrySubject(prefix: string, consumer: string): string {
  return `${prefix}.rt.${consumer}`;
}

/** The stream's subjects for a prefix: events, and retries waiting for their backoff. */
export function streamSubjects(prefix: string): string[] {
  return [`${prefix}.ev.>`, `${prefix}.rt.>`];
}

/** A handler's retry consumer: the same handler's name with a suffix. */
export const retryConsumerName = (consumer: string): string => `${consumer}_rt`;

/**
 * The durable consumer of one handler on one topic (any process that
 * registers that handler name on that topic competes on it): readable part
 * and a hash of both names, so different topics or handlers never share one.
 */
export function consumerName(prefix: string, topic: string, handler: string): string {
  const hash = createHash('sha256').update(`${prefix}\0${topic}\0${handler}`).digest('hex').slice(0, 16);
  const readable = handler.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 32);
  return `rb_${readable}_${hash}`;
}
