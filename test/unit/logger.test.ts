import { Writable } from 'node:stream';
import test from 'ava';
import { createLogger } from '../../src/log/logger.js';

test('credential paths are redacted from whatever is logged whole', (t) => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = createLogger({ destination });
  logger.info(
    {
      authorization: 'Bearer eyJhbGciOi.top',
      request: { headers: { authorization: 'Bearer eyJhbGciOi.nested' } },
      headers: { 'x-vault-token': 'hvs.vault-token' },
      login: { secret_id: 'approle-secret-id', client_token: 'hvs.client-token' },
      token: 'a-token',
      repository: '{kept}',
    },
    'probe',
  );
  const line = lines.join('');
  for (const value of ['eyJhbGciOi', 'hvs.vault-token', 'approle-secret-id', 'hvs.client-token', 'a-token']) {
    t.false(line.includes(value), `${value} is not in the line`);
  }
  t.true(line.includes('[redacted]'));
  t.true(line.includes('{kept}'), 'other fields stay');
});
