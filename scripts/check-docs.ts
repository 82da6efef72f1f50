/**
 * `npm run lint`'s docs check: fails on a markdown link or #anchor that does not resolve, and on a doc or code comment
 * that names a repository path that does not exist.
 *
 * 1. Every relative link `[text](target)` in README.md and docs/*.md (outside code) must name an existing file or
 *    folder; a `#anchor` (same page or another .md page) must match a heading by GitHub's slug rules.
 * 2. A repository path (starting with one of REPO_ROOTS) named in an inline code span of those pages, or anywhere in a
 *    `//` or `/* *\/` comment of the .ts files under CODE_DIRS, must exist. Placeholders (`<name>`, `*`, `{a,b}`) are
 *    skipped, and so is a URL-encoded key (`%`); a `.js` path is accepted when its `.ts` source exists (ESM import
 *    spelling). A bare upper-case page name (as `README.md`) must be a file of the repository's root or of docs/.
 *
 * Written here rather than taken from remark-validate-links: it needs no new dependency (CI installs with `npm ci`
 * offline from the lock), and no maintained tool checks paths named in TypeScript comments.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export interface DocProblem {
  /** Repository-relative path of the file with the problem. */
  file: string;
  /** 1-based line. */
  line: number;
  message: string;
}

/** First path segments that make a token a repository path. */
export const REPO_ROOTS = ['src', 'functions', 'cdk', 'scripts', 'containers', 'test', 'bench', 'docs', 'experiments', 'schema'];
/** Folders whose .ts comments are checked. */
export const CODE_DIRS = ['src', 'functions', 'cdk', 'scripts', 'containers', 'test', 'bench'];

const SKIP_DIRS = new Set(['node_modules', 'dist', 'cdk.out', '.cache', 'out', 'fixtures']);

const PATH_RE = new RegExp(`(?<![\\w./@$~-])((?:${REPO_ROOTS.join('|')})/[^\\s\`'"()\\[\\],;]*)`, 'g');

const DOC_RE = /(?<![\w./@$~-])([A-Z][A-Z0-9_-]*\.md)\b/g;

/** GitHub's heading anchor: lowercase, punctuation other than `-` and `_` dropped, each space a `-`. */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links keep their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/[`*]/g, '') // code and emphasis markers (underscores are kept: GitHub keeps them)
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** Markdown lines with fenced code blocks blanked (line numbers kept). */
function proseLines(text: string): string[] {
  let fence: string | undefined;
  return text.split('\n').map((line) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      const mark = (m[1] ?? '')[0];
      if (fence === undefined) fence = mark;
      else if (mark === fence) fence = undefined;
      return '';
    }
    return fence === undefined ? line : '';
  });
}

/** The anchors of a markdown file's headings, with GitHub's `-1`, `-2` suffixes for repeats. */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(markdown)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = githubSlug(m[1] ?? '');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

function isPlaceholder(path: string): boolean {
  return /[<*{$%]/.test(path) || path.includes('...') || path.includes('…');
}

function pathExists(root: string, path: string): boolean {
  const clean = path.replace(/[.:]+$/, '').replace(/#.*$/, '');
  const abs = join(root, clean);
  if (existsSync(abs)) return true;
  if (clean.endsWith('.js') && existsSync(abs.slice(0, -3) + '.ts')) return true;
  return false;
}

/** Repository paths in one piece of text that do not exist, with their offset in it. */
function missingPaths(root: string, text: string): { path: string; index: number }[] {
  const out: { path: string; index: number }[] = [];
  for (const m of text.matchAll(PATH_RE)) {
    const path = m[1] ?? '';
    if (isPlaceholder(path)) continue;
    if (!pathExists(root, path)) out.push({ path: path.replace(/[.:]+$/, ''), index: m.index ?? 0 });
  }
  // A bare upper-case document name (README.md) is a page of the repository's root or of docs/.
  for (const m of text.matchAll(DOC_RE)) {
    const name = m[1] ?? '';
    if (!existsSync(join(root, name)) && !existsSync(join(root, 'docs', name))) out.push({ path: name, index: m.index ?? 0 });
  }
  return out.sort((a, b) => a.index - b.index);
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Problems in one markdown file (`file` repository-relative). */
export function checkMarkdown(root: string, file: string): DocProblem[] {
  const problems: DocProblem[] = [];
  const abs = join(root, file);
  const lines = proseLines(readFileSync(abs, 'utf8'));
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (mdAbs: string): Set<string> => {
    let a = anchorCache.get(mdAbs);
    if (!a) anchorCache.set(mdAbs, (a = anchorsOf(readFileSync(mdAbs, 'utf8'))));
    return a;
  };
  const prose = lines.join('\n');
  // Code spans may run over a line break, as markdown allows; links are looked for outside them.
  const spans = /(`+)([^`][\s\S]*?)\1/g;
  const outsideCode = prose.replace(spans, (s) => s.replace(/[^\n]/g, ' '));
  for (const m of outsideCode.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const lineNo = lineAt(prose, m.index ?? 0);
    const target = m[1] ?? '';
    if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:, ...
    const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
    const targetAbs = pathPart === '' ? abs : resolve(dirname(abs), decodeURI(pathPart));
    if (pathPart !== '' && !existsSync(targetAbs)) {
      problems.push({ file, line: lineNo, message: `broken link: ${target} (no ${relative(root, targetAbs)})` });
      continue;
    }
    if (anchor !== undefined && targetAbs.endsWith('.md') && statSync(targetAbs).isFile()) {
      if (!anchors(targetAbs).has(anchor.toLowerCase())) {
        problems.push({ file, line: lineNo, message: `broken anchor: ${target} (no heading #${anchor} in ${relative(root, targetAbs)})` });
      }
    }
  }
  for (const span of prose.matchAll(spans)) {
    const [, ticks = '', code = ''] = span;
    for (const miss of missingPaths(root, code)) {
      const lineNo = lineAt(prose, (span.index ?? 0) + ticks.length + miss.index);
      problems.push({ file, line: lineNo, message: `names a repository path that does not exist: ${miss.path}` });
    }
  }
  problems.sort((a, b) => a.line - b.line);
  return problems;
}

/** Problems in the comments of one TypeScript file (`file` repository-relative). */
export function checkComments(root: string, file: string): DocProblem[] {
  const text = readFileSync(join(root, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const ranges = new Map<number, ts.CommentRange>();
  const collect = (pos: number): void => {
    for (const r of ts.getLeadingCommentRanges(text, pos) ?? []) ranges.set(r.pos, r);
    for (const r of ts.getTrailingCommentRanges(text, pos) ?? []) ranges.set(r.pos, r);
  };
  const visit = (node: ts.Node): void => {
    collect(node.pos);
    collect(node.end);
    node.getChildren(source).forEach(visit);
  };
  visit(source);
  const problems: DocProblem[] = [];
  for (const r of ranges.values()) {
    const comment = text.slice(r.pos, r.end);
    for (const miss of missingPaths(root, comment)) {
      problems.push({ file, line: lineAt(text, r.pos + miss.index), message: `comment names a repository path that does not exist: ${miss.path}` });
    }
  }
  return problems.sort((a, b) => a.line - b.line);
}

function tsFiles(root: string, dir: string): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(abs, { withFileTypes: true })) {
    const rel = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.')) out.push(...tsFiles(root, rel));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      out.push(rel);
    }
  }
  return out;
}

/** Every problem in README.md, docs/*.md and the comments of the .ts files under CODE_DIRS of the repository at `root`. */
export function checkDocs(root: string): DocProblem[] {
  const markdown = ['README.md'].filter((f) => existsSync(join(root, f)));
  if (existsSync(join(root, 'docs'))) {
    markdown.push(...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => join('docs', f)));
  }
  const problems = markdown.flatMap((f) => checkMarkdown(root, f));
  for (const dir of CODE_DIRS) for (const f of tsFiles(root, dir).sort()) problems.push(...checkComments(root, f));
  return problems;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? '.');
  const problems = checkDocs(root);
  for (const p of problems) console.error(`${p.file}:${p.line}: ${p.message}`);
  if (problems.length > 0) {
    console.error(`check-docs: ${problems.length} problem(s)`);
    process.exit(1);
  }
  console.log('check-docs: links, anchors and repository paths in README.md, docs/ and code comments resolve');
}
