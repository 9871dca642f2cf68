import { writeBundle } from '../policy/bundle.js';
import { PolicyBuildError } from '../policy/errors.js';

/** `vaultgate policy build [DIR]`: compile the policy directory into its prebuilt bundle. */
export async function policyBuild(dir: string, opaPath: string): Promise<number> {
  try {
    const file = await writeBundle(dir, opaPath);
    process.stdout.write(`wrote ${file}\n`);
    return 0;
  } catch (err) {
    if (err instanceof PolicyBuildError) {
      process.stderr.write(`vaultgate: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
