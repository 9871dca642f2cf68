// The framework ceiling: Koa answering a fixed three-key JSON body, on the same
// Node and machine as vaultgate. Nothing can be faster than this through Koa.
import { createServer } from 'node:http';
import Koa from 'koa';

const app = new Koa();
const body = { DB_PASSWORD: 'x'.repeat(24), API_KEY: 'y'.repeat(24), SIGNING_KEY: 'z'.repeat(24) };
app.use((ctx) => {
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
});
const server = createServer(app.callback());
server.listen(Number(process.argv[2]), '127.0.0.1', () => process.stdout.write('ready\n'));
