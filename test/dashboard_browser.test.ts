/**
 * The dashboard page in headless Chromium (Debian's, driven by
 * playwright-core; `.ci/run` installs it where missing): charts move while a
 * load runs, an open circuit shows, a dead letter is inspected and replayed
 * with the token (and refused without), and an untrusted payload stays text.
 */
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { MessageBus, type DashboardServer } from '../src/index.js';
import { quietLogger } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0123';
let browser: Browser;
const buses: MessageBus[] = [];
const servers: DashboardServer[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not at ${CHROMIUM}: .ci/run installs Debian's chromium (or set CHROMIUM_PATH)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  await Promise.all(buses.splice(0).map((b) => b.stop({ drain: false })));
});

async function setup(options: Parameters<MessageBus['dashboard']>[0] = {}): Promise<{ bus: MessageBus; page: Page; control: { failing: boolean } }> {
  const control = { failing: true };
  const bus = new MessageBus({
    logger: quietLogger(), pool: { minThreads: 0 }, retry: { maxRetries: 0 }, deadLetter: {},
    circuitBreaker: { minimumCalls: 5, failureRateThreshold: 0.5, recoveryTimeoutMs: 60_000, hold: false },
  });
  buses.push(bus);
  bus.registerEventHandler('orders', (e) => {
    if (control.failing && (e.payload as { fail?: boolean }).fail) throw new Error('card declined');
  }, { name: 'book' });
  bus.registerEventHandler('payments', () => {
    throw new Error('gateway down');
  }, { name: 'charge' });
  await bus.start();
  const d = await bus.dashboard({ port: 0, sampleMs: 200, ...options });
  servers.push(d);
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(d.url);
  await page.waitForSelector('#live:text("live")');
  expect(errors).toEqual([]);
  return { bus, page, control };
}

describe('dashboard page in Chromium', () => {
  it('charts the load live and shows a failing handler\'s circuit open', async () => {
    const { bus, page } = await setup();
    const points = async (): Promise<number> => Number(await page.getAttribute('#throughput svg polyline[data-series="published"]', 'data-points'));
    const before = await points();
    const t0 = Date.now();
    for (let i = 0; Date.now() - t0 < 1200; i++) {
      bus.publish('orders', { i });
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await page.waitForFunction((n) => Number(document.querySelector('#throughput svg polyline[data-series="published"]')?.getAttribute('data-points')) >= n + 3, before);
    expect(await points()).toBeGreaterThanOrEqual(before + 3);
    for (let i = 0; i < 20; i++) bus.publish('payments', { i });
    await bus.drain();
    expect(bus.circuitState('charge', 'payments')).toBe('open');
    await page.waitForSelector('#circuits tbody tr[data-handler="charge"][data-topic="payments"] td.state:text("open")');
    expect(await page.textContent('#circuits tbody tr[data-handler="book"][data-topic="orders"] td.state')).toBe('closed');
  });

  it('inspects a dead letter, refuses a replay without the token, replays with it, and shows an untrusted payload as text', async () => {
    const { bus, page, control } = await setup({ token: TOKEN, actions: true, showPayloads: true });
    await page.evaluate(() => {
      (window as unknown as { pwned: boolean }).pwned = false;
    });
    const payload = { fail: true, note: '<img src=x onerror="window.pwned=true"><script>window.pwned=true</script>' };
    bus.publish('orders', payload);
    await bus.drain();
    const [entry] = bus.deadLetters.list();
    await page.click('#dlq-refresh');
    await page.click(`#dlq-rows tbody tr[data-id="${entry.id}"]`);
    await page.waitForSelector('#dlq-detail #dlq-payload');
    expect(await page.textContent('#dlq-payload')).toContain('<script>window.pwned=true</script>');
    expect(await page.evaluate(() => (window as unknown as { pwned: boolean }).pwned)).toBe(false);
    expect(await page.locator('#dlq-detail script, #dlq-detail img').count()).toBe(0);

    await page.click('#replay-one');
    await page.waitForFunction(() => /token/i.test(document.querySelector('#action-status')?.textContent ?? ''));
    expect(bus.deadLetters.size).toBe(1);
    // The handler works again: with the token, the replay succeeds and the entry goes.
    control.failing = false;
    await page.fill('#token', TOKEN);
    await page.click('#replay-one');
    await page.waitForFunction(() => /replayed 1/i.test(document.querySelector('#action-status')?.textContent ?? ''));
    expect(bus.deadLetters.size).toBe(0);

    control.failing = true;
    bus.publish('orders', { fail: true });
    await bus.drain();
    const [second] = bus.deadLetters.list();
    await page.click('#dlq-refresh');
    await page.click(`#dlq-rows tbody tr[data-id="${second.id}"]`);
    await page.click('#delete-one');
    await page.waitForFunction(() => /deleted/i.test(document.querySelector('#action-status')?.textContent ?? ''));
    expect(bus.deadLetters.size).toBe(0);
  });
});
