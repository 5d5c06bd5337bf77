/**
 * The scheduler of delayed events (src/scheduler/): never early, due order,
 * one timer, cancel, capacity and waiting for room, the bus having no room
 * or throwing; the schedule file: durable across a restart (late ones at
 * once, settled ones not again, unsettled ones again), corrupt and torn
 * lines, the lock, compaction; and a large backlog handed over in slices.
 * Runs on a fake clock; files in a fresh temp dir.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../src/logger.js';
import { RF_BINARY, RF_ENCODED, RF_UNDEFINED } from '../src/protocol/record.js';
import { MAX_TIMER_MS, systemClock, type SchedulerClock } from '../src/scheduler/clock.js';
import type { ScheduledEvent } from '../src/scheduler/scheduled_event.js';
import { addLine } from '../src/scheduler/schedule_line.js';
import { Scheduler, type SchedulerOptions } from '../src/scheduler/scheduler.js';

const T0 = 1_700_000_000_000;

class FakeClock implements SchedulerClock {
  t = T0;
  readonly timers = new Map<number, { at: number; ms: number; fn: () => void }>();
  #next = 1;
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const h = this.#next++;
    this.timers.set(h, { at: this.t + ms, ms, fn });
    return h;
  }
  clearTimer(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Moves time forward, firing each timer at its time, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
  /** Fires every timer now, without moving time (a timer firing early). */
  fireEarly(): void {
    const all = [...this.timers.values()];
    this.timers.clear();
    for (const x of all) x.fn();
  }
}

interface LogLine { level: string; obj: unknown; msg: string }
function memoryLog(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: unknown, msg?: string): void => void lines.push({ level, obj, msg: msg ?? '' });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const json = (v: unknown): Uint8Array => new Uint8Array(Buffer.from(JSON.stringify(v)));
const ev = (id: string, dueAt: number, o: Partial<ScheduledEvent> = {}): ScheduledEvent => ({
  id, topic: 't', dueAt, publishedAt: T0, priority: 'normal', sessionId: undefined, headers: undefined, payloadFlags: 0, payload: json({ id }), ...o,
});
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ringbus-sched-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(dir, `s${++n}.jsonl`);
const running: Scheduler[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

/** A scheduler whose bus takes everything (or what `accept` says) and records it with the clock's time. */
function make(o: Partial<SchedulerOptions> & { accept?: (e: ScheduledEvent) => boolean } = {}) {
  const clock = (o.clock as FakeClock | undefined) ?? new FakeClock();
  const log = memoryLog();
  const got: { id: string; at: number; e: ScheduledEvent }[] = [];
  const s = new Scheduler({
    capacity: 1000, log, clock, whenRoom: () => turn(), ...o,
    due: o.due ?? ((e) => {
      if (o.accept !== undefined && !o.accept(e)) return false;
      got.push({ id: e.id, at: clock.now(), e });
      return true;
    }),
  });
  running.push(s);
  return { s, clock, log, got, ids: () => got.map((g) => g.id) };
}
const lines = (path: string): string[] => readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');

describe('scheduler: timing and order', () => {
  it('hands events over in due order (ties: in order added), never before their time, on one timer', async () => {
    const { s, clock, got, ids } = make();
    await s.start();
    s.add(ev('c', T0 + 3000));
    s.add(ev('a1', T0 + 1000));
    s.add(ev('d', T0 + 5000));
    s.add(ev('a2', T0 + 1000));
    for (let i = 0; i < 100; i++) s.add(ev(`x${i}`, T0 + 10_000 + i));
    expect(clock.timers.size).toBe(1); // one timer for 104 events, armed for the earliest
    expect([...clock.timers.values()][0].at).toBe(T0 + 1000);
    clock.advance(999);
    expect(got).toEqual([]);
    clock.advance(1);
    expect(ids()).toEqual(['a1', 'a2']);
    clock.advance(1999);
    expect(ids()).toEqual(['a1', 'a2']);
    clock.advance(20_000);
    await until(() => got.length === 104, 'all are handed over');
    expect(ids().slice(0, 5)).toEqual(['a1', 'a2', 'c', 'd', 'x0']);
    expect(ids().slice(4)).toEqual(Array.from({ length: 100 }, (_, i) => `x${i}`));
    for (const g of got) expect(g.at).toBeGreaterThanOrEqual(g.e.dueAt);
    expect(s.size).toBe(0);
    expect(clock.timers.size).toBe(0);
  });

  it('a timer that fires early re-arms for the rest; a wait beyond a Node timer is armed in steps', async () => {
    const { s, clock, got } = make();
    await s.start();
    s.add(ev('soon', T0 + 500));
    clock.fireEarly();
    expect(got).toEqual([]);
    expect([...clock.timers.values()].map((x) => x.at)).toEqual([T0 + 500]);
    clock.advance(500);
    expect(got.map((g) => g.at)).toEqual([T0 + 500]);

    const far = T0 + 500 + 3 * MAX_TIMER_MS + 7;
    s.add(ev('far', far));
    expect([...clock.timers.values()][0].ms).toBe(MAX_TIMER_MS);
    clock.advance(3 * MAX_TIMER_MS);
    expect(got.length).toBe(1);
    clock.advance(7);
    expect(got.map((g) => [g.id, g.at])).toEqual([['soon', T0 + 500], ['far', far]]);
    const t = systemClock.setTimer(() => {}, 60_000) as NodeJS.Timeout;
    expect(t.hasRef()).toBe(false); // a delayed event alone does not keep the process alive
    systemClock.clearTimer(t);
  });

  it('keeps events added before start, and arms them at start', async () => {
    const { s, clock, got } = make();
    s.add(ev('early', T0 + 10));
    clock.advance(100);
    expect(got).toEqual([]);
    await s.start();
    await until(() => got.length === 1, 'the late one is handed over');
    expect(got[0].at).toBe(T0 + 100);
  });

  it('cancel removes a pending event only; list, count and get see pending ones in due order', async () => {
    const { s, clock, ids } = make();
    await s.start();
    for (let i = 9; i >= 0; i--) s.add(ev(`e${i}`, T0 + 100 * (i + 1), { topic: i % 2 === 0 ? 'even' : 'odd' }));
    expect(s.list().map((e) => e.id)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9']);
    expect(s.list({ topic: 'odd', offset: 1, limit: 2 }).map((e) => e.id)).toEqual(['e3', 'e5']);
    expect(s.list({ offset: 8, limit: 5 }).map((e) => e.id)).toEqual(['e8', 'e9']);
    expect(s.count({ topic: 'even' })).toBe(5);
    expect(() => s.list({ limit: -1 })).toThrow(/list limit must be an integer from 0 to 10000 \(got -1\)/);
    expect(s.cancel('e0')).toBe(true); // the head: its timer fires early and re-arms
    expect(s.cancel('e0')).toBe(false);
    expect(s.cancel('nope')).toBe(false);
    expect(s.get('e0')).toBeUndefined();
    expect(s.get('e1')?.dueAt).toBe(T0 + 200);
    clock.advance(200);
    expect(ids()).toEqual(['e1']);
    expect(s.cancel('e1')).toBe(false); // handed over already
    expect(s.cancel('e5')).toBe(true);
    clock.advance(1000);
    await until(() => ids().length === 8, 'the rest are handed over');
    expect(ids()).toEqual(['e1', 'e2', 'e3', 'e4', 'e6', 'e7', 'e8', 'e9']);
  });
});

describe('scheduler: room', () => {
  it('is bounded by capacity; waiters get room first come first served, false on timeout or stop', async () => {
    const { s, clock, got } = make({ capacity: 2 });
    await s.start();
    expect(s.add(ev('a', T0 + 100))).toBe(true);
    expect(s.add(ev('b', T0 + 200))).toBe(true);
    expect(s.hasRoom()).toBe(false);
    expect(s.add(ev('c', T0 + 50))).toBe(false); // nothing kept
    expect(s.get('c')).toBeUndefined();
    const order: string[] = [];
    const w1 = s.waitForRoom(10_000).then((r) => order.push(`w1:${r}`));
    const w2 = s.waitForRoom(10_000).then((r) => order.push(`w2:${r}`));
    const w3 = s.waitForRoom(10).then((r) => order.push(`w3:${r}`));
    const w4 = s.waitForRoom(10_000).then((r) => order.push(`w4:${r}`));
    clock.advance(10);
    await turn();
    expect(order).toEqual(['w3:false']);
    clock.advance(90); // 'a' is handed over: one slot
    await w1; // what a woken caller does next runs before anyone else is woken
    expect(order).toEqual(['w3:false', 'w1:true']);
    expect(s.add(ev('d', T0 + 1000))).toBe(true);
    expect(s.cancel('b')).toBe(true);
    await w2;
    expect(order).toEqual(['w3:false', 'w1:true', 'w2:true']);
    expect(s.add(ev('e', T0 + 1000))).toBe(true);
    await s.stop();
    await Promise.all([w3, w4]);
    expect(order).toEqual(['w3:false', 'w1:true', 'w2:true', 'w4:false']);
    expect(got.map((g) => g.id)).toEqual(['a']);
    expect(s.add(ev('f', T0))).toBe(false);
    expect(await s.waitForRoom(5)).toBe(false);
    expect(() => s.waitForRoom(Number.NaN)).toThrow(/waitForRoom timeoutMs must be a number >= 0 or Infinity \(got NaN\)/);
  });

  it('when the bus has no room, waits for it and retries the same event first; a due() that throws keeps its event', async () => {
    let room = false;
    let roomCalls = 0;
    let release!: () => void;
    let throwFor = 'x';
    const { s, clock, log, ids } = make({
      accept: (e) => {
        if (e.id === throwFor) throw new Error('encoding exploded');
        return room;
      },
      whenRoom: () => {
        roomCalls++;
        return new Promise<void>((r) => (release = r));
      },
    });
    await s.start();
    s.add(ev('x', T0 + 10));
    s.add(ev('y', T0 + 20));
    clock.advance(20);
    expect(ids()).toEqual([]);
    const err = log.lines.find((l) => l.level === 'error');
    expect(err?.msg).toMatch(/^scheduled event x \(topic 't'\): handing it to the bus threw \(encoding exploded\); kept, tried again in 10 ms$/);
    expect(err?.obj).toMatchObject({ id: 'x', topic: 't' });
    expect(s.size).toBe(2);
    await until(() => roomCalls === 1, 'it waits for room');
    throwFor = '';
    release();
    await until(() => clock.timers.size === 1, 'the backoff is armed');
    clock.advance(10); // backoff over: x tried again, no room: y must wait behind it
    await until(() => roomCalls === 2, 'it waits for room again');
    expect(ids()).toEqual([]);
    room = true;
    release();
    await until(() => ids().length === 2, 'both are handed over');
    expect(ids()).toEqual(['x', 'y']);
  });
});

describe('scheduler: the schedule file', () => {
  const kinds = (): ScheduledEvent[] => [
    ev('json', T0 + 1000, { payload: json({ a: [1, 'é', null], n: 1.5 }), headers: { trace: 'abc' }, sessionId: 's-1', priority: 'high' }),
    ev('oddjson', T0 + 1000, { payload: new Uint8Array(Buffer.from('{"b":1, "1":2.0}')) }), // parse + stringify would change it
    ev('bin', T0 + 1000, { payloadFlags: RF_BINARY, payload: new Uint8Array([0, 255, 10, 13]) }),
    ev('undef', T0 + 1000, { payloadFlags: RF_UNDEFINED, payload: new Uint8Array(0) }),
    ev('enc', T0 + 1000, { payloadFlags: RF_ENCODED, payload: new Uint8Array([1, 2, 3]) }),
  ];

  it('is durable across a restart: pending ones delivered (late ones at once), settled ones not again, unsettled ones again', async () => {
    const path = freshPath();
    const a = make({ path, codec: 'structured' });
    expect(a.s.add(ev('pre', T0 + 50))).toBe(true); // before start: written after what the file holds
    await a.s.start();
    for (const e of kinds()) a.s.add(e);
    a.s.add(ev('settled', T0 + 100));
    a.s.add(ev('unsettled', T0 + 200));
    a.s.add(ev('cancelled', T0 + 300));
    a.s.add(ev('later', T0 + 5000));
    await Promise.all(['pre', 'json', 'settled', 'unsettled', 'cancelled', 'later'].map((id) => a.s.durable(id)));
    expect(lines(path).length).toBe(10); // durable means in the file
    a.clock.advance(200);
    expect(a.ids()).toEqual(['pre', 'settled', 'unsettled']);
    a.s.settled('settled');
    a.s.settled('pre');
    expect(a.s.unsettled).toBe(1);
    expect(a.s.cancel('cancelled')).toBe(true);
    await a.s.stop();
    expect(existsSync(`${path}.lock`)).toBe(false);

    const clock = new FakeClock();
    clock.t = T0 + 2000;
    const b = make({ path, clock, codec: 'structured' });
    await b.s.start();
    await until(() => b.got.length === 6, 'the late ones are handed over');
    expect(b.ids()).toEqual(['unsettled', 'json', 'oddjson', 'bin', 'undef', 'enc']);
    for (const g of b.got) expect(g.at).toBe(T0 + 2000);
    const byId = new Map(b.got.map((g) => [g.id, g.e]));
    for (const e of kinds()) expect(byId.get(e.id)).toEqual(e); // payload bytes, flags, headers exactly
    expect(b.s.list().map((e) => e.id)).toEqual(['later']);
    clock.advance(2999);
    expect(b.got.length).toBe(6);
    clock.advance(1);
    expect(b.ids().at(-1)).toBe('later');
  });

  it('group commit: one tick of adds is one write and one fsync, durable() resolves after it; a failed write rejects naming the path', async () => {
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const { datasync, write } = proto;
    const seen: string[] = [];
    let failNext = false;
    vi.spyOn(proto, 'datasync').mockImplementation(async function (this: FileHandle) {
      seen.push('fsync');
      await datasync.call(this);
      seen.push('fsynced');
    });
    vi.spyOn(proto, 'write').mockImplementation(function (this: FileHandle, ...args: unknown[]) {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error('no space left on device'));
      }
      seen.push('write');
      return (write as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    } as typeof proto.write);
    try {
      const path = freshPath();
      const { s, log } = make({ path });
      await s.start();
      for (let i = 0; i < 100; i++) s.add(ev(`x${i}`, T0 + 1000));
      await Promise.all(Array.from({ length: 100 }, (_, i) => s.durable(`x${i}`).then(() => seen.push('durable'))));
      expect(seen.slice(0, 4)).toEqual(['write', 'fsync', 'fsynced', 'durable']);
      expect(seen.filter((x) => x === 'fsync').length).toBe(1);

      failNext = true;
      s.add(ev('bad', T0 + 1000));
      expect(s.cancel('x0')).toBe(true); // its mark fails with the add, and goes with the next write
      await expect(s.durable('bad')).rejects.toThrow(`schedule file ${path}: could not write 2 lines (no space left on device): not durable`);
      expect(log.lines.filter((l) => l.level === 'error').map((l) => l.obj)).toEqual([{ path, err: 'no space left on device' }]);
      expect(s.get('bad')).toBeDefined(); // still pending in this process: cancel() it for "rejected means not scheduled"
      s.add(ev('good', T0 + 1000));
      await s.durable('good');
      await s.stop();
      const b = make({ path });
      await b.s.start();
      const ids = b.s.list().map((e) => e.id);
      expect(ids.length).toBe(100);
      expect(ids).toContain('good');
      expect(ids).not.toContain('x0');
      expect(ids).not.toContain('bad');
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('a bus of another codec leaves encoded events in the file; durable() rejects after a stop before start', async () => {
    const path = freshPath();
    const a = make({ path, codec: '/x/codec.mjs#msgpack' });
    await a.s.start();
    a.s.add(ev('enc', T0 + 10, { payloadFlags: RF_ENCODED, payload: new Uint8Array([9]) }));
    a.s.add(ev('plain', T0 + 10));
    await a.s.stop();
    const b = make({ path, codec: 'structured' });
    b.clock.t = T0 + 100;
    await b.s.start();
    await until(() => b.got.length === 1, 'the plain one is handed over');
    expect(b.ids()).toEqual(['plain']);
    expect(b.log.lines.some((l) => l.level === 'warn' && /1 pending event was stored by a codec this bus's codec \(structured\) cannot decode/.test(l.msg))).toBe(true);
    b.s.settled('plain');
    await b.s.stop();
    const c = make({ path, codec: '/y/moved.mjs#msgpack' }); // a custom codec decodes another custom codec's bytes
    c.clock.t = T0 + 100;
    await c.s.start();
    await until(() => c.got.length === 1, 'the encoded one is handed over');
    expect(c.ids()).toEqual(['enc']);

    const d = make({ path: freshPath() });
    d.s.add(ev('never', T0 + 10));
    const written = d.s.durable('never');
    await d.s.stop();
    await expect(written).rejects.toThrow(/schedule file .* was closed before it was opened: not written/);
  });

  it('skips a corrupt line and a torn last line with warnings naming them, keeps them aside, and compacts them away', async () => {
    const path = freshPath();
    const good = (id: string): string => addLine(ev(id, T0 + 10), undefined);
    writeFileSync(path, `${good('A')}\n{"op":"add","id":"B","topic":7}\nnot json at all\n${good('C')}\n{"op":"done","ids":["unknown"]}\n${good('D').slice(0, 40)}`);
    const { s, log, clock, ids } = make({ path });
    clock.t = T0 + 100;
    await s.start();
    await until(() => ids().length === 2, 'A and C are handed over');
    expect(ids()).toEqual(['A', 'C']);
    const warns = log.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warns).toEqual([
      `schedule file ${path} line 2 skipped: an add whose topic is not a non-empty string (copied to ${path}.corrupt)`,
      expect.stringMatching(new RegExp(`^schedule file ${path.replace(/[.\\/]/g, '\\$&')} line 3 skipped: not JSON \\(`)),
      `schedule file ${path} line 6 skipped: an incomplete last line (a write cut short) (copied to ${path}.corrupt)`,
    ]);
    const aside = lines(`${path}.corrupt`).map((l) => JSON.parse(l) as { line: number; text: string });
    expect(aside.map((r) => [r.line, r.text])).toEqual([[2, '{"op":"add","id":"B","topic":7}'], [3, 'not json at all'], [6, good('D').slice(0, 40)]]);
    s.add(ev('E', T0 + 10_000));
    await s.durable('E');
    await until(() => lines(path).every((l) => !l.includes('"B"') && !l.startsWith('not')), 'the compaction at start');
    await s.stop(); // A and C were handed over, not settled: they stay
    expect(lines(path).map((l) => JSON.parse(l) as { op: string; id?: string }).filter((o) => o.op === 'add').map((o) => o.id)).toEqual(['A', 'C', 'E']);

    const again = make({ path });
    await again.s.start();
    expect(again.log.lines.filter((l) => l.level === 'warn')).toEqual([]);
    expect(again.s.list().map((e) => e.id)).toEqual(['A', 'C', 'E']);
  });

  it('refuses a file that is not a schedule file, and leaves it as it is', async () => {
    const path = freshPath();
    writeFileSync(path, 'hello, world\nsecond line\n');
    const { s } = make({ path });
    await expect(s.start()).rejects.toThrow(`${path} is not a schedule file: line 1 is not JSON`);
    expect(readFileSync(path, 'utf8')).toBe('hello, world\nsecond line\n');
  });

  it('has one owner: a lock held by a live process is a clear error; a stale one is taken over', async () => {
    const path = freshPath();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      writeFileSync(`${path}.lock`, `${child.pid}\n${hostname()}\ntoken\n`);
      const a = make({ path });
      await expect(a.s.start()).rejects.toThrow(`schedule file ${path} is in use by process ${child.pid} (lock file ${path}.lock); one bus at a time owns it`);
      child.kill();
      await new Promise((r) => child.once('exit', r));
      await a.s.start(); // the failed start is tried again: the owner is gone now
      const b = make({ path });
      await expect(b.s.start()).rejects.toThrow(new RegExp(`is in use by this process \\(${process.pid}`));
    } finally {
      child.kill();
    }
  });

  it('compaction keeps exactly the live entries: pending and handed over but unsettled', async () => {
    const path = freshPath();
    const { s, clock, ids } = make({ path, compactMinBytes: 1 });
    await s.start();
    for (let i = 0; i < 30; i++) s.add(ev(`e${i}`, T0 + 10 * (i + 1), { payload: json({ i, pad: 'p'.repeat(100) }) }));
    await s.durable('e29');
    clock.advance(200); // e0…e19 handed over
    expect(ids().length).toBe(20);
    for (let i = 0; i < 18; i++) s.settled(`e${i}`); // e18, e19 unsettled
    for (const id of ['e20', 'e21', 'e22']) expect(s.cancel(id)).toBe(true);
    const live = ['e18', 'e19', ...Array.from({ length: 7 }, (_, i) => `e${23 + i}`)];
    await until(() => lines(path).length === live.length, 'the file is compacted');
    expect(lines(path).map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(live);
    s.add(ev('after', T0 + 100_000));
    await s.durable('after');
    await s.stop();
    const again = make({ path });
    again.clock.t = T0 + 1000;
    await again.s.start();
    await until(() => again.got.length === 9, 'the live ones are handed over');
    expect(again.ids()).toEqual(live);
    expect(again.s.list().map((e) => e.id)).toEqual(['after']);
  });

  it('hands a backlog of 50k late events over in order, in slices that let the loop run', async () => {
    const path = freshPath();
    const count = 50_000;
    let text = '';
    for (let i = 0; i < count; i++) text += `${addLine(ev(`b${i}`, T0 + (i % 1000) * 10 + Math.floor(i / 1000)), undefined)}\n`;
    writeFileSync(path, text);
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    let worstGap = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 1);
    const seenTurns = new Set<number>();
    let prev = -Infinity;
    let inOrder = true;
    let got = 0;
    const clock = new FakeClock();
    clock.t = T0 + 1_000_000;
    const { s } = make({
      path, clock, capacity: 10,
      due: (e) => {
        seenTurns.add(turns);
        if (e.dueAt < prev) inOrder = false;
        prev = e.dueAt;
        got++;
        return true;
      },
    });
    try {
      await s.start(); // loaded in slices too, beyond capacity
      await until(() => got === count, 'the backlog is handed over', 8000);
    } finally {
      clearInterval(ticker);
      clearInterval(probe);
    }
    expect(inOrder).toBe(true);
    expect(seenTurns.size).toBeGreaterThanOrEqual(3); // across several turns of the loop, not one long block
    expect(worstGap).toBeLessThan(250); // generous: slices are ~5 ms; a single block would be far longer on a busy machine too
    expect(s.size).toBe(0);
    expect(s.unsettled).toBe(count);
  });
});
