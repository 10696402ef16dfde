// Small canvas line charts: no chart library, redrawn at most once per animation frame.

export interface SeriesStyle {
  label: string;
  color: string;
  /** Points only (e.g. one value per epoch) instead of a line. */
  dots?: boolean;
  /** Line width in CSS pixels. Default 1.5. */
  width?: number;
}

/**
 * Where the step axis is labelled: multiples of 1, 2 or 5 x 10^k from 0 to `xMax`, at most 6 of them, each a
 * whole step (never "0 0 1 1 1" for a range of one step).
 */
export function stepTicks(xMax: number): number[] {
  if (!(xMax > 0)) return [0];
  const rough = xMax / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? rough);
  const ticks: number[] = [];
  for (let x = 0; x <= xMax + 1e-9; x += step) ticks.push(Math.round(x));
  return ticks;
}

/** A line chart of several series over the training step. */
export class LineChart {
  private readonly points: Array<Array<[number, number]>>;
  private pending = false;
  /** The x range drawn is at least [0, xMax], so a run's curves fill the chart as it goes. */
  xMax = 1;
  /** The axis labels of the last drawing (none while the chart is empty), for tests. */
  ticks: { x: string[]; y: string[] } = { x: [], y: [] };

  constructor(
    readonly canvas: HTMLCanvasElement,
    readonly title: string,
    readonly styles: SeriesStyle[],
    readonly format: (y: number) => string = (y) => y.toPrecision(3),
  ) {
    this.points = styles.map(() => []);
  }

  /** Adds a point to series `index`; non-finite values are ignored. */
  push(index: number, x: number, y: number | null | undefined): void {
    if (y == null || !Number.isFinite(y)) return;
    this.points[index]!.push([x, y]);
    this.schedule();
  }

  /** Points of every series (for tests and downloads). */
  get data(): ReadonlyArray<ReadonlyArray<[number, number]>> {
    return this.points;
  }

  clear(): void {
    this.points.forEach((p) => (p.length = 0));
    this.draw();
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw(): void {
    const { canvas } = this;
    const dpr = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 360;
    const cssH = canvas.clientHeight || 200;
    if (canvas.width !== Math.round(cssW * dpr)) canvas.width = Math.round(cssW * dpr);
    if (canvas.height !== Math.round(cssH * dpr)) canvas.height = Math.round(cssH * dpr);
    const ctx = canvas.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, cssW, cssH);
    const left = 52;
    const right = 10;
    const top = 38;
    const bottom = 22;
    const w = cssW - left - right;
    const h = cssH - top - bottom;

    const all = this.points.flat();
    if (all.length === 0) {
      this.drawEmpty(ctx, left, top, w, h);
      return;
    }
    let x1 = Math.max(this.xMax, ...all.map(([x]) => x));
    const x0 = 0;
    if (x1 <= x0) x1 = x0 + 1;
    let y0 = all.length ? Math.min(...all.map(([, y]) => y)) : 0;
    let y1 = all.length ? Math.max(...all.map(([, y]) => y)) : 1;
    if (y1 === y0) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.05, y1 + Math.abs(y1 || 1) * 0.05];
    const pad = (y1 - y0) * 0.06;
    // Rates and accuracies are never negative: do not pad below zero.
    y0 = y0 >= 0 ? Math.max(0, y0 - pad) : y0 - pad;
    y1 += pad;
    const sx = (x: number) => left + ((x - x0) / (x1 - x0)) * w;
    const sy = (y: number) => top + h - ((y - y0) / (y1 - y0)) * h;

    ctx.font = '11px system-ui, sans-serif';
    ctx.strokeStyle = '#ddd';
    ctx.fillStyle = '#555';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    this.ticks = { x: [], y: [] };
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      ctx.beginPath();
      ctx.moveTo(left, sy(y));
      ctx.lineTo(left + w, sy(y));
      ctx.stroke();
      const label = this.format(y);
      this.ticks.y.push(label);
      ctx.fillText(label, left - 4, sy(y));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const x of stepTicks(x1)) {
      this.ticks.x.push(String(x));
      ctx.fillText(String(x), sx(x), top + h + 5);
    }
    ctx.strokeStyle = '#999';
    ctx.strokeRect(left, top, w, h);

    this.styles.forEach((style, i) => {
      const pts = this.points[i]!;
      ctx.strokeStyle = style.color;
      ctx.fillStyle = style.color;
      ctx.lineWidth = style.width ?? 1.5;
      if (!style.dots && pts.length > 1) {
        ctx.beginPath();
        pts.forEach(([x, y], j) => (j ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
        ctx.stroke();
      }
      if (style.dots || pts.length === 1) {
        for (const [x, y] of pts) {
          ctx.beginPath();
          ctx.arc(sx(x), sy(y), 3, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
    });

    this.drawTitle(ctx, left);
  }

  /** An empty chart: its frame, title and legend, and what it waits for, without axis numbers. */
  private drawEmpty(ctx: CanvasRenderingContext2D, left: number, top: number, w: number, h: number): void {
    this.ticks = { x: [], y: [] };
    ctx.strokeStyle = '#999';
    ctx.lineWidth = 1;
    ctx.strokeRect(left, top, w, h);
    ctx.fillStyle = '#888';
    ctx.font = '12px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('no steps yet', left + w / 2, top + h / 2);
    this.drawTitle(ctx, left);
  }

  private drawTitle(ctx: CanvasRenderingContext2D, left: number): void {
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
    ctx.fillStyle = '#111';
    ctx.font = 'bold 12px system-ui, sans-serif';
    ctx.fillText(this.title, left, 15);
    let lx = left;
    ctx.font = '11px system-ui, sans-serif';
    this.styles.forEach((style) => {
      ctx.fillStyle = style.color;
      ctx.fillRect(lx, 21, 10, 10);
      ctx.fillStyle = '#333';
      ctx.fillText(style.label, lx + 13, 30);
      lx += 13 + ctx.measureText(style.label).width + 10;
    });
  }
}

/** Bias-corrected exponential moving average, for smoothing noisy per-step curves. */
export class Smoother {
  private value = 0;
  private weight = 0;
  constructor(readonly beta = 0.9) {}
  next(x: number): number {
    this.value = this.beta * this.value + (1 - this.beta) * x;
    this.weight = this.beta * this.weight + (1 - this.beta);
    return this.value / this.weight;
  }
}
