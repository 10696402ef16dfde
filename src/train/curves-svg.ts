/** A self-contained SVG of training curves (loss, accuracy, learning rate), for reports and the CLI's --out. */

/** One curve of a {@link CurvePanel}. */
export interface CurveSeries {
  /** The curve's name in the legend. */
  label: string;
  /** [x, y] points; non-finite y values are skipped. */
  points: Array<[number, number]>;
  /** A dot at every point (default true); off for dense curves such as a rate per step. */
  markers?: boolean;
}

/** One plot of {@link curvesSvg}: its title, the x axis's label, and its curves. */
export interface CurvePanel {
  /** Shown above the plot. */
  title: string;
  /** The x axis's label, e.g. 'epoch'. */
  xLabel: string;
  /** The curves, each in its own colour. */
  series: CurveSeries[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd'];
const PANEL_W = 420;
/** The plot and its axes; the legend goes below, in rows of its own. */
const PLOT_PANEL_H = 280;
const MARGIN = { left: 64, right: 16, top: 28, bottom: 40 };
const LEGEND_ROW_H = 16;
const LEGEND_FONT = 11;

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function niceStep(lo: number, hi: number, count: number): number {
  const step0 = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  return [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
}

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = niceStep(lo, hi, count);
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

/** A tick label with the digits its spacing needs: `0.25`, `1.5e-4` (a learning rate), `12`. */
function tickLabel(t: number, spacing: number): string {
  if (t === 0) return '0';
  const decimals = Math.max(0, -Math.floor(Math.log10(spacing)) + 1);
  if (decimals > 4) {
    const digits = Math.max(0, Math.floor(Math.log10(Math.abs(t))) - Math.floor(Math.log10(spacing)) + 1);
    return t.toExponential(digits).replace(/\.?0+e/, 'e');
  }
  return String(+t.toFixed(Math.min(decimals, 4)));
}

/** The legend's entries laid out in rows of the panel's width: [x offset, row] per series. */
function legendLayout(panel: CurvePanel): { at: Array<[number, number]>; rows: number } {
  const width = PANEL_W - MARGIN.left - MARGIN.right;
  const at: Array<[number, number]> = [];
  let x = 0;
  let row = 0;
  for (const s of panel.series) {
    // An estimate of the text's width (no font metrics in a string): 0.6 em a character.
    const entry = 14 + s.label.length * LEGEND_FONT * 0.6 + 14;
    if (x > 0 && x + entry > width) {
      x = 0;
      row++;
    }
    at.push([x, row]);
    x += entry;
  }
  return { at, rows: panel.series.length ? row + 1 : 0 };
}

function panelSvg(panel: CurvePanel, offsetX: number): string {
  const pts = panel.series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));
  const xs = pts.map(([x]) => x);
  const ys = pts.map(([, y]) => y);
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = y0 === 0 ? [-0.5, 0.5] : [y0 - Math.abs(y0) * 0.5, y1 + Math.abs(y1) * 0.5];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PLOT_PANEL_H - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => offsetX + MARGIN.left + ((x - x0) / (x1 - x0)) * w;
  const sy = (y: number) => MARGIN.top + h - ((y - y0) / (y1 - y0)) * h;
  const parts: string[] = [];
  parts.push(
    `<text x="${offsetX + PANEL_W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(panel.title)}</text>`,
  );
  parts.push(`<rect class="plot" x="${offsetX + MARGIN.left}" y="${MARGIN.top}" width="${w}" height="${h}" fill="none" stroke="#888"/>`);
  const yTicks = niceTicks(y0, y1);
  const ySpacing = yTicks.length > 1 ? yTicks[1]! - yTicks[0]! : Math.abs(y1 - y0) || 1;
  for (const t of yTicks) {
    parts.push(
      `<line x1="${offsetX + MARGIN.left}" x2="${offsetX + MARGIN.left + w}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`,
    );
    parts.push(
      `<text x="${offsetX + MARGIN.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${tickLabel(t, ySpacing)}</text>`,
    );
  }
  for (const t of niceTicks(x0, x1)) {
    parts.push(`<text x="${sx(t).toFixed(1)}" y="${MARGIN.top + h + 16}" text-anchor="middle" font-size="11">${+t.toFixed(2)}</text>`);
  }
  parts.push(
    `<text x="${offsetX + MARGIN.left + w / 2}" y="${PLOT_PANEL_H - 6}" text-anchor="middle" font-size="12">${escapeXml(panel.xLabel)}</text>`,
  );
  const legend = legendLayout(panel);
  panel.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const finite = s.points.filter(([, y]) => Number.isFinite(y));
    if (finite.length > 1) {
      const d = finite.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    }
    if (s.markers !== false || finite.length === 1)
      for (const [x, y] of finite) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
    // Below the axis label, outside the plot: a legend inside would cover the curves of a short run.
    const [lx, row] = legend.at[i]!;
    const x = offsetX + MARGIN.left + lx;
    const y = PLOT_PANEL_H + 4 + row * LEGEND_ROW_H + 10;
    parts.push(`<rect class="legend" x="${x}" y="${y - 9}" width="10" height="10" fill="${color}"/>`);
    parts.push(`<text x="${x + 14}" y="${y}" font-size="${LEGEND_FONT}">${escapeXml(s.label)}</text>`);
  });
  return parts.join('\n');
}

/** Renders panels side by side as one SVG document, each with its legend below its plot. */
export function curvesSvg(panels: CurvePanel[]): string {
  const width = PANEL_W * panels.length;
  const legendRows = Math.max(0, ...panels.map((p) => legendLayout(p).rows));
  const height = PLOT_PANEL_H + (legendRows ? 8 + legendRows * LEGEND_ROW_H : 0);
  const body = panels.map((p, i) => panelSvg(p, i * PANEL_W)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}
