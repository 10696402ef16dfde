/** A self-contained SVG of training curves (loss and accuracy per epoch), for reports and the CLI's --out. */

export interface CurveSeries {
  label: string;
  /** [x, y] points; non-finite y values are skipped. */
  points: Array<[number, number]>;
}

export interface CurvePanel {
  title: string;
  xLabel: string;
  series: CurveSeries[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd'];
const PANEL_W = 420;
const PANEL_H = 280;
const MARGIN = { left: 56, right: 16, top: 28, bottom: 40 };

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

function panelSvg(panel: CurvePanel, offsetX: number): string {
  const pts = panel.series.flatMap((s) => s.points.filter(([, y]) => Number.isFinite(y)));
  const xs = pts.map(([x]) => x);
  const ys = pts.map(([, y]) => y);
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => offsetX + MARGIN.left + ((x - x0) / (x1 - x0)) * w;
  const sy = (y: number) => MARGIN.top + h - ((y - y0) / (y1 - y0)) * h;
  const parts: string[] = [];
  parts.push(
    `<text x="${offsetX + PANEL_W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(panel.title)}</text>`,
  );
  parts.push(`<rect x="${offsetX + MARGIN.left}" y="${MARGIN.top}" width="${w}" height="${h}" fill="none" stroke="#888"/>`);
  for (const t of niceTicks(y0, y1)) {
    parts.push(
      `<line x1="${offsetX + MARGIN.left}" x2="${offsetX + MARGIN.left + w}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`,
    );
    parts.push(
      `<text x="${offsetX + MARGIN.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${+t.toFixed(4)}</text>`,
    );
  }
  for (const t of niceTicks(x0, x1)) {
    parts.push(`<text x="${sx(t).toFixed(1)}" y="${MARGIN.top + h + 16}" text-anchor="middle" font-size="11">${+t.toFixed(2)}</text>`);
  }
  parts.push(
    `<text x="${offsetX + MARGIN.left + w / 2}" y="${PANEL_H - 6}" text-anchor="middle" font-size="12">${escapeXml(panel.xLabel)}</text>`,
  );
  panel.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const finite = s.points.filter(([, y]) => Number.isFinite(y));
    if (finite.length > 1) {
      const d = finite.map(([x, y], j) => `${j ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    }
    for (const [x, y] of finite) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
    const ly = MARGIN.top + 14 + i * 15;
    parts.push(`<rect x="${offsetX + MARGIN.left + 8}" y="${ly - 9}" width="10" height="10" fill="${color}"/>`);
    parts.push(`<text x="${offsetX + MARGIN.left + 22}" y="${ly}" font-size="11">${escapeXml(s.label)}</text>`);
  });
  return parts.join('\n');
}

/** Renders panels side by side as one SVG document. */
export function curvesSvg(panels: CurvePanel[]): string {
  const width = PANEL_W * panels.length;
  const body = panels.map((p, i) => panelSvg(p, i * PANEL_W)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${PANEL_H}" viewBox="0 0 ${width} ${PANEL_H}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}
