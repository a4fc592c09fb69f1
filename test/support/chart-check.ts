/**
 * One check that a rendered chart actually draws its data, shared by the chart unit tests, the
 * notebook-bundle tests, the site tests and the JupyterLab tests.
 *
 * A chart is reduced to its data-mark items (Vega's `g.role-mark` groups: bars, lines, points,
 * areas; axes, legends and titles are not data) with their geometry in the coordinates of the plot
 * they sit in. {@link markProblems} then says what is wrong:
 *  - no data mark at all (empty axes);
 *  - a bar / rect with zero width or height (e.g. log-scale bars from a zero baseline), unless
 *    its value is 0 (a flat bar is then the truth);
 *  - a layer of lines (or areas) where no series has any length (extent);
 *  - a point outside its plot.
 *
 * Two extractors feed it: {@link svgMarks} parses an SVG string as vega writes it (Node: unit tests
 * and the `image/svg+xml` part of notebook bundles), {@link domMarks} runs inside a browser page on
 * a live `<svg>` (site and JupyterLab; pass it to `page.evaluate` / `locator.evaluate`).
 */

/** The kind of a data mark, from Vega's `mark-*` class. */
export type MarkKind = 'rect' | 'line' | 'symbol' | 'area' | 'rule' | 'text' | 'other';

/** One drawn item of a data mark. Coordinates are relative to the plot the item sits in. */
export interface MarkItem {
  kind: MarkKind;
  /**
   * The Vega mark the item belongs to (its `g.role-mark` class, e.g. `mark-line role-mark
   * layer_1_marks`): the series of one layer drawn per colour share it.
   */
  layer: string;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Path length for lines (sum of segment lengths); 0 otherwise. */
  length: number;
  /** The plot's size (the enclosing Vega group's background), or null when unknown. */
  plot: { width: number; height: number } | null;
  /** Vega's aria-label of the item (its data), for messages. */
  label: string;
}

/** What is wrong with a chart's data marks; empty when every mark is visible. */
export function markProblems(items: readonly MarkItem[]): string[] {
  const problems: string[] = [];
  const data = items.filter((i) => i.kind === 'rect' || i.kind === 'line' || i.kind === 'symbol' || i.kind === 'area');
  if (data.length === 0) return ['no data marks drawn (bars, lines, points or areas): the chart shows empty axes'];
  const eps = 1e-6;
  const tol = 1.5;
  const where = (i: MarkItem) => `${i.kind} ${i.label ? `"${i.label}"` : `#${items.indexOf(i)}`}`;
  for (const i of data) {
    if (![i.x, i.y, i.width, i.height].every(Number.isFinite)) {
      problems.push(`${where(i)} has no finite geometry`);
      continue;
    }
    // A bar is flat only when its value is 0 (Vega's aria-label shows it: "peak added (MiB): 0").
    if (i.kind === 'rect' && !(i.width > eps && i.height > eps) && !(Math.max(i.width, i.height) > eps && zeroDatum(i.label))) {
      problems.push(`${where(i)} is ${fmt(i.width)}×${fmt(i.height)} px: not visible`);
    }
    if (i.kind === 'symbol' && i.plot) {
      const cx = i.x + i.width / 2;
      const cy = i.y + i.height / 2;
      if (cx < -tol || cy < -tol || cx > i.plot.width + tol || cy > i.plot.height + tol) {
        problems.push(`${where(i)} at (${fmt(cx)}, ${fmt(cy)}) lies outside the ${fmt(i.plot.width)}×${fmt(i.plot.height)} plot`);
      }
    }
  }
  // Lines and areas: a series of one point is legitimately a dot (its point mark shows it), but a
  // layer where no series has any extent draws nothing.
  const layers = new Map<string, MarkItem[]>();
  for (const i of data) if (i.kind === 'line' || i.kind === 'area') layers.set(`${i.kind} ${i.layer}`, [...(layers.get(`${i.kind} ${i.layer}`) ?? []), i]);
  for (const [key, group] of layers) {
    const ok = key.startsWith('line') ? group.some((l) => l.length > eps) : group.some((a) => a.width > eps && a.height > eps);
    if (!ok) problems.push(`${key.startsWith('line') ? 'line' : 'area'} layer "${group[0].layer}": none of its ${group.length} item(s) has any ${key.startsWith('line') ? 'length' : 'extent'}`);
  }
  return problems;
}

/** Throw (an assertion-style Error naming `what`) unless every data mark of the chart is visible. */
export function assertMarksVisible(items: readonly MarkItem[], what: string): void {
  const problems = markProblems(items);
  if (problems.length) throw new Error(`${what}: the chart does not draw its data:\n  - ${problems.slice(0, 8).join('\n  - ')}${problems.length > 8 ? `\n  … and ${problems.length - 8} more` : ''}`);
}

/** True when a Vega aria-label ("x: a; y: 0; colour: b") holds a numeric field equal to zero. */
export function zeroDatum(label: string): boolean {
  return label.split('; ').some((kv) => /^[^:]+: -?0(?:\.0+)?$/.test(kv.trim()));
}

function fmt(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n * 10) / 10) : String(n);
}

// ---------------------------------------------------------------------------------------------
// Node: parse the SVG string vega writes.

interface El {
  tag: string;
  attrs: Record<string, string>;
  children: El[];
  parent: El | null;
}

function parseXml(svg: string): El {
  const root: El = { tag: '#root', attrs: {}, children: [], parent: null };
  let cur = root;
  const re = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  for (let m = re.exec(svg); m; m = re.exec(svg)) {
    const [, close, tag, rawAttrs, selfClose] = m;
    if (close) {
      while (cur.parent && cur.tag !== tag) cur = cur.parent;
      if (cur.parent) cur = cur.parent;
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of rawAttrs.matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs[a[1]] = a[2] ?? a[3] ?? '';
    const el: El = { tag, attrs, children: [], parent: cur };
    cur.children.push(el);
    if (!selfClose) cur = el;
  }
  return root;
}

const hasClass = (el: El, c: string) => (el.attrs.class ?? '').split(/\s+/).includes(c);

function translate(el: El): [number, number] {
  const m = /translate\(\s*(-?[\d.e+-]+)[\s,]+(-?[\d.e+-]+)\s*\)/.exec(el.attrs.transform ?? '');
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Bounding box and polyline length of an SVG path (curves bounded by their control points). */
export function pathGeometry(d: string): { x: number; y: number; width: number; height: number; length: number } {
  const tokens = d.match(/[a-zA-Z]|-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?/g) ?? [];
  let i = 0;
  let cmd = '';
  let x = 0;
  let y = 0;
  let sx = 0;
  let sy = 0;
  let length = 0;
  const xs: number[] = [];
  const ys: number[] = [];
  const num = () => Number(tokens[i++]);
  const visit = (nx: number, ny: number, draw: boolean) => {
    if (draw) length += Math.hypot(nx - x, ny - y);
    x = nx;
    y = ny;
    xs.push(x);
    ys.push(y);
  };
  while (i < tokens.length) {
    if (/[a-zA-Z]/.test(tokens[i])) cmd = tokens[i++];
    const rel = cmd === cmd.toLowerCase();
    const ox = rel ? x : 0;
    const oy = rel ? y : 0;
    switch (cmd.toUpperCase()) {
      case 'M': {
        visit(ox + num(), oy + num(), false);
        sx = x;
        sy = y;
        cmd = rel ? 'l' : 'L';
        break;
      }
      case 'L':
        visit(ox + num(), oy + num(), true);
        break;
      case 'H':
        visit(ox + num(), y, true);
        break;
      case 'V':
        visit(x, oy + num(), true);
        break;
      case 'C': {
        const c = [num(), num(), num(), num()];
        xs.push(ox + c[0], ox + c[2]);
        ys.push(oy + c[1], oy + c[3]);
        visit(ox + num(), oy + num(), true);
        break;
      }
      case 'S':
      case 'Q': {
        const c = [num(), num()];
        xs.push(ox + c[0]);
        ys.push(oy + c[1]);
        visit(ox + num(), oy + num(), true);
        break;
      }
      case 'T':
        visit(ox + num(), oy + num(), true);
        break;
      case 'A': {
        const rx = Math.abs(num());
        const ry = Math.abs(num());
        i += 3;
        const px = x;
        const py = y;
        visit(ox + num(), oy + num(), true);
        // An arc stays within its radii of both ends: enough for a symbol's extent.
        xs.push(px - rx, px + rx, x - rx, x + rx);
        ys.push(py - ry, py + ry, y - ry, y + ry);
        break;
      }
      case 'Z':
        visit(sx, sy, true);
        cmd = '';
        break;
      default:
        i++; // unknown token: skip
    }
  }
  if (!xs.length) return { x: NaN, y: NaN, width: NaN, height: NaN, length: 0 };
  const x0 = Math.min(...xs);
  const y0 = Math.min(...ys);
  return { x: x0, y: y0, width: Math.max(...xs) - x0, height: Math.max(...ys) - y0, length };
}

function kindOf(g: El): MarkKind {
  const cls = g.attrs.class ?? '';
  const m = /\bmark-(rect|line|symbol|area|rule|text)\b/.exec(cls);
  return m ? (m[1] as MarkKind) : 'other';
}

/** The data-mark items of an SVG string written by vega (`view.toSVG()` or a notebook bundle). */
export function svgMarks(svg: string): MarkItem[] {
  const root = parseXml(svg);
  const items: MarkItem[] = [];
  // Walk with the accumulated translation and the current plot (the nearest group background).
  const walk = (el: El, tx: number, ty: number, plot: MarkItem['plot'], origin: [number, number]) => {
    const [dx, dy] = translate(el);
    tx += dx;
    ty += dy;
    if (el.tag === 'g' && el.children.some((c) => c.tag === 'path' && hasClass(c, 'background'))) {
      const bg = el.children.find((c) => c.tag === 'path' && hasClass(c, 'background'))!;
      const g = pathGeometry(bg.attrs.d ?? '');
      plot = { width: g.width, height: g.height };
      origin = [tx, ty];
    }
    if (el.tag === 'g' && hasClass(el, 'role-mark')) {
      const layer = el.attrs.class ?? '';
      const kind = kindOf(el);
      for (const c of el.children) {
        const [cx, cy] = translate(c);
        let geo: { x: number; y: number; width: number; height: number; length: number };
        if (c.tag === 'path') geo = pathGeometry(c.attrs.d ?? '');
        else if (c.tag === 'line') {
          const [x1, y1, x2, y2] = ['x1', 'y1', 'x2', 'y2'].map((a) => Number(c.attrs[a] ?? 0));
          geo = { x: Math.min(x1, x2), y: Math.min(y1, y2), width: Math.abs(x2 - x1), height: Math.abs(y2 - y1), length: Math.hypot(x2 - x1, y2 - y1) };
        } else if (c.tag === 'rect') {
          geo = { x: Number(c.attrs.x ?? 0), y: Number(c.attrs.y ?? 0), width: Number(c.attrs.width ?? 0), height: Number(c.attrs.height ?? 0), length: 0 };
        } else if (c.tag === 'text') {
          geo = { x: 0, y: 0, width: 0, height: 0, length: 0 };
        } else continue;
        items.push({ kind, layer, x: geo.x + cx + tx - origin[0], y: geo.y + cy + ty - origin[1], width: geo.width, height: geo.height, length: geo.length, plot, label: c.attrs['aria-label'] ?? '' });
      }
      return;
    }
    for (const c of el.children) walk(c, tx, ty, plot, origin);
  };
  walk(root, 0, 0, null, [0, 0]);
  return items;
}

// ---------------------------------------------------------------------------------------------
// Browser: the same items from a live <svg>. Self-contained (no closures, no imports), so it can
// be handed to page.evaluate / locator.evaluate as is.

/** Run in the page with the `<svg>` element: its data-mark items, as {@link svgMarks} gives them. */
export function domMarks(svg: Element): MarkItem[] {
  const out: MarkItem[] = [];
  const marks = Array.from(svg.querySelectorAll('g.role-mark'));
  marks.forEach((g) => {
    const cls = g.getAttribute('class') ?? '';
    const layer = cls;
    const m = /\bmark-(rect|line|symbol|area|rule|text)\b/.exec(cls);
    const kind = (m ? m[1] : 'other') as MarkKind;
    // The plot: the background of the nearest enclosing Vega group.
    let plotEl: Element | null = null;
    for (let p: Element | null = g.parentElement; p && p !== svg.parentElement; p = p.parentElement) {
      const bg = Array.from(p.children).find((c) => c.tagName.toLowerCase() === 'path' && (c.getAttribute('class') ?? '').split(/\s+/).includes('background'));
      if (bg) {
        plotEl = bg;
        break;
      }
    }
    const pr = plotEl ? plotEl.getBoundingClientRect() : null;
    for (const c of Array.from(g.children)) {
      const tag = c.tagName.toLowerCase();
      if (!['path', 'line', 'rect', 'text'].includes(tag)) continue;
      const el = c as SVGGraphicsElement;
      const box = el.getBBox();
      const r = el.getBoundingClientRect();
      let length = 0;
      if (kind === 'line' && tag === 'path') length = (el as SVGPathElement).getTotalLength();
      if (tag === 'line') length = Math.hypot(box.width, box.height);
      out.push({
        kind,
        layer,
        // Position from the screen box (centred on the geometry box, so a stroke does not shift it).
        x: (pr ? r.left - pr.left : r.left) + (r.width - box.width) / 2,
        y: (pr ? r.top - pr.top : r.top) + (r.height - box.height) / 2,
        // getBBox: the geometry itself, so a zero-height bar stays 0 (its stroke does not count).
        width: box.width,
        height: box.height,
        length,
        plot: pr ? { width: pr.width, height: pr.height } : null,
        label: el.getAttribute('aria-label') ?? '',
      });
    }
  });
  return out;
}
