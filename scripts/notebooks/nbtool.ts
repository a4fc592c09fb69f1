/**
 * Authoring helper for the committed notebooks (which stay clean: no outputs, null counts).
 *
 *   node --import tsx scripts/notebooks/nbtool.ts from-percent SRC.ts OUT.ipynb   build a notebook from its percent form
 *   node --import tsx scripts/notebooks/nbtool.ts to-percent NB.ipynb             print a notebook in percent form
 *   node --import tsx scripts/notebooks/nbtool.ts clean NB.ipynb ...              strip outputs and execution counts in place
 *
 * Percent form: a line `// %%` starts a code cell, `// %% [markdown]` a markdown cell whose lines
 * are written as `// text` comments (scripts/notebooks/format.ts).
 */
import { cleanNotebook, fromPercent, readNotebook, toPercent, writeNotebook } from './format';
import { readFileOrThrow } from '../../lib/fsutil';

const USAGE = 'usage: nbtool.ts from-percent SRC.ts OUT.ipynb | to-percent NB.ipynb | clean NB.ipynb ...';

/** Run one nbtool command; returns the exit status. */
function nbtool(argv: readonly string[]): number {
  const [cmd, ...args] = argv;
  if (cmd === 'from-percent' && args.length === 2) {
    writeNotebook(args[1], fromPercent(readFileOrThrow(args[0], 'the percent form', 'utf8')));
  } else if (cmd === 'to-percent' && args.length === 1) {
    process.stdout.write(toPercent(readNotebook(args[0])));
  } else if (cmd === 'clean' && args.length > 0) {
    for (const f of args) writeNotebook(f, cleanNotebook(readNotebook(f)));
  } else {
    console.error(USAGE);
    return 2;
  }
  return 0;
}

if (require.main === module) {
  try {
    process.exitCode = nbtool(process.argv.slice(2));
  } catch (err) {
    console.error(`nbtool: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
