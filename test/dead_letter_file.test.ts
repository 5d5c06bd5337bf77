/**
 * The dead-letter file (issue 9): acknowledged entries are never lost while
 * other processes read it, one owner at a time (lock file), file modes,
 * corrupt lines quarantined, a large file loaded without stalling the event
 * loop, rotation, deletion of dead segments and compaction. Replay and the
 * in-memory bounds: dead_letter_replay.test.ts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DeadLetterEntry } from '../src/index.js';
import {
  addRecord, escape, expectNoStall, failing, HANDLERS, loopWatch, modeOf, poll, publishEach, ringbus, root, run, segments,
  tempFiles, usesBuiltCli,
} from './fixtures/dlq_test_kit.js';
import { busFixture, INLINE_ONLY_POOL, memoryLogger } from './helpers.js';

const { fresh, dir } = tempFiles();

// Every handler here runs inline: no worker thread to start.
const setup = busFixture({ pool: INLINE_ONLY_POOL });
usesBuiltCli();

describe('dead-letter file: ownership and durability', () => {
  it('never loses an acknowledged entry while other processes read it, and while it rotates, deletes dead segments and replays', async () => {
    const path = fresh('storm');
    const stopFile = `${path}.stop`;
    let healthy = false;
    const succeeded = new Set<string>();
    const { bus } = setup({ retry: false, deadLetter: { path, capacity: 50, maxFileBytes: 16 * 1024 } });
    bus.registerEventHandler('orders', (e) => {
      const p = e.payload as { n: number };
      if (!healthy || p.n % 2 === 1) throw new Error(`order ${p.n} failed`);
      succeeded.add(e.id);
    }, { name: 'book' });
    const acked = new Map<string, DeadLetterEntry>();
    bus.on('dead-letter', (e) => acked.set(e.id, e));
    await bus.start();

    let published = 0;
    const storm = async (ms: number): Promise<void> => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        for (let i = 0; i < 10; i++) bus.publish('orders', { n: published++, pad: 'x'.repeat(150) });
        await bus.drain();
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await storm(10);
    const reader = run([path, stopFile], { script: join(root, 'test/fixtures/dlq_reader_loop.ts') });
    await poll(async () => existsSync(`${stopFile}.ready`), 'the reader process runs');
    await storm(1000);
    // A replay from another process while this bus owns the file is refused, naming the owner.
    const [refused] = await Promise.all([ringbus(['dlq', 'replay', '--path', path, '--handlers', HANDLERS]), storm(1000)]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(new RegExp(`^ringbus: dead-letter file ${escape(path)} is in use by process ${process.pid}\\b`));
    // Replay in this bus while new dead letters keep coming: even orders now succeed, odd ones fail again.
    healthy = true;
    const before = new Map(acked);
    const [replayed] = await Promise.all([bus.deadLetters.replay(), storm(1000)]);
    const evenBefore = [...before.values()].filter((e) => (e.event.payload as { n: number }).n % 2 === 0).length;
    expect(replayed).toBe(evenBefore);
    await writeFile(stopFile, '');
    const readerResult = await reader;
    await bus.stop();

    expect(readerResult.code, readerResult.stderr).toBe(0);
    const seen = JSON.parse(readerResult.stdout) as { runs: number; counts: number[]; failures: string[] };
    expect(seen.failures).toEqual([]);
    expect(seen.runs).toBeGreaterThanOrEqual(4);
    for (const c of seen.counts) expect(c).toBeLessThanOrEqual(acked.size);

    // What the file holds now: every acknowledged entry that was not replayed successfully, in its latest version.
    const listed = await ringbus(['dlq', 'list', '--path', path, '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const inFile = new Map((JSON.parse(listed.stdout) as DeadLetterEntry[]).map((e) => [e.id, e]));
    const expected = [...acked.values()].filter((e) => !succeeded.has(e.event.id));
    expect(acked.size).toBeGreaterThan(1000);
    expect([...inFile.keys()].sort()).toEqual(expected.map((e) => e.id).sort());
    for (const e of expected) expect(inFile.get(e.id)).toMatchObject({ attempts: e.attempts, lastAttemptAt: e.lastAttemptAt, error: e.error });
    for (const f of await segments(path)) expect(await modeOf(join(dir(), f))).toBe(0o600);
    expect(existsSync(`${path}.lock`)).toBe(false);
  }, 60_000);

  it('refuses a second owner at start(), naming the path and the pid, and takes over a stale lock with a warning', async () => {
    const path = fresh('owned');
    const first = setup({ deadLetter: { path } }).bus;
    await first.start();
    expect(await modeOf(`${path}.lock`)).toBe(0o600);
    const second = setup({ deadLetter: { path } }).bus;
    await expect(second.start()).rejects.toThrow(
      new RegExp(`deadLetter\\.path ${escape(path)}: dead-letter file ${escape(path)} is in use by this process \\(${process.pid}`));
    await first.stop();
    await second.start(); // the owner is gone: a failed start can be retried
    await second.stop();

    // A lock held by another running process; then, once it exited, a stale one.
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await once(other, 'spawn');
    await writeFile(`${path}.lock`, `${other.pid}\n${hostname()}\nsomeone\n`);
    const third = setup({ deadLetter: { path } }).bus;
    await expect(third.start()).rejects.toThrow(new RegExp(`is in use by process ${other.pid} \\(lock file ${escape(path)}\\.lock\\)`));
    other.kill();
    await once(other, 'exit');
    const log = memoryLogger();
    const fourth = setup({ logger: log, deadLetter: { path } }).bus;
    await fourth.start();
    expect(log.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toContainEqual(
      `dead-letter file ${path}: took over the lock of process ${other.pid}, which is not running`);
    expect((await readFile(`${path}.lock`, 'utf8')).split('\n')[0]).toBe(String(process.pid));
  });

  it('creates its files 0600 and keeps an existing file\'s mode through rotation, restart and compaction', async () => {
    const path = fresh('mode');
    const a = setup({ retry: false, deadLetter: { path, maxFileBytes: 4096 } }).bus;
    a.registerEventHandler('t', failing, { name: 'h' });
    await a.start();
    await publishEach(a, 40); // one dead letter per write: a segment is sealed between writes
    await a.stop();
    const made = await segments(path);
    expect(made.length).toBeGreaterThan(2);
    for (const f of made) expect(await modeOf(join(dir(), f))).toBe(0o600);
    const b = setup({ retry: false, deadLetter: { path, maxFileBytes: 4096 } }).bus;
    await b.start();
    b.deadLetters.clear(); // everything dead: compacted into an empty file
    await poll(async () => (await segments(path)).length === 1 && (await stat(path)).size === 0, 'compacted into one empty file');
    await b.stop();
    expect(await modeOf(path)).toBe(0o600);

    const shared = fresh('mode640');
    await writeFile(shared, `${addRecord('old')}\n`);
    await chmod(shared, 0o640);
    const c = setup({ retry: false, deadLetter: { path: shared, maxFileBytes: 4096 } }).bus;
    c.registerEventHandler('t', failing, { name: 'h' });
    await c.start();
    await publishEach(c, 40);
    const rotated = await segments(shared);
    expect(rotated.length).toBeGreaterThan(2);
    for (const f of rotated) expect(await modeOf(join(dir(), f))).toBe(0o640);
    c.deadLetters.clear();
    await poll(async () => (await segments(shared)).length === 1, 'compacted into one file');
    await c.stop();
    expect(await modeOf(shared)).toBe(0o640);
  });
});

describe('dead-letter file: loading', () => {
  it('quarantines corrupt lines naming file and line, tolerates a BOM and blank lines, and keeps every valid entry', async () => {
    const path = fresh('corrupt');
    const lines = [
      `\ufeff${addRecord('a')}`, // 1: a byte-order mark
      '', // 2
      'null', // 3
      '{"op":"add"}', // 4
      addRecord('b'), // 5
      '{"op":"add","entry":{"id":5}}', // 6
      'this is not json', // 7
      '   \r', // 8
      JSON.stringify({ op: 'replayed', ids: 'some' }), // 9
      addRecord('c').replace('"attempts":1', '"attempts":"1"'), // 10
      JSON.stringify({ op: 'replayed', ids: ['b'] }), // 11
      `${addRecord('d')}\r`, // 12: CRLF
      '{"op":"add","entry":{"id":"torn', // 13: cut short by a crash (no newline)
    ];
    await writeFile(path, lines.join('\n'));
    const log = memoryLogger();
    const bus = setup({ logger: log, deadLetter: { path } }).bus;
    await bus.start();
    expect(bus.deadLetters.list().map((e) => e.id)).toEqual(['a', 'd']);
    const warnings = log.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    const bad = [3, 4, 6, 7, 9, 10, 13];
    expect(warnings).toHaveLength(bad.length);
    bad.forEach((line, i) => expect(warnings[i]).toMatch(new RegExp(`^dead-letter file ${escape(path)} line ${line} skipped: .*\\(copied to ${escape(path)}\\.corrupt\\)$`)));
    expect(warnings[0]).toMatch(/skipped: not a dead-letter record \(null\)/);
    expect(warnings[2]).toMatch(/an add whose entry\.id is not a non-empty string/);
    expect(warnings[5]).toMatch(/an add whose entry\.attempts is not a number/);
    expect(warnings[3]).toMatch(/skipped: not JSON/);
    expect(warnings[6]).toMatch(/an incomplete last line/);

    const quarantined = (await readFile(`${path}.corrupt`, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { file: string; line: number; text: string });
    expect(quarantined.map((q) => [q.file, q.line, q.text])).toEqual(bad.map((line) => [path, line, lines[line - 1]]));
    expect(await modeOf(`${path}.corrupt`)).toBe(0o600);

    // Compacted on start: a restart finds only valid lines, and quarantines nothing twice.
    await bus.stop();
    const quiet = memoryLogger();
    const again = setup({ logger: quiet, deadLetter: { path } }).bus;
    await again.start();
    expect(again.deadLetters.list().map((e) => e.id)).toEqual(['a', 'd']);
    expect(quiet.lines.filter((l) => l.level === 'warn')).toEqual([]);
    expect((await readFile(`${path}.corrupt`, 'utf8')).trimEnd().split('\n')).toHaveLength(bad.length);
  });

  it('reports many corrupt lines in one summary after the first ten, and refuses a file that is not a dead-letter file', async () => {
    const path = fresh('many-corrupt');
    await writeFile(path, [addRecord('ok'), ...Array.from({ length: 30 }, () => 'null'), ''].join('\n'));
    const log = memoryLogger();
    const bus = setup({ logger: log, deadLetter: { path } }).bus;
    await bus.start();
    expect(bus.deadLetters.size).toBe(1);
    const warnings = log.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warnings).toHaveLength(11);
    expect(warnings[10]).toBe(`dead-letter file ${path}: 20 more corrupt lines skipped (30 in all), copied to ${path}.corrupt`);

    const notOurs = fresh('notes');
    const text = 'shopping list\nmilk\n';
    await writeFile(notOurs, text);
    const refused = setup({ deadLetter: { path: notOurs } }).bus;
    await expect(refused.start()).rejects.toThrow(
      `cannot load dead letters from deadLetter.path ${notOurs}: ${notOurs} is not a dead-letter file: line 1 is not JSON`);
    expect(await readFile(notOurs, 'utf8')).toBe(text);
    expect(existsSync(`${notOurs}.corrupt`)).toBe(false);
    expect(existsSync(`${notOurs}.lock`)).toBe(false);
  });

  it('loads 100k entries in slices without stalling the event loop, keeping the newest in memory', async () => {
    const path = fresh('big');
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) lines.push(addRecord(`k${i}`));
    await writeFile(path, `${lines.join('\n')}\n`);
    const bus = setup({ deadLetter: { path } }).bus; // capacity 1000
    const watch = loopWatch();
    await bus.start();
    const loop = watch.stop();
    expect(bus.deadLetters.size).toBe(1000);
    expect(bus.deadLetters.evicted).toBe(99_000);
    expect(bus.deadLetters.list()[0].id).toBe('k99000');
    expectNoStall(loop);
  }, 30_000);

  it('rotates at maxFileBytes, deletes segments whose entries all ended, and compacts when most of the log is garbage', async () => {
    const path = fresh('rotate');
    let healthy = false;
    const log = memoryLogger();
    const bus = setup({ logger: log, retry: false, deadLetter: { path, maxFileBytes: 4096 } }).bus;
    bus.registerEventHandler('t', (e) => {
      if (!healthy) failing(e);
    }, { name: 'h' });
    await bus.start();
    await publishEach(bus, 60);
    const made = await segments(path);
    expect(made.length).toBeGreaterThan(5);
    for (const f of made.slice(0, -1)) expect((await stat(join(dir(), f))).size).toBeLessThan(4096 + 1024);
    healthy = true;
    // The oldest 20 replayed: the segments holding only them go (the first one emptied, the others deleted).
    const all = bus.deadLetters.list();
    for (const e of all.slice(0, 20)) expect(await bus.deadLetters.replay(e.id)).toBe(1);
    expect((await stat(path)).size).toBe(0);
    const left = await segments(path);
    expect(left.length).toBeLessThan(made.length);
    expect(left).not.toContain(`${basename(path)}.1`);
    // All but the oldest of the rest replayed: most of the log is garbage, so it is compacted into the first file.
    // At once, not one by one: their marks land together, so the compaction sees one live entry (one by one, a
    // compaction could start midway and keep several, with too little garbage after it for another).
    const replayed = await Promise.all(all.slice(21).map((e) => bus.deadLetters.replay(e.id)));
    expect(replayed).toEqual(all.slice(21).map(() => 1));
    await poll(async () => log.lines.some((l) => /compacted: 1 live entries kept/.test(l.msg ?? '')), 'the log is compacted');
    await bus.stop();
    // The first file holds the one live entry; marks written meanwhile are in the newest segment.
    expect((await readFile(path, 'utf8')).trimEnd().split('\n')).toEqual([expect.stringContaining(`"id":"${all[20].id}"`)]);
    expect((await segments(path)).length).toBeLessThanOrEqual(2);
    const restarted = setup({ deadLetter: { path, maxFileBytes: 4096 } }).bus;
    await restarted.start();
    expect(restarted.deadLetters.list()).toEqual([all[20]]);
  });
});
