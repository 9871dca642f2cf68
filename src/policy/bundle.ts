import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { create, Parser } from 'tar';
import { OpaMissingError, PolicyBuildError } from './errors.js';
import { runOpa, wasmCapabilities } from './opa-cli.js';
import { SIGNATURES_FILE, signBundle, type BundleKey } from './signature.js';

/** The decision vaultgate asks every policy for. */
export const ENTRYPOINT = 'vaultgate/decision';
/** Where `vaultgate policy build` leaves the compiled bundle, inside the policy directory. */
export const BUNDLE_FILE = 'bundle.tar.gz';

export interface PolicyBundle {
  wasm: Buffer;
  data: unknown;
  /** Hash of the sources the bundle was built from. */
  revision: string;
}

const isSource = (name: string) =>
  (name.endsWith('.rego') && !name.endsWith('_test.rego')) || /^data\.(json|ya?ml)$/.test(name);

/** What a policy directory is made of: its source files, and every directory they were read from. */
interface PolicyTree {
  files: string[];
  directories: string[];
}

/**
 * The policy files and data below `dir`, following symbolic links and skipping
 * hidden names. A Kubernetes ConfigMap volume is exactly that shape: each file a
 * link through `..data` into a hidden, timestamped directory that an update
 * swaps. Read as a plain tree, the data would land under that directory's name.
 */
export async function policyTree(
  dir: string,
  tree: PolicyTree = { files: [], directories: [] },
  seen = new Set<string>(),
): Promise<PolicyTree> {
  const real = await realpath(dir);
  if (seen.has(real)) return tree;
  seen.add(real);
  tree.directories.push(dir);
  for (const name of await readdir(dir)) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info?.isDirectory()) await policyTree(path, tree, seen);
    else if (info?.isFile() && isSource(name)) tree.files.push(path);
  }
  tree.files.sort();
  return tree;
}

const sourceFiles = async (dir: string) => (await policyTree(dir)).files;

/**
 * A digest of everything that goes into the bundle (policy files and data,
 * not tests). It is stored as the bundle's revision, so a prebuilt bundle is
 * known to be current by content, not by file times that copies rewrite.
 */
export async function sourceRevision(dir: string): Promise<string> {
  const files = await sourceFiles(dir);
  if (files.length === 0) {
    throw new PolicyBuildError(`no .rego files in policy directory ${dir}`);
  }
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(relative(dir, file).split(sep).join('/')).update('\0');
    hash.update(await readFile(file)).update('\0');
  }
  return hash.digest('hex');
}

/**
 * Compiles a policy directory to an OPA Wasm bundle (tar.gz bytes).
 * @param revision the sources' revision, when the caller has just computed it
 */
export async function compileBundle(dir: string, opaPath: string, revision?: string): Promise<Buffer> {
  revision ??= await sourceRevision(dir);
  const work = await mkdtemp(join(tmpdir(), 'vaultgate-build-'));
  try {
    const capabilities = join(work, 'capabilities.json');
    const output = join(work, BUNDLE_FILE);
    await writeFile(capabilities, await wasmCapabilities(opaPath));
    // OPA compiles a copy of exactly the files the revision hashes: OPA's loader
    // neither follows linked files nor skips hidden directories (a ConfigMap volume has both).
    const sources = join(work, 'policy');
    for (const file of await sourceFiles(dir)) {
      const target = join(sources, relative(dir, file));
      await mkdir(dirname(target), { recursive: true });
      await copyFile(file, target);
    }
    await runOpa(opaPath, [
      'build',
      '--bundle',
      sources,
      '--target',
      'wasm',
      '--entrypoint',
      ENTRYPOINT,
      '--capabilities',
      capabilities,
      '--revision',
      revision,
      '--output',
      output,
    ]).catch((err: unknown) => {
      // OPA names the files it compiled: name the user's instead.
      if (err instanceof PolicyBuildError)
        throw new PolicyBuildError(err.message.split('\n')[0]!, err.detail?.replaceAll(sources, dir), { cause: err });
      throw err;
    });
    return await readFile(output);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Largest bundle read, compressed or not: a bundle server (or a gzip bomb on it)
 * must not be able to take the memory of every replica. A policy for 20,000
 * repositories is a few megabytes.
 */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/**
 * Every regular file of an OPA bundle archive (tar.gz), by name without the
 * leading slash, as OPA's own tarball loader sees them. A truncated or corrupt
 * archive is an error, never the part of it that arrived.
 */
export async function readArchive(archive: Buffer): Promise<Map<string, Buffer>> {
  if (archive.length > MAX_BUNDLE_BYTES) throw new PolicyBuildError(`the bundle is over ${MAX_BUNDLE_BYTES} bytes`);
  const files = new Map<string, Buffer>();
  let total = 0;
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => {
      parser.abort(err);
      reject(err);
    };
    const parser = new Parser({
      // Bad checksums and broken headers are errors, not warnings to skip past.
      strict: true,
      onReadEntry: (entry) => {
        // OPA reads regular files only; directories and links carry nothing it loads.
        if (entry.type !== 'File' && entry.type !== 'OldFile') {
          entry.resume();
          return;
        }
        const name = entry.path.replace(/^\/+/, '');
        if (name.split('/').includes('..')) {
          fail(new PolicyBuildError(`the bundle holds a file outside itself: ${entry.path}`));
          return;
        }
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => {
          total += c.length;
          if (total > MAX_BUNDLE_BYTES)
            fail(new PolicyBuildError(`the bundle unpacks to over ${MAX_BUNDLE_BYTES} bytes`));
          chunks.push(c);
        });
        entry.on('end', () => {
          if (files.has(name)) fail(new PolicyBuildError(`the bundle holds ${name} twice`));
          files.set(name, Buffer.concat(chunks));
        });
      },
    });
    parser.on('error', reject);
    parser.on('close', () => resolve());
    parser.end(archive);
  });
  return files;
}

/** The parts vaultgate runs, out of a bundle's files: the Wasm, the data, and the manifest's revision. */
export function toPolicyBundle(files: Map<string, Buffer>): PolicyBundle {
  const wasm = files.get('policy.wasm');
  if (!wasm) throw new PolicyBuildError('the bundle holds no policy.wasm: build it with --target wasm');
  const json = (name: string): unknown => {
    try {
      return JSON.parse(files.get(name)!.toString('utf8'));
    } catch (err) {
      throw new PolicyBuildError(`the bundle's ${name} is not JSON`, (err as Error).message, { cause: err });
    }
  };
  const manifest = files.has('.manifest') ? (json('.manifest') as { revision?: unknown }) : {};
  const data = files.has('data.json') ? json('data.json') : {};
  return { wasm, data, revision: typeof manifest.revision === 'string' ? manifest.revision : '' };
}

/** A bundle archive (tar.gz) of these files, named as OPA names them (`/policy.wasm`: its manifest points there). */
export async function writeArchive(files: Map<string, Buffer>): Promise<Buffer> {
  const work = await mkdtemp(join(tmpdir(), 'vaultgate-pack-'));
  try {
    for (const [name, content] of files) {
      const target = join(work, name);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, content);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of create({ gzip: true, cwd: work, portable: true, prefix: '/' }, [...files.keys()]))
      chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Reads the parts vaultgate needs out of an OPA bundle. */
export async function readBundle(archive: Buffer): Promise<PolicyBundle> {
  return toPolicyBundle(await readArchive(archive));
}

export interface LoadBundleResult {
  bundle: PolicyBundle;
  /**
   * `compiled` when OPA built it from the sources now; `prebuilt` when there is no OPA
   * and the directory's bundle.tar.gz declares the sources' revision, which nothing
   * here can check the Wasm against (a signed bundle can).
   */
  source: 'prebuilt' | 'compiled';
}

/**
 * The policy directory as a bundle: compiled from its sources whenever the OPA
 * CLI is there, so what runs is what reviewers read; without OPA, the prebuilt
 * bundle from `vaultgate policy build` while its declared revision matches.
 */
export async function loadBundle(dir: string, opaPath: string): Promise<LoadBundleResult> {
  const revision = await sourceRevision(dir);
  try {
    return { bundle: await readBundle(await compileBundle(dir, opaPath, revision)), source: 'compiled' };
  } catch (err) {
    if (!(err instanceof OpaMissingError)) throw err;
    const prebuiltPath = join(dir, BUNDLE_FILE);
    const prebuilt = await readFile(prebuiltPath).catch(() => undefined);
    if (!prebuilt) throw err;
    const bundle = await readBundle(prebuilt);
    if (bundle.revision !== revision) {
      throw new PolicyBuildError(
        `${prebuiltPath} is older than the policy sources and rebuilding failed`,
        err.message,
        {
          cause: err,
        },
      );
    }
    return { bundle, source: 'prebuilt' };
  }
}

export interface WriteBundleOptions {
  /** The manifest's revision (the policy repository's commit); the sources' hash when absent. */
  revision?: string | undefined;
  /** Where to write; DIR/bundle.tar.gz when absent. */
  output?: string | undefined;
  /** Signs the bundle with this key: OPA's .signatures.json for its files. */
  signer?: BundleKey | undefined;
}

/** `vaultgate policy build`: compile, sign when asked, and write the bundle (by default into the policy directory). */
export async function writeBundle(dir: string, opaPath: string, options: WriteBundleOptions = {}): Promise<string> {
  const target = options.output ?? join(dir, BUNDLE_FILE);
  let archive = await compileBundle(dir, opaPath, options.revision);
  if (options.signer) {
    const files = await readArchive(archive);
    files.set(SIGNATURES_FILE, await signBundle(files, options.signer));
    archive = await writeArchive(files);
  }
  await writeFile(target, archive);
  return target;
}
