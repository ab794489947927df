// Resumable SHA-256 (FIPS 180-4) in plain TypeScript. Its state (8 words, the unprocessed tail,
// the byte count) can be saved between HTTP requests, so the control plane — on Node or on a
// Worker, where no process outlives a request — hashes a runner's ciphertext part by part and
// checks the SHA-256 the runner reports for the whole object.

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
export const SHA256_INIT = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

export class Sha256 {
  private readonly h = new Int32Array(SHA256_INIT);
  private readonly w = new Int32Array(64);
  private readonly tail = new Uint8Array(64);
  private tailLen = 0;
  private bytes = 0;

  update(data: Uint8Array): this {
    this.bytes += data.length;
    let off = 0;
    if (this.tailLen) {
      const take = Math.min(64 - this.tailLen, data.length);
      this.tail.set(data.subarray(0, take), this.tailLen);
      this.tailLen += take;
      off = take;
      if (this.tailLen < 64) return this;
      this.blocks(this.tail, 0, 64);
      this.tailLen = 0;
    }
    const whole = (data.length - off) & ~63;
    if (whole) this.blocks(data, off, off + whole);
    off += whole;
    if (off < data.length) {
      this.tail.set(data.subarray(off), 0);
      this.tailLen = data.length - off;
    }
    return this;
  }

  digest(): Uint8Array {
    const pad = new Uint8Array(((this.tailLen + 9 + 63) >>> 6) << 6);
    pad.set(this.tail.subarray(0, this.tailLen));
    pad[this.tailLen] = 0x80;
    const v = new DataView(pad.buffer);
    v.setUint32(pad.length - 8, Math.floor(this.bytes / 0x20000000));
    v.setUint32(pad.length - 4, (this.bytes << 3) >>> 0);
    this.blocks(pad, 0, pad.length);
    const out = new Uint8Array(32);
    const ov = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) ov.setUint32(i * 4, this.h[i]! >>> 0);
    return out;
  }

  digestHex(): string {
    let s = "";
    for (const b of this.digest()) s += b.toString(16).padStart(2, "0");
    return s;
  }

  /** Serialisable state: `<bytes>:<8 words hex>:<tail hex>`. */
  exportState(): string {
    let words = "";
    for (let i = 0; i < 8; i++) words += (this.h[i]! >>> 0).toString(16).padStart(8, "0");
    let tail = "";
    for (let i = 0; i < this.tailLen; i++) tail += this.tail[i]!.toString(16).padStart(2, "0");
    return `${this.bytes}:${words}:${tail}`;
  }

  static fromState(state: string): Sha256 {
    const [bytes, words, tail] = state.split(":");
    const s = new Sha256();
    s.bytes = Number(bytes);
    for (let i = 0; i < 8; i++) s.h[i] = parseInt(words!.slice(i * 8, i * 8 + 8), 16) | 0;
    s.tailLen = tail!.length / 2;
    for (let i = 0; i < s.tailLen; i++) s.tail[i] = parseInt(tail!.slice(i * 2, i * 2 + 2), 16);
    return s;
  }

  private blocks(d: Uint8Array, from: number, to: number): void {
    sha256Compress(this.h, this.w, d, from, to);
  }
}

export function sha256Sync(data: Uint8Array): Uint8Array {
  return new Sha256().update(data).digest();
}

/**
 * The SHA-256 compression function over the 64-byte blocks of `d[from, to)`, updating state `h`
 * in place; `w` is a 64-word scratch schedule. Shared by the resumable hasher above and the
 * scheduler's allocation-free hash of "cluster/policy" strings (core/schedule.ts).
 */
export function sha256Compress(h: Int32Array, w: Int32Array, d: Uint8Array, from: number, to: number): void {
  let h0 = h[0]!, h1 = h[1]!, h2 = h[2]!, h3 = h[3]!, h4 = h[4]!, h5 = h[5]!, h6 = h[6]!, h7 = h[7]!;
  for (let p = from; p < to; p += 64) {
    for (let i = 0; i < 16; i++) {
      const j = p + i * 4;
      w[i] = (d[j]! << 24) | (d[j + 1]! << 16) | (d[j + 2]! << 8) | d[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15]!;
      const b = w[i - 2]!;
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
    let a = h0, b = h1, c = h2, dd = h3, e = h4, f = h5, g = h6, hh = h7;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (dd + t1) | 0;
      dd = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + dd) | 0;
    h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + hh) | 0;
  }
  h[0] = h0; h[1] = h1; h[2] = h2; h[3] = h3; h[4] = h4; h[5] = h5; h[6] = h6; h[7] = h7;
}
