/** One regular file read from a tar archive. */
export interface TarEntry {
  /** Path inside the archive, as stored (ustar prefix and GNU long names resolved). */
  name: string;
  /** The file's bytes: a view into the archive buffer, not a copy. */
  data: Uint8Array;
}

const BLOCK = 512;

function readString(bytes: Uint8Array, offset: number, length: number): string {
  let end = offset;
  while (end < offset + length && bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(offset, end));
}

function readOctal(bytes: Uint8Array, header: number, field: number, length: number, what: string, archive: string): number {
  const offset = header + field;
  // GNU base-256 numbers (files over 8 GiB) start with 0x80; CIFAR-10 never needs them.
  if ((bytes[offset]! & 0x80) !== 0) {
    throw new Error(`${archive}: tar header at byte ${header} uses a base-256 ${what}, which this reader does not support`);
  }
  const text = readString(bytes, offset, length).trim();
  if (!/^[0-7]*$/.test(text)) {
    throw new Error(`${archive}: tar header at byte ${header} has a ${what} that is not octal: ${JSON.stringify(text)}`);
  }
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(bytes: Uint8Array, offset: number, archive: string): boolean {
  const stored = readOctal(bytes, offset, 148, 8, 'checksum', archive);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) {
    // The checksum field itself counts as eight spaces.
    sum += i >= 148 && i < 156 ? 0x20 : bytes[offset + i]!;
  }
  return sum === stored;
}

function isZeroBlock(bytes: Uint8Array, offset: number): boolean {
  for (let i = offset; i < offset + BLOCK; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * Lists the regular files of an uncompressed tar archive (ustar, GNU and pax headers), in order.
 * Directories, links and pax/GNU metadata entries are skipped; GNU long names (`L`) and
 * pax `path` records are honoured. Headers are checksum-verified and a truncated archive is an
 * error naming `archiveName`, so a cut-off download is never unpacked as data.
 *
 * @remarks This is the small reader the CIFAR-10 download needs (`cifar-10-binary.tar.gz` holds
 * `cifar-10-batches-bin/*.bin`); it keeps the package free of a tar dependency.
 */
export function readTar(bytes: Uint8Array, archiveName = 'archive'): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  let sawEnd = false;
  while (offset + BLOCK <= bytes.length) {
    if (isZeroBlock(bytes, offset)) {
      sawEnd = true;
      break;
    }
    if (!checksumOk(bytes, offset, archiveName)) {
      throw new Error(`${archiveName}: tar header at byte ${offset} has a bad checksum (corrupt or not a tar archive)`);
    }
    const size = readOctal(bytes, offset, 124, 12, 'size', archiveName);
    const type = String.fromCharCode(bytes[offset + 156]!);
    const dataStart = offset + BLOCK;
    const dataEnd = dataStart + size;
    if (dataEnd > bytes.length) {
      throw new Error(
        `${archiveName}: tar entry at byte ${offset} declares ${size} bytes but the archive ends after ${bytes.length - dataStart} (truncated archive)`,
      );
    }
    const data = bytes.subarray(dataStart, dataEnd);
    if (type === 'L') {
      longName = readString(data, 0, data.length);
    } else if (type === 'x') {
      paxPath = parsePaxPath(data) ?? paxPath;
    } else if (type === '0' || type === '\0' || type === '7') {
      const magic = readString(bytes, offset + 257, 6);
      const prefix = magic.startsWith('ustar') ? readString(bytes, offset + 345, 155) : '';
      const shortName = readString(bytes, offset, 100);
      const name = paxPath ?? longName ?? (prefix ? `${prefix}/${shortName}` : shortName);
      entries.push({ name, data });
      longName = undefined;
      paxPath = undefined;
    } else {
      // Directories, links, global pax headers: nothing to extract.
      longName = undefined;
      paxPath = undefined;
    }
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  if (!sawEnd) {
    throw new Error(`${archiveName}: tar archive ends at byte ${bytes.length} without its end-of-archive marker (truncated archive)`);
  }
  return entries;
}

function parsePaxPath(data: Uint8Array): string | undefined {
  // Records are "<len> <key>=<value>\n".
  const text = new TextDecoder().decode(data);
  let path: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^\d+ path=(.*)$/.exec(line);
    if (m) path = m[1];
  }
  return path;
}
