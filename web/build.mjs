// build.mjs — builds the dashboard's static files into dist/ (served by the
// front at /): dist/index.html (copied), dist/app.js (src/app.js bundled with
// esbuild: Alpine.js, uPlot and our modules) and dist/app.css (Tailwind CSS
// from src/app.css, plus uPlot's stylesheet). Nothing is loaded from a CDN.
//
//   node build.mjs          minified build (npm run build)
//   node build.mjs --dev    unminified, with source maps
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
// Built into dist.new, then swapped in: a front serving dist meanwhile never sees half a build.
const final = join(root, 'dist');
const dist = join(root, 'dist.new');
const dev = process.argv.includes('--dev');
const step = (what) => console.log(`build-web: ${what}`);

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

step('index.html');
copyFileSync(join(root, 'src/index.html'), join(dist, 'index.html'));
copyFileSync(join(root, 'src/favicon.svg'), join(dist, 'favicon.svg'));

step('app.js (esbuild)');
await build({
  entryPoints: [join(root, 'src/app.js')],
  outfile: join(dist, 'app.js'),
  bundle: true,
  format: 'iife',
  target: ['es2020'],
  minify: !dev,
  sourcemap: dev,
  legalComments: 'none',
  logLevel: 'warning',
});

step('app.css (tailwindcss)');
const tw = join(root, 'node_modules/.bin/tailwindcss');
try {
  execFileSync(tw, ['-c', join(root, 'tailwind.config.cjs'), '-i', join(root, 'src/app.css'),
    '-o', join(dist, 'tailwind.css'), ...(dev ? [] : ['--minify'])],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BROWSERSLIST_IGNORE_OLD_DATA: '1' } });
} catch (e) {
  process.stderr.write(String(e.stderr || e.message));
  console.error('build-web: tailwindcss failed');
  process.exit(1);
}
const uplotCss = readFileSync(join(root, 'node_modules/uplot/dist/uPlot.min.css'), 'utf8');
writeFileSync(join(dist, 'app.css'), uplotCss + '\n' + readFileSync(join(dist, 'tailwind.css'), 'utf8'));
rmSync(join(dist, 'tailwind.css'));

const old = join(root, 'dist.old');
rmSync(old, { recursive: true, force: true });
if (existsSync(final)) renameSync(final, old);
renameSync(dist, final);
rmSync(old, { recursive: true, force: true });
step(`done: ${final}`);
