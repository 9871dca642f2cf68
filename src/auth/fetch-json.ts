import type { ErrorCode } from '../errors.js';
import { TokenError } from './errors.js';

export interface FetchJsonOptions {
  timeoutMs: number;
  /** Larger answers are refused while they stream in, not after. */
  maxBytes: number;
  /** Error code for the TokenError thrown on failure. */
  code: ErrorCode;
}

/**
 * GET a small JSON document from an issuer (discovery, JWKS), bounded in time
 * and size so a slow or hostile issuer cannot hold requests or memory.
 */
export async function fetchJson(url: URL, options: FetchJsonOptions): Promise<unknown> {
  const fail = (why: string) => new TokenError(options.code, `GET ${url.href} failed: ${why}`);
  const signal = AbortSignal.timeout(options.timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'error', headers: { Accept: 'application/json' } });
  } catch (err) {
    throw fail(signal.aborted ? `no answer within ${options.timeoutMs} ms` : (err as Error).message);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw fail(`HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > options.maxBytes) {
    await response.body?.cancel();
    throw fail(`answer of ${declared} bytes is over the ${options.maxBytes}-byte limit`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body ?? []) {
      size += chunk.byteLength;
      // Leaving the loop cancels the rest of the body.
      if (size > options.maxBytes) break;
      chunks.push(chunk);
    }
  } catch {
    throw fail(signal.aborted ? `no answer within ${options.timeoutMs} ms` : 'the answer broke off');
  }
  if (size > options.maxBytes) throw fail(`answer is over the ${options.maxBytes}-byte limit`);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw fail(`not JSON: ${(err as Error).message}`);
  }
}
