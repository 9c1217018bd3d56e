// The last side-channel bundle version the node applied, kept where it cannot go backwards: a
// TPM NV counter (monotonic in hardware; even undefining and re-defining it cannot lower it),
// or, without a TPM, a file in the state directory — monotonic only as long as the disk is
// trusted, which `lispnode identity show` states.
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from './atomic-file.js';
import { hasTpmRc, TpmRc, type Tpm } from './tpm/index.js';

export interface VersionCounter {
  readonly kind: 'tpm-nv-counter' | 'file';
  /** The last applied version (0 before any). */
  read(): Promise<bigint>;
  /** Moves the counter up to `version`; never down. */
  advanceTo(version: bigint): Promise<void>;
}

/** lispnode's owner NV index for the counter, beside EVE's 0x15xxxxx indexes. */
export const BUNDLE_COUNTER_INDEX = 0x01500100;

/** A TPM counter only counts up by one: a bigger jump than this is refused rather than spun. */
export const MAX_COUNTER_STEP = 4096n;

export class TpmVersionCounter implements VersionCounter {
  readonly kind = 'tpm-nv-counter';

  constructor(
    private readonly tpm: Tpm,
    private readonly index = BUNDLE_COUNTER_INDEX,
  ) {}

  async read(): Promise<bigint> {
    return (await this.tpm.readCounter(this.index)) ?? 0n;
  }

  async advanceTo(version: bigint): Promise<void> {
    let value = await this.read();
    if (version - value > MAX_COUNTER_STEP) throw new RangeError(`bundle version ${version} is more than ${MAX_COUNTER_STEP} past the TPM counter (${value}); export bundles with nearby versions`);
    if (value === 0n) {
      try {
        await this.tpm.defineCounter(this.index);
      } catch (error) {
        if (!hasTpmRc(error, TpmRc.NV_DEFINED)) throw error;
      }
    }
    while (value < version) value = await this.tpm.incrementCounter(this.index);
  }
}

export class FileVersionCounter implements VersionCounter {
  readonly kind = 'file';

  constructor(private readonly file: string) {}

  read(): Promise<bigint> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8').trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve(0n);
      throw error;
    }
    if (!/^\d+$/.test(text)) return Promise.reject(new Error(`${this.file}: not a bundle counter`));
    return Promise.resolve(BigInt(text));
  }

  async advanceTo(version: bigint): Promise<void> {
    if (version <= (await this.read())) return;
    writeFileAtomicSync(this.file, `${version}\n`);
  }
}
