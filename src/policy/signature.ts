import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import type { BundleSigningAlgorithm } from '../config/config.js';
import { BundleSignatureError } from './errors.js';

/**
 * OPA's bundle signatures (bundle/sign.go, verify.go, hash.go, keys.go), with jose:
 * `/.signatures.json` is `{"signatures": [JWT]}`, one JWT whose payload lists every
 * file of the bundle as `{name, hash, algorithm}` (names without the leading slash),
 * plus `keyid` (deprecated, the header's `kid` wins) and an optional `scope`.
 */
export const SIGNATURES_FILE = '.signatures.json';

/** A bundle file as a signature lists it. */
export interface SignedFile {
  name: string;
  hash: string;
  algorithm: string;
}

/** What signs or checks: the key, its name, and OPA's algorithm name. */
export interface BundleKey {
  key: KeyObject | Uint8Array;
  keyId: string;
  algorithm: BundleSigningAlgorithm;
}

/** How a bundle is checked: the key, and the scope its signature must carry (OPA: empty unless configured). */
export interface BundleVerifier extends BundleKey {
  scope: string;
}

// OPA also offers MD5 and SHA-1; they are refused here: a listed hash must bind the file.
const FILE_HASHES: Record<string, string> = {
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  'SHA-512-224': 'sha512-224',
  'SHA-512-256': 'sha512-256',
};

const isHmac = (algorithm: BundleSigningAlgorithm) => algorithm.startsWith('HS');
const base = (name: string) => name.slice(name.lastIndexOf('/') + 1);

/** The files OPA hashes as JSON documents rather than bytes (bundle.IsStructuredDoc). */
const isStructured = (name: string) => ['data.json', '.manifest', 'data.yaml', 'data.yml'].includes(base(name));

/** A lone surrogate half. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/**
 * Go's decoder turns a lone surrogate into U+FFFD before hashing, but the data
 * vaultgate loads would keep it: two different documents would share one hash.
 * So such a document is refused, never repaired.
 */
const wellFormed = (s: string) => {
  if (LONE_SURROGATE.test(s)) throw new BundleSignatureError('a JSON file of the bundle holds a lone UTF-16 surrogate');
  return s;
};

/** Go's json.Encoder (SetEscapeHTML(false)) on a string: JSON.stringify's escapes, and U+2028/U+2029 escaped too. */
const goString = (s: string) =>
  JSON.stringify(wellFormed(s))
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

/** Go sorts map keys by their UTF-8 bytes, not by UTF-16 code units as JavaScript does. */
const byUtf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * The text OPA hashes for a JSON document (hash.go's walk): objects with their keys
 * in byte order, no whitespace, strings as Go encodes them, and numbers exactly as
 * written, since OPA decodes them as json.Number. By hand: JSON.parse turns `1.0`
 * into `1` and loses large integers, and no library writes this form (RFC 8785's
 * canonical JSON orders keys and writes numbers differently). The text is checked
 * with JSON.parse first, so the walk below only ever sees valid JSON.
 */
export function canonicalJson(text: string): string {
  const source = text.replace(/^\uFEFF/, '');
  JSON.parse(source);
  let at = 0;
  const space = () => {
    while (/[ \t\n\r]/.test(source[at] ?? '')) at++;
  };
  const string = (): string => {
    const start = at++;
    while (source[at] !== '"') at += source[at] === '\\' ? 2 : 1;
    at++;
    return JSON.parse(source.slice(start, at)) as string;
  };
  const value = (): string => {
    space();
    const c = source[at];
    if (c === '{') {
      at++;
      const members = new Map<string, string>();
      space();
      while (source[at] !== '}') {
        space();
        const key = wellFormed(string());
        space();
        at++; // ':'
        members.set(key, value());
        space();
        if (source[at] === ',') at++;
        space();
      }
      at++;
      return `{${[...members.keys()]
        .sort(byUtf8)
        .map((k) => `${goString(k)}:${members.get(k)}`)
        .join(',')}}`;
    }
    if (c === '[') {
      at++;
      const items: string[] = [];
      space();
      while (source[at] !== ']') {
        items.push(value());
        space();
        if (source[at] === ',') at++;
      }
      at++;
      return `[${items.join(',')}]`;
    }
    if (c === '"') return goString(string());
    const literal = /-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null/y;
    literal.lastIndex = at;
    const m = literal.exec(source)!;
    at += m[0].length;
    return m[0];
  };
  return value();
}

/** OPA's hash of one bundle file, as hex: JSON documents in their canonical form, other files as bytes. */
export function fileHash(name: string, content: Buffer, algorithm = 'SHA-256'): string {
  const hash = FILE_HASHES[algorithm];
  if (!hash)
    throw new BundleSignatureError(
      `${name}: the signature hashes it with ${algorithm}; vaultgate accepts ${Object.keys(FILE_HASHES).join(', ')}`,
    );
  if (!isStructured(name)) return createHash(hash).update(content).digest('hex');
  if (base(name) !== 'data.json' && base(name) !== '.manifest') {
    // OPA's Wasm bundles carry their data as data.json; vaultgate reads nothing else.
    throw new BundleSignatureError(
      `${name}: vaultgate checks and reads a bundle's data from data.json only; build the bundle with opa build --target wasm`,
    );
  }
  let canonical: string;
  try {
    canonical = canonicalJson(content.toString('utf8'));
  } catch (err) {
    throw new BundleSignatureError(`${name} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return createHash(hash).update(canonical).digest('hex');
}

/** The signature file's name in a bundle, OPA matching it by base name anywhere; at most one. */
function signaturesFile(files: Map<string, Buffer>): string | undefined {
  const found = [...files.keys()].filter((name) => base(name) === SIGNATURES_FILE);
  if (found.length > 1)
    throw new BundleSignatureError(`the bundle holds more than one ${SIGNATURES_FILE}: ${found.join(', ')}`);
  return found[0];
}

/**
 * Checks a bundle's signature as OPA does: exactly one JWT, signed with the
 * configured key and algorithm, naming that key (or none), carrying the expected
 * scope, and listing every file of the bundle with its hash, no more, no fewer.
 */
export async function verifyBundle(files: Map<string, Buffer>, verifier: BundleVerifier): Promise<void> {
  const signatures = signaturesFile(files);
  if (!signatures)
    throw new BundleSignatureError(
      `the bundle is not signed (no ${SIGNATURES_FILE}), and a verification key is configured`,
    );
  let tokens: unknown;
  try {
    tokens = (JSON.parse(files.get(signatures)!.toString('utf8')) as { signatures?: unknown }).signatures;
  } catch (err) {
    throw new BundleSignatureError(`${signatures} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(tokens) || tokens.length !== 1 || typeof tokens[0] !== 'string') {
    throw new BundleSignatureError(`${signatures} must hold exactly one JWT in "signatures"`);
  }
  const token = tokens[0];
  let payload: { files?: unknown; keyid?: unknown; scope?: unknown };
  try {
    const header = decodeProtectedHeader(token);
    payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as typeof payload;
    // OPA's agent picks the key by the header's kid, or else the payload's deprecated keyid; empty is none.
    const named = header.kid || (typeof payload.keyid === 'string' ? payload.keyid : '');
    if (named && named !== verifier.keyId) {
      throw new BundleSignatureError(
        `the bundle is signed with key id "${named}", not "${verifier.keyId}" (VAULTGATE_POLICY_VERIFICATION_KEY_ID)`,
      );
    }
  } catch (err) {
    if (err instanceof BundleSignatureError) throw err;
    throw new BundleSignatureError(`${signatures} does not hold a JWT: ${(err as Error).message}`, { cause: err });
  }
  try {
    // From here on only the verified bytes are read (the same segment as above, now proven).
    const verified = await compactVerify(token, verifier.key, { algorithms: [verifier.algorithm] });
    payload = JSON.parse(Buffer.from(verified.payload).toString('utf8')) as typeof payload;
  } catch (err) {
    throw new BundleSignatureError(
      `the bundle's signature does not verify with the ${verifier.algorithm} key "${verifier.keyId}": ${(err as Error).message}`,
      { cause: err },
    );
  }
  if ((payload.scope ?? '') !== verifier.scope) {
    throw new BundleSignatureError(
      `the signature's scope ${JSON.stringify(payload.scope ?? '')} is not ${JSON.stringify(verifier.scope)} (VAULTGATE_POLICY_VERIFICATION_SCOPE)`,
    );
  }
  if (!Array.isArray(payload.files)) throw new BundleSignatureError('the signature lists no files');
  const signed = new Map<string, SignedFile>();
  for (const file of payload.files as Array<Partial<SignedFile> | null>) {
    if (typeof file?.name !== 'string' || typeof file.hash !== 'string' || typeof file.algorithm !== 'string') {
      throw new BundleSignatureError('the signature lists a file without a name, hash and algorithm');
    }
    signed.set(file.name, file as SignedFile);
  }
  for (const [name, content] of files) {
    if (name === signatures) continue;
    const listed = signed.get(name);
    if (!listed) throw new BundleSignatureError(`${name} is in the bundle but not in its signature`);
    if (fileHash(name, content, listed.algorithm) !== listed.hash.toLowerCase()) {
      throw new BundleSignatureError(`${name} does not match the hash its signature lists (changed after signing)`);
    }
    signed.delete(name);
  }
  if (signed.size > 0)
    throw new BundleSignatureError(`the signature lists ${[...signed.keys()].join(', ')}, not in the bundle`);
}

/** The `.signatures.json` OPA writes for these files: every file hashed with SHA-256, one JWT over the list. */
export async function signBundle(files: Map<string, Buffer>, signer: BundleKey): Promise<Buffer> {
  const listed: SignedFile[] = [...files]
    .filter(([name]) => base(name) !== SIGNATURES_FILE)
    .map(([name, content]) => ({ name, hash: fileHash(name, content), algorithm: 'SHA-256' }));
  // `keyid` in the payload too, as OPA writes it, for agents that still read it there.
  const token = await new CompactSign(Buffer.from(JSON.stringify({ files: listed, keyid: signer.keyId })))
    .setProtectedHeader({ alg: signer.algorithm, kid: signer.keyId, typ: 'JWT' })
    .sign(signer.key);
  return Buffer.from(`${JSON.stringify({ signatures: [token] }, null, 1)}\n`);
}

const CURVES: Partial<Record<BundleSigningAlgorithm, string>> = {
  ES256: 'prime256v1',
  ES384: 'secp384r1',
  ES512: 'secp521r1',
};

/** The key's type must fit the algorithm: said at start, not at the first bundle. */
function fitting(key: KeyObject, algorithm: BundleSigningAlgorithm, variable: string): KeyObject {
  const type = key.asymmetricKeyType;
  const curve = CURVES[algorithm];
  const fits = curve
    ? type === 'ec' && key.asymmetricKeyDetails?.namedCurve === curve
    : type === 'rsa' || (type === 'rsa-pss' && algorithm.startsWith('PS'));
  if (!fits) {
    const what = type === 'ec' ? `an ec key on ${key.asymmetricKeyDetails?.namedCurve}` : `an ${type} key`;
    throw new BundleSignatureError(
      `${variable}: ${what} cannot be used with ${algorithm}; set the algorithm the bundles are signed with (OPA's --signing-alg)`,
    );
  }
  return key;
}

/**
 * A key from its file's bytes, as OPA reads its key files: for HS* the bytes are the
 * shared secret, as they are (a trailing newline is part of it); otherwise `parse`
 * reads the PEM, which `what` names for the error.
 */
function keyFrom(
  pem: Buffer,
  algorithm: BundleSigningAlgorithm,
  variable: string,
  what: string,
  parse: (pem: Buffer) => KeyObject,
): KeyObject | Uint8Array {
  if (isHmac(algorithm)) {
    if (pem.length === 0) throw new BundleSignatureError(`${variable}: the HMAC secret file is empty`);
    return new Uint8Array(pem);
  }
  try {
    return fitting(parse(pem), algorithm, variable);
  } catch (err) {
    if (err instanceof BundleSignatureError) throw err;
    throw new BundleSignatureError(`${variable}: not ${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** A verification key, as OPA reads --verification-key: the HMAC secret, or a PEM public key, certificate, or private key. */
export const verificationKey = (pem: Buffer, algorithm: BundleSigningAlgorithm, variable: string) =>
  keyFrom(pem, algorithm, variable, 'a PEM public key, certificate or private key', (bytes) => {
    const text = bytes.toString('utf8');
    return text.includes('-----BEGIN CERTIFICATE-----') ? new X509Certificate(bytes).publicKey : createPublicKey(text);
  });

/** A signing key, as OPA reads --signing-key: the HMAC secret, or a PEM private key. */
export const signingKey = (pem: Buffer, algorithm: BundleSigningAlgorithm, variable: string) =>
  keyFrom(pem, algorithm, variable, 'a PEM private key', createPrivateKey);
