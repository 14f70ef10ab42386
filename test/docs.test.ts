import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Docs that cannot rot: links and anchors resolve, every option of the exported option types has an entry in
 * docs/options.md (and no entry names an option that is gone), every whole program in the docs compiles against
 * the package's source, every excerpt of an example is still in it, and the README stays a landing page.
 * How a code block says what it is: CONTRIBUTING.md, "Documentation".
 */

const root = path.resolve(__dirname, '..');
const docsDir = path.join(root, 'docs');
const docFiles = readdirSync(docsDir)
  .filter((name) => name.endsWith('.md'))
  .map((name) => path.join(docsDir, name));
/** Files whose links are checked. */
const linkedFiles = [
  'README.md',
  'CONTRIBUTING.md',
  'ARCHITECTURE.md',
  'CHANGELOG.md',
  'bench/README.md',
  'examples/demo/README.md',
]
  .map((name) => path.join(root, name))
  .concat(docFiles);
/** Files whose code blocks are checked. */
const codeFiles = [path.join(root, 'README.md'), ...docFiles];

const rel = (file: string): string => path.relative(root, file);

interface CodeBlock {
  /** The fence's info string, such as `ts program`. */
  info: string;
  code: string;
  /** 1-based line of the opening fence. */
  line: number;
}

interface Markdown {
  headings: string[];
  /** The heading text of each level-3 heading. */
  h3: string[];
  links: Array<{ target: string; line: number }>;
  blocks: CodeBlock[];
}

const parsed = new Map<string, Markdown>();

/** Headings, links and fenced code blocks of a Markdown file; nothing inside a fence is a heading or a link. */
function markdown(file: string): Markdown {
  let result = parsed.get(file);
  if (result) return result;
  const lines = readFileSync(file, 'utf8').split('\n');
  result = { headings: [], h3: [], links: [], blocks: [] };
  let fence: { marker: string; block: CodeBlock; body: string[] } | undefined;
  lines.forEach((text, i) => {
    if (fence) {
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(text);
      if (close && close[1][0] === fence.marker[0] && close[1].length >= fence.marker.length) {
        fence.block.code = fence.body.join('\n');
        result?.blocks.push(fence.block);
        fence = undefined;
      } else fence.body.push(text);
      return;
    }
    const open = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(text);
    if (open) {
      fence = { marker: open[1], block: { info: open[2].trim(), code: '', line: i + 1 }, body: [] };
      return;
    }
    const heading = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(text);
    if (heading) {
      result?.headings.push(heading[2]);
      if (heading[1].length === 3) result?.h3.push(heading[2].replace(/`/g, '').trim());
    }
    const prose = text.replace(/(`+)(?:(?!\1)[\s\S])*?\1/g, ''); // inline code is not a link
    for (const link of prose.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g))
      result?.links.push({ target: link[1], line: i + 1 });
  });
  parsed.set(file, result);
  return result;
}

/** GitHub's anchor for a heading: lowercase, punctuation other than `-` and `_` removed, each space a `-`. */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]*>/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors of a Markdown file, with GitHub's `-1`, `-2` suffixes for repeated headings. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const heading of markdown(file).headings) {
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    out.add(count === 0 ? base : `${base}-${count}`);
  }
  return out;
}

/** What a code block is, from its info string: `ts program`, `ts fragment`, `ts excerpt examples/x.ts`. */
function kindOf(block: CodeBlock): { lang: string; kind?: string; source?: string } {
  const [lang = '', kind, source] = block.info.split(/\s+/);
  return { lang, kind, source };
}

const TYPESCRIPT = new Set(['ts', 'typescript']);

// One program for all the checks that need the compiler: the docs' whole programs (as ES modules, in memory,
// beside docs/ so that node_modules resolves) and the option types they reach through the package's source.
const programs = codeFiles.flatMap((file) =>
  markdown(file)
    .blocks.filter((block) => TYPESCRIPT.has(kindOf(block).lang) && kindOf(block).kind === 'program')
    .map((block) => ({
      doc: file,
      block,
      file: path.join(docsDir, `__${path.basename(file, '.md')}-line-${block.line}.mts`),
    })),
);
const virtualFiles = new Map(programs.map((p) => [p.file, p.block.code]));
const compilerOptions: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.Node16,
  moduleResolution: ts.ModuleResolutionKind.Node16,
  lib: ['lib.es2022.d.ts'],
  types: ['node'],
  strict: true,
  esModuleInterop: true,
  skipLibCheck: true,
  noEmit: true,
  paths: {
    'chargebee-portal-logout': [path.join(root, 'src/index.ts')],
    'chargebee-portal-logout/redis': [path.join(root, 'src/redis/index.ts')],
    'chargebee-portal-logout/postgres': [path.join(root, 'src/postgres/index.ts')],
    'chargebee-portal-logout/testing': [path.join(root, 'src/testing/index.ts')],
  },
};
const typesFile = path.join(root, 'src/options/types.ts');

let program: ts.Program;

beforeAll(() => {
  const host = ts.createCompilerHost(compilerOptions, true);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => {
    const text = virtualFiles.get(name);
    return text === undefined ? getSourceFile(name, language, ...rest) : ts.createSourceFile(name, text, language);
  };
  host.fileExists = (name) => virtualFiles.has(name) || fileExists(name);
  host.readFile = (name) => virtualFiles.get(name) ?? readFile(name);
  program = ts.createProgram([typesFile, ...virtualFiles.keys()], compilerOptions, host);
});

/**
 * The options an app can pass, read from the exported types: the properties of `ChargebeePortalLogoutOptions`
 * and, recursively, of the option objects declared in `src/` (`deferred.maxAgeMs`; a record's values as
 * `businessEntities[id].site`). Objects with methods (stores, registries, providers, a logger) are options
 * themselves, not groups of options.
 */
function optionNames(): string[] {
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(typesFile);
  const declaration = source?.statements.find(
    (s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'ChargebeePortalLogoutOptions',
  );
  if (!declaration) throw new Error('ChargebeePortalLogoutOptions is not declared in src/options/types.ts');
  const srcDir = `${path.join(root, 'src').split(path.sep).join('/')}/`; // the compiler's paths use '/'
  const inSource = (node: ts.Node): boolean => node.getSourceFile().fileName.startsWith(srcDir);
  const groups = (type: ts.Type): Array<{ type: ts.Type; suffix: string }> => {
    const parts = type.isUnion() ? type.types : [type];
    return parts.flatMap((part) => {
      if (!(part.flags & ts.TypeFlags.Object) || part.getCallSignatures().length > 0) return [];
      const index = checker.getIndexInfosOfType(part).find((info) => info.keyType.flags & ts.TypeFlags.String);
      if (index && checker.getPropertiesOfType(part).length === 0)
        return groups(index.type).map((g) => ({ ...g, suffix: `[id]${g.suffix}` }));
      const declarations = part.getSymbol()?.getDeclarations() ?? [];
      if (declarations.length === 0 || !declarations.every(inSource)) return [];
      const members = checker.getPropertiesOfType(part).flatMap((p) => p.getDeclarations() ?? []);
      if (members.some((m) => ts.isMethodSignature(m) || ts.isMethodDeclaration(m))) return [];
      return [{ type: part, suffix: '' }];
    });
  };
  const names: string[] = [];
  const walk = (type: ts.Type, prefix: string): void => {
    for (const property of checker.getPropertiesOfType(type)) {
      const name = prefix + property.name;
      names.push(name);
      const propertyType = checker.getNonNullableType(checker.getTypeOfSymbol(property));
      for (const group of groups(propertyType)) walk(group.type, `${name}${group.suffix}.`);
    }
  };
  walk(checker.getTypeAtLocation(declaration.name), '');
  return names;
}

describe('the documentation', () => {
  it('has only relative links and #anchors that resolve', () => {
    const problems: string[] = [];
    for (const file of linkedFiles) {
      for (const { target, line } of markdown(file).links) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
        const where = `${rel(file)}:${line}: ${target}`;
        const resolved =
          pathPart === ''
            ? file
            : pathPart.startsWith('/')
              ? path.join(root, pathPart)
              : path.resolve(path.dirname(file), decodeURI(pathPart));
        if (!existsSync(resolved)) {
          problems.push(`${where}: no such file ${rel(resolved)}`);
          continue;
        }
        if (anchor === undefined) continue;
        if (!resolved.endsWith('.md')) problems.push(`${where}: an anchor into a file that is not Markdown`);
        else if (!anchors(resolved).has(anchor.toLowerCase()))
          problems.push(`${where}: no heading of ${rel(resolved)} has the anchor #${anchor}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('has an entry (a heading) in docs/options.md for every option of the exported option types', () => {
    const names = optionNames();
    // The walk itself must have found the options: top level, nested and inside a record.
    expect(names).toEqual(expect.arrayContaining(['apiKey', 'deferred.maxAgeMs', 'businessEntities[id].site']));
    const headings = new Set(markdown(path.join(docsDir, 'options.md')).h3);
    const undocumented = names.filter((name) => !headings.has(name));
    expect(undocumented.map((name) => `docs/options.md has no "### ${name}"`)).toEqual([]);
  });

  it('documents no option in docs/options.md that the types do not have (a removed one, a typo)', () => {
    const names = new Set(optionNames());
    const stale = markdown(path.join(docsDir, 'options.md')).h3.filter((heading) => !names.has(heading));
    expect(
      stale.map((heading) => `docs/options.md: "### ${heading}" is not an option of ChargebeePortalLogoutOptions`),
    ).toEqual([]);
  });

  it('says of every TypeScript block whether it is a program, an excerpt or a fragment', () => {
    const problems = codeFiles.flatMap((file) =>
      markdown(file)
        .blocks.filter((block) => TYPESCRIPT.has(kindOf(block).lang))
        .filter((block) => !['program', 'excerpt', 'fragment'].includes(kindOf(block).kind ?? ''))
        .map(
          (block) =>
            `${rel(file)}:${block.line}: "${block.info}": write "ts program" (compiled), "ts excerpt examples/<file>" or "ts fragment"`,
        ),
    );
    expect(problems).toEqual([]);
  });

  it('has whole programs that compile against the package source', () => {
    expect(programs.length).toBeGreaterThan(0);
    const problems = programs.flatMap(({ doc, block, file }) => {
      const source = program.getSourceFile(file);
      if (!source) return [`${rel(doc)}:${block.line}: the program was not compiled`];
      return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map((d) => {
        const { line } = d.start === undefined ? { line: 0 } : source.getLineAndCharacterOfPosition(d.start);
        return `${rel(doc)}:${block.line + 1 + line}: TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
      });
    });
    const setup = program.getOptionsDiagnostics().map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
    expect([...setup, ...problems]).toEqual([]);
  });

  it('quotes examples as they are: every line of an excerpt is in its file, in order', () => {
    const problems: string[] = [];
    for (const file of codeFiles) {
      for (const block of markdown(file).blocks) {
        const { kind, source } = kindOf(block);
        if (kind !== 'excerpt') continue;
        const where = `${rel(file)}:${block.line}`;
        if (!source?.startsWith('examples/') || !existsSync(path.join(root, source))) {
          problems.push(`${where}: an excerpt names no file under examples/ (got "${source ?? ''}")`);
          continue;
        }
        const lines = readFileSync(path.join(root, source), 'utf8')
          .split('\n')
          .map((l) => l.trim());
        let at = 0;
        for (const [i, raw] of block.code.split('\n').entries()) {
          const quoted = raw.trim();
          if (quoted === '' || quoted === '// ...') continue;
          const found = lines.findIndex((l, j) => j >= at && l.includes(quoted));
          if (found === -1) {
            problems.push(`${rel(file)}:${block.line + 1 + i}: not in ${source} (after its line ${at}): ${quoted}`);
            break;
          }
          at = found + 1;
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('keeps the README a landing page whose first screen holds the set-up commands', () => {
    const readme = path.join(root, 'README.md');
    const lines = readFileSync(readme, 'utf8').replace(/\n$/, '').split('\n');
    const firstScreen = lines.slice(0, 25);
    const problems = [
      lines.length > 250 &&
        `README.md has ${lines.length} lines; a landing page has at most 250 (move the rest to docs/)`,
      !firstScreen.some((l) => l.startsWith('npm install && npm start')) &&
        'the first 25 lines of README.md lack the command `npm install && npm start`',
      !firstScreen.some((l) => /^npm test\b/.test(l)) && 'the first 25 lines of README.md lack the command `npm test`',
    ].filter(Boolean);
    expect(problems).toEqual([]);
  });
});
