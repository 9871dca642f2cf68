// The framework ceiling: Koa answering a fixed three-key JSON body, on the same
// Node and machine as vaultgate, with as many processes as vaultgate runs
// (argv[3], through Node's cluster module as vaultgate does). Nothing can be
// faster than this through Koa.
import cluster from 'node:cluster';
import Koa from 'koa';

const [port, workers = 1] = process.argv.slice(2).map(Number) as [number, number?];
if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill();
    process.exit(0);
  });
} else {
  const app = new Koa();
  const body = { DB_PASSWORD: 'x'.repeat(24), API_KEY: 'y'.repeat(24), SIGNING_KEY: 'z'.repeat(24) };
  app.use((ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = body;
  });
  app.listen(port, '127.0.0.1');
}
