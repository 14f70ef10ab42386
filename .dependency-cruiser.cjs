/**
 * The layers of src/ (ARCHITECTURE.md), checked by `npm run lint`. A folder may import its own layer's
 * files and the layers below it, never one above, and no two files may import each other, directly or
 * through others.
 */
const LAYERS = [
  ['base'],
  ['chargebee'],
  ['reliability'],
  ['queue', 'registry', 'remembered'],
  ['observability'],
  ['logout'],
  ['options'],
  ['middleware'],
];

/** `^src/(a|b)/`: the folders of the layers from `from` on. */
const folders = (names) => `^src/(${names.join('|')})/`;

const layerRules = LAYERS.flatMap((layer, i) => {
  const above = LAYERS.slice(i + 1).flat();
  const rules = [];
  if (above.length > 0)
    rules.push({
      name: `layer-${layer.join('-')}`,
      comment: `${layer.join(', ')} may not import a higher layer (${above.join(', ')})`,
      severity: 'error',
      from: { path: folders(layer) },
      to: { path: folders(above) },
    });
  // Folders of one layer stand side by side: none imports another.
  for (const name of layer) {
    const siblings = layer.filter((other) => other !== name);
    if (siblings.length > 0)
      rules.push({
        name: `sibling-${name}`,
        comment: `${name} may not import ${siblings.join(', ')}: they share a layer`,
        severity: 'error',
        from: { path: `^src/${name}/` },
        to: { path: folders(siblings) },
      });
  }
  return rules;
});

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'no two modules may import each other, directly or through others',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'adapters',
      comment: 'the Redis and PostgreSQL stores build on the store contracts only (base, reliability, queue, registry)',
      severity: 'error',
      from: { path: '^src/(redis|postgres)/' },
      to: { path: '^src/(chargebee|remembered|observability|logout|options|middleware|testing)/|^src/[^/]+\\.ts$' },
    },
    {
      name: 'emulator',
      comment: 'the emulator stands apart: it shares only base and the Chargebee types',
      severity: 'error',
      from: { path: '^src/testing/' },
      to: {
        path: '^src/',
        pathNot: '^src/(testing|base)/|^src/chargebee/client\\.ts$',
      },
    },
    {
      name: 'product-not-on-adapters',
      comment: 'nothing of the product imports an adapter or the emulator: they are entry points of their own',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(redis|postgres|testing)/' },
      to: { path: '^src/(redis|postgres|testing)/' },
    },
    {
      name: 'entry-points-on-top',
      comment: 'index.ts and augmentations.ts are the top: no folder imports them',
      severity: 'error',
      from: { path: '^src/[^/]+/' },
      to: { path: '^src/[^/]+\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    includeOnly: '^src/',
  },
};
