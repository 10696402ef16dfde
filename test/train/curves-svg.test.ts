import { describe, expect, it } from 'vitest';
import { curvesSvg, type CurvePanel } from '../../src/index.js';

/** The numbers of each `<tag class="cls" ...>`'s attributes, in document order. */
function boxes(svg: string, tag: string, cls: string): Array<Record<string, number>> {
  return [...svg.matchAll(new RegExp(`<${tag} class="${cls}"([^>]*)>`, 'g'))].map((m) =>
    Object.fromEntries([...m[1]!.matchAll(/(\w+)="([-\d.]+)"/g)].map(([, k, v]) => [k!, Number(v)])),
  );
}

const tickLabels = (svg: string) => [...svg.matchAll(/text-anchor="end" font-size="11">([^<]*)</g)].map((m) => m[1]!);

describe('curvesSvg', () => {
  // Two epochs, as a short run has: a legend inside the plot would sit on the curves.
  const short: CurvePanel[] = [
    {
      title: 'Loss',
      xLabel: 'epoch',
      series: [
        {
          label: 'train',
          points: [
            [1, 2.3],
            [2, 1.9],
          ],
        },
        {
          label: 'val',
          points: [
            [1, 2.0],
            [2, 1.8],
          ],
        },
      ],
    },
    {
      title: 'Learning rate',
      xLabel: 'epoch',
      series: [
        {
          label: 'OneCycle, non-bias group',
          points: Array.from({ length: 16 }, (_, i) => [(i + 1) / 8, 0.003 * Math.min(1, (i + 1) / 4)]),
          markers: false,
        },
      ],
    },
  ];

  it('draws each legend below its plot, inside the document, so it covers no curve', () => {
    const svg = curvesSvg(short);
    const height = Number(/height="(\d+)"/.exec(svg)![1]);
    const plots = boxes(svg, 'rect', 'plot');
    const legends = boxes(svg, 'rect', 'legend');
    expect(plots).toHaveLength(2);
    expect(legends).toHaveLength(3);
    const plotBottom = plots[0]!['y']! + plots[0]!['height']!;
    for (const legend of legends) {
      expect(legend['y']!).toBeGreaterThan(plotBottom);
      expect(legend['y']! + legend['height']!).toBeLessThanOrEqual(height);
    }
    // The legend of the second panel stays in its own panel's columns.
    expect(legends[2]!['x']!).toBeGreaterThanOrEqual(plots[1]!['x']!);
  });

  it('wraps a long legend onto more rows and grows the document to hold them', () => {
    const many: CurvePanel = {
      title: 'Accuracy',
      xLabel: 'epoch',
      series: ['train (moving average)', 'val (live net)', 'val (EMA net)', 'test with flip TTA'].map((label, i) => ({
        label,
        points: [[1, 0.1 * i]] as Array<[number, number]>,
      })),
    };
    const one = Number(/height="(\d+)"/.exec(curvesSvg([short[0]!]))![1]);
    const svg = curvesSvg([many]);
    const rows = new Set(boxes(svg, 'rect', 'legend').map((b) => b['y']));
    expect(rows.size).toBeGreaterThan(1);
    expect(Number(/height="(\d+)"/.exec(svg)![1])).toBeGreaterThan(one);
  });

  it('labels small values (a learning rate) with their digits, not as 0', () => {
    const labels = tickLabels(curvesSvg([short[1]!]));
    expect(labels.length).toBeGreaterThan(2);
    expect(labels.filter((l) => l === '0').length).toBeLessThanOrEqual(1);
    expect(new Set(labels).size).toBe(labels.length);
    expect(labels).toContain('1e-3');
    // Markers are left out of a dense curve; its path is drawn.
    const svg = curvesSvg([short[1]!]);
    expect(svg).not.toContain('<circle');
    expect(svg).toContain('<path');
    // Loss-sized values keep plain decimals.
    expect(tickLabels(curvesSvg([short[0]!]))).toContain('2');
  });
});
