/** A minimal ustar writer, only to build the served archive (readTar is checked against the system tar in tar.test.ts). */
export function ustar(entries: Array<{ name: string; data?: Uint8Array }>): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const { name, data } of entries) {
    const header = new Uint8Array(512);
    const put = (offset: number, text: string) => header.set(new TextEncoder().encode(text), offset);
    put(0, name);
    put(100, data ? '0000644\0' : '0000755\0');
    put(108, '0000000\0');
    put(116, '0000000\0');
    put(124, `${(data?.length ?? 0).toString(8).padStart(11, '0')}\0`);
    put(136, '00000000000\0');
    header[156] = (data ? '0' : '5').charCodeAt(0);
    put(257, 'ustar\u000000');
    put(148, '        ');
    const sum = header.reduce((s, b) => s + b, 0);
    put(148, `${sum.toString(8).padStart(6, '0')}\0 `);
    blocks.push(header);
    if (data) {
      const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
      padded.set(data);
      blocks.push(padded);
    }
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}
