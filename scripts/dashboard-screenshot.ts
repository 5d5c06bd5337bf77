/**
 * The README's dashboard screenshot: a bus under a steady load, a handler
 * whose circuit opens, a few dead letters, the page in headless Chromium.
 *   npx tsx scripts/dashboard-screenshot.ts [docs/dashboard.png]
 */
import { chromium } from 'playwright-core';
import { ResilientMessageBus, workerHandler } from '../src/index.js';

const out = process.argv[2] ?? 'docs/dashboard.png';
const bus = new ResilientMessageBus({ logger: false, circuitBreaker: { minimumCalls: 20, recoveryTimeoutMs: 60_000 } });
bus.registerEventHandler('orders.created', workerHandler(new URL('../bench/perf_handlers.mjs', import.meta.url), 'work'), { name: 'book' });
bus.registerEventHandler('orders.*', (e) => {
  if ((e.payload as { i: number }).i % 97 === 0) throw new Error(`stock service timeout for order ${(e.payload as { i: number }).i}`);
}, { name: 'reserveStock' });
bus.registerEventHandler('payments.charge', () => {
  throw new Error('payment gateway unreachable (ECONNREFUSED 10.0.0.7:443)');
}, { name: 'chargeCard' });
await bus.start();
const dashboard = await bus.dashboard({ port: 0, sampleMs: 500, showPayloads: true });
let running = true;
let i = 0;
const load = (async () => {
  while (running) {
    const t0 = performance.now();
    // ~20k events/s in bursts, plus a payment now and then.
    for (let k = 0; k < 2000; k++, i++) if (!bus.publish(k % 2 ? 'orders.created' : 'orders.shipped', { i, sku: `sku-${i % 50}` })) await bus.publishAsync('orders.created', { i });
    if (i % 20_000 < 2000) bus.publish('payments.charge', { order: i, amount: 42.5 });
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (performance.now() - t0))));
  }
})();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
await page.goto(dashboard.url);
await new Promise((r) => setTimeout(r, 20_000));
await page.click('#dlq-refresh');
await page.waitForSelector('#dlq-rows tbody tr[data-id]');
await page.click('#dlq-rows tbody tr[data-id]');
await page.waitForSelector('#dlq-detail #dlq-payload');
await page.screenshot({ path: out, fullPage: true });
running = false;
await load;
await browser.close();
await dashboard.close();
await bus.stop();
console.error(`wrote ${out}`);
