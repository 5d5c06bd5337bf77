// An HTTP service whose route does CPU-heavy work through ringbus, keeping its
// event loop free for other requests.
//
//   npm run build && node examples/http-cpu-heavy/server.mjs     (PORT=8080, INLINE=1 to run the work inline)
//   curl 'localhost:8080/render?size=300&iterations=800'  |  curl localhost:8080/metrics  |  curl localhost:8080/healthz
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ResilientMessageBus, loadConfig, workerHandler } from 'ringbus';
import { render } from './handlers.mjs';

const inline = process.env.INLINE === '1';
const quiet = { debug() {}, info() {}, warn: console.warn, error: console.error };
// Pool size, queue and so on come from RINGBUS_* variables or ringbus.config.json, if given.
const { options } = loadConfig({ options: { logger: quiet } });
const bus = new ResilientMessageBus(options);
bus.registerCommandHandler('image.render', inline ? render : workerHandler(new URL('./handlers.mjs', import.meta.url), 'render'));
await bus.start();

const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  try {
    if (url.pathname === '/render') {
      const size = Math.min(2000, Number(url.searchParams.get('size') ?? 200));
      const iterations = Math.min(100_000, Number(url.searchParams.get('iterations') ?? 500));
      if (!(size > 0) || !(iterations > 0)) return send(res, 400, { error: 'size and iterations must be positive numbers' });
      const r = await bus.execute('image.render', { size, iterations }, { timeoutMs: 10_000 });
      return r.success ? send(res, 200, r.result) : send(res, 503, { error: r.error.message, code: r.error.code });
    }
    if (url.pathname === '/metrics') return send(res, 200, await bus.metrics.prometheus(), bus.metrics.registry.contentType);
    if (url.pathname === '/healthz') {
      const { queueSize, backpressureActive } = bus.stats();
      return send(res, 200, {
        status: 'ok',
        mode: inline ? 'inline' : 'workers',
        queueSize,
        backpressureActive,
        eventLoopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      });
    }
    if (url.pathname === '/healthz/reset') {
      loop.reset();
      return send(res, 200, { reset: true });
    }
    return send(res, 404, { error: `no route ${url.pathname}` });
  } catch (err) {
    return send(res, 500, { error: err.message });
  }
});

server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port} (${inline ? 'inline' : 'workers'})`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    server.close();
    await bus.stop({ timeoutMs: 5000 });
    process.exit(0);
  });
}
