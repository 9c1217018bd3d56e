// Anti-replay sliding window over the per-key packet counter carried in the IV (RFC 6479's
// bitmap-ring scheme, as wireguard-go's replay filter). Neither lispers.net nor EVE's data plane
// has one. `check` is cheap and runs before authentication; `accept` runs only after the ICV
// verified, so forged packets cannot move the window.

export type ReplayVerdict = 'fresh' | 'replayed' | 'too-old';

const WORD_BITS = 32;

export class ReplayWindow {
  private readonly words: Uint32Array;
  /** Highest counter accepted so far; -1 before the first. */
  private highest = -1;

  /** `size` counters behind the highest are remembered (rounded up to whole 32-bit words). */
  constructor(readonly size = 2048) {
    if (!Number.isInteger(size) || size < WORD_BITS || size % WORD_BITS !== 0) throw new RangeError('window size: a multiple of 32 bits');
    // One spare word, so that advancing never clears bits still inside the window.
    this.words = new Uint32Array(size / WORD_BITS + 1);
  }

  check(counter: number): ReplayVerdict {
    if (counter > this.highest) return 'fresh';
    if (this.highest - counter >= this.size) return 'too-old';
    return this.bit(counter) ? 'replayed' : 'fresh';
  }

  /** Records an authenticated counter; returns false (and changes nothing) if it is not fresh. */
  accept(counter: number): boolean {
    if (this.check(counter) !== 'fresh') return false;
    if (counter > this.highest) this.advance(counter);
    const index = Math.floor(counter / WORD_BITS) % this.words.length;
    this.words[index] = (this.words[index] ?? 0) | (1 << (counter % WORD_BITS));
    return true;
  }

  private bit(counter: number): boolean {
    const word = this.words[Math.floor(counter / WORD_BITS) % this.words.length] ?? 0;
    return ((word >>> (counter % WORD_BITS)) & 1) === 1;
  }

  /** Clears the words the window slides over on its way to `counter`. */
  private advance(counter: number): void {
    const from = this.highest < 0 ? -1 : Math.floor(this.highest / WORD_BITS);
    const to = Math.floor(counter / WORD_BITS);
    const steps = Math.min(to - from, this.words.length);
    for (let i = 1; i <= steps; i++) this.words[(to - steps + i) % this.words.length] = 0;
    this.highest = counter;
  }
}
