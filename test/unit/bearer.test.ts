import test from 'ava';
import { extractBearerToken, MAX_TOKEN_BYTES } from '../../src/auth/bearer.js';
import { TokenError } from '../../src/auth/errors.js';
import type { ErrorCode } from '../../src/errors.js';

const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';

test('takes the token from a Bearer header, any case of the scheme', (t) => {
  t.is(extractBearerToken(`Bearer ${jwt}`), jwt);
  t.is(extractBearerToken(`bearer ${jwt}`), jwt);
});

const refused: Array<[string | undefined, ErrorCode]> = [
  [undefined, 'ERR_TOKEN_MISSING'],
  ['', 'ERR_TOKEN_MISSING'],
  ['Bearer', 'ERR_TOKEN_MALFORMED'],
  [`Basic ${jwt}`, 'ERR_TOKEN_MALFORMED'],
  [`Bearer ${jwt} extra`, 'ERR_TOKEN_MALFORMED'],
  [`Bearer ${jwt}.`, 'ERR_TOKEN_MALFORMED'],
  ['Bearer a.b', 'ERR_TOKEN_MALFORMED'],
  ['Bearer a..c', 'ERR_TOKEN_MALFORMED'],
  ['Bearer a.b.c+', 'ERR_TOKEN_MALFORMED'],
  [`Bearer ${'a'.repeat(MAX_TOKEN_BYTES)}.b.c`, 'ERR_TOKEN_TOO_LARGE'],
];

for (const [i, [header, code]] of refused.entries()) {
  test(`case ${i}: ${JSON.stringify(header?.replace(jwt, '<jwt>').slice(0, 40))} is refused with ${code}`, (t) => {
    const err = t.throws(() => extractBearerToken(header), { instanceOf: TokenError });
    t.is(err?.code, code);
  });
}
