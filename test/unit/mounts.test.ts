import test from 'ava';
import { DEFAULT_MOUNT_TYPES } from '../../src/config/config.js';
import { listedMountOf, mountRefusal } from '../../src/secrets/mounts.js';

test('a path belongs to the longest listed mount whose tree holds it, whole segments only', (t) => {
  t.is(listedMountOf('kv/ci/app', ['kv']), 'kv');
  t.is(listedMountOf('team/kv/app', ['team', 'team/kv']), 'team/kv');
  t.is(listedMountOf('kv1/app', ['kv']), undefined, 'kv does not hold kv1');
  t.is(listedMountOf('database/creds/ci', ['kv']), undefined);
});

test("by type, KV and credential engines pass; transit, plugins and Vault's own engines do not", (t) => {
  const byType = { types: DEFAULT_MOUNT_TYPES };
  t.is(mountRefusal({ path: 'kv/', type: 'kv' }, byType), undefined);
  t.is(mountRefusal({ path: 'database/', type: 'database' }, byType), undefined);
  t.regex(mountRefusal({ path: 'transit/', type: 'transit' }, byType)!, /mount transit\/ is a transit engine/);
  t.regex(mountRefusal({ path: 'custom/', type: 'vault-plugin-secrets-x' }, byType)!, /not one references may name/);
  t.regex(mountRefusal({ path: 'team/sys/', type: 'ns_system' }, byType)!, /Vault's own ns_system engine/);
});

test("by list, only the listed mount paths pass, and never Vault's own engines", (t) => {
  const listed = { mounts: ['kv', 'transit'] };
  t.is(mountRefusal({ path: 'kv/', type: 'kv' }, listed), undefined);
  t.is(mountRefusal({ path: 'transit/', type: 'transit' }, listed), undefined, 'listing a mount is choosing it');
  t.regex(mountRefusal({ path: 'kv1/', type: 'kv' }, listed)!, /mount kv1\/ is not in VAULTGATE_ALLOWED_MOUNTS/);
  t.regex(mountRefusal({ path: 'kv/', type: 'cubbyhole' }, listed)!, /Vault's own cubbyhole engine/);
});
