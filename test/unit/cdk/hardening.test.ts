// The trainer's hardening, checked where it is declared: the synthesized launch template and compute environment
// (the instances), the image asset's build arguments, and the Dockerfile itself (static: no Docker here).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { BASE_IMAGES, IMDS_FIREWALL_RULE, TRAINER_USER } from '../../../cdk/constructs/training.js';
import { readConfig } from '../../../src/config/deployment.js';
import { CDK_CONTEXT, SYNTH_TIMEOUT, type Synthesized, resourcesOf, synth } from '../../support/cdk-template.js';

const NODE_DIGEST = `sha256:${'ab'.repeat(32)}`;
let synthesized: Synthesized;
beforeAll(() => {
  // Only the Node image's digest: one synth shows a digest passed through and a missing one reported.
  synthesized = synth({ trainerNodeImageDigest: NODE_DIGEST });
}, SYNTH_TIMEOUT);

const only = (type: string) => {
  const all = resourcesOf(synthesized.template, type);
  expect(all, type).toHaveLength(1);
  return all[0]!;
};

describe('trainer instances', () => {
  it('launch from a template that requires IMDSv2 tokens valid for one hop, without the IPv6 endpoint or tags', () => {
    const [, template] = only('AWS::EC2::LaunchTemplate');
    expect((template.LaunchTemplateData as Record<string, unknown>).MetadataOptions).toEqual({
      HttpEndpoint: 'enabled',
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 1,
      HttpProtocolIpv6: 'disabled',
      InstanceMetadataTags: 'disabled',
    });
  });

  it('the compute environment uses that template at its latest version, so a changed template updates it', () => {
    const [templateId] = only('AWS::EC2::LaunchTemplate');
    const [, environment] = only('AWS::Batch::ComputeEnvironment');
    expect((environment.ComputeResources as Record<string, unknown>).LaunchTemplate).toEqual({
      LaunchTemplateId: `ref:${templateId}`,
      Version: `arn:${templateId}`,
    });
  });

  it('boot with the firewall rule that lets only root reach the metadata service, in the MIME multi-part user data Batch requires', () => {
    const [templateId] = only('AWS::EC2::LaunchTemplate');
    const raw = synthesized.template.toJSON().Resources[templateId].Properties.LaunchTemplateData.UserData['Fn::Base64'];
    const [, parts] = raw['Fn::Join'] as [string, (string | { 'Fn::Base64': string })[]];
    const header = parts[0] as string;
    expect(header).toMatch(/^Content-Type: multipart\/mixed; boundary=/);
    expect(header).toContain('Content-Type: text/x-shellscript');
    const script = parts.flatMap((p) => (typeof p === 'string' ? [] : [p['Fn::Base64']])).join('');
    expect(script.split('\n')).toEqual(['#!/bin/bash', IMDS_FIREWALL_RULE]);
    // Every non-root process is refused, on the IPv4 endpoint (the IPv6 one is disabled above), first in OUTPUT.
    expect(IMDS_FIREWALL_RULE).toMatch(/--insert OUTPUT 1 --destination 169\.254\.169\.254 --match owner ! --uid-owner 0 --jump REJECT$/);
  });
});

describe('trainer job', () => {
  it('runs its container as the unprivileged trainer user, whatever the image says', () => {
    const [, definition] = only('AWS::Batch::JobDefinition');
    expect((definition.ContainerProperties as Record<string, unknown>).User).toBe(TRAINER_USER);
    expect(TRAINER_USER).toMatch(/^[1-9]\d*:[1-9]\d*$/);
  });
});

describe('trainer image build', () => {
  const dockerImage = () => {
    const assets = JSON.parse(readFileSync(path.join(synthesized.outdir, `${synthesized.stack.artifactId}.assets.json`), 'utf8'));
    const images = Object.values(assets.dockerImages) as { source: { dockerBuildArgs?: Record<string, string> } }[];
    expect(images).toHaveLength(1);
    return images[0]!.source;
  };

  it('passes each configured base image digest to the Dockerfile as its build argument', () => {
    expect(dockerImage().dockerBuildArgs).toEqual({ [BASE_IMAGES.node.buildArg]: NODE_DIGEST });
  });

  it('warns at synth, naming the context key, when a digest the build needs is missing', () => {
    Annotations.fromStack(synthesized.stack).hasWarning(
      '/Textshift/Training',
      Match.stringLikeRegexp(`set ${BASE_IMAGES.cuda.contextKey} in cdk\\.json or with -c`),
    );
  });

  it('accepts only sha256 digests in the context, naming the key', () => {
    const read = (overrides: Record<string, unknown>) => readConfig((key) => ({ ...CDK_CONTEXT, ...overrides })[key]);
    expect(read({ trainerCudaImageDigest: `sha256:${'0f'.repeat(32)}` }).trainerCudaImageDigest).toBe(`sha256:${'0f'.repeat(32)}`);
    expect(() => read({ trainerCudaImageDigest: '11.2.2-cudnn8-runtime-ubuntu20.04' })).toThrow(
      /context "trainerCudaImageDigest": expected an image digest "sha256:<64 hex digits>"/,
    );
  });
});

/** The Dockerfile's instructions, continuation lines joined and comments dropped, as [keyword, arguments]. */
function instructions(text: string): [string, string][] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
    .map((line) => {
      const [, keyword, rest] = /^\s*(\w+)\s+(.*)$/.exec(line)!;
      return [keyword!.toUpperCase(), rest!.trim()];
    });
}

describe('trainer Dockerfile (static)', () => {
  const dockerfile = readFileSync(new URL('../../../containers/trainer/Dockerfile', import.meta.url), 'utf8');
  const steps = instructions(dockerfile);

  it('pins every base image by digest: a FROM names an earlier stage, an image@sha256:<digest>, or an image@${ARG} the build must set', () => {
    const firstFrom = steps.findIndex(([k]) => k === 'FROM');
    // Global ARGs without a default: an unset one leaves "image@" and the build stops.
    const globalArgs = steps.slice(0, firstFrom).filter(([k]) => k === 'ARG').map(([, a]) => a);
    expect(globalArgs.sort()).toEqual(Object.values(BASE_IMAGES).map((b) => b.buildArg).sort());
    const stages: string[] = [];
    const froms = steps.filter(([k]) => k === 'FROM').map(([, a]) => a);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) {
      const [image, as, stage] = from.split(/\s+/);
      if (!stages.includes(image!)) {
        const pinned = /^[a-z0-9./-]+:[\w.-]+@(sha256:[0-9a-f]{64}|\$\{(\w+)\})$/.exec(image!);
        expect(pinned, `FROM ${from} lacks a digest`).not.toBeNull();
        if (pinned![2]) expect(globalArgs, `FROM ${from}`).toContain(pinned![2]);
      }
      if (as) {
        expect(as.toUpperCase()).toBe('AS');
        stages.push(stage!);
      }
    }
  });

  it('runs the trainer as an unprivileged user (numeric, so no name lookup can turn it into root), the one the job definition names', () => {
    const finalStage = steps.slice(steps.map(([k]) => k).lastIndexOf('FROM'));
    const users = finalStage.filter(([k]) => k === 'USER').map(([, a]) => a);
    expect(users).toEqual([TRAINER_USER]);
    const [uid, gid] = users[0]!.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    // USER comes after everything that needs root, right before the entry point.
    expect(finalStage.at(-2)?.[0]).toBe('USER');
    expect(finalStage.at(-1)?.[0]).toBe('ENTRYPOINT');
    // The user exists in the image with that id.
    expect(finalStage.some(([k, a]) => k === 'RUN' && a.includes(`useradd --uid ${uid} `))).toBe(true);
  });

  it('downloads libtensorflow only with a pinned sha256 checked before it is unpacked, and runs no package install script', () => {
    const args = Object.fromEntries(
      steps.filter(([k, a]) => k === 'ARG' && a.includes('=')).map(([, a]) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]),
    );
    expect(args.LIBTENSORFLOW_URL).toBe('https://storage.googleapis.com/tensorflow/libtensorflow/libtensorflow-gpu-linux-x86_64-2.9.1.tar.gz');
    expect(args.LIBTENSORFLOW_SHA256).toMatch(/^[0-9a-f]{64}$/);
    const runs = steps.filter(([k]) => k === 'RUN').map(([, a]) => a);
    // A command that fetches (curl or wget run, not an apt package of that name).
    const downloads = runs.filter((r) => /(^|&&|;|\|)\s*(curl|wget)\s/.test(r));
    expect(downloads).toHaveLength(1);
    const download = downloads[0]!;
    const order = ['curl ', 'sha256sum --check --strict', 'tar -xzf', 'node-pre-gyp'].map((s) => download.indexOf(s));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(download).toContain('"$LIBTENSORFLOW_SHA256  /tmp/libtensorflow.tar.gz"');
    // The binding is compiled, never fetched pre-built; npm runs no install script that could download anything.
    expect(download).toContain('install --build-from-source');
    for (const r of runs.filter((r) => /\bnpm (ci|install)\b/.test(r))) expect(r).toContain('--ignore-scripts');
    expect(runs.some((r) => /\bnpm rebuild\b/.test(r))).toBe(false);
  });

  it("installs npm packages only from committed lock files (npm ci), the trainer's extras from containers/trainer/package-lock.json", () => {
    const runs = steps.filter(([k]) => k === 'RUN').map(([, a]) => a.replace(/\s+/g, ' '));
    // `npm install` resolves ranges at build time; `npm ci` installs what a lock pins, or fails.
    expect(runs.filter((r) => /\bnpm (install|i|add|update)\b/.test(r))).toEqual([]);
    const copies = steps.filter(([k]) => k === 'COPY').map(([, a]) => a);
    expect(copies).toContain('containers/trainer/package.json containers/trainer/package-lock.json containers/trainer/');
    const trainerInstall = runs.find((r) => r.startsWith('cd containers/trainer '));
    expect(trainerInstall).toMatch(/^cd containers\/trainer && npm ci --omit=dev --ignore-scripts /);
    // Its TensorFlow.js copies go, so tfjs-node-gpu registers its backend on the project's tfjs-core.
    expect(trainerInstall).toContain('find node_modules/@tensorflow -mindepth 1 -maxdepth 1 ! -name tfjs-node-gpu -exec rm -rf {} +');
    expect(copies).toContain('--from=modules /app/containers/trainer/node_modules ./containers/trainer/node_modules');
  });
});

/** A package-lock.json, as far as these checks read it. */
interface Lock {
  lockfileVersion: number;
  packages: Record<string, { version?: string; integrity?: string; link?: boolean; dependencies?: Record<string, string> }>;
}

/** Whether `version` is in `range`, for the range forms a pin uses: `1.2.3`, `^1.2.3` and `~1.2.3`. */
function satisfies(version: string, range: string): boolean {
  const m = /^([\^~]?)(\d+)\.(\d+)\.(\d+)$/.exec(range);
  if (!m) throw new Error(`range "${range}": the trainer's package.json pins versions as 1.2.3, ^1.2.3 or ~1.2.3`);
  const v = version.split('.').map(Number) as [number, number, number];
  const r = [Number(m[2]), Number(m[3]), Number(m[4])] as const;
  const cmp = v[0] - r[0] || v[1] - r[1] || v[2] - r[2];
  if (m[1] === '') return cmp === 0 && /^\d+\.\d+\.\d+$/.test(version);
  if (cmp < 0) return false;
  if (m[1] === '~') return v[0] === r[0] && v[1] === r[1];
  return r[0] > 0 ? v[0] === r[0] : r[1] > 0 ? v[0] === 0 && v[1] === r[1] : v[0] === 0 && v[1] === 0 && v[2] === r[2];
}

describe("trainer's lock file", () => {
  const read = (file: string) => JSON.parse(readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8')) as unknown;
  const pkg = read('containers/trainer/package.json') as { dependencies: Record<string, string> };
  const projectLock = read('package-lock.json') as Lock;
  // Read in each test, so a missing lock fails them (naming the file) without hiding the other checks of this file.
  const trainerLock = () => read('containers/trainer/package-lock.json') as Lock;

  it('is committed, lockfileVersion 2 or later, and pins every dependency of package.json at a version in its range', () => {
    const lock = trainerLock();
    expect(lock.lockfileVersion).toBeGreaterThanOrEqual(2);
    // What npm ci compares: the lock's root package declares the same dependencies as package.json.
    expect(lock.packages['']?.dependencies).toEqual(pkg.dependencies);
    expect(Object.keys(pkg.dependencies)).toContain('@tensorflow/tfjs-node-gpu');
    for (const [name, range] of Object.entries(pkg.dependencies)) {
      const locked = lock.packages[`node_modules/${name}`]?.version;
      expect(locked, `${name} in the lock`).toBeDefined();
      expect(satisfies(locked!, range), `${name} ${locked} in ${range}`).toBe(true);
    }
  });

  it('holds an integrity hash for every package it installs', () => {
    const lock = trainerLock();
    const installed = Object.entries(lock.packages).filter(([path, p]) => path !== '' && !p.link);
    expect(installed.length).toBeGreaterThan(10);
    for (const [path, p] of installed) {
      expect(p.version, path).toMatch(/^\d+\.\d+\.\d+/);
      expect(p.integrity, path).toMatch(/^sha512-[A-Za-z0-9+/]+=*$/);
    }
  });

  it("locks TensorFlow.js at the versions the project's lock pins (the image keeps the project's copies)", () => {
    const lock = trainerLock();
    const tfjs = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/@tensorflow/') && path !== 'node_modules/@tensorflow/tfjs-node-gpu');
    expect(tfjs.map(([path]) => path)).toContain('node_modules/@tensorflow/tfjs-core');
    for (const [path, p] of tfjs.filter(([path]) => !path.slice('node_modules/'.length).includes('/node_modules/'))) {
      expect(projectLock.packages[path]?.version, path).toBe(p.version);
    }
  });
});
