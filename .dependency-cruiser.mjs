/**
 * The layering of textshift, enforced by `npm run lint` (dependency-cruiser). Every folder of src/ sits in one
 * tier; a module may import from its own folder and from folders of lower tiers only. Folders of the same tier do
 * not import each other, except the few ordered pairs listed in `peers`, so no folder-level loop can form. The
 * edges (src/cli, functions/, containers/, cdk/) sit on top; tools (scripts/, bench/, test/) may use anything.
 */
const tiers = [
  ['format', 'random', 'errors'], // plain helpers with no textshift imports
  ['store', 'config'], // BlobStore; experiment schema and deployment contract
  ['matrix', 'run'], // CSR/npy/Features; object keys, run records, stage graph, Reporter
  ['data', 'features', 'model'], // reading datasets; BoW and encoders; the MLP engines
  ['evaluate', 'train', 'models'], // metrics; training loop, checkpoints, TensorBoard logs; importing and fetching pre-trained encoders
  ['cost', 'report'], // prices, cost model, planner, billing; rendering the report
  ['workflow'], // stages, the local runner
  ['cli'], // the command line (an edge inside src/)
];
/** Same-tier imports that are allowed, as [from, to]: each points one way only. */
const peers = [
  ['config', 'store'],
  ['run', 'matrix'],
  ['features', 'data'],
  ['train', 'evaluate'],
  ['report', 'cost'],
];

const rules = [];
tiers.forEach((tier, rank) => {
  const above = tiers.slice(rank + 1).flat();
  for (const folder of tier) {
    const forbidden = [...above, ...tier.filter((f) => f !== folder && !peers.some(([a, b]) => a === folder && b === f))];
    rules.push({
      name: `layer-${folder}`,
      comment: `src/${folder} is in tier ${rank} (${tier.join(', ')}): it may import only its own folder, lower tiers and allowed peers`,
      severity: 'error',
      from: { path: `^src/${folder}/` },
      to: { path: `^src/(${forbidden.join('|')})/` },
    });
  }
});

export default {
  forbidden: [
    ...rules,
    {
      name: 'src-imports-no-edge',
      comment: 'the core never imports an edge or a tool (functions/, containers/, cdk/, scripts/, bench/, test/)',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(functions|containers|cdk|scripts|bench|test)/' },
    },
    {
      name: 'container-not-functions',
      comment: 'the trainer image carries src/ and its entry only, never the Lambda handlers',
      severity: 'error',
      from: { path: '^containers/' },
      to: { path: '^(functions|cdk)/' },
    },
    {
      name: 'functions-not-cdk',
      comment: 'handlers are bundled alone; infrastructure code is not part of them',
      severity: 'error',
      from: { path: '^functions/' },
      to: { path: '^(cdk|containers|scripts|bench|test)/' },
    },
    {
      name: 'integration-not-unit',
      comment: 'test projects are separate: integration and e2e tests share test/support, never unit-test files',
      severity: 'error',
      from: { path: '^test/(integration|e2e)/' },
      to: { path: '^test/unit/' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycles anywhere in the project',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that does not resolve is a typo or a missing dependency',
      severity: 'error',
      from: { path: '^(src|functions|containers|cdk|scripts|bench)/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Type-only imports count: a type import from above is still an upward arrow.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    combinedDependencies: false,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|cdk\\.out|dist|out|\\.cache)/|^src/model/kernels/assembly/' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
